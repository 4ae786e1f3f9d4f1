"""The core behind the staff pages, on SQLite and PostgreSQL: staff actions, quarantine
decisions, sign-in with its lockout, and the dashboard's figures computed in SQL."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import select
from sqlalchemy import text as sql_text

from intake.accounts.credentials import add_staff
from intake.accounts.sign_in import LOCKOUT, MAX_FAILURES, sign_in
from intake.ops import stats
from intake.policy import load_policy
from intake.requests import quarantine
from intake.requests.refused import ActionRefused
from intake.store.db import Database
from intake.store.intake_log import body_preview, reason_in_words
from intake.store.models import IntakeRecord, RequestEvent, ServiceRequest, StaffUser, utcnow
from intake.workflows.staff_actions import assign, change_severity, escalate, resolve
from tests.conftest import empty_postgres
from tests.helpers import explain, selects_sent
from tests.web_support import PASSWORD, add_contact, add_intake, add_request

POLICY = load_policy({})
NOW = dt.datetime(2026, 3, 2, 9, 0, tzinfo=dt.UTC)


@pytest.fixture
def request_id(db: Database) -> int:
    contact = add_contact(db, "ada@acme.example")
    return add_request(db, contact, severity=3, created_at=NOW - dt.timedelta(hours=1)).id


def events(db: Database, request_id: int) -> list[RequestEvent]:
    with db.sessions() as session:
        query = select(RequestEvent).where(RequestEvent.request_id == request_id)
        return list(session.scalars(query.order_by(RequestEvent.id)))


def load(db: Database, request_id: int) -> ServiceRequest:
    with db.sessions() as session:
        return session.get_one(ServiceRequest, request_id)


# Staff actions.


def test_a_severity_change_rebases_the_goal_and_records_why(db: Database, request_id: int) -> None:
    with db.transaction() as s:
        change_severity(
            s, POLICY, request_id, severity=1, justification="Payroll stopped", by="alice", now=NOW
        )

    sr = load(db, request_id)
    assert (sr.severity, sr.initial_severity) == (1, 3)
    assert sr.response_due_at == NOW + dt.timedelta(hours=1)  # from the change, not receipt
    last = events(db, request_id)[-1]
    assert last.type == "severity_changed"
    assert last.detail == {
        "from": 3,
        "to": 1,
        "justification": "Payroll stopped",
        "by": "alice",
        "response_due_at": "2026-03-02T10:00:00+00:00",
    }


@pytest.mark.parametrize(
    ("severity", "justification", "code"),
    [
        (2, "", "missing_justification"),
        (2, "   \n", "missing_justification"),
        (5, "Worse", "invalid_severity"),
        (True, "Worse", "invalid_severity"),
        (3, "Same", "same_severity"),
    ],
)
def test_a_severity_change_is_refused_without_what_it_needs(
    db: Database, request_id: int, severity: int, justification: str, code: str
) -> None:
    with pytest.raises(ActionRefused) as refused, db.transaction() as s:
        change_severity(
            s, POLICY, request_id, severity=severity, justification=justification, by="alice"
        )

    assert refused.value.code == code
    assert load(db, request_id).severity == 3
    assert [e.type for e in events(db, request_id)] == ["created"]


def test_actions_on_unknown_or_closed_requests_are_refused(db: Database, request_id: int) -> None:
    with pytest.raises(ActionRefused) as unknown, db.transaction() as s:
        escalate(s, 999_999, reason="Why", by="alice")
    assert unknown.value.kind == "not_found"
    with db.transaction() as s:
        resolve(s, request_id, note="Fixed by a restart", by="alice")
    with pytest.raises(ActionRefused) as closed, db.transaction() as s:
        change_severity(s, POLICY, request_id, severity=1, justification="Worse", by="alice")
    assert (closed.value.kind, closed.value.code) == ("conflict", "not_open")


def test_escalate_assign_and_resolve_write_their_events(db: Database, request_id: int) -> None:
    add_staff(db, "bob.engineer", PASSWORD)
    with db.transaction() as s:
        escalate(s, request_id, reason="Third outage this week", by="alice")
        assign(s, request_id, assignee="bob.engineer", by="alice")
    assert load(db, request_id).status == "in_progress"
    with db.transaction() as s:
        resolve(s, request_id, note="Disk replaced", by="bob.engineer")

    sr = load(db, request_id)
    assert sr.status == "resolved"
    assert sr.assignee_id is not None
    kinds = [(e.type, e.detail.get("by")) for e in events(db, request_id)]
    assert kinds[1:] == [
        ("escalated", "alice"),
        ("assigned", "alice"),
        ("resolved", "bob.engineer"),
    ]
    assert events(db, request_id)[1].detail["reason"] == "Third outage this week"


def test_assigning_to_someone_unknown_is_refused(db: Database, request_id: int) -> None:
    with pytest.raises(ActionRefused) as refused, db.transaction() as s:
        assign(s, request_id, assignee="nobody", by="alice")
    assert refused.value.code == "unknown_staff"


# Quarantine.


def test_a_release_makes_the_message_pending_for_the_worker(db: Database) -> None:
    contact = add_contact(db, "ada@acme.example")
    intake_id = add_intake(db, "q1")

    with db.transaction() as s:
        assert quarantine.release(s, intake_id, by="alice", now=NOW) == intake_id

    with db.sessions() as s:
        row = s.get_one(IntakeRecord, intake_id)
        assert (row.outcome, row.reason, row.state, row.contact_id) == (
            "accepted",
            "released",
            "pending",
            contact,
        )
        assert "alice" in row.detail and "sender_not_authenticated" in row.detail
        assert row.raw is not None  # the raw copy the worker parses


def test_a_release_of_someone_who_is_no_contact_is_refused(db: Database) -> None:
    intake_id = add_intake(db, "q1", sender="eve@evil.example")

    with pytest.raises(ActionRefused) as refused, db.transaction() as s:
        quarantine.release(s, intake_id, by="alice")

    assert refused.value.kind == "invalid"
    assert "not a registered contact" in refused.value.message
    with db.sessions() as s:
        assert s.get_one(IntakeRecord, intake_id).outcome == "quarantined"


def test_a_discarded_message_is_kept_and_cannot_be_released(db: Database) -> None:
    add_contact(db, "ada@acme.example")
    intake_id = add_intake(db, "q1")
    with db.transaction() as s:
        quarantine.discard(s, intake_id, by="alice")

    with pytest.raises(ActionRefused) as refused, db.transaction() as s:
        quarantine.release(s, intake_id, by="alice")

    assert refused.value.code == "not_quarantined"
    with db.sessions() as s:
        row = s.get_one(IntakeRecord, intake_id)
        assert (row.outcome, row.state) == ("quarantined", "discarded")
        assert row.raw and "Discarded by alice" in row.detail


def test_only_quarantined_messages_can_be_released(db: Database) -> None:
    intake_id = add_intake(db, "a1", outcome="accepted", reason="new_request")
    with pytest.raises(ActionRefused) as refused, db.transaction() as s:
        quarantine.release(s, intake_id, by="alice")
    assert refused.value.kind == "conflict"


# Sign-in.


def test_sign_in_locks_after_repeated_failures(db: Database) -> None:
    add_staff(db, "alice", PASSWORD)
    for _ in range(MAX_FAILURES - 1):
        assert not sign_in(db, "alice", "wrong password", now=NOW).ok
    locked = sign_in(db, "alice", "wrong password", now=NOW)
    assert locked.locked_until == NOW + LOCKOUT

    still = sign_in(db, "alice", PASSWORD, now=NOW + LOCKOUT - dt.timedelta(seconds=1))
    later = sign_in(db, "ALICE", PASSWORD, now=NOW + LOCKOUT + dt.timedelta(seconds=1))

    assert not still.ok and still.locked_until is not None
    assert later.ok and later.username == "alice"
    with db.sessions() as s:
        staff = s.scalars(select(StaffUser)).one()
        assert (staff.failed_logins, staff.locked_until) == (0, None)


def test_an_unknown_username_is_refused_like_a_wrong_password(db: Database) -> None:
    add_staff(db, "alice", PASSWORD)
    assert not sign_in(db, "mallory", PASSWORD).ok
    assert not sign_in(db, "alice", "not it at all").ok


# The dashboard's figures.


def test_intake_is_counted_per_hour_and_outcome(db: Database) -> None:
    now = dt.datetime(2026, 3, 2, 12, 30, tzinfo=dt.UTC)
    for key, minutes_ago, outcome in [
        ("a", 5, "accepted"),
        ("b", 25, "accepted"),
        ("c", 40, "rejected"),
        ("d", 125, "accepted"),
        ("e", 25 * 60, "accepted"),  # outside the day
    ]:
        add_intake(db, key, outcome=outcome, received_at=now - dt.timedelta(minutes=minutes_ago))

    with db.sessions() as s:
        hours = stats.intake_by_hour(s, 24, now)
        last_hour = stats.outcome_counts_since(s, now - stats.HOUR)
        totals = stats.intake_totals(s)

    noon, eleven, ten = (dt.datetime(2026, 3, 2, h, tzinfo=dt.UTC) for h in (12, 11, 10))
    assert [(h.hour, h.outcome, h.count) for h in hours] == [
        (ten, "accepted", 1),
        (eleven, "rejected", 1),
        (noon, "accepted", 2),
    ]
    assert last_hour == {"accepted": 2, "rejected": 1}
    assert totals == {("email", "accepted"): 4, ("email", "rejected"): 1}


def test_acknowledgment_latency_is_bucketed_per_severity(db: Database) -> None:
    contact = add_contact(db, "ada@acme.example")
    now = utcnow()
    for severity, seconds in [(1, 5), (1, 50), (1, 4000), (3, 20), (3, None)]:
        created = now - dt.timedelta(hours=2)
        acked = created + dt.timedelta(seconds=seconds) if seconds is not None else None
        add_request(db, contact, severity=severity, created_at=created, acknowledged_at=acked)
    old = now - dt.timedelta(days=8)
    add_request(db, contact, severity=1, created_at=old, acknowledged_at=old)

    with db.sessions() as s:
        sev1, sev3 = stats.acknowledgment_latency(s, now=now)

    assert (sev1.severity, sev1.total, sev3.severity, sev3.total) == (1, 3, 3, 1)
    bounds = dict(zip(stats.LATENCY_BOUNDS, sev1.cumulative, strict=True))
    assert (bounds[10.0], bounds[60.0], bounds[3600.0], bounds[7200.0]) == (1, 2, 2, 3)
    assert sev1.sum_seconds == pytest.approx(4055, abs=1)
    assert stats.quantile_bound(sev1, 0.5) == 60.0
    assert stats.quantile_bound(sev3, 0.5) == 30.0


def test_open_requests_come_most_urgent_first(db: Database) -> None:
    contact = add_contact(db, "ada@acme.example")
    now = utcnow()
    late = add_request(db, contact, severity=2, response_due_at=now - dt.timedelta(minutes=5))
    soon = add_request(db, contact, severity=1, response_due_at=now + dt.timedelta(minutes=10))
    # Acknowledged, but nobody responded: the acknowledgment meets no goal.
    acknowledged = add_request(
        db,
        contact,
        status="acknowledged",
        acknowledged_at=now,
        response_due_at=now - dt.timedelta(hours=1),
    )
    answered = add_request(
        db,
        contact,
        status="in_progress",
        acknowledged_at=now,
        goal_met_at=now - dt.timedelta(hours=3),
        response_due_at=now - dt.timedelta(hours=2),
    )
    add_request(db, contact, status="resolved", response_due_at=now - dt.timedelta(hours=5))

    with db.sessions() as s:
        ordered = [sr.id for sr in stats.open_requests_by_urgency(s)]
        first = {n: [sr.id for sr in stats.open_requests_by_urgency(s, n)] for n in (1, 2, 4)}
        counts = stats.open_counts(s, now)

    assert ordered == [acknowledged.id, late.id, soon.id, answered.id]
    # Each status is read on its own up to the limit, and the few rows merged in order.
    assert first == {n: ordered[:n] for n in (1, 2, 4)}
    assert counts.breached == {2: 1, 3: 1}
    assert counts.awaiting == {1: 1, 2: 1}
    assert counts.open == {1: 1, 2: 1, 3: 2}


@pytest.mark.postgres
def test_the_open_counts_read_the_open_requests_index_alone(postgres_url: str) -> None:
    """At a million requests the open ones are a few in a hundred: on PostgreSQL the three
    counts come from one reading of their partial index (with the table scan priced out).
    SQLite's planner picks among its indexes by its own rules; the counts are the same."""
    empty_postgres(postgres_url)  # the run's database: other tests wrote to it before
    db = Database(postgres_url)
    try:
        contact = add_contact(db, "ada@acme.example")
        for status in ("new", "closed", "resolved", "closed"):
            add_request(db, contact, status=status)
        with db.sessions() as s:
            s.execute(sql_text("SET enable_seqscan = off"))
            with selects_sent(db) as sent:
                counts = stats.open_counts(s, utcnow())
            ((statement, parameters),) = sent
            plan = explain(s.connection(), statement, parameters)
    finally:
        db.dispose()
    assert "ix_service_requests_open_counts" in plan, plan
    assert counts.open == {3: 1}


# The intake log in words.


def test_reasons_read_as_sentences() -> None:
    assert "not a registered contact" in reason_in_words("rejected", "unknown_sender")
    assert reason_in_words("suppressed", "something_new") == (
        "It was kept but not answered (something new)."
    )


def test_a_body_preview_turns_html_into_text() -> None:
    raw = (
        b"Content-Type: text/html\r\nSubject: x\r\n\r\n"
        b"<p>Hello <script>alert(1)</script><b>there</b></p>"
    )
    text = body_preview(raw)
    assert "Hello" in text and "there" in text
    assert "<b>" not in text
