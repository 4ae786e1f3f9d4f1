"""The SMTP door end to end: smtplib against the real listener, a real database (SQLite and
PostgreSQL), real Redis with a real RQ worker, and a real relay receiving acknowledgments."""

from __future__ import annotations

import datetime as dt
import smtplib
from collections.abc import Iterator
from email.policy import SMTP as SMTP_POLICY

import pytest
import redis
from sqlalchemy import func, select

from intake.jobs import runtime
from intake.jobs.batch import enqueue_intakes_quietly
from intake.jobs.queue import make_queue
from intake.jobs.runtime import build_runtime
from intake.jobs.worker import run_worker
from intake.mail.smtp import SmtpDoor
from intake.settings import Settings
from intake.store.contacts import UNVERIFIED_REFUSAL
from intake.store.models import IntakeRecord, OutboxMessage
from tests.helpers import Relay, add_contact, free_port, make_mail
from tests.hygiene_support import Gateway, gateway_for

SUPPORT = "support@intake.localhost"


@pytest.fixture
def gateway(settings: Settings, redis_url: str, relay: Relay) -> Iterator[Gateway]:
    with gateway_for(settings, redis_url, relay) as door:
        yield door


def test_a_contacts_mail_becomes_an_acknowledged_request(gateway: Gateway) -> None:
    original = make_mail("Ada Lovelace <ada@acme.example>", "[Sev2] Export fails")
    gateway.send(original)
    (row,) = gateway.rows()
    assert (row.outcome, row.reason, row.state) == ("accepted", "new_request", "pending")
    assert row.raw == original.as_bytes() or row.raw  # the raw copy is kept
    gateway.drain()
    (request,) = gateway.requests()
    assert request.number == "SR-000001"
    assert (request.severity, request.initial_severity, request.channel) == (2, 2, "email")
    assert request.response_due_at - request.created_at == dt.timedelta(hours=2)
    assert request.acknowledged_at is not None and request.status == "acknowledged"
    (ack,) = gateway.relay.messages
    assert ack["To"].addresses[0].addr_spec == "ada@acme.example"
    assert ack["Subject"] == "[SR-000001] Received: [Sev2] Export fails"
    assert ack["In-Reply-To"] == original["Message-ID"]
    assert original["Message-ID"] in ack["References"]
    assert ack["Auto-Submitted"] == "auto-replied"
    body = ack.get_body(("plain",)).get_content()  # type: ignore[union-attr]
    assert "Severity:       2 (Serious" in body
    assert "Response goal:  2 hours" in body
    assert request.response_due_at.strftime("%Y-%m-%d %H:%M UTC") in body
    assert "http://127.0.0.1:8080/status/" in body
    assert gateway.relay.handler.envelopes[0][0] == "<>"  # null return path: no bounce loops


def test_severity_from_a_body_line_and_the_default(gateway: Gateway) -> None:
    gateway.send(make_mail("ada@acme.example", "Slow reports", "Hello\nSeverity: 1\nThanks\n"))
    gateway.send(make_mail("ada@acme.example", "A question about exports"))
    gateway.drain()
    first, second = gateway.requests()
    assert (first.severity, second.severity) == (1, 3)
    # Severity 3: three days of the business calendar (Monday to Friday in the test config).
    calendar = gateway.rt.policy.calendar
    assert calendar.business_time_between(
        second.created_at, second.response_due_at
    ) == dt.timedelta(days=3)


def test_the_same_message_twice_makes_one_request(gateway: Gateway) -> None:
    raw = make_mail("ada@acme.example", "Export fails").as_bytes()
    gateway.send(raw)
    gateway.send(raw)  # a sending server that lost our 250 sends again
    gateway.drain()
    gateway.drain()
    rows = gateway.rows()
    assert [r.outcome for r in rows] == ["accepted", "duplicate"]
    assert rows[1].raw is None and f"#{rows[0].id}" in rows[1].detail
    assert len(gateway.requests()) == 1
    assert len(gateway.relay.messages) == 1


