"""the acknowledgment limit's index: recipient, purpose, channel, then the window

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-04
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0012"
down_revision: str | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index(
        "ix_outbox_ack_window",
        "outbox",
        ["recipient", "purpose", "channel", "created_at"],
        unique=False,
    )
    op.drop_index("ix_outbox_recipient_created", table_name="outbox")


def downgrade() -> None:
    op.create_index(
        "ix_outbox_recipient_created", "outbox", ["recipient", "created_at"], unique=False
    )
    op.drop_index("ix_outbox_ack_window", table_name="outbox")
