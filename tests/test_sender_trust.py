"""What an unverified mail sender can and cannot do: reach a request by [SR-n] in the subject
(only with our signed token, or once verified), use up a contact's acknowledgments (only the
unverified ones), cost storage (a refused message keeps its headers and a 64 KiB prefix), and
learn about customers from a 550 (nothing). The real SMTP door, worker and relay, on SQLite and
PostgreSQL; ``sender_verified`` is set on the inbound item as the sender check sets it."""

from __future__ import annotations

import base64
import dataclasses
import datetime as dt
import os
import smtplib
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import func, select, text

from intake.jobs.batch import enqueue_intakes_quietly
from intake.jobs.queue import make_queue
from intake.mail.message import OwnMail, inbound_from_mail
from intake.pipeline import steps as pipeline
from intake.pipeline.steps import REFUSED_BODY_PREFIX, record
from intake.settings import Settings
from intake.store.contacts import UNVERIFIED_REFUSAL
from intake.store.db import Database
from intake.store.models import IntakeRecord
from tests.helpers import Relay, add_contact, make_mail
from tests.hygiene_support import ADA, SUPPORT, Gateway, gateway_for, on_the_wire


@pytest.fixture
def gateway(settings: Settings, redis_url: str, relay: Relay) -> Iterator[Gateway]:
    with gateway_for(settings, redis_url, relay) as gw:
        yield gw


def record_verified(gateway: Gateway, raw: bytes) -> int:
    """Take ``raw`` in as the door does, its sender verified (DMARC passed), and queue its job."""
    own = OwnMail.from_settings(gateway.rt.settings)
    inbound = inbound_from_mail(on_the_wire(raw), recipients=(SUPPORT,), own=own)
    _, intake_id = record(gateway.rt.db, dataclasses.replace(inbound, sender_verified=True))
    enqueue_intakes_quietly(make_queue(gateway.rt.settings, gateway.redis), [intake_id])
    return intake_id


# --- follow-ups -----------------------------------------------------------------------------


def test_a_verified_sender_may_follow_up_by_subject_alone(gateway: Gateway) -> None:
    request_id, _ = gateway.first_request_and_ack()
    add_contact(gateway.rt.db, "grace@acme.example", name="Grace Hopper")
    mail = make_mail("grace@acme.example", "[SR-000001] same here", "Here too since ten.\n")
    intake_id = record_verified(gateway, mail.as_bytes())
    gateway.drain()
    row = gateway.all(IntakeRecord, IntakeRecord.id == intake_id)[0]
    assert (row.outcome, row.request_id, row.sender_verified) == ("appended", request_id, True)
    (message,) = gateway.events(request_id, "message")
    assert message.detail["from"] == "grace@acme.example"


def test_a_verified_sender_reaches_only_its_own_customers_requests(gateway: Gateway) -> None:
    gateway.first_request_and_ack()
    add_contact(gateway.rt.db, "mallory@evil.example", customer="Evil Inc", name="Mallory")
    record_verified(gateway, make_mail("mallory@evil.example", "[SR-000001] close it").as_bytes())
    gateway.drain()
    assert [r.outcome for r in gateway.rows()] == ["accepted", "accepted"]
    assert gateway.events(1, "message") == []


# --- acknowledgment budgets -----------------------------------------------------------------


def test_forged_mail_does_not_use_up_the_contacts_own_acknowledgments(gateway: Gateway) -> None:
    """Twenty mails in Ada's name from elsewhere (INTAKE_ACK_LIMIT 20/hour) and a twenty-first:
    Ada's own, verified mail is acknowledged all the same."""
    for n in range(21):
        gateway.send(make_mail(ADA, f"Forged {n}"), sender="attacker@evil.example")
    gateway.drain()
    assert len(gateway.relay.messages) == 20
    assert gateway.rows()[-1].reason == "rate_limited"
    intake_id = record_verified(gateway, make_mail(ADA, "The real outage").as_bytes())
    gateway.drain()
    row = gateway.all(IntakeRecord, IntakeRecord.id == intake_id)[0]
    assert (row.outcome, row.reason) == ("accepted", "new_request")
    assert len(gateway.relay.messages) == 21
    assert "The real outage" in str(gateway.relay.messages[-1]["Subject"])


# --- the 550 texts --------------------------------------------------------------------------


def refusals(gateway: Gateway, sender: str, subject: str = "Help") -> tuple[str, IntakeRecord]:
    with pytest.raises(smtplib.SMTPDataError) as refused:
        gateway.send(make_mail(sender, subject), sender=sender)
    assert refused.value.smtp_code == 550
    row = gateway.all(IntakeRecord, IntakeRecord.sender == sender)[-1]
    return refused.value.smtp_error.decode().replace("\n", " "), row


