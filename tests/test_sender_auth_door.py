"""Sender verification through the real SMTP door (smtplib from 127.0.0.1, the local DNS
server, a real database, Redis, worker and relay): what enforce, monitor and off do with
forged and signed mail from a registered contact, the 451 on a DNS failure, the quarantine's
evidence, a release that opens the request, and a customer's own mode from the import file."""

from __future__ import annotations

import smtplib
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from flask.testing import FlaskClient

from intake.accounts.credentials import add_staff, create_token
from intake.importer.run import import_file
from intake.settings import Settings
from tests.dns_server import Zone
from tests.helpers import Relay, add_contact, wait_for
from tests.hygiene_support import Gateway, gateway_for
from tests.senderauth_support import Keys, dkim_signed, message
from tests.web_support import PASSWORD, sign_in
from web import create_app

ATTACKER = "attacker@evil.example"


@pytest.fixture
def enforcing(settings: Settings, redis_url: str, relay: Relay, world: Zone) -> Iterator[Gateway]:
    with gateway_for(settings, redis_url, relay, sender_auth="enforce") as gateway:
        yield gateway


@pytest.fixture
def monitoring(settings: Settings, redis_url: str, relay: Relay, world: Zone) -> Iterator[Gateway]:
    with gateway_for(settings, redis_url, relay, sender_auth="monitor") as gateway:
        yield gateway


def api(gateway: Gateway) -> tuple[FlaskClient, dict[str, str]]:
    app = create_app(gateway.rt.settings, db=gateway.rt.db, redis_client=gateway.redis)
    token = create_token(gateway.rt.db, "tests")
    return app.test_client(), {"Authorization": f"Bearer {token}"}


def forged() -> bytes:
    """Ada's name and address in From, sent by someone else (acme.example publishes p=reject
    and allows only 192.0.2.10 to send; the door sees 127.0.0.1, MAIL FROM the attacker's)."""
    return message(subject="[Sev1] Production is down, call me")


def test_in_enforce_a_forged_contact_opens_nothing_and_waits_in_the_quarantine(
    enforcing: Gateway,
) -> None:
    enforcing.send(forged(), sender=ATTACKER)  # answered 250: the forger learns nothing
    enforcing.drain()
    (row,) = enforcing.rows()
    assert (row.outcome, row.reason, row.state) == (
        "quarantined",
        "sender_not_authenticated",
        "done",
    )
    assert enforcing.requests() == [] and enforcing.outbox() == []
    assert enforcing.relay.messages == []
    assert row.auth is not None
    evidence = {k: row.auth[k] for k in ("dmarc", "spf", "dkim", "policy", "envelope_sender")}
    assert evidence == {
        "dmarc": "fail",
        "spf": "none",  # evil.example publishes no SPF
        "dkim": "none",
        "policy": "reject",
        "envelope_sender": ATTACKER,
    }
    assert row.auth["client_ip"] == "127.0.0.1"
    assert "DMARC fails for acme.example" in row.detail


def test_in_enforce_a_signed_mail_of_the_contact_becomes_a_request(
    enforcing: Gateway, keys: Keys
) -> None:
    enforcing.send(dkim_signed(message(), "acme.example", keys.acme), sender="ada@acme.example")
    enforcing.drain()
    (row,) = enforcing.rows()
    assert (row.outcome, row.reason) == ("accepted", "new_request")
    assert row.auth is not None and row.auth["dmarc"] == "pass"
    assert row.auth["aligned_domain"] == "acme.example"
    (request,) = enforcing.requests()
    assert len(enforcing.relay.messages) == 1
    created = enforcing.events(request.id, "created")[0]
    assert created.detail["auth"]["dmarc"] == "pass"


def test_in_enforce_a_dns_failure_answers_451_and_keeps_nothing(
    enforcing: Gateway, world: Zone
) -> None:
    world.servfail.add("acme.example")
    with pytest.raises(smtplib.SMTPDataError) as refused:
        enforcing.send(forged(), sender="ada@acme.example")
    assert refused.value.smtp_code == 451
    assert refused.value.smtp_error.startswith(b"4.7.0")
    assert enforcing.rows() == []


def test_in_enforce_a_name_server_that_never_answers_answers_451(
    enforcing: Gateway, world: Zone
) -> None:
    world.silent.add("acme.example")
    with pytest.raises(smtplib.SMTPDataError) as refused:
        enforcing.send(forged(), sender="ada@acme.example")
    assert refused.value.smtp_code == 451
    assert enforcing.rows() == []


def test_a_domain_without_dmarc_is_accepted_with_the_verdict_none(enforcing: Gateway) -> None:
    add_contact(enforcing.rt.db, "someone@norecord.example", customer="Norecord")
    enforcing.send(message("Someone <someone@norecord.example>"), sender=ATTACKER)
    enforcing.drain()
    (row,) = enforcing.rows()
    assert row.outcome == "accepted"
    assert row.auth is not None and row.auth["dmarc"] == "none"


