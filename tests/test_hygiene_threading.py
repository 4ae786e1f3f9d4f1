"""Threading: a follow-up finds its request by the signed Message-ID of our acknowledgment, by
the signed reply address, or (from a verified sender only) by [SR-000123] in the subject, and
only within the sender's own customer; a tag that does not verify counts for nothing; a
follow-up reopens a resolved request.
The whole gateway: the SMTP door, a real worker, a real relay, SQLite and PostgreSQL."""

from __future__ import annotations

import logging
import smtplib
from collections.abc import Iterator

import pytest
from sqlalchemy import update

from intake.settings import Settings
from intake.store.models import ServiceRequest
from tests.helpers import Relay, add_contact, make_mail
from tests.hygiene_support import ADA, Gateway, gateway_for, reply_to

REPLY = "It fails again at 10:02.\n\nOn Mon, Ada wrote:\n> The export job fails.\n> Regards\n"


@pytest.fixture
def gateway(settings: Settings, redis_url: str, relay: Relay) -> Iterator[Gateway]:
    with gateway_for(settings, redis_url, relay) as gw:
        yield gw


def test_the_acknowledgment_carries_signed_tokens(gateway: Gateway) -> None:
    _, ack = gateway.first_request_and_ack()
    assert str(ack["Message-ID"]).startswith("<sr-000001.ack.")
    reply_address = ack["Reply-To"].addresses[0].addr_spec
    assert reply_address.startswith("support+sr-000001.") and reply_address.endswith(
        "@intake.localhost"
    )
    assert ack["X-Intake-Loop"] and ack["Auto-Submitted"] == "auto-replied"


def test_a_reply_threaded_by_in_reply_to_is_appended_stripped(gateway: Gateway) -> None:
    request_id, ack = gateway.first_request_and_ack()
    reply = reply_to(ack, REPLY, Subject="Re: your mail")  # no [SR-...] in the subject
    gateway.send(reply)
    gateway.drain()
    rows = gateway.rows()
    assert [(r.outcome, r.reason) for r in rows] == [
        ("accepted", "new_request"),
        ("appended", "follow_up"),
    ]
    (message,) = gateway.events(request_id, "message")
    assert message.detail["text"] == "It fails again at 10:02."
    assert "> The export job fails." in message.detail["full_text"]
    assert len(gateway.requests()) == 1 and len(gateway.relay.messages) == 1


def test_a_reply_to_the_reply_address_is_appended(gateway: Gateway) -> None:
    request_id, ack = gateway.first_request_and_ack()
    address = ack["Reply-To"].addresses[0].addr_spec
    # A mail client that keeps no threading headers and changed the subject: only the
    # address we gave it says which request it belongs to.
    gateway.send(make_mail(ADA, "More logs", "Here are the logs.\n", to=address), to=address)
    gateway.drain()
    assert [r.outcome for r in gateway.rows()] == ["accepted", "appended"]
    assert gateway.rows()[1].request_id == request_id


def test_a_tag_that_does_not_verify_opens_a_new_request(gateway: Gateway) -> None:
    gateway.first_request_and_ack()
    forged = make_mail(ADA, "Re: something", headers={"In-Reply-To": _forged_id()})
    address = "support+sr-000001.0123456789abcdef@intake.localhost"
    gateway.send(forged, to=address)  # a forged reply address, accepted at RCPT all the same
    gateway.drain()
    assert [r.outcome for r in gateway.rows()] == ["accepted", "accepted"]
    assert len(gateway.requests()) == 2


def test_a_signed_token_of_another_customer_opens_a_new_request(gateway: Gateway) -> None:
    """Mallory got hold of Ada's acknowledgment (forwarded, leaked): its tag verifies, but the
    request is not his customer's."""
    _, ack = gateway.first_request_and_ack()
    add_contact(gateway.rt.db, "mallory@evil.example", customer="Evil Inc", name="Mallory")
    stolen = reply_to(ack, "Please close this.\n", From="mallory@evil.example")
    gateway.send(stolen, sender="mallory@evil.example")
    gateway.drain()
    first, second = gateway.requests()
    assert second.customer_id != first.customer_id
    assert [r.outcome for r in gateway.rows()] == ["accepted", "accepted"]
    assert gateway.events(first.id, "message") == []


def test_a_guessed_subject_token_of_another_customer_opens_a_new_request(
    gateway: Gateway,
) -> None:
    gateway.first_request_and_ack()
    add_contact(gateway.rt.db, "mallory@evil.example", customer="Evil Inc", name="Mallory")
    gateway.send(make_mail("mallory@evil.example", "[SR-000001] add me"), "mallory@evil.example")
    gateway.drain()
    assert [r.outcome for r in gateway.rows()] == ["accepted", "accepted"]
    assert gateway.events(1, "message") == []


