"""The per-address acknowledgment limit's check: the right count within the window, each kind
of sender apart, and a cost that does not grow with the address's history (the count stops at
the limit, and the plan reads the window from its own index)."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import insert
from sqlalchemy import text as sql_text

from intake.outbox.ratelimit import ack_budget, budget_in_transaction, read_budgets, take
from intake.store.db import Database
from intake.store.models import IntakeRecord, OutboxMessage, utcnow
from tests.helpers import explain, selects_sent

ADA = "ada@acme.example"
HOUR = 3600


def add_acks(
    db: Database, recipient: str, count: int, *, age: dt.timedelta, verified: bool
) -> None:
    """``count`` acknowledgments to ``recipient`` written ``age`` ago, each with its intake row."""
    at = utcnow() - age
    with db.transaction() as session:
        for _ in range(count):
            row = IntakeRecord(
                channel="email",
                sender=recipient,
                dedupe_key=f"k-{recipient}-{age}-{verified}-{_next()}",
                outcome="accepted",
                sender_verified=verified,
                received_at=at,
            )
            session.add(row)
            session.flush()
            session.execute(
                insert(OutboxMessage).values(
                    purpose="acknowledgment",
                    channel="email",
                    intake_id=row.id,
                    recipient=recipient,
                    payload=b"x",
                    created_at=at,
                )
            )


_counter = iter(range(1_000_000))


def _next() -> int:
    return next(_counter)


def test_the_count_is_of_the_window_and_of_one_kind_of_sender(db: Database) -> None:
    add_acks(db, ADA, 7, age=dt.timedelta(minutes=10), verified=True)
    add_acks(db, ADA, 3, age=dt.timedelta(minutes=20), verified=False)
    add_acks(db, ADA, 40, age=dt.timedelta(hours=5), verified=True)  # outside the window
    add_acks(db, "bob@globex.example", 30, age=dt.timedelta(minutes=5), verified=True)
    with db.sessions() as session:
        verified = ack_budget(session, ADA, (20, HOUR), verified=True)
        unverified = ack_budget(session, ADA, (20, HOUR), verified=False)
        a_day = ack_budget(session, ADA, (100, 24 * HOUR), verified=True)
    assert (verified.sent, verified.exhausted) == (7, False)
    assert (unverified.sent, unverified.exhausted) == (3, False)
    assert a_day.sent == 47


def test_counting_stops_at_the_limit(db: Database) -> None:
    add_acks(db, ADA, 25, age=dt.timedelta(minutes=1), verified=True)
    with db.sessions() as session:
        budget = ack_budget(session, ADA, (20, HOUR), verified=True)
        generous = ack_budget(session, ADA, (50, HOUR), verified=True)
    assert (budget.sent, budget.exhausted) == (20, True)
    assert (generous.sent, generous.exhausted) == (25, False)


def test_a_transaction_reads_an_address_once_and_counts_what_it_took(db: Database) -> None:
    add_acks(db, ADA, 5, age=dt.timedelta(minutes=1), verified=True)
    limit = (20, HOUR)
    with db.transaction() as session, selects_sent(db) as selects:
        first = budget_in_transaction(session, ADA, limit, verified=True)
        take(session, first)
        again = budget_in_transaction(session, ADA, limit, verified=True)
        other_kind = budget_in_transaction(session, ADA, limit, verified=False)
    assert (first.sent, again.sent, other_kind.sent) == (5, 6, 0)
    assert len(selects) == 2  # one for each kind of sender, none for the second look
    with db.transaction() as session:  # a new transaction reads afresh
        assert budget_in_transaction(session, ADA, limit, verified=True).sent == 5


def test_a_batch_reads_the_budgets_of_all_its_senders_in_one_statement(db: Database) -> None:
    add_acks(db, ADA, 7, age=dt.timedelta(minutes=10), verified=True)
    add_acks(db, ADA, 3, age=dt.timedelta(minutes=20), verified=False)
    add_acks(db, ADA, 40, age=dt.timedelta(hours=5), verified=True)  # outside the window
    add_acks(db, "bob@globex.example", 25, age=dt.timedelta(minutes=5), verified=True)
    senders = [(ADA, True), (ADA, False), ("bob@globex.example", True), ("cy@x.example", False)]
    limit = (20, HOUR)
    with db.transaction() as session:
        with selects_sent(db) as selects:
            read_budgets(session, senders, limit)
            read = [budget_in_transaction(session, a, limit, verified=v) for a, v in senders]
        assert len(selects) == 1
        one_by_one = [ack_budget(session, a, limit, verified=v) for a, v in senders]
    assert read == one_by_one
    assert [(b.sent, b.exhausted) for b in read] == [(7, False), (3, False), (20, True), (0, False)]


def test_the_check_reads_the_window_from_its_index(db: Database) -> None:
    """With a long history to the address and to others, the plan goes through
    ix_outbox_ack_window with the address, purpose, channel and window all in its search."""
    add_acks(db, ADA, 20, age=dt.timedelta(minutes=5), verified=True)
    add_acks(db, ADA, 300, age=dt.timedelta(days=3), verified=True)
    for number in range(30):
        add_acks(db, f"user{number}@globex.example", 10, age=dt.timedelta(days=1), verified=True)
    with db.engine.begin() as conn:
        conn.execute(sql_text("ANALYZE"))
    with selects_sent(db) as statements, db.sessions() as session:
        ack_budget(session, ADA, (20, HOUR), verified=True)
    ((statement, parameters),) = statements
    with db.engine.connect() as conn:
        plan = explain(conn, statement, parameters)
    assert "ix_outbox_ack_window" in plan, plan
    if db.is_sqlite:
        assert "recipient=? AND purpose=? AND channel=? AND created_at>?" in plan, plan
    assert "LIMIT" in statement.upper()
