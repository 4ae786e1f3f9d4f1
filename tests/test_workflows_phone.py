"""What Severity 1 calls and contacts not available around the clock leave on their requests:
the engineer who took the call assigned, a rota nobody answered, a subject that says more, and
the 24x7 requirement stated and flagged. Whole calls through the phone door (the Twilio driver)
and mail through the whole gateway, on SQLite and PostgreSQL."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator

import pytest

from intake.accounts.credentials import add_staff
from intake.jobs import jobs
from intake.settings import Settings
from intake.store.models import Contact
from tests.helpers import Relay, make_mail
from tests.hygiene_support import ADA as ADA_MAIL
from tests.hygiene_support import gateway_for
from tests.test_voice_calls import ADA, DESCRIPTION, FULL_ATTESTATION, add_caller
from tests.twilio_driver import Describe, Keys, Phone, Pickup, serve_phone
from tests.web_support import PASSWORD, add_request
from tests.workflow_support import bearer, web_client


@pytest.fixture
def phone(settings: Settings, redis_url: str, relay: Relay) -> Iterator[Phone]:
    with serve_phone(settings, redis_url, relay) as served:
        served.attestation = FULL_ATTESTATION  # the caller ID alone names the caller
        yield served


def test_the_engineer_who_takes_a_severity_1_call_is_assigned(phone: Phone) -> None:
    add_caller(phone)
    add_staff(phone.rt.db, "linus", PASSWORD)
    call = phone.call(ADA, Keys("1"), Keys("1"), Describe(DESCRIPTION), Keys("1"), Pickup("accept"))
    call.finish()
    phone.drain()
    (request,) = phone.requests()
    assigned = [d for kind, d in phone.events(request.id) if kind == "assigned"]
    assert assigned == [
        {"to": "Linus", "by": "the phone rota", "via": "accepted the Severity 1 call"}
    ]
    assert request.assignee_id is not None and request.assigned_at is not None
    assert request.status == "in_progress"
    # The subject says the severity, and the start of the transcription once it came.
    assert request.subject.startswith("Severity 1 phone call from Ada Lovelace: Since nine")


def test_a_rota_nobody_answered_leaves_an_event_with_the_pages(phone: Phone) -> None:
    add_caller(phone)
    call = phone.call(
        ADA, Keys("1"), Keys("1"), Describe(DESCRIPTION), Keys("1"), Pickup("decline"),
        Pickup("decline"),
    )  # fmt: skip
    call.finish()
    phone.drain()
    (request,) = phone.requests()
    unanswered = [d for kind, d in phone.events(request.id) if kind == "rota_unanswered"]
    assert len(unanswered) == 1
    assert unanswered[0]["paged"] == ["Linus", "Margaret"]
    assert request.assigned_at is None


def test_severity_1_without_anybody_available_24x7_is_stated_and_flagged(
    settings: Settings, redis_url: str, relay: Relay
) -> None:
    with gateway_for(settings, redis_url, relay) as gw:
        with gw.rt.db.transaction() as session:
            session.query(Contact).update({"available_24x7": False})
        gw.send(make_mail(ADA_MAIL, "[Sev1] Payroll is down"))
        gw.send(make_mail(ADA_MAIL, "[Sev2] Reports are slow"))
        gw.drain()
        sev1, sev2 = gw.requests()
        assert (sev1.needs_24x7_contact, sev2.needs_24x7_contact) == (True, False)
        acks = {str(m["Subject"]): m.get_content() for m in gw.relay.messages}
        sev1_ack = acks[f"[{sev1.number}] Received: [Sev1] Payroll is down"]
        assert "Severity 1 needs a contact who can be reached around the clock" in sev1_ack
        assert "nobody at Acme Corp is registered as one" in sev1_ack
        assert (
            "around the clock while"
            not in acks[f"[{sev2.number}] Received: [Sev2] Reports are slow"]
        )

        add_staff(gw.rt.db, "alice", PASSWORD)
        client, auth = web_client(gw), bearer(gw.rt.db, "bot")
        assert client.get(f"/api/requests/{sev1.number}", headers=auth).json["needs_24x7_contact"]
        # Raised to Severity 1 by staff, the other request is flagged too.
        raised = client.post(
            f"/api/requests/{sev2.number}/severity",
            json={"severity": 1, "justification": "Nobody can work."},
            headers=auth,
        )
        assert raised.json["needs_24x7_contact"] is True


def test_the_24x7_contacts_are_listed_on_a_severity_1_request(
    settings: Settings, redis_url: str, relay: Relay
) -> None:
    from tests.helpers import add_contact
    from tests.web_support import sign_in

    with gateway_for(settings, redis_url, relay) as gw:
        with gw.rt.db.transaction() as session:
            session.query(Contact).update({"available_24x7": False})
        add_contact(gw.rt.db, "ops@acme.example", name="Night Ops", phone="+14155550177")
        gw.send(make_mail(ADA_MAIL, "[Sev1] Payroll is down"))
        gw.drain()
        (sev1,) = gw.requests()
        assert sev1.needs_24x7_contact is False  # somebody at Acme is
        add_staff(gw.rt.db, "alice", PASSWORD)
        client = web_client(gw)
        sign_in(client, "alice")
        page = client.get(f"/requests/{sev1.number}").get_data(as_text=True)
        assert "Night Ops (+14155550177)" in page


def test_a_severity_1_breach_texts_the_engineer_on_call(phone: Phone) -> None:
    contact_id = add_caller(phone)
    created = dt.datetime.now(dt.UTC) - dt.timedelta(hours=2)
    request = add_request(
        phone.rt.db,
        contact_id,
        severity=1,
        created_at=created,
        response_due_at=phone.rt.policy.response_due(1, created),
        subject="Payroll is down",
    )
    assert jobs.watch_overdue_goals() == 1  # the sweep's catch-up, on the wall clock
    (page,) = [s for s in phone.sms.sent if s.to == "+14155550190"]
    assert page.body.startswith(f"SEV1 {request.number} response goal BREACHED: Acme Corp")
    breached = [d for kind, d in phone.events(request.id) if kind == "goal_breached"]
    assert breached[0]["paged"] == "Linus"
