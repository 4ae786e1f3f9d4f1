"""The staff pages through Flask's test client, on SQLite and PostgreSQL with a real Redis:
sign-in and its lockout, the guard on every staff route, the dashboard, the request list and a
request's page with its actions, and the headers that keep injected markup from running."""

from __future__ import annotations

import datetime as dt
import re

import pytest
import redis
from flask import Flask
from flask.testing import FlaskClient
from rq import Queue, SimpleWorker
from sqlalchemy import select

from intake.accounts import add_staff
from intake.db import Database
from intake.health import record_heartbeat
from intake.models import RequestEvent, ServiceRequest, StaffUser, utcnow
from intake.settings import Settings
from intake.staff_login import MAX_FAILURES
from tests.web_support import PASSWORD, add_contact, add_request, csrf_token, sign_in
from web import create_app

STAFF_BLUEPRINTS = ("pages", "request_actions", "intake_pages")
XSS = (
    '<script>alert("x")</script><img src=x onerror="alert(1)"><a href="javascript:alert(2)">go</a>'
)
ESCAPED_XSS = "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;&lt;img src=x onerror="


@pytest.fixture
def app(settings: Settings, db: Database, redis_client: redis.Redis) -> Flask:
    add_staff(db, "alice", PASSWORD)
    return create_app(settings.replace(secret_key="pages-secret"), db=db, redis_client=redis_client)


@pytest.fixture
def anonymous(app: Flask) -> FlaskClient:
    return app.test_client()


@pytest.fixture
def staff(app: Flask) -> FlaskClient:
    client = app.test_client()
    assert sign_in(client, "alice").status_code == 302
    return client


@pytest.fixture
def ada(db: Database) -> int:
    return add_contact(db, "ada@acme.example")


def text(response: object) -> str:
    return response.get_data(as_text=True)  # type: ignore[attr-defined, no-any-return]


# Signing in.


def test_signing_in_leads_to_the_page_asked_for(anonymous: FlaskClient) -> None:
    first = anonymous.get("/requests?severity=1")
    assert first.status_code == 302
    assert first.headers["Location"].startswith("/login?next=")

    token = csrf_token(anonymous, "/login")
    answer = anonymous.post(
        "/login?next=/requests?severity%3D1",
        data={"csrf_token": token, "username": "alice", "password": PASSWORD},
    )

    assert answer.status_code == 302
    assert answer.headers["Location"] == "/requests?severity=1"
    assert anonymous.get("/requests?severity=1").status_code == 200


@pytest.mark.parametrize("target", ["//evil.example/", "https://evil.example/", "/\\evil.example"])
def test_sign_in_never_leads_off_site(anonymous: FlaskClient, target: str) -> None:
    token = csrf_token(anonymous, "/login")
    answer = anonymous.post(
        "/login",
        query_string={"next": target},
        data={"csrf_token": token, "username": "alice", "password": PASSWORD},
    )
    assert answer.headers["Location"] == "/"


def test_the_sign_in_form_needs_its_csrf_token(anonymous: FlaskClient) -> None:
    answer = anonymous.post("/login", data={"username": "alice", "password": PASSWORD})
    assert answer.status_code == 400
    assert "Reload the page" in text(answer)
    assert anonymous.get("/").status_code == 302


def test_a_wrong_password_is_refused_and_five_lock_the_login(
    anonymous: FlaskClient, db: Database
) -> None:
    first = sign_in(anonymous, "alice", "not the password")
    assert first.status_code == 401
    assert "Wrong username or password." in text(first)
    for _ in range(MAX_FAILURES - 2):
        sign_in(anonymous, "alice", "not the password")

    locked = sign_in(anonymous, "alice", "not the password")
    right_but_locked = sign_in(anonymous, "alice", PASSWORD)

    assert "locked for 15 minutes" in text(locked)
    assert right_but_locked.status_code == 401
    assert "locked" in text(right_but_locked)
    with db.transaction() as s:
        user = s.scalars(select(StaffUser)).one()
        user.locked_until = utcnow() - dt.timedelta(seconds=1)
    assert sign_in(anonymous, "alice", PASSWORD).status_code == 302


def test_the_session_cookie_is_signed_http_only_and_same_site(anonymous: FlaskClient) -> None:
    answer = sign_in(anonymous, "alice")
    cookie = answer.headers["Set-Cookie"]
    assert cookie.startswith("intake_session=")
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie
    assert "alice" not in cookie  # only the signed id


def test_signing_out_ends_the_session(staff: FlaskClient) -> None:
    token = csrf_token(staff, "/")
    assert staff.post("/logout", data={"csrf_token": token}).status_code == 302
    assert staff.get("/").status_code == 302


# Every staff route refuses an anonymous visitor.


