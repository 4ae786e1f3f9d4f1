"""The database layer on SQLite and PostgreSQL: migrations, engine settings, UTC timestamps and
request numbers."""

from __future__ import annotations

import datetime as dt
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy import inspect, select
from sqlalchemy.exc import IntegrityError, StatementError
from sqlalchemy.orm import Session

from intake.store.db import Database, alembic_config, current_revision, normalised_url, upgrade
from intake.store.models import (
    Base,
    Contact,
    ContactEmail,
    Customer,
    ServiceRequest,
    format_request_number,
    parse_request_number,
)

IST = dt.timezone(dt.timedelta(hours=5, minutes=30))


def head_revision(database_url: str) -> str | None:
    return ScriptDirectory.from_config(alembic_config(database_url)).get_current_head()


def add_contact(session: Session, name: str = "Acme Corp") -> Contact:
    customer = Customer(
        name=name,
        offering="IXCloud",
        support_start=dt.date(2026, 1, 1),
        support_end=dt.date(2027, 12, 31),
    )
    contact = Contact(
        customer=customer, name="Ada Lovelace", role="technical", phone="+14155550101"
    )
    contact.emails.append(ContactEmail(address=f"ada@{name.lower().replace(' ', '-')}.example"))
    session.add(contact)
    session.flush()
    return contact


def add_request(session: Session, contact: Contact, **values: object) -> ServiceRequest:
    defaults: dict[str, object] = {
        "channel": "email",
        "severity": 3,
        "initial_severity": 3,
        "subject": "Dashboard slow",
        "response_due_at": dt.datetime(2026, 11, 30, 10, 0, tzinfo=dt.UTC),
    }
    request = ServiceRequest(
        customer_id=contact.customer_id, contact_id=contact.id, **(defaults | values)
    )
    session.add(request)
    session.flush()
    return request


@pytest.fixture
def sqlite_db(tmp_path: Path, sqlite_template: Path) -> Iterator[Database]:
    """A migrated SQLite database of this test's own."""
    path = tmp_path / "intake.db"
    shutil.copy(sqlite_template, path)
    database = Database(f"sqlite:///{path}")
    yield database
    database.dispose()


# --- migrations ---------------------------------------------------------------------------------


def test_migrations_reach_head(db: Database) -> None:
    head = head_revision(db.url)
    assert head is not None
    assert current_revision(db.url) == head
    assert db.is_migrated()


def test_upgrading_again_changes_nothing(database_url: str) -> None:
    upgrade(database_url)
    assert current_revision(database_url) == head_revision(database_url)


# The search indexes are PostgreSQL's alone (expressions SQLite cannot reflect): compared there.
@pytest.mark.filterwarnings("ignore:autogenerate skipping metadata-specified expression-based")
def test_the_migrations_create_what_the_models_describe(db: Database) -> None:
    """A model changed without a migration shows up here (alembic's autogenerate comparison)."""
    assert set(Base.metadata.tables) <= set(inspect(db.engine).get_table_names())
    with db.engine.connect() as conn:
        differences = compare_metadata(MigrationContext.configure(conn), Base.metadata)
    assert differences == [], "run `alembic revision --autogenerate` for:\n" + "\n".join(
        map(str, differences)
    )


def test_a_fresh_sqlite_file_and_its_folder_are_made(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'new' / 'intake.db'}"
    assert current_revision(url) is None
    upgrade(url)
    assert current_revision(url) == head_revision(url)


def test_plain_postgresql_urls_use_psycopg_3() -> None:
    assert normalised_url("postgresql://u:p%40ss@db/intake") == (
        "postgresql+psycopg://u:p%40ss@db/intake"
    )
    assert normalised_url("sqlite:///var/intake.db") == "sqlite:///var/intake.db"


# --- engine settings ----------------------------------------------------------------------------


def test_sqlite_runs_in_wal_mode_with_foreign_keys(sqlite_db: Database) -> None:
    assert sqlite_db.is_sqlite
    with sqlite_db.engine.connect() as conn:
        pragma = conn.exec_driver_sql
        assert pragma("PRAGMA journal_mode").scalar() == "wal"
        assert pragma("PRAGMA foreign_keys").scalar() == 1
        assert pragma("PRAGMA synchronous").scalar() == 2  # FULL
        assert pragma("PRAGMA busy_timeout").scalar() == 30000


def test_foreign_keys_are_enforced(db: Database) -> None:
    def add_contact_of_no_customer() -> None:
        with db.transaction() as session:
            session.add(Contact(customer_id=999_999, name="Nobody", role="technical"))
            session.flush()

    with pytest.raises(IntegrityError):
        add_contact_of_no_customer()


def test_a_failed_transaction_leaves_nothing_behind(db: Database) -> None:
    def add_then_fail() -> None:
        with db.transaction() as session:
            add_contact(session)
            raise RuntimeError("boom")

    with pytest.raises(RuntimeError):
        add_then_fail()
    with db.sessions() as session:
        assert session.scalars(select(Customer)).all() == []