def test_a_subject_alone_from_an_unverified_colleague_opens_a_request_of_its_own(
    gateway: Gateway,
) -> None:
    """Without a verified sender (tests/test_sender_trust.py) or our token, [SR-n] is a guess."""
    gateway.first_request_and_ack()
    add_contact(gateway.rt.db, "grace@acme.example", name="Grace Hopper")
    gateway.send(make_mail("grace@acme.example", "[SR-000001] same here"), "grace@acme.example")
    gateway.drain()
    assert [r.outcome for r in gateway.rows()] == ["accepted", "accepted"]
    assert gateway.events(1, "message") == []


def test_a_forged_follow_up_by_subject_opens_a_new_request_and_the_token_appends(
    gateway: Gateway,
) -> None:
    """Ada's address in From, someone else's server: the subject's number reaches nothing;
    Ada's own reply, carrying the signed token of our acknowledgment, is appended."""
    request_id, ack = gateway.first_request_and_ack()
    forged = make_mail(ADA, "Re: [SR-000001] Received: Export fails", "Please close it.\n")
    gateway.send(forged, sender="attacker@evil.example")
    gateway.send(reply_to(ack, "The export failed again.\n"))
    gateway.drain()
    rows = gateway.rows()
    assert [(r.outcome, r.request_id) for r in rows] == [
        ("accepted", request_id),
        ("accepted", 2),
        ("appended", request_id),
    ]
    assert rows[1].detail == (
        "The subject names SR-000001, but the sender is not verified and the mail carries no "
        "reply token of ours: it was taken as a new request."
    )
    (message,) = gateway.events(request_id, "message")
    assert message.detail["text"] == "The export failed again."


@pytest.mark.parametrize("status", ["resolved", "closed"])
def test_a_follow_up_reopens_a_resolved_request(gateway: Gateway, status: str) -> None:
    request_id, ack = gateway.first_request_and_ack()
    with gateway.rt.db.transaction() as session:
        session.execute(update(ServiceRequest).values(status=status))
    gateway.send(reply_to(ack, "It is broken again.\n"))
    gateway.drain()
    row = gateway.rows()[-1]
    assert (row.outcome, row.reason) == ("appended", "reopened")
    assert f"SR-000001, which was {status}" in row.detail
    (request,) = gateway.requests()
    assert request.status == "in_progress"
    assert [e.detail for e in gateway.events(request_id, "reopened")] == [
        {"previous_status": status}
    ]


def test_the_door_logs_the_reopening_the_intake_log_records(
    gateway: Gateway, caplog: pytest.LogCaptureFixture
) -> None:
    _, ack = gateway.first_request_and_ack()
    with gateway.rt.db.transaction() as session:
        session.execute(update(ServiceRequest).values(status="resolved"))
    with caplog.at_level(logging.INFO, logger="intake"):
        gateway.send(reply_to(ack, "It is broken again.\n"))
        gateway.drain()
    row = gateway.rows()[-1]
    said = [
        r.getMessage() for r in caplog.records if r.getMessage().startswith(f"intake #{row.id}")
    ]
    assert said == [f"intake #{row.id}: appended reopened"] and row.reason == "reopened"


def test_a_request_resolved_after_the_door_decided_is_reopened_and_logged_so(
    gateway: Gateway, caplog: pytest.LogCaptureFixture
) -> None:
    _, ack = gateway.first_request_and_ack()
    with caplog.at_level(logging.INFO, logger="intake"):
        gateway.send(reply_to(ack, "It is broken again.\n"))  # the door: a plain follow-up
        with gateway.rt.db.transaction() as session:
            session.execute(update(ServiceRequest).values(status="closed"))
        gateway.drain()
    row = gateway.rows()[-1]
    said = [
        r.getMessage() for r in caplog.records if r.getMessage().startswith(f"intake #{row.id}")
    ]
    assert said == [
        f"intake #{row.id}: appended follow_up",
        f"intake #{row.id}: appended reopened (was follow_up at the door)",
    ]
    assert (row.reason, gateway.requests()[0].status) == ("reopened", "in_progress")


def test_plus_addresses_of_support_are_accepted_and_others_refused(gateway: Gateway) -> None:
    plus = "support+anything@intake.localhost"
    gateway.send(make_mail(ADA, "Hi", to=plus), to=plus)
    assert [r.recipients for r in gateway.rows()] == [plus]
    with pytest.raises(smtplib.SMTPRecipientsRefused):
        gateway.send(make_mail(ADA, "Hi"), to="sales+sr-000001.0000@intake.localhost")


def _forged_id() -> str:
    return "<sr-000001.ack.0123456789abcdef@intake.localhost>"