def _staff_routes(app: Flask) -> list[tuple[str, str]]:
    routes = []
    for rule in app.url_map.iter_rules():
        if rule.endpoint.split(".")[0] not in STAFF_BLUEPRINTS:
            continue
        path = re.sub(r"<int:\w+>", "1", rule.rule.replace("<number>", "SR-000001"))
        path = re.sub(r"<any\((\w+)[^>]*>", r"\1", path)  # the first of the choices
        routes += [
            (method, path) for method in sorted(rule.methods or ()) if method in ("GET", "POST")
        ]
    return routes


def test_every_staff_route_refuses_an_anonymous_visitor(
    app: Flask, anonymous: FlaskClient, ada: int, db: Database
) -> None:
    sr = add_request(db, ada, subject="Secret subject")
    routes = _staff_routes(app)
    assert len(routes) >= 12  # dashboard, lists, request page, actions, quarantine ...
    token = csrf_token(anonymous, "/login")  # a valid token: only the sign-in guard is left

    for method, path in routes:
        answer = anonymous.open(path, method=method, data={"csrf_token": token})
        assert answer.status_code == 302, (method, path)
        assert answer.headers["Location"].startswith("/login"), (method, path)
        assert "Secret subject" not in text(answer)
    with db.sessions() as s:
        assert s.get_one(ServiceRequest, sr.id).status == "new"  # no action ran


@pytest.mark.parametrize("path", ["/api/requests", "/api/intake", "/metrics"])
def test_the_api_and_metrics_answer_401_to_an_anonymous_visitor(
    anonymous: FlaskClient, path: str
) -> None:
    answer = anonymous.get(path)
    assert answer.status_code == 401
    assert answer.json is not None and answer.json["error"]["code"] == "unauthorized"


# The dashboard.


def test_the_dashboard_shows_doors_queue_and_urgent_requests(
    staff: FlaskClient, db: Database, ada: int, redis_client: redis.Redis, settings: Settings
) -> None:
    now = utcnow()
    late = add_request(db, ada, severity=1, subject="Payroll down", response_due_at=now)
    record_heartbeat(redis_client, "smtp", "mx1:2525", {"listening": "mx1:2525"})
    failing = Queue(settings.queue_name, connection=redis_client)
    failing.enqueue("builtins.divmod", 1, 0)
    SimpleWorker([failing], connection=redis_client).work(burst=True)

    page = text(staff.get("/"))

    assert late.number in page and "Payroll down" in page
    assert "overdue by" in page
    assert "mx1:2525" in page
    assert "ZeroDivisionError" in page
    assert re.search(r"<dt>failed</dt><dd><span class=\"badge breached\">1</span>", page)


def test_the_dashboard_shows_redis_down_instead_of_failing(
    settings: Settings, db: Database
) -> None:
    add_staff(db, "alice", PASSWORD)
    closed = redis.Redis(port=1, socket_connect_timeout=1)
    client = create_app(settings.replace(secret_key="k"), db=db, redis_client=closed).test_client()
    sign_in(client, "alice")

    page = client.get("/")

    assert page.status_code == 200
    assert "Redis down" in text(page)
    closed.close()


# The request list.


def test_the_request_list_filters_and_pages(staff: FlaskClient, db: Database, ada: int) -> None:
    gus = add_contact(db, "gus@globex.example", customer="Globex", name="Gus")
    start = utcnow() - dt.timedelta(hours=3)
    made = [
        add_request(
            db,
            ada if i % 2 else gus,
            severity=1 + i % 4,
            subject=f"Problem number {i}",
            created_at=start + dt.timedelta(minutes=i),
        )
        for i in range(60)
    ]

    def numbers(query: str) -> list[str]:
        return re.findall(r">(SR-\d{6})</a>", text(staff.get(f"/requests?{query}")))

    first = numbers("")
    assert first == [sr.number for sr in reversed(made)][:50]
    older = re.search(r'href="(/requests\?cursor=[^"]+)"', text(staff.get("/requests")))
    assert older is not None
    assert len(re.findall(r">(SR-\d{6})</a>", text(staff.get(older.group(1))))) == 10
    assert numbers("severity=1&customer=Globex") == [
        sr.number for sr in reversed(made) if sr.severity == 1 and sr.contact_id == gus
    ]
    assert numbers("q=number%2017") == [made[17].number]
    assert numbers(f"q={made[3].number}") == [made[3].number]
    assert numbers("q=ada@acme.example&severity=2") == [
        sr.number for sr in reversed(made) if sr.contact_id == ada and sr.severity == 2
    ]
    assert numbers("q=100%25") == []  # LIKE's wildcards are taken literally


# A request's page and its actions.