# --- timestamps ---------------------------------------------------------------------------------


def test_timestamps_come_back_aware_utc(db: Database) -> None:
    received = dt.datetime(2026, 11, 27, 15, 30, 45, 123456, tzinfo=IST)
    with db.transaction() as session:
        contact = add_contact(session)
        request_id = add_request(session, contact, created_at=received).id
    with db.sessions() as session:
        request = session.get(ServiceRequest, request_id)
        assert request is not None
        assert request.created_at == received
        assert request.created_at.utcoffset() == dt.timedelta(0)
        assert request.created_at.tzinfo is dt.UTC
        assert request.created_at.hour == 10  # 15:30 in India is 10:00 UTC
        assert request.response_due_at.tzinfo is dt.UTC
        assert request.acknowledged_at is None


def test_defaults_are_aware_utc(db: Database) -> None:
    before = dt.datetime.now(dt.UTC)
    with db.transaction() as session:
        customer_id = add_contact(session).customer_id
    with db.sessions() as session:
        customer = session.get(Customer, customer_id)
        assert customer is not None
        assert customer.created_at.tzinfo is dt.UTC
        assert before <= customer.created_at <= dt.datetime.now(dt.UTC)


def test_timestamps_are_stored_as_utc_so_the_database_orders_them_right(db: Database) -> None:
    # 10:00 in India (04:30Z) is earlier than 06:00Z, although its wall time is later.
    with db.transaction() as session:
        contact = add_contact(session)
        six_utc = dt.datetime(2026, 1, 1, 6, 0, tzinfo=dt.UTC)
        ten_india = dt.datetime(2026, 1, 1, 10, 0, tzinfo=IST)
        add_request(session, contact, subject="later", created_at=six_utc)
        add_request(session, contact, subject="earlier", created_at=ten_india)
    with db.sessions() as session:
        ordered = session.scalars(
            select(ServiceRequest.subject).order_by(ServiceRequest.created_at)
        ).all()
        cutoff = dt.datetime(2026, 1, 1, 5, 0, tzinfo=dt.UTC)
        before_cutoff = session.scalars(
            select(ServiceRequest.subject).where(ServiceRequest.created_at < cutoff)
        ).all()
    assert ordered == ["earlier", "later"]
    assert before_cutoff == ["earlier"]


def test_a_naive_datetime_is_refused(db: Database) -> None:
    with db.transaction() as session:
        contact_id = add_contact(session).id

    def add_naive() -> None:
        with db.transaction() as session:
            contact = session.get_one(Contact, contact_id)
            add_request(session, contact, created_at=dt.datetime(2026, 11, 27, 10, 0))

    with pytest.raises(StatementError, match="naive datetime"):
        add_naive()
    with db.sessions() as session:
        assert session.scalars(select(ServiceRequest)).all() == []


# --- request numbers ----------------------------------------------------------------------------


def test_request_numbers_count_up_from_sr_000001(db: Database) -> None:
    with db.transaction() as session:
        contact = add_contact(session)
        numbers = [add_request(session, contact).number for _ in range(3)]
    assert numbers == ["SR-000001", "SR-000002", "SR-000003"]
    with db.sessions() as session:
        for number in numbers:
            request_id = parse_request_number(number)
            assert request_id is not None
            request = session.get(ServiceRequest, request_id)
            assert request is not None
            assert request.number == number


def test_request_numbers_are_never_reused(db: Database) -> None:
    with db.transaction() as session:
        contact_id = add_contact(session).id
        contact = session.get_one(Contact, contact_id)
        add_request(session, contact)
        session.delete(add_request(session, contact))  # SR-000002, gone again
    with db.transaction() as session:
        contact = session.get_one(Contact, contact_id)
        assert add_request(session, contact).number == "SR-000003"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("SR-000123", 123),
        ("sr-000123", 123),
        ("  SR-000042\n", 42),
        ("SR-1234567", 1234567),
        ("SR-123", None),
        ("SR-00012a", None),
        ("SR000123", None),
        ("XX-000123", None),
        ("SR--00123", None),
        ("SR-", None),
        ("", None),
    ],
)
def test_parse_request_number(text: str, expected: int | None) -> None:
    assert parse_request_number(text) == expected


@given(st.integers(min_value=1, max_value=10**12))
def test_request_numbers_round_trip(request_id: int) -> None:
    number = format_request_number(request_id)
    assert number.startswith("SR-")
    assert len(number) >= len("SR-000001")
    assert parse_request_number(number) == request_id


@pytest.mark.parametrize("text", ["SR-00012²", "SR-٠٠٠١٢٣", "SR-" + "9" * 20])
def test_odd_digits_are_not_a_request_number(text: str) -> None:
    assert parse_request_number(text) is None
