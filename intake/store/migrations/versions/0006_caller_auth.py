"""caller auth: a call's STIR/SHAKEN attestation, wrong PINs and PIN lockouts, escalating
contact locks, and whether an intake item's sender was verified

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-03
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import intake.store.models

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
UTC = intake.store.models.UTCDateTime(timezone=True)


def upgrade() -> None:
    # Existing rows get their value from the server default, which is dropped again after: the
    # models give every new row its value.
    _add_with_default("call_sessions", sa.Column("attestation", sa.String(40), nullable=False), "")
    _add_with_default("call_sessions", sa.Column("after_pin", sa.String(20), nullable=False), "")
    _add_with_default("contacts", sa.Column("pin_locks", sa.Integer(), nullable=False), "0")
    _add_with_default(
        "intake_log", sa.Column("sender_verified", sa.Boolean(), nullable=False), sa.false()
    )
    op.create_table(
        "pin_failures",
        sa.Column("id", BigId, nullable=False),
        sa.Column("at", UTC, nullable=False),
        sa.Column("caller", sa.String(length=64), nullable=False),
        sa.Column("entered_phone", sa.String(length=20), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_pin_failures")),
    )
    op.create_index(op.f("ix_pin_failures_at"), "pin_failures", ["at"], unique=False)
    op.create_index(op.f("ix_pin_failures_caller"), "pin_failures", ["caller"], unique=False)
    op.create_table(
        "pin_lockouts",
        sa.Column("id", BigId, nullable=False),
        sa.Column("scope", sa.String(length=64), nullable=False),
        sa.Column("level", sa.Integer(), nullable=False),
        sa.Column("failures", sa.Integer(), nullable=False),
        sa.Column("started_at", UTC, nullable=False),
        sa.Column("until", UTC, nullable=False),
        sa.Column("intake_id", BigId, nullable=True),
        sa.ForeignKeyConstraint(
            ["intake_id"], ["intake_log.id"], name=op.f("fk_pin_lockouts_intake_id_intake_log")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_pin_lockouts")),
    )
    op.create_index("ix_pin_lockouts_scope_until", "pin_lockouts", ["scope", "until"], unique=False)


def _add_with_default(table: str, column: sa.Column[object], default: object) -> None:
    column.server_default = sa.DefaultClause(default)  # type: ignore[arg-type]
    with op.batch_alter_table(table) as batch:
        batch.add_column(column)
    with op.batch_alter_table(table) as batch:
        batch.alter_column(column.name, server_default=None)


def downgrade() -> None:
    op.drop_index("ix_pin_lockouts_scope_until", table_name="pin_lockouts")
    op.drop_table("pin_lockouts")
    op.drop_index(op.f("ix_pin_failures_caller"), table_name="pin_failures")
    op.drop_index(op.f("ix_pin_failures_at"), table_name="pin_failures")
    op.drop_table("pin_failures")
    for table, name in (
        ("intake_log", "sender_verified"),
        ("contacts", "pin_locks"),
        ("call_sessions", "after_pin"),
        ("call_sessions", "attestation"),
    ):
        with op.batch_alter_table(table) as batch:
            batch.drop_column(name)
