"""The JSON API's write side, ``/metrics`` and the OpenAPI document, through
Flask's test client on SQLite and PostgreSQL, with a real Redis, a real RQ worker and a real
relay for the acknowledgment of a released message."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
import redis
from flask import Flask
from flask.testing import FlaskClient
from prometheus_client.parser import text_string_to_metric_families
from rq import Queue
from sqlalchemy import select

from intake.accounts.credentials import add_staff, create_token
from intake.jobs.jobs import intake_job_id
from intake.jobs.runtime import build_runtime
from intake.jobs.worker import run_worker
from intake.settings import Settings
from intake.store.db import Database
from intake.store.models import IntakeRecord, RequestEvent, ServiceRequest, utcnow
from tests.helpers import Relay
from tests.web_support import PASSWORD, add_contact, add_intake, add_request, csrf_token, sign_in
from web import create_app
from web.openapi import openapi_document

CONTRACT_ROUTES = {
    ("get", "/api/health"),
    ("get", "/api/requests"),
    ("get", "/api/requests/{number}"),
    ("post", "/api/requests/{number}/severity"),
    ("post", "/api/requests/{number}/escalations"),
    ("get", "/api/intake"),
    ("post", "/api/intake/{id}/release"),
}


@pytest.fixture
def app(settings: Settings, db: Database, redis_client: redis.Redis, relay: Relay) -> Flask:
    settings = settings.replace(secret_key="api-secret", outbound_smtp_url=relay.url)
    return create_app(settings, db=db, redis_client=redis_client)


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()


@pytest.fixture
def auth(db: Database) -> dict[str, str]:
    return {"Authorization": f"Bearer {create_token(db, 'tests')}"}


@pytest.fixture
def ada(db: Database) -> int:
    return add_contact(db, "ada@acme.example")


def post(client: FlaskClient, path: str, auth: dict[str, str], body: Any = None) -> Any:
    return client.post(path, json=body, headers=auth)


def error_of(response: Any) -> tuple[int, str]:
    return response.status_code, response.json["error"]["code"]


# Severity changes.


def test_a_severity_change_answers_the_updated_request(
    client: FlaskClient, auth: dict[str, str], db: Database, ada: int
) -> None:
    sr = add_request(db, ada, severity=3, created_at=utcnow() - dt.timedelta(hours=5))
    before = utcnow()

    answer = post(
        client,
        f"/api/requests/{sr.number}/severity",
        auth,
        {"severity": 2, "justification": "Exports block the month-end close"},
    )

    assert answer.status_code == 200
    body = answer.json
    assert (body["number"], body["severity"], body["initial_severity"]) == (sr.number, 2, 3)
    due = dt.datetime.fromisoformat(body["response_due_at"])
    assert before + dt.timedelta(hours=2) <= due <= utcnow() + dt.timedelta(hours=2)
    change = body["events"][-1]
    assert change["type"] == "severity_changed"
    assert change["detail"]["from"] == 3 and change["detail"]["to"] == 2
    assert change["detail"]["justification"] == "Exports block the month-end close"
    assert change["detail"]["by"] == "tests"  # the token's name


@pytest.mark.parametrize(
    ("body", "code"),
    [
        ({"severity": 2}, "missing_justification"),
        ({"severity": 2, "justification": "  "}, "missing_justification"),
        ({"severity": 2, "justification": 7}, "missing_justification"),
        ({"severity": 9, "justification": "Worse"}, "invalid_severity"),
        ({"severity": "2", "justification": "Worse"}, "invalid_severity"),
        ([2, "Worse"], "invalid_body"),
        (None, "invalid_body"),
    ],
)
def test_a_severity_change_without_what_it_needs_is_422(
    client: FlaskClient, auth: dict[str, str], db: Database, ada: int, body: Any, code: str
) -> None:
    sr = add_request(db, ada, severity=3)
    answer = post(client, f"/api/requests/{sr.number}/severity", auth, body)
    assert error_of(answer) == (422, code)
    with db.sessions() as s:
        assert s.get_one(ServiceRequest, sr.id).severity == 3


def test_a_severity_change_of_unknown_or_closed_requests_is_refused(
    client: FlaskClient, auth: dict[str, str], db: Database, ada: int
) -> None:
    closed = add_request(db, ada, status="closed")
    body = {"severity": 1, "justification": "Worse"}
    assert error_of(post(client, "/api/requests/SR-999999/severity", auth, body))[0] == 404
    assert error_of(post(client, "/api/requests/nonsense/severity", auth, body))[0] == 404
    assert error_of(post(client, f"/api/requests/{closed.number}/severity", auth, body)) == (
        409,
        "not_open",
    )


# Escalations.


def test_an_escalation_answers_201_with_its_event(
    client: FlaskClient, auth: dict[str, str], db: Database, ada: int
) -> None:
    sr = add_request(db, ada)

    answer = post(client, f"/api/requests/{sr.number}/escalations", auth, {"reason": "No reply"})
    missing = post(client, f"/api/requests/{sr.number}/escalations", auth, {})

    assert answer.status_code == 201
    assert answer.json["type"] == "escalated"
    # No managers configured: the escalation is recorded at level 1 for the desk.
    assert answer.json["detail"] == {"reason": "No reply", "by": "tests", "level": 1}
    assert error_of(missing) == (422, "missing_reason")
    events = client.get(f"/api/requests/{sr.number}", headers=auth).json["events"]
    assert [e["type"] for e in events] == ["created", "escalated"]


def test_writes_need_a_token(client: FlaskClient, db: Database, ada: int) -> None:
    sr = add_request(db, ada)
    answer = client.post(f"/api/requests/{sr.number}/escalations", json={"reason": "x"})
    assert error_of(answer) == (401, "unauthorized")


# The quarantine.


def test_a_release_becomes_an_acknowledged_request(
    client: FlaskClient,
    auth: dict[str, str],
    db: Database,
    ada: int,
    settings: Settings,
    redis_client: redis.Redis,
    relay: Relay,
) -> None:
    intake_id = add_intake(db, "q1", subject="[Sev2] Exports fail")

    answer = post(client, f"/api/intake/{intake_id}/release", auth)

    assert answer.status_code == 202
    assert answer.json["outcome"] == "accepted" and answer.json["reason"] == "released"
    queue = Queue(settings.queue_name, connection=redis_client)
    assert intake_job_id(intake_id) in queue.job_ids
    worker_settings = settings.replace(
        secret_key="api-secret", outbound_smtp_url=relay.url, redis_url=""
    )
    run_worker(build_runtime(worker_settings), redis_client, burst=True, cron=False)
    with db.sessions() as s:
        row = s.get_one(IntakeRecord, intake_id)
        request = s.scalars(select(ServiceRequest)).one()
    assert (row.state, row.request_id) == ("done", request.id)
    assert (request.severity, request.status) == (2, "acknowledged")
    (ack,) = relay.messages
    assert ack["Subject"] == f"[{request.number}] Received: [Sev2] Exports fail"


def test_a_release_is_refused_for_strangers_and_non_quarantined_rows(
    client: FlaskClient, auth: dict[str, str], db: Database, ada: int
) -> None:
    stranger = add_intake(db, "q1", sender="eve@evil.example")
    accepted = add_intake(db, "a1", outcome="accepted", reason="new_request")

    assert error_of(post(client, f"/api/intake/{stranger}/release", auth)) == (
        422,
        "sender_not_entitled",
    )
    assert error_of(post(client, f"/api/intake/{accepted}/release", auth)) == (
        409,
        "not_quarantined",
    )
    assert error_of(post(client, "/api/intake/999999/release", auth))[0] == 404
    assert error_of(post(client, f"/api/intake/{2**63}/release", auth))[0] == 404


def test_a_discarded_message_stays_in_the_log(
    client: FlaskClient, auth: dict[str, str], db: Database, ada: int
) -> None:
    intake_id = add_intake(db, "q1")

    discarded = post(client, f"/api/intake/{intake_id}/discard", auth)
    release = post(client, f"/api/intake/{intake_id}/release", auth)

    assert discarded.status_code == 200 and discarded.json["outcome"] == "quarantined"
    assert error_of(release) == (409, "not_quarantined")
    listed = client.get("/api/intake?outcome=quarantined", headers=auth).json["items"]
    assert [item["id"] for item in listed] == [intake_id]


# A staff session as an API caller.


def test_a_staff_session_reads_the_api_and_writes_with_its_csrf_token(
    client: FlaskClient, db: Database, ada: int
) -> None:
    add_staff(db, "alice", PASSWORD)
    sign_in(client, "alice")
    sr = add_request(db, ada)
    path = f"/api/requests/{sr.number}/escalations"

    assert client.get("/api/requests").status_code == 200
    without = client.post(path, json={"reason": "x"})
    token = csrf_token(client, "/")
    with_token = client.post(path, json={"reason": "x"}, headers={"X-CSRFToken": token})

    assert error_of(without) == (400, "csrf_failed")
    assert with_token.status_code == 201
    assert with_token.json["detail"]["by"] == "alice"


# /metrics.


def _metrics(client: FlaskClient, auth: dict[str, str]) -> dict[str, dict[tuple[Any, ...], float]]:
    answer = client.get("/metrics", headers=auth)
    assert answer.status_code == 200
    assert answer.mimetype == "text/plain"
    found: dict[str, dict[tuple[Any, ...], float]] = {}
    for family in text_string_to_metric_families(answer.get_data(as_text=True)):
        for sample in family.samples:
            key = tuple(sorted(sample.labels.items()))
            found.setdefault(sample.name, {})[key] = sample.value
    return found


def test_metrics_count_intake_latency_queue_and_breaches(
    client: FlaskClient, auth: dict[str, str], db: Database, ada: int
) -> None:
    now = utcnow()
    add_intake(db, "a1", outcome="accepted", reason="new_request")
    add_intake(db, "r1", outcome="rejected", reason="unknown_sender", channel="phone")
    created = now - dt.timedelta(minutes=30)
    late = add_request(
        db, ada, severity=1, created_at=created, response_due_at=now - dt.timedelta(1)
    )
    add_request(
        db,
        ada,
        severity=2,
        created_at=created,
        acknowledged_at=created + dt.timedelta(seconds=20),
        status="acknowledged",
    )
    with db.transaction() as session:
        for kind, share in (("goal_warning", 50), ("goal_warning", 80), ("goal_breached", 100)):
            session.add(RequestEvent(request_id=late.id, type=kind, detail={"share": share}))

    found = _metrics(client, auth)

    messages = found["intake_messages_total"]
    assert messages[(("channel", "email"), ("outcome", "accepted"))] == 1
    assert messages[(("channel", "phone"), ("outcome", "rejected"))] == 1
    buckets = found["intake_acknowledgment_latency_seconds_bucket"]
    assert buckets[(("le", "10.0"), ("severity", "2"))] == 0
    assert buckets[(("le", "30.0"), ("severity", "2"))] == 1
    assert buckets[(("le", "+Inf"), ("severity", "2"))] == 1
    assert found["intake_response_goal_breaches"][(("severity", "1"),)] == 1
    # The acknowledged Severity 2 request has nobody's response either, but is not due yet.
    assert found["intake_response_goal_breaches"][(("severity", "2"),)] == 0
    goal_events = found["intake_goal_events_total"]
    assert goal_events[(("type", "goal_warning"),)] == 2
    assert goal_events[(("type", "goal_breached"),)] == 1
    assert found["intake_requests_open"][(("severity", "2"),)] == 1
    assert found["intake_queue_jobs"][(("state", "queued"),)] == 0
    assert found["intake_redis_up"][()] == 1


def test_metrics_need_a_token(client: FlaskClient) -> None:
    answer = client.get("/metrics", headers={"Authorization": "Bearer wrong"})
    assert error_of(answer) == (401, "unauthorized")


# The OpenAPI document.


def test_the_openapi_document_is_served_and_names_every_contract_route(
    client: FlaskClient,
) -> None:
    answer = client.get("/api/openapi.json")

    assert answer.status_code == 200
    assert answer.json == openapi_document()
    routes = {(m, p) for p, ops in answer.json["paths"].items() for m in ops}
    assert routes >= CONTRACT_ROUTES