def test_every_refusal_of_an_unverified_sender_reads_the_same(gateway: Gateway) -> None:
    ended = dt.date.today() - dt.timedelta(days=3)
    add_contact(gateway.rt.db, "old@globex.example", customer="Globex", active=False)
    add_contact(gateway.rt.db, "late@initech.example", customer="Initech", support_end=ended)
    add_contact(gateway.rt.db, "user@umbrella.example", customer="Umbrella", role="end_user")
    cases = [
        ("nobody@nowhere.example", "unknown_sender", "not a registered contact"),
        ("old@globex.example", "inactive_contact", "Globex is no longer active"),
        ("late@initech.example", "outside_support_period", f"to {ended}, so it is not active"),
        ("user@umbrella.example", "category_not_allowed", "End users may report"),
    ]
    for sender, reason, precise in cases:
        told, row = refusals(gateway, sender)
        assert told == "5.7.1 " + UNVERIFIED_REFUSAL
        assert (row.outcome, row.reason) == ("rejected", reason)
        assert precise in row.detail  # staff read the precise reason
    for secret in ("Globex", "Initech", "Umbrella", str(ended), "no longer active"):
        assert secret not in UNVERIFIED_REFUSAL
    for helpful in ("registered", "technical contact", "[Platform]", "service desk"):
        assert helpful in UNVERIFIED_REFUSAL


def test_a_repeat_of_a_refused_mail_is_told_the_same(gateway: Gateway) -> None:
    add_contact(gateway.rt.db, "old@globex.example", customer="Globex", active=False)
    raw = make_mail("old@globex.example", "Help").as_bytes()
    answers = []
    for _ in range(2):
        with pytest.raises(smtplib.SMTPDataError) as refused:
            gateway.send(raw, sender="old@globex.example")
        answers.append(refused.value.smtp_error.decode())
    assert answers[0] == answers[1] and "Globex" not in answers[1]
    assert [r.outcome for r in gateway.rows()] == ["rejected", "duplicate"]


def test_a_verified_sender_is_told_the_precise_reason(gateway: Gateway) -> None:
    add_contact(gateway.rt.db, "old@globex.example", customer="Globex", active=False)
    own = OwnMail.from_settings(gateway.rt.settings)
    inbound = inbound_from_mail(make_mail("old@globex.example", "Help").as_bytes(), own=own)
    decision, _ = record(gateway.rt.db, dataclasses.replace(inbound, sender_verified=True))
    assert decision.outcome == "rejected"
    assert "Globex is no longer active" in decision.sentence


# --- storage of refused mail ----------------------------------------------------------------


def database_bytes(db: Database, directory: Path) -> int:
    """What the database takes on disk now: the SQLite file and its WAL, or PostgreSQL's."""
    with db.engine.connect() as conn:
        if db.is_sqlite:
            conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
            return sum(p.stat().st_size for p in directory.glob("*.db*"))
        return int(conn.scalar(text("SELECT pg_database_size(current_database())")) or 0)


def test_a_refused_20_mb_message_keeps_its_headers_and_a_prefix(
    gateway: Gateway, tmp_path: Path
) -> None:
    body = base64.encodebytes(os.urandom(15 * 1024 * 1024))  # 20 MiB of text, incompressible
    message = make_mail("nobody@nowhere.example", "Huge", "")
    message.set_content(body.decode("ascii"))
    raw = on_the_wire(message)
    assert len(raw) > 20 * 1024 * 1024
    before = database_bytes(gateway.rt.db, tmp_path)
    with pytest.raises(smtplib.SMTPDataError) as refused:
        gateway.send(raw, sender="nobody@nowhere.example")
    assert refused.value.smtp_code == 550
    grown = database_bytes(gateway.rt.db, tmp_path) - before
    (row,) = gateway.rows()
    with gateway.rt.db.sessions() as session:
        kept = session.scalar(select(func.length(IntakeRecord.raw)))
    headers = raw[: raw.index(b"\r\n\r\n") + 4]
    assert row.size == len(raw)  # the whole size, as received
    assert kept == len(headers) + REFUSED_BODY_PREFIX
    assert row.raw == raw[: len(headers) + REFUSED_BODY_PREFIX]
    assert grown < 2 * 1024 * 1024, f"the database grew by {grown} bytes"
    print(f"refused {len(raw)} bytes: kept {kept} bytes; the database grew by {grown} bytes")


def test_a_step_before_correlate_may_verify_the_sender(
    gateway: Gateway, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The sender check is a step of its own ahead of ``correlate``: what it sets on the
    context decides the follow-up and is kept on the row."""

    def verify(ctx: pipeline.Context) -> None:
        ctx.sender_verified = ctx.message.sender == "grace@acme.example"

    request_id, _ = gateway.first_request_and_ack()
    add_contact(gateway.rt.db, "grace@acme.example", name="Grace Hopper")
    steps = list(pipeline.STEPS)
    steps.insert([name for name, _ in steps].index("correlate"), ("authenticate", verify))
    monkeypatch.setattr(pipeline, "STEPS", tuple(steps))
    gateway.send(make_mail("grace@acme.example", "[SR-000001] same here"), "grace@acme.example")
    gateway.drain()
    row = gateway.rows()[-1]
    assert (row.outcome, row.request_id, row.sender_verified) == ("appended", request_id, True)
