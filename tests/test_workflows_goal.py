"""The response goal as the policy means it, and staff writing to the contact: through the whole
gateway (the SMTP door, burst RQ workers, a real relay) and the web app, on SQLite and
PostgreSQL. The acknowledgment never meets the goal; an assignment and a first reply do."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from typing import Any

import pytest
from flask.testing import FlaskClient

from intake.accounts.credentials import add_staff
from intake.jobs.worker import run_worker
from intake.outbox.links import status_url
from intake.settings import Settings
from intake.store.models import OutboxMessage
from tests.helpers import Relay
from tests.hygiene_support import ADA, Gateway, gateway_for, reply_to
from tests.web_support import PASSWORD, csrf_token, sign_in
from tests.workflow_support import bearer, web_client
from tests.workflow_support import open_request as open_by_mail


@pytest.fixture
def gateway(settings: Settings, redis_url: str, relay: Relay) -> Iterator[Gateway]:
    with gateway_for(settings, redis_url, relay) as gw:
        add_staff(gw.rt.db, "alice", PASSWORD)
        yield gw


@pytest.fixture
def client(gateway: Gateway) -> FlaskClient:
    return web_client(gateway)


@pytest.fixture
def auth(gateway: Gateway) -> dict[str, str]:
    return bearer(gateway.rt.db)


def open_request(gateway: Gateway, subject: str = "[Sev2] Exports fail") -> str:
    return open_by_mail(gateway, subject)


def get(client: FlaskClient, auth: dict[str, str], number: str) -> Any:
    answer = client.get(f"/api/requests/{number}", headers=auth)
    assert answer.status_code == 200
    return answer.json


def send_mail(gateway: Gateway) -> None:
    run_worker(gateway.rt, gateway.redis, burst=True, cron=False)


def test_the_acknowledgment_does_not_meet_the_goal(
    gateway: Gateway, client: FlaskClient, auth: dict[str, str]
) -> None:
    number = open_request(gateway)
    body = get(client, auth, number)
    assert body["acknowledged_at"] is not None  # the acknowledgment went out...
    assert body["goal"] == {"state": "pending", "met_at": None}  # ...and met nothing
    assert body["assignee"] is None
    sign_in(client, "alice")
    page = client.get(f"/requests/{number}").get_data(as_text=True)
    assert '<span class="badge met">' not in page


def test_an_assignment_and_a_first_reply_meet_the_goal(
    gateway: Gateway, client: FlaskClient, auth: dict[str, str]
) -> None:
    number = open_request(gateway)
    assigned = client.post(f"/api/requests/{number}/assign", json={"staff": "alice"}, headers=auth)
    assert assigned.status_code == 200
    assert assigned.json["assignee"] == "alice"
    assert assigned.json["goal"]["state"] == "pending"  # by default both are needed

    answer = client.post(
        f"/api/requests/{number}/replies",
        json={"body": "We are looking at the export logs.", "kind": "reply"},
        headers=auth,
    )
    assert answer.status_code == 201
    event = answer.json
    assert event["type"] == "reply"
    assert event["detail"] == {
        "text": "We are looking at the export logs.",
        "by": "desk-bot",  # the API token's name
        "to": ADA,
    }
    body = get(client, auth, number)
    assert body["goal"]["state"] == "met"
    assert body["goal"]["met_at"] == event["at"]
    kinds = [e["type"] for e in body["events"]]
    assert kinds[-3:] == ["assigned", "reply", "goal_met"]
    assert body["events"][-3]["detail"]["by"] == "desk-bot"


def test_a_reply_reaches_the_contact_threaded_and_her_answer_comes_back(
    gateway: Gateway, client: FlaskClient, auth: dict[str, str]
) -> None:
    number = open_request(gateway)
    ack = gateway.relay.messages[-1]
    client.post(
        f"/api/requests/{number}/replies",
        json={"body": "Which export format do you use?", "kind": "reply"},
        headers=auth,
    )
    send_mail(gateway)
    reply = gateway.relay.messages[-1]
    assert str(reply["To"]).endswith(f"<{ADA}>")
    assert str(reply["Subject"]).startswith(f"[{number}] Re: ")
    assert str(reply["In-Reply-To"]) == str(ack["Message-ID"])
    assert str(reply["Reply-To"]) == str(ack["Reply-To"])
    assert "Which export format do you use?" in reply.get_content()

    # Her mail client answers to the Reply-To address and keeps the thread's References.
    references = f"{reply['References']} {reply['Message-ID']}"
    answer = reply_to(reply, "CSV, the default one.\n", References=references)
    gateway.send(answer, to=str(reply["Reply-To"]))
    gateway.drain()
    messages = gateway.events(gateway.requests()[-1].id, "message")
    assert [m.detail["text"] for m in messages] == ["CSV, the default one."]
    assert len(gateway.requests()) == 1  # threaded by the reply address, no new request


def test_an_internal_note_never_leaves_and_does_not_meet_the_goal(
    gateway: Gateway, client: FlaskClient, auth: dict[str, str]
) -> None:
    number = open_request(gateway)
    client.post(f"/api/requests/{number}/assign", json={"staff": "alice"}, headers=auth)
    answer = client.post(
        f"/api/requests/{number}/replies",
        json={"body": "Customer is on the old release.", "kind": "internal_note"},
        headers=auth,
    )
    assert answer.status_code == 201
    assert answer.json["detail"] == {"text": "Customer is on the old release.", "by": "desk-bot"}
    send_mail(gateway)
    purposes = [row.purpose for row in gateway.all(OutboxMessage)]
    assert "internal_note" not in purposes
    assert not any(
        "old release" in m.get_content() for m in gateway.relay.messages if not m.is_multipart()
    )
    assert get(client, auth, number)["goal"]["state"] == "pending"


def test_a_status_report_shows_on_the_contacts_status_page(
    gateway: Gateway, client: FlaskClient, auth: dict[str, str]
) -> None:
    number = open_request(gateway)
    answer = client.post(
        f"/api/requests/{number}/replies",
        json={"body": "A fix is being tested; next report by 16:00.", "kind": "status_report"},
        headers=auth,
    )
    assert answer.status_code == 201
    settings = gateway.rt.settings
    link = status_url(settings.public_url, settings.secret_key, number)
    page = client.get(link.removeprefix(settings.public_url)).get_data(as_text=True)
    assert "Latest status report" in page
    assert "A fix is being tested; next report by 16:00." in page
    send_mail(gateway)
    assert str(gateway.relay.messages[-1]["Subject"]).startswith(f"[{number}] Status report: ")


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        ({"body": "", "kind": "reply"}, 422, "missing_body"),
        ({"body": "Hello", "kind": "shout"}, 422, "invalid_kind"),
        ({"staff": "alice"}, 422, "missing_body"),
    ],
)
def test_a_reply_without_text_or_with_an_unknown_kind_is_refused(
    gateway: Gateway,
    client: FlaskClient,
    auth: dict[str, str],
    body: dict[str, str],
    status: int,
    code: str,
) -> None:
    number = open_request(gateway)
    answer = client.post(f"/api/requests/{number}/replies", json=body, headers=auth)
    assert (answer.status_code, answer.json["error"]["code"]) == (status, code)


def test_assigning_to_nobody_known_is_refused(
    gateway: Gateway, client: FlaskClient, auth: dict[str, str]
) -> None:
    number = open_request(gateway)
    answer = client.post(f"/api/requests/{number}/assign", json={"staff": "zed"}, headers=auth)
    assert (answer.status_code, answer.json["error"]["code"]) == (422, "unknown_staff")


def test_the_staff_page_replies_and_assigns_with_its_forms(
    gateway: Gateway, client: FlaskClient, auth: dict[str, str]
) -> None:
    number = open_request(gateway)
    sign_in(client, "alice")
    token = csrf_token(client, f"/requests/{number}")
    client.post(f"/requests/{number}/assign", data={"csrf_token": token, "asg-assignee": "alice"})
    sent = client.post(
        f"/requests/{number}/replies",
        data={"csrf_token": token, "rep-kind": "status_report", "rep-body": "Restarted the job."},
    )
    assert sent.status_code == 302
    body = get(client, auth, number)
    assert body["goal"]["state"] == "met"
    report = next(e for e in body["events"] if e["type"] == "status_report")
    assert report["detail"]["by"] == "alice"  # the staff login
    page = client.get(f"/requests/{number}").get_data(as_text=True)
    assert "Restarted the job." in page
    assert '<span class="badge met">met</span>' in page
    refused = client.post(f"/requests/{number}/replies", data={"rep-kind": "reply"})
    assert refused.status_code == 400  # no CSRF token


def test_goal_met_by_assignment_alone_when_configured(
    settings: Settings, redis_url: str, relay: Relay
) -> None:
    tables = dict(settings.policy) | {"goal": {"met_by": "assignment"}}
    with gateway_for(settings.replace(policy=tables), redis_url, relay) as gw:
        add_staff(gw.rt.db, "alice", PASSWORD)
        client, auth = web_client(gw), bearer(gw.rt.db, "bot")
        number = open_request(gw)
        answer = client.post(
            f"/api/requests/{number}/assign", json={"staff": "alice"}, headers=auth
        )
        assert answer.json["goal"]["state"] == "met"


def test_a_severity_change_restarts_the_clock_and_tells_the_contact(
    gateway: Gateway, client: FlaskClient, auth: dict[str, str]
) -> None:
    number = open_request(gateway, "[Sev3] Reports are slow")
    before = dt.datetime.now(dt.UTC)
    answer = client.post(
        f"/api/requests/{number}/severity",
        json={"severity": 1, "justification": "Now nobody can log in."},
        headers=auth,
    )
    due = dt.datetime.fromisoformat(answer.json["response_due_at"])
    assert before + dt.timedelta(hours=1) <= due <= before + dt.timedelta(hours=1, minutes=1)
    assert answer.json["goal"]["state"] == "pending"
    send_mail(gateway)
    notice = gateway.relay.messages[-1]
    assert str(notice["Subject"]) == f"[{number}] Severity changed to 1"
    assert "Now nobody can log in." in notice.get_content()
    assert str(notice["Auto-Submitted"]) == "auto-generated"
