"""the IMAP door: each mailbox's position (UIDVALIDITY, last UID), its poller's lease and
last polls, and the messages that failed to be recorded

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-03
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import intake.store.models

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
Moment = intake.store.models.UTCDateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "imap_mailboxes",
        sa.Column("id", BigId, nullable=False),
        sa.Column("mailbox", sa.String(length=300), nullable=False),
        sa.Column("uidvalidity", sa.BigInteger(), nullable=False),
        sa.Column("last_uid", sa.BigInteger(), nullable=False),
        sa.Column("holder", sa.String(length=200), nullable=False),
        sa.Column("lease_until", Moment, nullable=True),
        sa.Column("last_poll_at", Moment, nullable=True),
        sa.Column("last_success_at", Moment, nullable=True),
        sa.Column("last_error_at", Moment, nullable=True),
        sa.Column("last_error", sa.Text(), nullable=False),
        sa.Column("messages", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_imap_mailboxes")),
        sa.UniqueConstraint("mailbox", name=op.f("uq_imap_mailboxes_mailbox")),
    )
    op.create_table(
        "imap_failures",
        sa.Column("id", BigId, nullable=False),
        sa.Column("mailbox", sa.String(length=300), nullable=False),
        sa.Column("uidvalidity", sa.BigInteger(), nullable=False),
        sa.Column("uid", sa.BigInteger(), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("last_error", sa.Text(), nullable=False),
        sa.Column("updated_at", Moment, nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_imap_failures")),
        sa.UniqueConstraint("mailbox", "uidvalidity", "uid", name="uq_imap_failures"),
    )


def downgrade() -> None:
    op.drop_table("imap_failures")
    op.drop_table("imap_mailboxes")
