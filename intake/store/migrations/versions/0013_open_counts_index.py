"""the dashboard's counts of open requests: a partial index of the open requests alone

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-04
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0013"
down_revision: str | None = "0012"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

OPEN = sa.text("status IN ('new', 'acknowledged', 'in_progress')")


def upgrade() -> None:
    op.create_index(
        "ix_service_requests_open_counts",
        "service_requests",
        ["severity", "acknowledged_at", "goal_met_at", "response_due_at"],
        unique=False,
        postgresql_where=OPEN,
        sqlite_where=OPEN,
    )


def downgrade() -> None:
    op.drop_index("ix_service_requests_open_counts", table_name="service_requests")
