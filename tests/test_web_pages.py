"""The staff pages through Flask's test client, on SQLite and PostgreSQL with a real Redis:
sign-in and its lockout, the guard on every staff route, the dashboard, the request list and a
request's page with its actions, and the headers that keep injected markup from running."""

from __future__ import annotations

import base64
import datetime as dt
import re
from collections.abc import Iterator
from typing import Any

import pytest
import redis
from flask import Flask
from flask.testing import FlaskClient
from rq import Queue, Retry, SimpleWorker
from sqlalchemy import Select, select
from sqlalchemy import text as sql_text
from sqlalchemy.orm import Session

from intake.accounts.credentials import add_staff
from intake.accounts.sign_in import MAX_FAILURES
from intake.jobs.jobs import enqueue_intake, runtime
from intake.jobs.queue import make_queue
from intake.jobs.runtime import build_runtime
from intake.jobs.worker import run_worker
from intake.ops.health import record_heartbeat
from intake.settings import Settings
from intake.store.db import Database
from intake.store.models import IntakeRecord, RequestEvent, ServiceRequest, StaffUser, utcnow
from tests.conftest import empty_postgres
from tests.helpers import explain, free_port, selects_sent
from tests.twilio_driver import ACCOUNT_SID, AUTH_TOKEN, MessagesApi
from tests.web_support import PASSWORD, add_contact, add_intake, add_request, csrf_token, sign_in
from web import create_app, search
from web.login import FAILED

STAFF_BLUEPRINTS = ("pages", "request_actions", "intake_pages")
XSS = (
    '<script>alert("x")</script><img src=x onerror="alert(1)"><a href="javascript:alert(2)">go</a>'
)
ESCAPED_XSS = "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;&lt;img src=x onerror="


@pytest.fixture(autouse=True)
def fresh_word_memory(monkeypatch: pytest.MonkeyPatch) -> None:
    """Each test's words are looked at afresh: the tests' databases share one URL, and what the
    search remembers of a word (whether it is common) would carry over from test to test."""
    monkeypatch.setattr(search, "_commonness", {})


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
    assert FAILED in text(first)
    for _ in range(MAX_FAILURES - 2):
        sign_in(anonymous, "alice", "not the password")

    locked = sign_in(anonymous, "alice", "not the password")
    right_but_locked = sign_in(anonymous, "alice", PASSWORD)

    assert locked.status_code == 401 and right_but_locked.status_code == 401
    # The same words as for a wrong password: the answer does not tell the login is locked.
    assert FAILED in text(locked) and FAILED in text(right_but_locked)
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
    assert re.search(
        r'<dt>failed</dt><dd><a href="/jobs#failed"><span class="badge breached">1</span></a>', page
    )


def test_the_dashboard_s_queue_figures_link_to_the_jobs_they_count(
    staff: FlaskClient, redis_client: redis.Redis, settings: Settings
) -> None:
    queue = Queue(settings.queue_name, connection=redis_client)
    for n in range(3):
        queue.enqueue("builtins.divmod", 1, 0, retry=Retry(max=2, interval=600), job_id=f"x-{n}")
    SimpleWorker([queue], connection=redis_client).work(burst=True)
    queue.enqueue("builtins.divmod", 4, 2, job_id="waiting")

    page = text(staff.get("/"))

    assert '<dt>retrying</dt><dd><a href="/jobs#retrying">3</a></dd>' in page
    assert '<dt>queued</dt><dd><a href="/jobs#queued">1</a></dd>' in page
    assert '<dt>running</dt><dd><a href="/jobs#running">0</a></dd>' in page
    jobs = text(staff.get("/jobs"))
    retrying = jobs[jobs.index('id="retrying"') : jobs.index('id="failed"')]
    assert [f"x-{n}" for n in (2, 1, 0)] == re.findall(r"x-\d", retrying)
    assert "waiting" in jobs[jobs.index('id="queued"') : jobs.index('id="running"')]


@pytest.mark.filterwarnings("ignore:fully NULL primary key identity")  # the missing contact
def test_the_jobs_page_says_why_an_intake_job_is_retrying(
    staff: FlaskClient, db: Database, redis_client: redis.Redis, settings: Settings
) -> None:
    # An accepted row whose contact is gone: finishing it fails, and RQ schedules a retry.
    intake_id = add_intake(db, "k", outcome="accepted", state="pending", contact_id=None)
    rt = build_runtime(settings.replace(secret_key="k"))
    runtime.install(rt)
    enqueue_intake(make_queue(settings, redis_client), intake_id)
    run_worker(rt, redis_client, burst=True, cron=False)
    rt.db.dispose()

    jobs = text(staff.get("/jobs"))

    retrying = jobs[jobs.index('id="retrying"') : jobs.index('id="failed"')]
    assert f'href="/intake/{intake_id}">intake-{intake_id}</a>' in retrying
    assert "NoResultFound" in retrying or "InvalidRequestError" in retrying
    assert '<td class="num">7</td>' in retrying  # RETRY allows 8 attempts after the first
    with db.sessions() as session:
        row = session.get_one(IntakeRecord, intake_id)
        assert row.attempts == 1 and row.last_error in retrying