@pytest.mark.parametrize(
    ("setup", "subject", "reason", "words"),
    [
        ("none", "Help", "unknown_sender", "not a registered contact"),
        ("inactive", "Help", "inactive_contact", "no longer active"),
        ("expired", "Help", "outside_support_period", "support period"),
        ("end_user", "Cannot log in", "category_not_allowed", "[Platform]"),
    ],
)
def test_refused_senders_get_one_550_and_staff_the_reason(
    gateway: Gateway, setup: str, subject: str, reason: str, words: str
) -> None:
    """An unverified sender learns nothing of customers from a 550 (anyone can try addresses):
    every refusal reads alike; the intake log tells staff the precise reason."""
    sender = "bob@other.example"
    if setup == "inactive":
        add_contact(gateway.rt.db, sender, customer="Other", active=False)
    elif setup == "expired":
        add_contact(
            gateway.rt.db,
            sender,
            customer="Other",
            support_end=dt.date.today() - dt.timedelta(days=1),
        )
    elif setup == "end_user":
        add_contact(gateway.rt.db, sender, customer="Other", role="end_user")
    with pytest.raises(smtplib.SMTPDataError) as refused:
        gateway.send(make_mail(sender, subject))
    assert refused.value.smtp_code == 550
    told = refused.value.smtp_error.decode().replace("\n", " ")
    assert told == "5.7.1 " + UNVERIFIED_REFUSAL
    for secret in ("Other", str(dt.date.today().year), "no longer active", "not active today"):
        assert secret not in told
    assert "technical contact" in told and "registered" in told  # still says what to do
    (row,) = gateway.rows()
    assert (row.outcome, row.reason, row.sender) == ("rejected", reason, sender)
    assert words in row.detail
    assert gateway.requests() == []


def test_an_end_user_may_report_a_platform_problem(gateway: Gateway) -> None:
    add_contact(gateway.rt.db, "eve@acme.example", role="end_user", name="Eve")
    gateway.send(make_mail("eve@acme.example", "[Platform] Login page down"))
    gateway.drain()
    assert [r.subject for r in gateway.requests()] == ["[Platform] Login page down"]


def test_a_recipient_outside_the_support_addresses_is_refused_at_rcpt(gateway: Gateway) -> None:
    with pytest.raises(smtplib.SMTPRecipientsRefused) as refused:
        gateway.send(
            make_mail("ada@acme.example", "Hi", to="sales@intake.localhost"),
            to="sales@intake.localhost",
        )
    code, text = refused.value.recipients["sales@intake.localhost"]
    assert code == 550 and text.startswith(b"5.1.1")


@pytest.mark.parametrize("declared", [True, False], ids=["SIZE", "no-SIZE"])
def test_an_oversized_message_gets_552_and_a_log_row(
    settings: Settings, redis_url: str, declared: bool
) -> None:
    small = settings.replace(
        max_message_size=20_000, smtp_port=free_port(), secret_key="k", redis_url=redis_url
    )
    rt = build_runtime(small)
    door = SmtpDoor(small, rt.db, None)
    door.start()
    big = make_mail("ada@acme.example", "Logs", size=40_000).as_bytes(policy=SMTP_POLICY)
    try:
        with smtplib.SMTP("127.0.0.1", door.port) as client:
            client.ehlo()
            options = [f"SIZE={len(big)}"] if declared else []
            code, text = client.mail("ada@acme.example", options)
            if not declared:
                assert client.rcpt(SUPPORT)[0] == 250
                code, text = client.data(big)
            assert client.noop()[0] == 250  # the session goes on
    finally:
        door.stop()
    assert code == 552 and text.startswith(b"5.3.4")
    with rt.db.sessions() as session:
        (row,) = session.scalars(select(IntakeRecord))
    assert (row.outcome, row.reason, row.raw) == ("rejected", "too_large", None)
    assert row.sender == "ada@acme.example"
    rt.db.dispose()


def test_mail_from_a_robot_is_kept_but_never_answered(gateway: Gateway) -> None:
    gateway.send(
        make_mail("ada@acme.example", "Out of office", headers={"Auto-Submitted": "auto-replied"})
    )
    gateway.drain()
    (row,) = gateway.rows()
    assert (row.outcome, row.reason) == ("suppressed", "auto_submitted")
    assert gateway.requests() == [] and gateway.relay.messages == []


def test_a_reply_naming_the_request_is_appended(gateway: Gateway) -> None:
    gateway.send(make_mail("ada@acme.example", "Export fails"))
    gateway.drain()
    (ack,) = gateway.relay.messages
    reply = make_mail(
        "ada@acme.example",
        "Re: " + ack["Subject"],
        "It fails again at 10:02.\n",
        headers={"In-Reply-To": ack["Message-ID"]},
    )
    gateway.send(reply)
    gateway.drain()
    rows = gateway.rows()
    assert [r.outcome for r in rows] == ["accepted", "appended"]
    assert rows[1].request_id == rows[0].request_id
    assert len(gateway.requests()) == 1 and len(gateway.relay.messages) == 1


def test_a_request_number_of_another_customer_opens_a_new_request(gateway: Gateway) -> None:
    add_contact(gateway.rt.db, "mallory@evil.example", customer="Evil Inc")
    gateway.send(make_mail("ada@acme.example", "Export fails"))
    gateway.send(make_mail("mallory@evil.example", "Re: [SR-000001] Received: Export fails"))
    gateway.drain()
    assert [r.outcome for r in gateway.rows()] == ["accepted", "accepted"]
    assert len(gateway.requests()) == 2


