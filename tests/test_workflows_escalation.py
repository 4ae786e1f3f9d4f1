"""Escalation to managers and contacts' requests for another severity, from the API, the staff
page and mail: the whole gateway (SMTP door, burst RQ workers, a real relay) on SQLite and
PostgreSQL."""

from __future__ import annotations

import re
from collections.abc import Iterator
from email.message import EmailMessage
from typing import Any

import pytest
from flask.testing import FlaskClient

from intake.accounts.credentials import add_staff
from intake.jobs.worker import run_worker
from intake.outbox.links import status_url
from intake.settings import Settings
from intake.workflows.severity_requests import justification_of
from tests.helpers import Relay, make_mail
from tests.hygiene_support import ADA, Gateway, gateway_for
from tests.web_support import PASSWORD, csrf_token, sign_in
from tests.workflow_support import bearer, web_client
from tests.workflow_support import open_request as open_by_mail

MANAGERS = [
    {"name": "Grace", "email": "grace@desk.example", "phone": "+14155550180", "level": 1},
    {"name": "Edsger", "email": "edsger@desk.example", "level": 2},
]


@pytest.fixture
def gateway(settings: Settings, redis_url: str, relay: Relay) -> Iterator[Gateway]:
    tables = dict(settings.policy) | {"escalation": {"managers": MANAGERS}}
    with gateway_for(settings.replace(policy=tables), redis_url, relay) as gw:
        add_staff(gw.rt.db, "alice", PASSWORD)
        yield gw


@pytest.fixture
def client(gateway: Gateway) -> FlaskClient:
    return web_client(gateway)


@pytest.fixture
def auth(gateway: Gateway) -> dict[str, str]:
    return bearer(gateway.rt.db)


def open_request(gateway: Gateway, subject: str = "[Sev3] Exports are slow") -> str:
    return open_by_mail(gateway, subject)


def follow_up(gateway: Gateway, number: str, subject: str, body: str) -> None:
    """A reply to the request's acknowledgment: its In-Reply-To carries our signed token (the
    number in the subject alone counts only from a verified sender)."""
    run_worker(gateway.rt, gateway.redis, burst=True, cron=False)
    ack = next(m for m in gateway.relay.messages if str(m["Subject"]).startswith(f"[{number}]"))
    mail = make_mail(ADA, f"Re: [{number}] {subject}", body)
    mail["In-Reply-To"] = ack["Message-ID"]
    gateway.send(mail)
    gateway.drain()


def sent_since(gateway: Gateway, count: int) -> list[EmailMessage]:
    run_worker(gateway.rt, gateway.redis, burst=True, cron=False)
    return gateway.relay.messages[count:]


def addressed(messages: list[EmailMessage]) -> list[tuple[str, str]]:
    return [(str(m["To"]).rpartition("<")[2].rstrip(">"), str(m["Subject"])) for m in messages]


def detail(client: FlaskClient, auth: dict[str, str], number: str) -> Any:
    return client.get(f"/api/requests/{number}", headers=auth).json


def test_escalations_engage_each_level_s_manager_and_the_plan_reaches_the_contact(
    gateway: Gateway, client: FlaskClient, auth: dict[str, str]
) -> None:
    number = open_request(gateway)
    before = len(gateway.relay.messages)
    answer = client.post(
        f"/api/requests/{number}/escalations",
        json={"reason": "No progress in two days.", "counterpart": "Bob Stone, CTO"},
        headers=auth,
    )
    assert answer.status_code == 201
    assert answer.json["detail"] == {
        "reason": "No progress in two days.",
        "by": "desk-bot",
        "level": 1,
        "counterpart": "Bob Stone, CTO",
        "manager": "Grace",
    }
    assert addressed(sent_since(gateway, before)) == [
        ("grace@desk.example", f"[{number}] Escalation level 1: action plan needed"),
        (ADA, f"[{number}] Escalated to Grace"),
    ]

    before = len(gateway.relay.messages)
    plan = client.post(
        f"/api/requests/{number}/action-plan",
        json={"plan": "Daily call at 09:00; patch by Friday."},
        headers=auth,
    )
    assert plan.status_code == 201
    assert plan.json["type"] == "action_plan"
    assert plan.json["detail"]["manager"] == "Grace"
    mails = sent_since(gateway, before)
    assert addressed(mails) == [(ADA, f"[{number}] Action plan")]
    assert "Daily call at 09:00; patch by Friday." in mails[0].get_content()

    second = client.post(
        f"/api/requests/{number}/escalations", json={"reason": "Still down."}, headers=auth
    )
    assert second.json["detail"]["manager"] == "Edsger"
    third = client.post(
        f"/api/requests/{number}/escalations", json={"reason": "Again."}, headers=auth
    )
    assert (third.status_code, third.json["error"]["code"]) == (409, "highest_level")