def test_the_jobs_page_says_when_redis_is_down(settings: Settings, db: Database) -> None:
    add_staff(db, "alice", PASSWORD)
    closed = redis.Redis(host="127.0.0.1", port=free_port(), socket_connect_timeout=0.2)
    client = create_app(settings.replace(secret_key="k"), db=db, redis_client=closed).test_client()
    sign_in(client, "alice")

    page = client.get("/jobs")

    assert page.status_code == 200 and "Redis does not answer" in text(page)


def test_one_acknowledgment_is_one_ack(staff: FlaskClient, db: Database, ada: int) -> None:
    now = utcnow()
    add_request(db, ada, severity=2, created_at=now - dt.timedelta(minutes=5), acknowledged_at=now)

    page = text(staff.get("/"))

    assert ">1 ack</text>" in page and "1 acks" not in page


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
            description="See the subject.",
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


@pytest.mark.parametrize(
    ("few_matches", "common"),
    [(search.FEW_MATCHES, search.COMMON), (0, search.COMMON), (search.FEW_MATCHES, 1)],
    ids=["by-key", "row-by-row", "common-among-recent"],
)
def test_text_search_reads_subjects_bodies_and_messages_in_any_case(
    staff: FlaskClient,
    db: Database,
    ada: int,
    few_matches: int,
    common: int,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Every way PostgreSQL answers: the matches named by key (few), or the requests tested
    newest first (many: here every match counts as many; or common: one match among the
    newest requests makes a word common). SQLite has one way."""
    monkeypatch.setattr(search, "FEW_MATCHES", few_matches)
    monkeypatch.setattr(search, "COMMON", common)
    gus = add_contact(db, "gus@globex.example", customer="Globex Corporation", name="Gus Grace")
    export = add_request(db, ada, subject="Exports fail", description="It says error 17.")
    login = add_request(db, gus, subject="Login slow", description="Since Monday.")
    with db.transaction() as s:
        message = {"subject": "Re: Login slow", "full_text": "Now the Billing module times out."}
        s.add(RequestEvent(request_id=login.id, type="message", detail=message))
        s.add(RequestEvent(request_id=export.id, type="note", detail={"text": "billing"}))

    def numbers(query: str) -> list[str]:
        return re.findall(r">(SR-\d{6})</a>", text(staff.get(f"/requests?{query}")))

    assert numbers("q=ERROR%2017") == [export.number]  # in the body, not the subject
    assert numbers("q=billing%20times") == [login.number]  # in a follow-up message
    assert numbers("q=expor") == [export.number]  # the start of a word
    assert numbers("q=login%20error") == []  # every word must be found
    assert numbers("q=%3F%21") == []  # no word at all
    assert numbers("customer=globex%20CORP") == [login.number]
    assert numbers("contact=grace") == [login.number]
    assert numbers("q=@ACME.example") == [export.number]  # a part of the contact's address


def test_the_intake_log_finds_a_part_of_an_address(staff: FlaskClient, db: Database) -> None:
    add_intake(db, "a", sender="ada@acme.example", subject="Held message")
    add_intake(db, "b", sender="bob@globex.example", subject="Another one")

    def senders(query: str) -> list[str]:
        page = text(staff.get(f"/intake?{query}"))
        return sorted(set(re.findall(r"[a-z]+@[a-z]+\.example", page)))

    assert senders("q=acme.exam") == ["ada@acme.example"]
    assert senders("q=@GLOBEX") == ["bob@globex.example"]
    assert senders("q=bob") == ["bob@globex.example"]
    assert senders("q=held") == ["ada@acme.example"]  # words of the subject still count


@pytest.mark.postgres
def test_postgresql_answers_each_search_from_its_index(postgres_url: str) -> None:
    """The conditions are written with the indexes' own expressions: with sequential scans
    priced out, each plan names its index (the bound parameters as the app sends them)."""
    statements = {
        "ix_customers_name_trgm": lambda _: search.customer_condition("acme"),
        "ix_contact_emails_address_trgm": lambda _: search.contact_condition("ada@acme"),
        "ix_contacts_name_trgm": lambda _: search.contact_condition("lovelace"),
    }
    empty_postgres(postgres_url)  # the run's database: other tests wrote to it before
    database = Database(postgres_url)
    try:
        _fill_with_messages_and_other_events(database)
        with database.sessions() as session:
            session.execute(sql_text("SET enable_seqscan = off"))
            for index, condition in statements.items():
                query = select(ServiceRequest.id).where(condition(session))
                assert index in _plan(session, query), index
            sender = select(IntakeRecord.id).where(search.contains(IntakeRecord.sender, "acme"))
            assert "ix_intake_log_sender_trgm" in _plan(session, sender)
            # Words not common among the newest requests are counted from their indexes
            # before the page is asked for.
            with selects_sent(database) as sent:
                search.words_condition(session, "error 17")
            (recent, _), (probe, parameters) = sent
            assert "LIMIT" in recent, recent
            plan = explain(session.connection(), probe, parameters)
            assert "ix_service_requests_text" in plan, plan
            assert "ix_request_events_message_text" in plan, plan
    finally:
        database.dispose()


@pytest.mark.postgres
def test_a_word_common_among_the_newest_requests_is_not_counted_from_the_index(
    postgres_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The index's scan reads every match of a word (an eighth of a million requests: 100 ms),
    so a word that fills a page among the newest requests is looked for newest first at once:
    one statement, which reads no words' index, and the page holds the right requests."""
    monkeypatch.setattr(search, "COMMON", 3)
    empty_postgres(postgres_url)
    database = Database(postgres_url)
    try:
        contact_id = add_contact(database, "ada@acme.example")
        start = utcnow() - dt.timedelta(days=1)
        made = [
            add_request(
                database,
                contact_id,
                subject="Exports stutter" if i % 2 else "Login slow",
                created_at=start + dt.timedelta(minutes=i),
            )
            for i in range(8)
        ]
        with database.sessions() as session:
            with selects_sent(database) as sent:
                condition = search.words_condition(session, "stutter")
            ((recent, parameters),) = sent
            plan = explain(session.connection(), recent, parameters)
            assert "ix_service_requests_text" not in plan, plan
            found = session.scalars(select(ServiceRequest.id).where(condition)).all()
            assert sorted(found) == [sr.id for sr in made if "stutter" in sr.subject]
            # Asked again (the next page): remembered, not looked at again, for a while.
            with selects_sent(database) as sent:
                search.words_condition(session, "stutter")
            assert sent == []
            monkeypatch.setattr(search, "COMMON_MEMORY", 0.0)
            with selects_sent(database) as sent:
                search.words_condition(session, "stutter")
            assert len(sent) == 1
            # Fewer matches than COMMON among the newest: counted from the index as before.
            with selects_sent(database) as sent:
                search.words_condition(session, "billing")
            assert len(sent) == 2
    finally:
        database.dispose()


def _fill_with_messages_and_other_events(database: Database) -> None:
    """A desk's mix: many messages among many events of other kinds, with the statistics the
    planner reads. On empty tables every plan costs next to nothing and the planner may take any
    index that names the event type; on real tables only the words' index narrows the messages."""
    contact_id = add_contact(database, "ada@acme.example")
    request = add_request(database, contact_id)
    with database.transaction() as session:
        session.execute(
            sql_text(
                "INSERT INTO request_events (request_id, type, at, detail)"
                " SELECT :request, CASE WHEN g % 3 = 0 THEN 'message' ELSE 'acknowledged' END,"
                " now(), jsonb_build_object('subject', 'Re: case ' || g,"
                " 'full_text', 'Words ' || md5(g::text) || ' and more ' || md5((g + 1)::text))"
                " FROM generate_series(1, 6000) AS g"
            ),
            {"request": request.id},
        )
    with database.transaction() as session:
        session.execute(sql_text("ANALYZE request_events"))


def _plan(session: Session, query: Select[Any]) -> str:
    compiled = query.compile(dialect=session.get_bind().dialect)
    rows = session.connection().exec_driver_sql(f"EXPLAIN {compiled}", compiled.params)
    return "\n".join(row[0] for row in rows)


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


RECORDING_SID = "RE" + "5" * 32
MP3 = b"ID3\x04\x00" + bytes(range(256)) * 8  # the bytes the player must get, unchanged


@pytest.fixture
def twilio_api() -> Iterator[MessagesApi]:
    server = MessagesApi().start()
    yield server
    server.stop()


@pytest.fixture
def twilio_staff(
    settings: Settings, db: Database, redis_client: redis.Redis, twilio_api: MessagesApi
) -> FlaskClient:
    """A signed-in staff client of an app whose Twilio account is the local Twilio server."""
    add_staff(db, "alice", PASSWORD)
    configured = settings.replace(
        secret_key="pages-secret",
        twilio_account_sid=ACCOUNT_SID,
        twilio_auth_token=AUTH_TOKEN,
        twilio_api_base=twilio_api.url,
    )
    client = create_app(configured, db=db, redis_client=redis_client).test_client()
    assert sign_in(client, "alice").status_code == 302
    return client


def _voicemail(db: Database, contact_id: int) -> tuple[ServiceRequest, int]:
    sr = add_request(db, contact_id, channel="phone", subject="Voicemail")
    url = f"https://api.twilio.com/2010-04-01/Accounts/{ACCOUNT_SID}/Recordings/{RECORDING_SID}"
    with db.transaction() as s:
        detail = {"recording_url": url, "recording_sid": RECORDING_SID, "duration_seconds": 12}
        event = RequestEvent(request_id=sr.id, type="voicemail", detail=detail)
        s.add(event)
        s.flush()
        return sr, event.id


def test_a_voicemail_plays_in_the_page_through_our_own_route(
    twilio_staff: FlaskClient, twilio_api: MessagesApi, db: Database, ada: int
) -> None:
    twilio_api.recordings[RECORDING_SID] = MP3
    sr, event_id = _voicemail(db, ada)

    page = twilio_staff.get(f"/requests/{sr.number}")
    html = text(page)
    src = f"/requests/{sr.number}/voicemail/{event_id}"
    assert f'<audio controls preload="none" src="{src}">' in html and "12 seconds" in html
    assert AUTH_TOKEN not in html and twilio_api.url not in html and "api.twilio.com" not in html
    assert "media-src 'self'" in page.headers["Content-Security-Policy"]
    played = twilio_staff.get(src)

    assert played.status_code == 200 and played.mimetype == "audio/mpeg"
    assert played.get_data() == MP3 and AUTH_TOKEN.encode() not in played.get_data()
    assert "no-store" in played.headers["Cache-Control"]
    (fetch,) = twilio_api.fetches
    assert fetch[0] == f"/2010-04-01/Accounts/{ACCOUNT_SID}/Recordings/{RECORDING_SID}.mp3"
    assert (
        base64.b64decode(fetch[1].removeprefix("Basic ")) == f"{ACCOUNT_SID}:{AUTH_TOKEN}".encode()
    )


def test_a_voicemail_is_for_signed_in_staff_only(
    twilio_staff: FlaskClient, twilio_api: MessagesApi, db: Database, ada: int
) -> None:
    twilio_api.recordings[RECORDING_SID] = MP3
    sr, event_id = _voicemail(db, ada)
    other = add_request(db, ada)
    anonymous = twilio_staff.application.test_client()

    refused = anonymous.get(f"/requests/{sr.number}/voicemail/{event_id}")
    elsewhere = twilio_staff.get(f"/requests/{other.number}/voicemail/{event_id}")

    assert refused.status_code == 302 and refused.headers["Location"].startswith("/login")
    assert elsewhere.status_code == 404  # the voicemail of another request
    assert twilio_api.fetches == []


def test_the_credentials_never_follow_twilio_s_redirect_to_another_host(
    twilio_staff: FlaskClient, twilio_api: MessagesApi, db: Database, ada: int
) -> None:
    storage = MessagesApi().start()
    storage.recordings[RECORDING_SID] = MP3
    twilio_api.redirect_media_to = storage.url
    sr, event_id = _voicemail(db, ada)
    try:
        played = twilio_staff.get(f"/requests/{sr.number}/voicemail/{event_id}")
    finally:
        storage.stop()

    assert played.status_code == 200 and played.get_data() == MP3
    assert [auth for _, auth in storage.fetches] == [""]
    assert twilio_api.fetches[0][1].startswith("Basic ")


def test_a_deleted_recording_says_so(
    twilio_staff: FlaskClient, twilio_api: MessagesApi, db: Database, ada: int
) -> None:
    sr, event_id = _voicemail(db, ada)  # the local Twilio has no such recording

    gone = twilio_staff.get(f"/requests/{sr.number}/voicemail/{event_id}")

    assert gone.status_code == 404 and "no longer has this recording" in text(gone)


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


def test_a_refused_message_kept_in_part_says_so(staff: FlaskClient, db: Database) -> None:
    kept = b"From: nobody@nowhere.example\r\nSubject: Huge\r\n\r\nThe start of a long body."
    intake_id = add_intake(
        db, "huge", outcome="rejected", reason="unknown_sender", raw=kept, size=20_000_000
    )
    page = text(staff.get(f"/intake/{intake_id}"))
    assert "20000000 bytes (kept: the first 72: the headers and the start of the body)" in page
    assert "The start of a long body." in page
    assert "the rest of this refused message was not kept" in page