def test_a_request_page_shows_its_timeline_escaped(
    staff: FlaskClient, db: Database, ada: int
) -> None:
    sr = add_request(db, ada, subject=XSS, description=XSS)
    with db.transaction() as s:
        s.add(RequestEvent(request_id=sr.id, type="message", detail={"from": XSS, "text": XSS}))
        s.add(RequestEvent(request_id=sr.id, type="voicemail", detail={"recording_url": XSS}))

    page = text(staff.get(f"/requests/{sr.number}"))

    assert "<script>alert" not in page and 'onerror="alert' not in page
    assert 'href="javascript:' not in page
    assert page.count(ESCAPED_XSS) >= 4
    assert "Request opened" in page and "Voicemail" in page


def test_an_unknown_request_page_is_404(staff: FlaskClient) -> None:
    assert staff.get("/requests/SR-999999").status_code == 404
    assert staff.get("/requests/nonsense").status_code == 404


def _post(client: FlaskClient, path: str, **fields: str) -> object:
    token = csrf_token(client, path.rsplit("/", 1)[0])
    return client.post(path, data={"csrf_token": token, **fields})


def test_a_severity_change_needs_a_justification(
    staff: FlaskClient, db: Database, ada: int
) -> None:
    sr = add_request(db, ada, severity=3)

    refused = _post(staff, f"/requests/{sr.number}/severity", **{"sev-severity": "1"})
    done = _post(
        staff,
        f"/requests/{sr.number}/severity",
        **{"sev-severity": "1", "sev-justification": "Production stopped"},
    )

    assert refused.status_code == 422  # type: ignore[attr-defined]
    assert "Say why the severity changes" in text(refused)
    assert done.status_code == 302  # type: ignore[attr-defined]
    page = text(staff.get(f"/requests/{sr.number}"))
    assert "Severity changed to 1" in page
    assert "Severity changed: 3 → 1" in page and "Production stopped" in page
    with db.sessions() as s:
        changed = s.get_one(ServiceRequest, sr.id)
        assert changed.severity == 1
        assert changed.response_due_at - utcnow() < dt.timedelta(hours=1)


def test_escalate_assign_and_resolve_from_the_page(
    staff: FlaskClient, db: Database, ada: int
) -> None:
    sr = add_request(db, ada)
    path = f"/requests/{sr.number}"

    _post(staff, f"{path}/escalate", **{"esc-reason": "Third outage this week"})
    _post(staff, f"{path}/assign", **{"asg-assignee": "alice"})
    _post(staff, f"{path}/resolve", **{"res-note": "Disk replaced"})
    again = _post(staff, f"{path}/escalate", **{"esc-reason": "Still?"})

    with db.sessions() as s:
        kinds = s.scalars(
            select(RequestEvent.type)
            .where(RequestEvent.request_id == sr.id)
            .order_by(RequestEvent.id)
        ).all()
        assert s.get_one(ServiceRequest, sr.id).status == "resolved"
    assert kinds == ["created", "escalated", "assigned", "resolved", "escalated"]
    assert again.status_code == 302  # type: ignore[attr-defined]
    page = text(staff.get(path))
    assert "Third outage this week" in page and "Disk replaced" in page


def test_an_action_on_a_closed_request_says_why(staff: FlaskClient, db: Database, ada: int) -> None:
    sr = add_request(db, ada, status="closed")
    token = csrf_token(staff, "/")
    answer = staff.post(
        f"/requests/{sr.number}/resolve", data={"csrf_token": token}, follow_redirects=True
    )
    assert f"{sr.number} is closed, not open." in text(answer)


def test_actions_need_the_csrf_token(staff: FlaskClient, db: Database, ada: int) -> None:
    sr = add_request(db, ada)
    answer = staff.post(f"/requests/{sr.number}/resolve", data={"res-note": "x"})
    assert answer.status_code == 400
    with db.sessions() as s:
        assert s.get_one(ServiceRequest, sr.id).status == "new"


# Headers that keep injected markup from running.


@pytest.mark.parametrize("path", ["/", "/requests", "/intake", "/quarantine", "/login"])
def test_pages_forbid_inline_script_and_carry_none(staff: FlaskClient, path: str) -> None:
    answer = staff.get(path)
    policy = answer.headers["Content-Security-Policy"]
    assert "script-src 'self'" in policy and "unsafe-inline" not in policy
    assert answer.headers["X-Frame-Options"] == "DENY"
    assert answer.headers["Cache-Control"] == "no-store"
    scripts = re.findall(r"<script[^>]*>", text(answer))
    assert scripts == ['<script src="/static/app.js" defer>']
    assert re.findall(r"<[^>]*\son[a-z]+\s*=", text(answer)) == []  # no event handlers


def test_the_static_script_and_stylesheet_are_served(anonymous: FlaskClient) -> None:
    for path in ("/static/app.js", "/static/app.css"):
        answer = anonymous.get(path)
        assert answer.status_code == 200
        assert "no-store" not in answer.headers.get("Cache-Control", "")  # browsers may keep them