def test_an_action_plan_needs_an_escalation(
    gateway: Gateway, client: FlaskClient, auth: dict[str, str]
) -> None:
    number = open_request(gateway)
    answer = client.post(f"/api/requests/{number}/action-plan", json={"plan": "x"}, headers=auth)
    assert (answer.status_code, answer.json["error"]["code"]) == (409, "not_escalated")


def test_a_contact_escalates_by_mail_and_names_a_counterpart(
    gateway: Gateway, client: FlaskClient, auth: dict[str, str]
) -> None:
    number = open_request(gateway)
    before = len(gateway.relay.messages)
    follow_up(
        gateway,
        number,
        "please escalate",
        "Nothing has moved for a day.\nCounterpart: Bob Stone\n",
    )
    events = detail(client, auth, number)["events"]
    escalated = next(e for e in events if e["type"] == "escalated")
    assert escalated["detail"]["by"] == ADA
    assert escalated["detail"]["counterpart"] == "Bob Stone"
    assert escalated["detail"]["manager"] == "Grace"
    recipients = [to for to, _ in addressed(gateway.relay.messages[before:])]
    assert sorted(recipients) == sorted(["grace@desk.example", ADA])  # sent by the intake job


def test_an_upgrade_without_the_impact_is_refused_with_what_is_missing(
    gateway: Gateway, client: FlaskClient, auth: dict[str, str]
) -> None:
    number = open_request(gateway)
    before = len(gateway.relay.messages)
    follow_up(gateway, number, "more", "Severity: 1\n")
    events = detail(client, auth, number)["events"]
    asked = next(e for e in events if e["type"] == "severity_requested")
    assert asked["detail"]["state"] == "refused"
    assert "needs a description of the increased business impact" in asked["detail"]["note"]
    mail = gateway.relay.messages[before:]
    assert addressed(mail) == [(ADA, f"[{number}] Severity 1 refused")]
    assert "what no longer works, who is affected and since when" in mail[0].get_content()
    assert detail(client, auth, number)["severity"] == 3


def test_a_justified_request_is_accepted_by_staff_and_the_contact_is_told(
    gateway: Gateway, client: FlaskClient, auth: dict[str, str]
) -> None:
    number = open_request(gateway)
    follow_up(
        gateway,
        number,
        "worse",
        "Severity: 1\nSince 09:00 none of our 400 agents can log in; production has stopped.\n",
    )
    asked = next(
        e for e in detail(client, auth, number)["events"] if e["type"] == "severity_requested"
    )
    assert asked["detail"]["state"] == "pending"
    assert asked["detail"]["justification"].startswith("Since 09:00 none of our 400 agents")
    before = len(gateway.relay.messages)
    answer = client.post(
        f"/api/requests/{number}/severity-requests/{asked['detail']['id']}/accept",
        json={"note": "Agreed."},
        headers=auth,
    )
    assert answer.status_code == 200
    assert answer.json["severity"] == 1
    change = next(e for e in answer.json["events"] if e["type"] == "severity_changed")
    assert change["detail"]["justification"].startswith(f"Requested by {ADA}: Since 09:00")
    assert addressed(sent_since(gateway, before)) == [(ADA, f"[{number}] Severity changed to 1")]
    again = client.post(
        f"/api/requests/{number}/severity-requests/{asked['detail']['id']}/refuse",
        json={"note": "x"},
        headers=auth,
    )
    assert (again.status_code, again.json["error"]["code"]) == (409, "decided")


def test_staff_refuse_a_request_with_a_note_the_contact_reads(
    gateway: Gateway, client: FlaskClient, auth: dict[str, str]
) -> None:
    number = open_request(gateway, "[Sev2] Reports fail")
    follow_up(gateway, number, "downgrade", "Severity: 4\nWe found a workaround for now.\n")
    asked = next(
        e for e in detail(client, auth, number)["events"] if e["type"] == "severity_requested"
    )
    path = f"/api/requests/{number}/severity-requests/{asked['detail']['id']}/refuse"
    without_note = client.post(path, json={}, headers=auth)
    assert (without_note.status_code, without_note.json["error"]["code"]) == (422, "missing_note")
    before = len(gateway.relay.messages)
    answer = client.post(path, json={"note": "The workaround loses data."}, headers=auth)
    assert answer.status_code == 200
    assert answer.json["state"] == "refused"
    mail = sent_since(gateway, before)
    assert addressed(mail) == [(ADA, f"[{number}] Severity 4 refused")]
    assert "The workaround loses data." in mail[0].get_content()


def test_escalate_and_a_higher_severity_in_one_mail_gets_both(
    gateway: Gateway, client: FlaskClient, auth: dict[str, str]
) -> None:
    number = open_request(gateway)
    follow_up(
        gateway,
        number,
        "ESCALATE",
        "Severity: 2\nThe month-end close is blocked for the whole finance team.\n",
    )
    kinds = [e["type"] for e in detail(client, auth, number)["events"]]
    assert "severity_requested" in kinds and "escalated" in kinds
    assert detail(client, auth, number)["severity"] == 3  # escalation changes no severity


