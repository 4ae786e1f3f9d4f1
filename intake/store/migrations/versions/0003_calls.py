"""calls: the phone door's call sessions, keyed by Twilio's CallSid

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-27
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import intake.store.models

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "call_sessions",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("call_sid", sa.String(length=64), nullable=False),
        sa.Column("state", sa.String(length=20), nullable=False),
        sa.Column("step", sa.Integer(), nullable=False),
        sa.Column("notice", sa.Text(), nullable=False),
        sa.Column("caller", sa.String(length=64), nullable=False),
        sa.Column("entered_phone", sa.String(length=20), nullable=False),
        sa.Column(
            "contact_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=True
        ),
        sa.Column("identified_by", sa.String(length=10), nullable=False),
        sa.Column("pin_attempts", sa.Integer(), nullable=False),
        sa.Column("prompt_attempts", sa.Integer(), nullable=False),
        sa.Column("category", sa.String(length=20), nullable=True),
        sa.Column("severity", sa.Integer(), nullable=True),
        sa.Column("proposed_severity", sa.Integer(), nullable=True),
        sa.Column("status_lookups", sa.Integer(), nullable=False),
        sa.Column("record_attempts", sa.Integer(), nullable=False),
        sa.Column("recording_url", sa.Text(), nullable=False),
        sa.Column("recording_sid", sa.String(length=64), nullable=False),
        sa.Column("recording_duration", sa.Integer(), nullable=True),
        sa.Column("voicemail_attached", sa.Boolean(), nullable=False),
        sa.Column("transcription", sa.Text(), nullable=True),
        sa.Column("transcribed_sid", sa.String(length=64), nullable=False),
        sa.Column("transcription_attached", sa.Boolean(), nullable=False),
        sa.Column("rota_index", sa.Integer(), nullable=False),
        sa.Column("accepted_by", sa.Integer(), nullable=True),
        sa.Column("paged_at", intake.store.models.UTCDateTime(timezone=True), nullable=True),
        sa.Column("reason", sa.String(length=50), nullable=False),
        sa.Column("call_status", sa.String(length=20), nullable=False),
        sa.Column("intake_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=True),
        sa.Column(
            "request_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=True
        ),
        sa.Column("last_request_key", sa.String(length=64), nullable=False),
        sa.Column("last_answer", sa.Text(), nullable=False),
        sa.Column("started_at", intake.store.models.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", intake.store.models.UTCDateTime(timezone=True), nullable=False),
        sa.Column("ended_at", intake.store.models.UTCDateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["contact_id"], ["contacts.id"], name=op.f("fk_call_sessions_contact_id_contacts")
        ),
        sa.ForeignKeyConstraint(
            ["intake_id"], ["intake_log.id"], name=op.f("fk_call_sessions_intake_id_intake_log")
        ),
        sa.ForeignKeyConstraint(
            ["request_id"],
            ["service_requests.id"],
            name=op.f("fk_call_sessions_request_id_service_requests"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_call_sessions")),
        sa.UniqueConstraint("call_sid", name=op.f("uq_call_sessions_call_sid")),
    )
    with op.batch_alter_table("call_sessions", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_call_sessions_contact_id"), ["contact_id"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_call_sessions_request_id"), ["request_id"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("call_sessions", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_call_sessions_request_id"))
        batch_op.drop_index(batch_op.f("ix_call_sessions_contact_id"))

    op.drop_table("call_sessions")
