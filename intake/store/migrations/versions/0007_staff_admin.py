"""staff administration: administrators, disabled logins, session versions and the sign-in
failure window

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-03
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import intake.store.models

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("staff_users") as batch_op:
        batch_op.add_column(
            sa.Column(
                "failures_since", intake.store.models.UTCDateTime(timezone=True), nullable=True
            )
        )
        batch_op.add_column(
            sa.Column("is_admin", sa.Boolean(), nullable=False, server_default=sa.false())
        )
        batch_op.add_column(
            sa.Column("disabled", sa.Boolean(), nullable=False, server_default=sa.false())
        )
        batch_op.add_column(
            sa.Column("session_version", sa.Integer(), nullable=False, server_default="1")
        )
    # Logins made before administrators existed: the first one becomes the administrator.
    op.execute(
        "UPDATE staff_users SET is_admin = TRUE WHERE id = (SELECT MIN(id) FROM staff_users)"
    )
    with op.batch_alter_table("staff_users") as batch_op:
        batch_op.alter_column("is_admin", server_default=None)
        batch_op.alter_column("disabled", server_default=None)
        batch_op.alter_column("session_version", server_default=None)


def downgrade() -> None:
    with op.batch_alter_table("staff_users") as batch_op:
        batch_op.drop_column("session_version")
        batch_op.drop_column("disabled")
        batch_op.drop_column("is_admin")
        batch_op.drop_column("failures_since")
