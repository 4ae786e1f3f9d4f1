"""search indexes (PostgreSQL only): trigram indexes for partial customer and contact names,
addresses and intake senders, full-text indexes for the words of requests and their messages

SQLite searches the same columns with LIKE and gets no index here.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-03
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# (index, table, column): lower(column) with pg_trgm's operator class serves LIKE '%text%'.
TRIGRAM_INDEXES = (
    ("ix_customers_name_trgm", "customers", "name"),
    ("ix_contacts_name_trgm", "contacts", "name"),
    ("ix_contact_emails_address_trgm", "contact_emails", "address"),
    ("ix_intake_log_sender_trgm", "intake_log", "sender"),
)
# The expressions of intake.store.models.request_text_vector and message_text_vector, as of now.
TEXT_INDEXES = (
    (
        "ix_service_requests_text",
        "service_requests",
        "to_tsvector('simple', subject) || to_tsvector('simple', description)",
        "",
    ),
    (
        "ix_request_events_message_text",
        "request_events",
        "to_tsvector('simple', coalesce(detail ->> 'subject', '')) || "
        "to_tsvector('simple', coalesce(detail ->> 'full_text', ''))",
        " WHERE type = 'message'",
    ),
)


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
    for name, table, column in TRIGRAM_INDEXES:
        op.execute(f"CREATE INDEX {name} ON {table} USING gin (lower({column}) gin_trgm_ops)")
    for name, table, expression, where in TEXT_INDEXES:
        op.execute(f"CREATE INDEX {name} ON {table} USING gin (({expression})){where}")


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    for name, *_ in (*TRIGRAM_INDEXES, *TEXT_INDEXES):
        op.execute(f"DROP INDEX IF EXISTS {name}")
