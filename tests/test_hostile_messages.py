"""Hostile and broken messages through the whole gateway (SMTP door, worker, relay; SQLite
and PostgreSQL): each gets an answer and an outcome, and none costs more than a bounded time.
The rest of the issue's list is in test_hostile_smtp (sessions), test_hygiene_content
(charsets, HTML, file names, winmail.dat, unparseable mail), test_hygiene_loops (auto-replies,
DSNs, list mail) and test_hygiene_threading (guessed tokens)."""

from __future__ import annotations

import smtplib
import time
from collections.abc import Iterator

import pytest

from intake.settings import Settings
from tests.conftest import CORPUS
from tests.helpers import Relay, add_contact
from tests.hygiene_support import ADA, Gateway, gateway_for, reply_to

MICROSOFT_ID = "<[e5bd7f3c-2d0a-4c1b-9f3a-1d2e3f4a5b6c]@microsoft.com>"


@pytest.fixture
def gateway(settings: Settings, redis_url: str, relay: Relay) -> Iterator[Gateway]:
    with gateway_for(settings, redis_url, relay) as gw:
        yield gw


def test_a_microsoft_style_message_id_is_threaded_and_answered(gateway: Gateway) -> None:
    # The email package's own Message-ID parser fails on this form (IndexError): written raw.
    original = f"From: {ADA}\r\nSubject: Export fails\r\nMessage-ID: {MICROSOFT_ID}\r\n\r\nHi\r\n"
    gateway.send(original.encode())
    gateway.drain()
    (ack,) = gateway.relay.messages
    assert str(ack["In-Reply-To"]) == MICROSOFT_ID and MICROSOFT_ID in str(ack["References"])
    reply = reply_to(ack, "More details.\n")
    reply.replace_header("References", f"{MICROSOFT_ID} {ack['Message-ID']}")
    gateway.send(reply)
    gateway.drain()
    first, second = gateway.rows()
    assert (first.outcome, first.message_id, second.outcome) == (
        "accepted",
        MICROSOFT_ID,
        "appended",
    )


@pytest.mark.parametrize("from_first", [True, False], ids=["from-first", "from-last"])
def test_a_one_megabyte_header_block_is_answered_quickly(
    gateway: Gateway, from_first: bool
) -> None:
    noise = "".join(f"X-Noise-{n}: {'n' * 990}\r\n" for n in range(1050))
    author = f"From: {ADA}\r\nSubject: Headers galore\r\n"
    raw = ((author + noise) if from_first else (noise + author)).encode() + b"\r\nbody\r\n"
    assert len(raw) > 1024 * 1024
    started = time.monotonic()
    reply = _send_for_the_code(gateway, raw)
    assert time.monotonic() - started < 5
    assert reply == (250 if from_first else 550)
    gateway.drain()
    (row,) = gateway.rows()
    if from_first:
        assert row.outcome == "accepted" and gateway.requests()[0].subject == "Headers galore"
    else:  # beyond the 256 KB of header the door reads, the From is not seen
        assert (row.outcome, row.reason) == ("rejected", "unknown_sender")


def test_a_130000_character_subject_is_capped(gateway: Gateway) -> None:
    raw = (CORPUS / "malformed" / "flanker-long-header.eml").read_bytes()
    add_contact(gateway.rt.db, "bob@example.com", customer="Other", name="Bob")
    started = time.monotonic()
    gateway.send(raw, sender="bob@example.com")
    assert time.monotonic() - started < 5
    gateway.drain()
    (request,) = gateway.requests()
    assert len(request.subject) == 998 and request.subject.startswith("Die heiße Zypernsonne")


def test_thousands_of_nested_messages_are_read_within_the_caps(gateway: Gateway) -> None:
    raw = (CORPUS / "malformed" / "flanker-enclosed-endless.eml").read_bytes()
    add_contact(gateway.rt.db, "example@example.net", customer="Other", name="Ex")
    gateway.send(raw, sender="example@example.net")
    started = time.monotonic()
    gateway.drain()
    assert time.monotonic() - started < 20
    (row,) = gateway.rows()
    assert row.outcome == "accepted" and len(gateway.requests()) == 1
    (enclosed,) = gateway.attachments(row.id)  # the outer enclosed message, as one file
    assert enclosed.content_type == "message/rfc822"


def test_hundreds_of_thousands_of_tiny_parts_cost_a_bounded_time(gateway: Gateway) -> None:
    parts = b"--b\r\nContent-Type: text/plain\r\n\r\nx\r\n" * 200_000
    raw = (
        f"From: {ADA}\r\nSubject: parts\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n"
    ).encode() + parts
    gateway.send(raw)
    started = time.monotonic()
    gateway.drain()
    assert time.monotonic() - started < 20
    assert [r.outcome for r in gateway.rows()] == ["accepted"]


@pytest.mark.parametrize(
    "authors",
    [
        "From: ada@acme.example\r\nFrom: ceo@acme.example\r\n",
        "From: ada@acme.example, ceo@acme.example\r\n",
    ],
    ids=["two-headers", "two-addresses"],
)
def test_two_authors_are_quarantined(gateway: Gateway, authors: str) -> None:
    raw = (authors + "Subject: [Sev1] Wire the money\r\n\r\nUrgent.\r\n").encode()
    gateway.send(raw)
    gateway.drain()
    (row,) = gateway.rows()
    assert (row.outcome, row.reason, row.sender) == ("quarantined", "ambiguous_sender", ADA)
    assert "2 authors" in row.detail
    assert gateway.requests() == [] and gateway.relay.messages == []


def test_two_authors_of_an_unknown_sender_are_refused(gateway: Gateway) -> None:
    raw = b"From: x@spam.example\r\nFrom: ada@acme.example\r\nSubject: hi\r\n\r\nbody\r\n"
    assert _send_for_the_code(gateway, raw) == 550
    assert [(r.outcome, r.reason) for r in gateway.rows()] == [("rejected", "unknown_sender")]


def _send_for_the_code(gateway: Gateway, raw: bytes) -> int:
    try:
        gateway.send(raw)
    except smtplib.SMTPDataError as refused:
        return refused.smtp_code
    return 250