def test_the_staff_page_escalates_records_a_plan_and_accepts_a_request(
    gateway: Gateway, client: FlaskClient, auth: dict[str, str]
) -> None:
    number = open_request(gateway)
    follow_up(
        gateway, number, "worse", "Severity: 2\nThe whole sales team is blocked since noon.\n"
    )
    sign_in(client, "alice")
    page = client.get(f"/requests/{number}").get_data(as_text=True)
    assert "The whole sales team is blocked since noon." in page
    token = csrf_token(client, f"/requests/{number}")
    client.post(
        f"/requests/{number}/escalate",
        data={"csrf_token": token, "esc-reason": "Customer asked", "esc-counterpart": "Bob"},
    )
    client.post(
        f"/requests/{number}/action-plan",
        data={"csrf_token": token, "plan-plan": "Engineer on site tomorrow."},
    )
    change_id = next(
        e["detail"]["id"]
        for e in detail(client, auth, number)["events"]
        if e["type"] == "severity_requested"
    )
    accepted = client.post(
        f"/requests/{number}/severity-requests/{change_id}/accept",
        data={"csrf_token": token, "dec-note": ""},
    )
    assert accepted.status_code == 302
    body = detail(client, auth, number)
    assert body["severity"] == 2
    kinds = [e["type"] for e in body["events"]]
    assert [k for k in kinds if k in ("escalated", "action_plan", "severity_changed")] == [
        "escalated",
        "action_plan",
        "severity_changed",
    ]
    page = client.get(f"/requests/{number}").get_data(as_text=True)
    assert "level 1, owned by Grace" in page
    assert "Engineer on site tomorrow." in page


def test_the_justification_leaves_out_the_severity_and_escalate_lines() -> None:
    text = "Severity: 1\nplease escalate\nNobody can work since 9.\n"
    assert justification_of(text) == "Nobody can work since 9."


def test_the_contact_escalates_and_asks_for_a_severity_from_the_status_page(
    gateway: Gateway, client: FlaskClient, auth: dict[str, str]
) -> None:
    number = open_request(gateway)
    settings = gateway.rt.settings
    link = status_url(settings.public_url, settings.secret_key, number)
    path = link.removeprefix(settings.public_url)
    page = client.get(path).get_data(as_text=True)
    found = re.search(r'name="esc-csrf_token" type="hidden" value="([^"]+)"', page)
    assert found is not None
    token = found.group(1)

    asked = client.post(
        f"{path}/severity",
        data={"csrf_token": token, "sev-severity": "1", "sev-justification": ""},
        follow_redirects=True,
    )
    assert "Not accepted: an upgrade needs a description" in asked.get_data(as_text=True)
    justified = client.post(
        f"{path}/severity",
        data={
            "csrf_token": token,
            "sev-severity": "1",
            "sev-justification": "All 300 call agents are idle since 08:00.",
        },
        follow_redirects=True,
    )
    assert "is with the support desk" in justified.get_data(as_text=True)
    escalated = client.post(
        f"{path}/escalate",
        data={"csrf_token": token, "esc-reason": "No answer yet.", "esc-counterpart": "Bob"},
        follow_redirects=True,
    )
    assert "Your request is escalated" in escalated.get_data(as_text=True)
    events = detail(client, auth, number)["events"]
    states = [e["detail"]["state"] for e in events if e["type"] == "severity_requested"]
    assert states == ["refused", "pending"]
    escalation = next(e for e in events if e["type"] == "escalated")["detail"]
    assert (escalation["by"], escalation["counterpart"]) == (ADA, "Bob")
    forged = client.post(f"{path}/escalate", data={"esc-reason": "x"})
    assert forged.status_code == 400  # no CSRF token
    tampered = client.post(f"{path}x/escalate", data={"csrf_token": token, "esc-reason": "x"})
    assert tampered.status_code == 404


def test_a_very_long_justification_is_kept_to_the_limit_and_can_be_accepted(
    gateway: Gateway, client: FlaskClient, auth: dict[str, str]
) -> None:
    number = open_request(gateway)
    follow_up(gateway, number, "worse", "Severity: 2\n" + "Nobody can export. " * 1000)
    asked = next(
        e for e in detail(client, auth, number)["events"] if e["type"] == "severity_requested"
    )
    assert len(asked["detail"]["justification"]) == 10_000
    path = f"/api/requests/{number}/severity-requests/{asked['detail']['id']}/accept"
    answer = client.post(path, json={}, headers=auth)
    assert (answer.status_code, answer.json["severity"]) == (200, 2)