def test_an_unexpected_error_answers_451_not_500(gateway: Gateway) -> None:
    def explode(raw: bytes, envelope: object) -> str:
        raise RuntimeError("boom")

    gateway.door.intake_handler.accept = explode  # type: ignore[method-assign]
    with pytest.raises(smtplib.SMTPDataError) as failed:
        gateway.send(make_mail("ada@acme.example", "Export fails"))
    assert failed.value.smtp_code == 451 and failed.value.smtp_error.startswith(b"4.3.0")


def test_nothing_is_half_stored_when_the_database_refuses_writes(gateway: Gateway) -> None:
    db = gateway.rt.db
    _make_read_only(db)
    try:
        with pytest.raises(smtplib.SMTPDataError) as failed:
            gateway.send(make_mail("ada@acme.example", "Export fails"))
    finally:
        _make_writable(db)
    assert failed.value.smtp_code == 451
    assert gateway.rows() == [] and gateway.requests() == []
    gateway.send(make_mail("ada@acme.example", "Export fails"))  # the retry goes through
    assert [r.outcome for r in gateway.rows()] == ["accepted"]


def test_an_unreachable_database_answers_451(settings: Settings, redis_url: str) -> None:
    dead = settings.replace(
        database_url="postgresql://postgres@127.0.0.1:1/nowhere",
        smtp_port=free_port(),
        secret_key="k",
    )
    rt = build_runtime(dead)
    door = SmtpDoor(dead, rt.db, None)
    door.start()
    try:
        with (
            smtplib.SMTP("127.0.0.1", door.port) as client,
            pytest.raises(smtplib.SMTPDataError) as failed,
        ):
            client.send_message(make_mail("ada@acme.example", "Export fails"))
    finally:
        door.stop()
    assert failed.value.smtp_code == 451


def test_without_a_relay_acknowledgments_land_in_the_maildir(
    settings: Settings, redis_url: str
) -> None:
    local = settings.replace(redis_url=redis_url, smtp_port=free_port(), secret_key="k")
    rt = build_runtime(local)
    runtime.install(rt)
    connection = redis.Redis.from_url(redis_url)
    door = SmtpDoor(
        local, rt.db, lambda ids: enqueue_intakes_quietly(make_queue(local, connection), ids)
    )
    door.start()
    add_contact(rt.db, "ada@acme.example")
    try:
        with smtplib.SMTP("127.0.0.1", door.port) as client:
            client.send_message(make_mail("ada@acme.example", "Export fails"))
        run_worker(rt, connection, burst=True, cron=False)
        run_worker(rt, connection, burst=True, cron=False)  # a second run sends nothing again
    finally:
        door.stop()
    files = list((local.var_path / "outbox" / "new").iterdir())
    assert len(files) == 1
    assert b"Subject: [SR-000001] Received: Export fails" in files[0].read_bytes()
    with rt.db.sessions() as session:
        assert session.scalar(select(func.count()).where(OutboxMessage.sent_at.is_not(None))) == 1
    rt.db.dispose()


def _make_read_only(db: object) -> None:
    from intake.store.db import Database

    assert isinstance(db, Database)
    if db.is_sqlite:
        _sqlite_trigger(db, create=True)
    else:
        _postgres_read_only(db, on=True)


def _make_writable(db: object) -> None:
    from intake.store.db import Database

    assert isinstance(db, Database)
    if db.is_sqlite:
        _sqlite_trigger(db, create=False)
    else:
        _postgres_read_only(db, on=False)


def _sqlite_trigger(db: object, *, create: bool) -> None:
    from intake.store.db import Database

    assert isinstance(db, Database)
    with db.engine.begin() as conn:
        if create:  # as a full disk does: every write to the intake log fails
            conn.exec_driver_sql(
                "CREATE TRIGGER refuse BEFORE INSERT ON intake_log "
                "BEGIN SELECT RAISE(ABORT, 'database or disk is full'); END"
            )
        else:
            conn.exec_driver_sql("DROP TRIGGER refuse")


def _postgres_read_only(db: object, *, on: bool) -> None:
    from sqlalchemy import text

    from intake.store.db import Database

    assert isinstance(db, Database)
    name = db.engine.url.database
    with db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(text("SET default_transaction_read_only = off"))
        setting = (
            "SET default_transaction_read_only = on"
            if on
            else "RESET default_transaction_read_only"
        )
        conn.execute(text(f'ALTER DATABASE "{name}" {setting}'))
    db.engine.dispose()  # new connections pick the setting up