def test_releasing_from_the_quarantine_opens_the_request_and_acknowledges_it(
    enforcing: Gateway,
) -> None:
    enforcing.send(forged(), sender=ATTACKER)
    (row,) = enforcing.rows()
    client, auth = api(enforcing)
    shown = client.get(f"/api/intake/{row.id}", headers=auth).get_json()
    assert shown["outcome"] == "quarantined" and shown["reason"] == "sender_not_authenticated"
    assert set(shown["auth"]) == {"dmarc", "spf", "dkim", "arc", "aligned_domain", "explanation"}
    assert (shown["auth"]["dmarc"], shown["auth"]["aligned_domain"]) == ("fail", "")
    answer = client.post(f"/api/intake/{row.id}/release", headers=auth)
    assert answer.status_code == 202
    enforcing.drain()
    (request,) = enforcing.requests()
    assert request.severity == 1
    (ack,) = enforcing.relay.messages
    assert ack["To"].addresses[0].addr_spec == "ada@acme.example"
    (released,) = enforcing.rows()
    assert (released.outcome, released.reason, released.request_id) == (
        "accepted",
        "released",
        request.id,
    )


def test_the_staff_pages_show_why_a_message_is_held(enforcing: Gateway) -> None:
    enforcing.send(forged(), sender=ATTACKER)
    (row,) = enforcing.rows()
    app = create_app(enforcing.rt.settings, db=enforcing.rt.db, redis_client=enforcing.redis)
    add_staff(enforcing.rt.db, "alice", PASSWORD)
    client = app.test_client()
    sign_in(client, "alice")
    quarantine = client.get("/quarantine").get_data(as_text=True)
    assert "The sender&#39;s domain did not authenticate it (DMARC)." in quarantine
    assert "DMARC fail (p=reject) · SPF none (evil.example) · DKIM none" in quarantine
    entry = client.get(f"/intake/{row.id}").get_data(as_text=True)
    assert "Sender verification" in entry and "DMARC fails for acme.example" in entry
    assert ATTACKER in entry and "127.0.0.1" in entry


def test_in_monitor_a_forged_contact_is_accepted_with_its_verdict_recorded(
    monitoring: Gateway,
) -> None:
    monitoring.send(forged(), sender=ATTACKER)
    monitoring.drain()
    (row,) = monitoring.rows()
    assert row.outcome == "accepted"
    assert row.auth is not None and row.auth["dmarc"] == "fail"
    assert len(monitoring.requests()) == 1


def test_off_checks_nothing(settings: Settings, redis_url: str, relay: Relay, world: Zone) -> None:
    with gateway_for(settings, redis_url, relay, sender_auth="off") as gateway:
        gateway.send(forged(), sender=ATTACKER)
        (row,) = gateway.rows()
    assert row.outcome == "accepted" and row.auth is None
    assert world.queries == []


def test_a_customer_set_to_monitor_in_the_import_file_is_not_held(
    enforcing: Gateway, tmp_path: Path
) -> None:
    imported = tmp_path / "customers.toml"
    imported.write_text(IMPORT_WITH_MONITOR, encoding="utf-8")
    import_file(enforcing.rt.db, imported)
    enforcing.send(forged(), sender=ATTACKER)
    enforcing.drain()
    (row,) = enforcing.rows()
    assert row.outcome == "accepted" and row.auth is not None and row.auth["dmarc"] == "fail"
    client, auth = api(enforcing)
    acme: dict[str, Any] = client.get("/api/customers/Acme Corp", headers=auth).get_json()
    assert (acme["sender_auth"], acme["sender_auth_override"]) == ("monitor", True)


IMPORT_WITH_MONITOR = """
[[customers]]
name = "Acme Corp"
offering = "IXCloud"
support_start = 2020-01-01
support_end = 2099-12-31
sender_auth = "monitor"

  [[customers.contacts]]
  name = "Ada Lovelace"
  email = "ada@acme.example"
  role = "technical"
  available_24x7 = true
"""


def test_a_slow_name_server_holds_up_only_its_own_message(enforcing: Gateway, world: Zone) -> None:
    """Verdicts run beside the writer thread: while one message waits for a name server that
    never answers, a message on another connection is verified, stored and answered."""
    world.silent.add("silent.example")
    finished: list[str] = []

    def send_slow() -> None:
        with pytest.raises(smtplib.SMTPDataError):
            enforcing.send(message("Ada <ada@silent.example>"), sender="ada@silent.example")
        finished.append("slow")

    slow = threading.Thread(target=send_slow)
    slow.start()
    wait_for(lambda: any(name.endswith("silent.example") for name, _ in world.queries), 10)
    enforcing.send(message(subject="Meanwhile"), sender="ada@acme.example")  # SPF fails: held
    finished.append("quick")
    slow.join(timeout=10)
    assert finished == ["quick", "slow"]
    (row,) = enforcing.rows()
    assert row.subject == "Meanwhile"
