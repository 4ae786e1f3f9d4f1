"""staff pages: a request's assignee, and indexes for the dashboard's counts

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-27
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

KEEP_AUTOINCREMENT = {"sqlite_autoincrement": True}


def upgrade() -> None:
    # batch_alter_table: SQLite cannot add a foreign key to an existing table in place, so the
    # table is copied; AUTOINCREMENT is not reflected and must be named again (request numbers
    # are never reused).
    with op.batch_alter_table("service_requests", table_kwargs=KEEP_AUTOINCREMENT) as batch_op:
        batch_op.add_column(
            sa.Column(
                "assignee_id",
                sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
                nullable=True,
            )
        )
        batch_op.create_foreign_key(
            batch_op.f("fk_service_requests_assignee_id_staff_users"),
            "staff_users",
            ["assignee_id"],
            ["id"],
        )
        batch_op.create_index(
            "ix_service_requests_awaiting_ack",
            ["acknowledged_at", "response_due_at"],
            unique=False,
        )
        batch_op.create_index(
            "ix_service_requests_status_severity", ["status", "severity"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("service_requests", table_kwargs=KEEP_AUTOINCREMENT) as batch_op:
        batch_op.drop_index("ix_service_requests_status_severity")
        batch_op.drop_index("ix_service_requests_awaiting_ack")
        batch_op.drop_constraint(
            batch_op.f("fk_service_requests_assignee_id_staff_users"), type_="foreignkey"
        )
        batch_op.drop_column("assignee_id")
