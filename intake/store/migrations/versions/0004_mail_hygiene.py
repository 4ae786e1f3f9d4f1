"""mail hygiene: attachments of inbound mail, undeliverable addresses, and an index for the
per-address acknowledgment rate limit

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-27
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import intake.store.models

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "intake_attachments",
        sa.Column("id", BigId, nullable=False),
        sa.Column("intake_id", BigId, nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("filename", sa.String(length=255), nullable=False),
        sa.Column("content_type", sa.String(length=255), nullable=False),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.Column("data", sa.LargeBinary(), nullable=True),
        sa.Column("note", sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(
            ["intake_id"],
            ["intake_log.id"],
            name=op.f("fk_intake_attachments_intake_id_intake_log"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_intake_attachments")),
    )
    op.create_index(
        op.f("ix_intake_attachments_intake_id"), "intake_attachments", ["intake_id"], unique=False
    )
    op.create_table(
        "undeliverable_addresses",
        sa.Column("id", BigId, nullable=False),
        sa.Column("address", sa.String(length=320), nullable=False),
        sa.Column("until", intake.store.models.UTCDateTime(timezone=True), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("intake_id", BigId, nullable=True),
        sa.Column("updated_at", intake.store.models.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["intake_id"],
            ["intake_log.id"],
            name=op.f("fk_undeliverable_addresses_intake_id_intake_log"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_undeliverable_addresses")),
        sa.UniqueConstraint("address", name=op.f("uq_undeliverable_addresses_address")),
    )
    # A plain CREATE INDEX: no table copy on SQLite, no rewrite on PostgreSQL.
    op.create_index(
        "ix_outbox_recipient_created", "outbox", ["recipient", "created_at"], unique=False
    )


def downgrade() -> None:
    op.drop_index("ix_outbox_recipient_created", table_name="outbox")
    op.drop_table("undeliverable_addresses")
    op.drop_index(op.f("ix_intake_attachments_intake_id"), table_name="intake_attachments")
    op.drop_table("intake_attachments")
