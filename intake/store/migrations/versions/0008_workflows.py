"""workflows after intake: the response goal's clock and state, escalation, the 24x7 flag, staff
addresses for notifications, and contacts' requests for another severity

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-03
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import intake.store.models

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
UTC = intake.store.models.UTCDateTime(timezone=True)
GOAL_TIMES = (
    "goal_started_at",
    "assigned_at",
    "first_response_at",
    "goal_met_at",
    "goal_breached_at",
    "status_reported_at",
    "report_reminded_at",
)


def upgrade() -> None:
    # Plain ADD COLUMN (no batch copy on SQLite, which would lose the table's AUTOINCREMENT).
    for name in GOAL_TIMES:
        op.add_column("service_requests", sa.Column(name, UTC, nullable=True))
    for name in ("goal_warned_share", "escalation_level"):
        op.add_column(
            "service_requests",
            sa.Column(name, sa.Integer(), nullable=False, server_default="0"),
        )
    op.add_column(
        "service_requests", sa.Column("escalation_owner", sa.String(length=200), nullable=True)
    )
    op.add_column(
        "service_requests",
        sa.Column("needs_24x7_contact", sa.Boolean(), nullable=False, server_default=sa.false()),
    )
    op.create_index(
        "ix_service_requests_goal_open",
        "service_requests",
        ["goal_met_at", "status", "response_due_at"],
        unique=False,
    )
    op.add_column("staff_users", sa.Column("email", sa.String(length=320), nullable=True))
    op.create_index("ix_request_events_type_at", "request_events", ["type", "at"], unique=False)
    op.create_table(
        "severity_requests",
        sa.Column("id", BigId, nullable=False),
        sa.Column("request_id", BigId, nullable=False),
        sa.Column("severity", sa.Integer(), nullable=False),
        sa.Column("previous_severity", sa.Integer(), nullable=False),
        sa.Column("justification", sa.Text(), nullable=False),
        sa.Column("state", sa.String(length=20), nullable=False),
        sa.Column("note", sa.Text(), nullable=False),
        sa.Column("requested_by", sa.String(length=320), nullable=False),
        sa.Column("decided_by", sa.String(length=200), nullable=False),
        sa.Column("created_at", UTC, nullable=False),
        sa.Column("decided_at", UTC, nullable=True),
        sa.ForeignKeyConstraint(
            ["request_id"],
            ["service_requests.id"],
            name=op.f("fk_severity_requests_request_id_service_requests"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_severity_requests")),
    )
    op.create_index(
        op.f("ix_severity_requests_request_id"), "severity_requests", ["request_id"], unique=False
    )


def downgrade() -> None:
    op.drop_index(op.f("ix_severity_requests_request_id"), table_name="severity_requests")
    op.drop_table("severity_requests")
    op.drop_index("ix_service_requests_goal_open", table_name="service_requests")
    op.drop_index("ix_request_events_type_at", table_name="request_events")
    with op.batch_alter_table("staff_users") as batch:
        batch.drop_column("email")
    with op.batch_alter_table(
        "service_requests", table_kwargs={"sqlite_autoincrement": True}
    ) as batch:
        for name in (
            "needs_24x7_contact",
            "escalation_owner",
            "escalation_level",
            "goal_warned_share",
            *GOAL_TIMES,
        ):
            batch.drop_column(name)
