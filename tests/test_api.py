"""The read side of the JSON API and the voice placeholders, through Flask's test
client against real databases (SQLite and PostgreSQL) and a real Redis."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
import redis
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import event
from sqlalchemy.orm import Session
from werkzeug.datastructures import WWWAuthenticate

from intake.accounts.credentials import create_token
from intake.ops.health import record_heartbeat
from intake.settings import Settings
from intake.store.db import Database
from intake.store.models import (
    Contact,
    ContactEmail,
    Customer,
    IntakeRecord,
    RequestEvent,
    ServiceRequest,
    format_request_number,
)
from voice import NOT_CONFIGURED
from web import create_app, services
from web.api import encode_cursor

NOW = dt.datetime(2026, 3, 2, 9, 0, tzinfo=dt.UTC)


# Fixtures and data builders.


@pytest.fixture
def app(settings: Settings, db: Database, redis_client: redis.Redis) -> Flask:
    return create_app(settings, db=db, redis_client=redis_client)


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()


@pytest.fixture
def auth(db: Database) -> dict[str, str]:
    return {"Authorization": f"Bearer {create_token(db, 'tests')}"}


def add_customer(session: Session, name: str) -> Customer:
    customer = Customer(
        name=name,
        offering="IXCloud",
        support_start=dt.date(2026, 1, 1),
        support_end=dt.date(2027, 12, 31),
    )
    session.add(customer)
    return customer


def add_contact(session: Session, customer: Customer, name: str, email: str) -> Contact:
    contact = Contact(customer=customer, name=name, role="technical", phone="+14155550101")
    contact.emails.append(ContactEmail(address=email))
    session.add(contact)
    return contact


def add_request(session: Session, contact: Contact, **values: Any) -> ServiceRequest:
    values.setdefault("created_at", NOW)
    values.setdefault("severity", 3)
    sr = ServiceRequest(
        customer=contact.customer,
        contact=contact,
        channel=values.pop("channel", "email"),
        initial_severity=values["severity"],
        response_due_at=values["created_at"] + dt.timedelta(days=3),
        subject=values.pop("subject", "Reports are slow"),
        **values,
    )
    session.add(sr)
    session.flush()
    return sr


def add_intake(session: Session, key: str, **values: Any) -> IntakeRecord:
    defaults = {"channel": "email", "sender": "ada@acme.example", "received_at": NOW}
    record = IntakeRecord(dedupe_key=key, **(defaults | values))
    session.add(record)
    session.flush()
    return record


@pytest.fixture
def acme(db: Database) -> dict[str, int]:
    """Two customers, three contacts and five requests of different kinds; their ids by name."""
    with db.transaction() as s:
        acme, globex = add_customer(s, "Acme Corp"), add_customer(s, "Globex")
        ada = add_contact(s, acme, "Ada Lovelace", "ada@acme.example")
        bob = add_contact(s, acme, "Bob Babbage", "bob@acme.example")
        gus = add_contact(s, globex, "Gus Grace", "gus@globex.example")
        minute = dt.timedelta(minutes=1)
        requests = {
            "ada_new": add_request(s, ada, created_at=NOW),
            "ada_sev1": add_request(s, ada, created_at=NOW + minute, severity=1),
            "bob_phone": add_request(s, bob, created_at=NOW + 2 * minute, channel="phone"),
            "bob_closed": add_request(s, bob, created_at=NOW + 3 * minute, status="closed"),
            "gus_ack": add_request(
                s, gus, created_at=NOW + 4 * minute, status="acknowledged", acknowledged_at=NOW
            ),
        }
        return {name: sr.id for name, sr in requests.items()}


def numbers(*ids: int) -> list[str]:
    return [format_request_number(i) for i in ids]


def get_ok(client: FlaskClient, path: str, auth: dict[str, str] | None = None) -> Any:
    """The JSON body of a GET that must succeed."""
    response = client.get(path, headers=auth or {})
    assert response.status_code == 200, response.get_data(as_text=True)
    return response.json


def listed(client: FlaskClient, auth: dict[str, str], query: str) -> list[str]:
    return [item["number"] for item in get_ok(client, f"/api/requests?{query}", auth)["items"]]


# Authentication and errors.


@pytest.mark.parametrize(
    ("header", "error"),
    [
        ({}, None),
        ({"Authorization": "Bearer itk_not-a-token"}, "invalid_token"),
        ({"Authorization": "Basic dXNlcjpwYXNz"}, None),
    ],
)
def test_without_a_valid_token_the_api_answers_401(
    client: FlaskClient, header: dict[str, str], error: str | None
) -> None:
    for path in ("/api/requests", "/api/requests/SR-000001", "/api/intake"):
        response = client.get(path, headers=header)

        assert response.status_code == 401
        assert response.json is not None
        assert response.json["error"]["code"] == "unauthorized"
        challenge = WWWAuthenticate.from_header(response.headers["WWW-Authenticate"])
        assert challenge is not None
        assert challenge.type == "bearer"
        assert challenge.parameters.get("realm") == "intake"
        assert challenge.parameters.get("error") == error


def test_a_valid_token_is_let_in(client: FlaskClient, auth: dict[str, str]) -> None:
    response = client.get("/api/requests", headers=auth)

    assert response.status_code == 200
    assert response.json == {"items": [], "next": None}


def test_unknown_api_paths_answer_json_404(client: FlaskClient, auth: dict[str, str]) -> None:
    response = client.get("/api/nothing-here", headers=auth)

    assert response.status_code == 404
    assert response.json is not None
    assert response.json["error"]["code"] == "not_found"


def test_wrong_methods_answer_json_405(client: FlaskClient, auth: dict[str, str]) -> None:
    response = client.post("/api/requests", headers=auth)

    assert response.status_code == 405
    assert response.json is not None
    assert response.json["error"]["code"] == "method_not_allowed"
    assert "GET" in response.headers["Allow"]


def test_internal_errors_answer_json_500_without_details(app: Flask) -> None:
    def broken() -> str:
        raise RuntimeError("secret internals")

    app.add_url_rule("/api/broken", view_func=broken)

    response = app.test_client().get("/api/broken")

    assert response.status_code == 500
    assert response.json is not None
    assert response.json["error"]["code"] == "internal_server_error"
    assert "secret" not in response.get_data(as_text=True)


def test_errors_outside_the_api_stay_html(client: FlaskClient) -> None:
    response = client.get("/nothing-here")

    assert response.status_code == 404
    assert response.mimetype == "text/html"


# Health.


def test_health_needs_no_token_and_is_ok_with_database_and_redis(client: FlaskClient) -> None:
    response = client.get("/api/health")

    assert response.status_code == 200
    body = response.json
    assert body is not None
    assert body["status"] == "ok"
    assert body["components"]["database"] == {"status": "ok"}
    assert body["components"]["redis"] == {"status": "ok"}
    assert body["components"]["smtp"] == {"status": "missing"}
    assert body["components"]["worker"] == {"status": "missing", "count": 0}


def test_health_is_degraded_when_redis_is_down(settings: Settings, db: Database) -> None:
    closed = redis.Redis(port=1, socket_connect_timeout=1)
    app = create_app(settings, db=db, redis_client=closed)

    response = app.test_client().get("/api/health")

    assert response.status_code == 503
    body = response.json
    assert body is not None
    assert body["status"] == "degraded"
    assert body["components"]["database"] == {"status": "ok"}
    assert body["components"]["redis"]["status"] == "down"
    assert body["components"]["redis"]["error"]
    closed.close()


def test_health_shows_smtp_after_a_heartbeat(
    client: FlaskClient, redis_client: redis.Redis
) -> None:
    record_heartbeat(redis_client, "smtp", "mx1:2525", {"port": 2525})

    body = get_ok(client, "/api/health")

    assert body is not None
    smtp = body["components"]["smtp"]
    assert smtp["status"] == "ok"
    assert [i["instance"] for i in smtp["instances"]] == ["mx1:2525"]
    assert smtp["instances"][0]["detail"] == {"port": 2525}


# The request list.


def test_requests_are_listed_newest_first_with_every_field(
    client: FlaskClient, auth: dict[str, str], acme: dict[str, int]
) -> None:
    items = get_ok(client, "/api/requests", auth)["items"]

    assert [i["number"] for i in items] == numbers(*reversed(acme.values()))
    gus = items[0]
    assert gus == {
        "number": format_request_number(acme["gus_ack"]),
        "customer": "Globex",
        "contact": {"name": "Gus Grace", "email": "gus@globex.example", "phone": "+14155550101"},
        "channel": "email",
        "severity": 3,
        "initial_severity": 3,
        "status": "acknowledged",
        "subject": "Reports are slow",
        "description": "",
        "created_at": "2026-03-02T09:04:00+00:00",
        "response_due_at": "2026-03-05T09:04:00+00:00",
        "acknowledged_at": "2026-03-02T09:00:00+00:00",
        # Acknowledged, but nobody responded: the goal passed long ago.
        "goal": {"state": "breached", "met_at": None},
        "assignee": None,
    }
    assert items[1]["acknowledged_at"] is None


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("status=closed", ["bob_closed"]),
        ("status=new", ["bob_phone", "ada_sev1", "ada_new"]),
        ("severity=1", ["ada_sev1"]),
        ("channel=phone", ["bob_phone"]),
        ("customer=Globex", ["gus_ack"]),
        ("customer=Acme%20Corp&status=new&channel=email", ["ada_sev1", "ada_new"]),
        ("contact=bob@acme.example", ["bob_closed", "bob_phone"]),
        ("contact=BOB@Acme.Example", ["bob_closed", "bob_phone"]),
        ("customer=Nobody%20Inc", []),
        ("contact=nobody@acme.example", []),
        # a part of a name or an address, in any case
        ("customer=acme", ["bob_closed", "bob_phone", "ada_sev1", "ada_new"]),
        ("customer=LOBE", ["gus_ack"]),
        ("contact=babbage", ["bob_closed", "bob_phone"]),
        ("contact=bob@", ["bob_closed", "bob_phone"]),
        ("contact=ACME.example&severity=1", ["ada_sev1"]),
        ("contact=globex.EX", ["gus_ack"]),
        ("customer=acme&contact=gus", []),
        ("customer=%25", []),  # LIKE's wildcards are taken literally
        ("contact=_", []),
        (
            "status=&severity=&channel=",
            ["gus_ack", "bob_closed", "bob_phone", "ada_sev1", "ada_new"],
        ),
    ],
)
def test_request_filters(
    client: FlaskClient, auth: dict[str, str], acme: dict[str, int], query: str, expected: list[str]
) -> None:
    assert listed(client, auth, query) == numbers(*(acme[name] for name in expected))


@pytest.mark.parametrize(
    "query",
    [
        "severity=5",
        "severity=0",
        "severity=high",
        "status=open",
        "channel=fax",
        "limit=0",
        "limit=-1",
        "limit=ten",
        "limit=2.5",
        "cursor=!!!",
        "cursor=bm90LWEtbnVtYmVy",  # "not-a-number"
        f"cursor={encode_cursor(987654)}",  # no such row
        f"cursor={encode_cursor(1)}==",
    ],
)
def test_bad_request_filters_answer_422(
    client: FlaskClient, auth: dict[str, str], query: str
) -> None:
    response = client.get(f"/api/requests?{query}", headers=auth)

    assert response.status_code == 422
    assert response.json is not None
    error = response.json["error"]
    assert error["code"] == "invalid_parameter"
    assert query.split("=", maxsplit=1)[0] in error["message"]


def test_paging_walks_every_request_exactly_once(
    client: FlaskClient, auth: dict[str, str], db: Database
) -> None:
    with db.transaction() as s:
        contact = add_contact(s, add_customer(s, "Acme Corp"), "Ada", "ada@acme.example")
        # Times out of step with the ids, and shared by several rows, as real data may be.
        made = [
            add_request(s, contact, created_at=NOW - dt.timedelta(minutes=(i * 7) % 13))
            for i in range(25)
        ]
        expected = [
            sr.number for sr in sorted(made, key=lambda sr: (sr.created_at, sr.id), reverse=True)
        ]

    pages, cursor = [], None
    while True:
        query = "limit=10" + (f"&cursor={cursor}" if cursor else "")
        body = get_ok(client, f"/api/requests?{query}", auth)
        pages.append([item["number"] for item in body["items"]])
        cursor = body["next"]
        if cursor is None:
            break

    assert [len(page) for page in pages] == [10, 10, 5]
    assert [number for page in pages for number in page] == expected


def test_paging_keeps_the_filters(
    client: FlaskClient, auth: dict[str, str], acme: dict[str, int]
) -> None:
    first = get_ok(client, "/api/requests?status=new&limit=2", auth)
    second = get_ok(client, f"/api/requests?status=new&limit=2&cursor={first['next']}", auth)

    assert [i["number"] for i in first["items"]] == numbers(acme["bob_phone"], acme["ada_sev1"])
    assert [i["number"] for i in second["items"]] == numbers(acme["ada_new"])
    assert second["next"] is None


def test_a_large_limit_is_capped_not_refused(
    client: FlaskClient, auth: dict[str, str], acme: dict[str, int]
) -> None:
    assert len(listed(client, auth, "limit=100000")) == len(acme)


def test_the_list_costs_the_same_queries_for_many_rows(
    client: FlaskClient, auth: dict[str, str], db: Database
) -> None:
    def queries_for_list() -> int:
        statements: list[str] = []

        def count(*args: Any) -> None:
            statements.append(args[2])

        event.listen(db.engine, "before_cursor_execute", count)
        try:
            assert client.get("/api/requests", headers=auth).status_code == 200
        finally:
            event.remove(db.engine, "before_cursor_execute", count)
        return len([s for s in statements if "service_requests" in s or "contact" in s])

    with db.transaction() as s:
        customer = add_customer(s, "Acme Corp")
        add_request(s, add_contact(s, customer, "Ada", "ada@acme.example"))
    few = queries_for_list()
    with db.transaction() as s:
        customer = add_customer(s, "Globex")
        for n in range(20):
            add_request(s, add_contact(s, customer, f"C{n}", f"c{n}@globex.example"))
    many = queries_for_list()

    assert few == many == 2  # the page itself, then the contacts' addresses in one go


# A single request.


def test_a_single_request_comes_with_its_events(
    client: FlaskClient, auth: dict[str, str], db: Database, acme: dict[str, int]
) -> None:
    with db.transaction() as s:
        sr_id = acme["ada_sev1"]
        s.add(RequestEvent(request_id=sr_id, type="created", at=NOW, detail={"via": "email"}))
        later = dt.datetime(2026, 3, 2, 12, 0, tzinfo=dt.timezone(dt.timedelta(hours=2)))
        s.add(RequestEvent(request_id=sr_id, type="acknowledged", at=later, detail={}))

    response = client.get(f"/api/requests/{format_request_number(sr_id)}", headers=auth)

    assert response.status_code == 200
    body = response.json
    assert body is not None
    assert body["number"] == format_request_number(sr_id)
    assert body["severity"] == 1
    assert body["contact"]["email"] == "ada@acme.example"
    assert body["events"] == [
        {"type": "created", "at": "2026-03-02T09:00:00+00:00", "detail": {"via": "email"}},
        {"type": "acknowledged", "at": "2026-03-02T10:00:00+00:00", "detail": {}},
    ]


def test_the_list_leaves_events_out(
    client: FlaskClient, auth: dict[str, str], acme: dict[str, int]
) -> None:
    items = get_ok(client, "/api/requests", auth)["items"]

    assert all("events" not in item for item in items)


@pytest.mark.parametrize(
    "number", ["SR-999999", "SR-12", "nonsense", "SR-12345x", "SR-99999999999999999999999"]
)
def test_unknown_or_malformed_numbers_answer_json_404(
    client: FlaskClient, auth: dict[str, str], acme: dict[str, int], number: str
) -> None:
    response = client.get(f"/api/requests/{number}", headers=auth)

    assert response.status_code == 404
    assert response.json is not None
    assert response.json["error"]["code"] == "not_found"


# The intake log.


@pytest.fixture
def intake_log(db: Database, acme: dict[str, int]) -> dict[str, int]:
    minute = dt.timedelta(minutes=1)
    with db.transaction() as s:
        rows = {
            "accepted": add_intake(
                s, "k1", outcome="accepted", subject="Help", request_id=acme["ada_new"]
            ),
            "rejected": add_intake(
                s,
                "k2",
                outcome="rejected",
                reason="unknown_sender",
                sender="eve@evil.example",
                received_at=NOW + minute,
                raw=b"x" * 1000,
            ),
            "call": add_intake(
                s,
                "k3",
                outcome="accepted",
                channel="phone",
                sender="+14155550101",
                received_at=NOW + 2 * minute,
            ),
            "duplicate": add_intake(s, "k4", outcome="duplicate", received_at=NOW + 3 * minute),
        }
        return {name: row.id for name, row in rows.items()}


def test_the_intake_log_is_listed_newest_first(
    client: FlaskClient, auth: dict[str, str], acme: dict[str, int], intake_log: dict[str, int]
) -> None:
    body = get_ok(client, "/api/intake", auth)

    assert [i["id"] for i in body["items"]] == list(reversed(intake_log.values()))
    assert body["next"] is None
    assert body["items"][-1] == {
        "id": intake_log["accepted"],
        "channel": "email",
        "sender": "ada@acme.example",
        "subject": "Help",
        "outcome": "accepted",
        "reason": None,
        "received_at": "2026-03-02T09:00:00+00:00",
        "request": format_request_number(acme["ada_new"]),
    }


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("outcome=rejected", ["rejected"]),
        ("outcome=accepted", ["call", "accepted"]),
        ("channel=phone", ["call"]),
        ("outcome=accepted&channel=email", ["accepted"]),
        ("outcome=quarantined", []),
    ],
)
def test_intake_filters(
    client: FlaskClient,
    auth: dict[str, str],
    intake_log: dict[str, int],
    query: str,
    expected: list[str],
) -> None:
    items = get_ok(client, f"/api/intake?{query}", auth)["items"]

    assert [i["id"] for i in items] == [intake_log[name] for name in expected]


def test_a_rejection_shows_its_reason_and_no_request(
    client: FlaskClient, auth: dict[str, str], intake_log: dict[str, int]
) -> None:
    (item,) = get_ok(client, "/api/intake?outcome=rejected", auth)["items"]

    assert item["reason"] == "unknown_sender"
    assert item["request"] is None
    assert "raw" not in item


def test_the_intake_log_pages(
    client: FlaskClient, auth: dict[str, str], intake_log: dict[str, int]
) -> None:
    first = get_ok(client, "/api/intake?limit=3", auth)
    second = get_ok(client, f"/api/intake?limit=3&cursor={first['next']}", auth)

    ids = [i["id"] for i in first["items"] + second["items"]]
    assert ids == list(reversed(intake_log.values()))
    assert second["next"] is None


@pytest.mark.parametrize("query", ["outcome=lost", "channel=pigeon", "limit=none", "cursor=@"])
def test_bad_intake_filters_answer_422(
    client: FlaskClient, auth: dict[str, str], query: str
) -> None:
    response = client.get(f"/api/intake?{query}", headers=auth)

    assert response.status_code == 422
    assert response.json is not None
    assert response.json["error"]["code"] == "invalid_parameter"


# The app factory, and the voice routes while Twilio is not configured.


def test_create_app_keeps_its_services(app: Flask, settings: Settings, db: Database) -> None:
    state = services(app)

    assert state.settings is settings
    assert state.db is db


def test_create_app_connects_to_the_configured_redis(
    settings: Settings, db: Database, redis_url: str
) -> None:
    app = create_app(settings.replace(redis_url=redis_url), db=db)

    assert services(app).redis.ping()


@pytest.mark.parametrize("route", ["incoming", "status", "fallback"])
def test_voice_answers_503_while_twilio_is_not_configured(client: FlaskClient, route: str) -> None:
    response = client.post(f"/voice/{route}", data={"CallSid": "CA123"})

    assert response.status_code == 503
    assert response.get_data(as_text=True).strip() == NOT_CONFIGURED
