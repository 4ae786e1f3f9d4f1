"""Never feed a loop: machine mail is kept but never answered (with its reason), our own mail
coming back is a loop, a DSN about one of our acknowledgments makes its address undeliverable
for a while (the outbox then holds back, once, with the reason), and acknowledgments to one
address are rate-limited. The whole gateway on SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator
from email.message import EmailMessage

import pytest

from intake.jobs.batch import enqueue_intakes
from intake.jobs.jobs import MAX_SEND_ATTEMPTS
from intake.jobs.queue import make_queue
from intake.settings import Settings
from tests.helpers import Relay, make_mail
from tests.hygiene_support import ADA, SUPPORT, Gateway, delivery_report, gateway_for, reply_to


@pytest.fixture
def gateway(settings: Settings, redis_url: str, relay: Relay) -> Iterator[Gateway]:
    with gateway_for(settings, redis_url, relay) as gw:
        yield gw


@pytest.mark.parametrize(
    ("headers", "reason"),
    [
        ({"Auto-Submitted": "auto-replied"}, "auto_submitted"),
        ({"Auto-Submitted": "auto-generated; owner-email=x@y"}, "auto_submitted"),
        ({"X-Autoreply": "yes"}, "auto_submitted"),
        ({"X-Autorespond": "Out of office"}, "auto_submitted"),
        ({"Precedence": "bulk"}, "auto_submitted"),
        ({"Precedence": "junk"}, "auto_submitted"),
        ({"Precedence": "auto_reply"}, "auto_submitted"),
        ({"Precedence": "list"}, "list_mail"),
        ({"X-Auto-Response-Suppress": "OOF, AutoReply"}, "auto_submitted"),
        ({"X-Auto-Response-Suppress": "All"}, "auto_submitted"),
        ({"List-Id": "<users.lists.example>"}, "list_mail"),
        ({"X-Intake-Loop": "support@other-gateway.example"}, "loop"),
        ({"Auto-Submitted": "no"}, None),
        ({"X-Auto-Response-Suppress": "DR, RN"}, None),
    ],
)
def test_machine_mail_is_kept_but_never_answered(
    gateway: Gateway, headers: dict[str, str], reason: str | None
) -> None:
    gateway.send(make_mail(ADA, "Re: Export fails", headers=headers))
    gateway.drain()
    (row,) = gateway.rows()
    if reason is None:  # the negative controls: a person wrote these
        assert row.outcome == "accepted" and len(gateway.relay.messages) == 1
        return
    assert (row.outcome, row.reason) == ("suppressed", reason)
    assert row.raw and gateway.requests() == [] and gateway.relay.messages == []


def test_a_null_return_path_is_a_bounce(gateway: Gateway) -> None:
    gateway.send(make_mail(ADA, "Export fails"), sender="<>")
    gateway.drain()
    assert [(r.outcome, r.reason) for r in gateway.rows()] == [("suppressed", "bounce")]
    assert gateway.relay.messages == []


@pytest.mark.parametrize("report_type", ["disposition-notification", "feedback-report"])
def test_mdn_and_arf_reports_are_bounces(gateway: Gateway, report_type: str) -> None:
    report = make_mail(ADA, "Read: Export fails")
    report.replace_header("Content-Type", f"multipart/report; report-type={report_type}")
    gateway.send(report)
    gateway.drain()
    assert [(r.outcome, r.reason, r.state) for r in gateway.rows()] == [
        ("suppressed", "bounce", "done")
    ]
    assert gateway.undeliverable() == [] and gateway.relay.messages == []


def test_our_own_acknowledgment_coming_back_is_a_loop(gateway: Gateway) -> None:
    _, ack = gateway.first_request_and_ack()
    gateway.send(ack.as_bytes(), sender="<>")  # a misconfigured alias sends it back to us
    gateway.send(make_mail(SUPPORT, "Test from ourselves"), sender=SUPPORT)
    gateway.drain()
    assert [(r.outcome, r.reason) for r in gateway.rows()[1:]] == [
        ("suppressed", "loop"),
        ("suppressed", "loop"),
    ]
    assert len(gateway.relay.messages) == 1


def test_an_out_of_office_reply_to_our_acknowledgment_is_suppressed(gateway: Gateway) -> None:
    request_id, ack = gateway.first_request_and_ack()
    ooo = reply_to(ack, "I am out of the office until Monday.\n", Subject="Automatic reply: x")
    ooo["Auto-Submitted"] = "auto-replied"
    gateway.send(ooo)
    gateway.drain()
    row = gateway.rows()[-1]
    assert (row.outcome, row.reason, row.request_id) == ("suppressed", "auto_submitted", None)
    assert gateway.events(request_id, "message") == []  # not a follow-up, despite In-Reply-To
    assert len(gateway.relay.messages) == 1


def test_a_dsn_for_our_acknowledgment_makes_the_address_undeliverable(gateway: Gateway) -> None:
    request_id, ack = gateway.first_request_and_ack()
    gateway.send(delivery_report(ack, ADA), sender="<>")
    gateway.drain()
    bounce = gateway.rows()[-1]
    assert (bounce.outcome, bounce.reason, bounce.state) == ("suppressed", "bounce", "done")
    assert "SR-000001" in bounce.detail and "5.1.1" in bounce.detail
    (entry,) = gateway.undeliverable()
    assert entry.address == ADA and entry.intake_id == bounce.id
    assert [e.detail["to"] for e in gateway.events(request_id, "delivery_failed")] == [ADA]

    gateway.send(make_mail(ADA, "Another problem"))  # within the next 24 hours
    gateway.drain()
    gateway.drain()
    second = gateway.requests()[-1]
    assert second.acknowledged_at is None and len(gateway.relay.messages) == 1
    held = gateway.outbox()[-1]
    assert held.sent_at is None and held.attempts == MAX_SEND_ATTEMPTS
    assert held.last_error.startswith("undeliverable until")
    (event,) = gateway.events(second.id, "acknowledgment_suppressed")
    assert event.detail["reason"] == "undeliverable"


def test_a_dsn_naming_a_forged_acknowledgment_marks_nothing(gateway: Gateway) -> None:
    gateway.first_request_and_ack()
    forged = EmailMessage()
    forged["From"], forged["To"] = SUPPORT, ADA
    forged["Message-ID"] = "<sr-000001.ack.0123456789abcdef@intake.localhost>"  # a guessed tag
    gateway.send(delivery_report(forged, ADA), sender="<>")
    gateway.drain()
    assert gateway.rows()[-1].reason == "bounce" and gateway.undeliverable() == []


def test_a_delay_warning_marks_nothing(gateway: Gateway) -> None:
    _, ack = gateway.first_request_and_ack()
    gateway.send(delivery_report(ack, ADA, action="delayed"), sender="<>")
    gateway.drain()
    assert gateway.undeliverable() == []


def test_acknowledgments_are_rate_limited_per_address(
    settings: Settings, redis_url: str, relay: Relay
) -> None:
    with gateway_for(settings, redis_url, relay, ack_limit="2/hour") as gateway:
        for n in range(3):
            gateway.send(make_mail(ADA, f"Problem {n}"))
        gateway.drain()
        rows, requests = gateway.rows(), gateway.requests()
        assert len(requests) == 3 and len(gateway.relay.messages) == 2
        assert [(r.outcome, r.reason) for r in rows] == [
            ("accepted", "new_request"),
            ("accepted", "new_request"),
            ("suppressed", "rate_limited"),
        ]
        assert rows[2].request_id == requests[2].id
        assert "2 acknowledgments of mail from unverified senders went to ada@acme.example" in (
            rows[2].detail
        )
        (event,) = gateway.events(requests[2].id, "acknowledgment_suppressed")
        assert event.detail == {"reason": "rate_limited", "to": ADA, "limit": "2/hour"}


def test_one_job_finishing_mail_of_one_address_counts_its_own_acknowledgments(
    settings: Settings, redis_url: str, relay: Relay
) -> None:
    """The worker reads an address's count once a batch and counts what the batch wrote."""
    with gateway_for(settings, redis_url, relay, ack_limit="2/hour") as gateway:
        for n in range(3):
            gateway.send(make_mail(ADA, f"Problem {n}"))
        gateway.redis.flushdb()  # the door's three jobs gone: one job takes the three rows
        queue = make_queue(gateway.rt.settings, gateway.redis)
        enqueue_intakes(queue, [r.id for r in gateway.rows()])
        gateway.drain()
        assert len(gateway.requests()) == 3 and len(gateway.relay.messages) == 2
        assert [(r.outcome, r.reason) for r in gateway.rows()] == [
            ("accepted", "new_request"),
            ("accepted", "new_request"),
            ("suppressed", "rate_limited"),
        ]
