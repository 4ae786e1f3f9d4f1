"""The contacts' portal through Flask's test client against the real app, database and Redis:
sign-in links, logging a request through the pipeline, what each contact may see and do."""

from __future__ import annotations

import datetime as dt
import io
import re
from email import message_from_bytes
from typing import Any

import pytest
import redis
from flask.testing import FlaskClient
from rq import Queue
from sqlalchemy import select

from intake.accounts.credentials import add_staff
from intake.jobs.jobs import enqueue_intake, process_web_intake
from intake.pipeline.inbound import InboundMessage
from intake.pipeline.steps import record
from intake.settings import Settings
from intake.store.db import Database
from intake.store.models import (
    IntakeAttachment,
    IntakeRecord,
    OutboxMessage,
    PortalLink,
    RequestEvent,
    ServiceRequest,
)
from tests.helpers import add_contact
from tests.web_support import CSRF_FIELD, PASSWORD, add_event, add_request, csrf_token
from tests.web_support import sign_in as staff_sign_in
from web import create_app
from web.portal import sign_in

KEY = "portal-secret"
LINK = re.compile(r"/portal/sign-in/([A-Za-z0-9_-]+)")


@pytest.fixture
def client(settings: Settings, db: Database, redis_url: str) -> FlaskClient:
    app = create_app(
        settings.replace(secret_key=KEY), db=db, redis_client=redis.Redis.from_url(redis_url)
    )
    return app.test_client()


def ask_link(client: FlaskClient, address: str) -> Any:
    token = csrf_token(client, "/portal/sign-in")
    return client.post("/portal/sign-in", data={"csrf_token": token, "email": address})


def mailed_token(db: Database, address: str) -> str:
    """The token in the newest sign-in mail to ``address``, read from the outbox."""
    with db.sessions() as session:
        payload = session.scalars(
            select(OutboxMessage.payload)
            .where(OutboxMessage.recipient == address, OutboxMessage.purpose == "portal_sign_in")
            .order_by(OutboxMessage.id.desc())
        ).first()
    assert payload is not None, f"no sign-in mail to {address}"
    body = message_from_bytes(payload).get_payload(decode=True)
    assert isinstance(body, bytes)
    found = LINK.search(body.decode())
    assert found is not None
    return found.group(1)


def signed_in(client: FlaskClient, db: Database, address: str) -> FlaskClient:
    assert ask_link(client, address).status_code == 200
    answer = client.get(f"/portal/sign-in/{mailed_token(db, address)}")
    assert answer.status_code == 302 and answer.headers["Location"].endswith("/portal")
    return client


def new_request(client: FlaskClient, **fields: Any) -> Any:
    token = csrf_token(client, "/portal/requests/new")
    data = {"csrf_token": token, "severity": "3", "subject": "Exports fail", "description": "x"}
    return client.post("/portal/requests", data=data | fields, content_type="multipart/form-data")


def test_the_sign_in_page_answers_the_same_for_known_and_unknown_addresses(
    client: FlaskClient, db: Database
) -> None:
    add_contact(db, "ada@acme.example")
    known = ask_link(client, "ada@acme.example").get_data(as_text=True)
    unknown = ask_link(client, "eve@nowhere.example").get_data(as_text=True)

    def without(address: str, page: str) -> str:
        # The forms' CSRF token is signed with the second it was made in: two pages a moment
        # apart may carry different ones whatever the address.
        return CSRF_FIELD.sub("<input csrf", page.replace(address, "X"))

    assert without("ada@acme.example", known) == without("eve@nowhere.example", unknown)
    with db.sessions() as session:
        recipients = session.scalars(select(OutboxMessage.recipient)).all()
    assert recipients == ["ada@acme.example"]
    mail = message_from_bytes(_outbox_payload(db))
    assert mail["Auto-Submitted"] == "auto-generated"
    assert "http://127.0.0.1:8080/portal/sign-in/" in str(mail.get_payload())


def _outbox_payload(db: Database) -> bytes:
    with db.sessions() as session:
        return session.scalars(select(OutboxMessage.payload)).one()


def test_a_link_works_once_and_only_in_the_browser_that_asked(
    client: FlaskClient, db: Database, settings: Settings, redis_url: str
) -> None:
    add_contact(db, "ada@acme.example")
    ask_link(client, "ada@acme.example")
    token = mailed_token(db, "ada@acme.example")
    other = create_app(
        settings.replace(secret_key=KEY), db=db, redis_client=redis.Redis.from_url(redis_url)
    ).test_client()
    refused = other.get(f"/portal/sign-in/{token}")
    assert refused.status_code == 410 and "another browser" in refused.get_data(as_text=True)
    assert client.get(f"/portal/sign-in/{token}").status_code == 302  # not used up by the other
    assert client.get("/portal").status_code == 200
    again = client.get(f"/portal/sign-in/{token}")
    assert again.status_code == 410 and "used already" in again.get_data(as_text=True)


def test_an_expired_link_is_refused(client: FlaskClient, db: Database) -> None:
    add_contact(db, "ada@acme.example")
    ask_link(client, "ada@acme.example")
    token = mailed_token(db, "ada@acme.example")
    with db.transaction() as session:
        link = session.scalars(select(PortalLink)).one()
        link.expires_at = link.created_at - dt.timedelta(seconds=1)
    answer = client.get(f"/portal/sign-in/{token}")
    assert answer.status_code == 410 and "expired" in answer.get_data(as_text=True)
    assert client.get("/portal").status_code == 302


def test_link_requests_are_limited_per_address_and_per_client(
    client: FlaskClient, db: Database
) -> None:
    add_contact(db, "ada@acme.example")
    for _ in range(sign_in.LINKS_PER_ADDRESS + 2):
        assert ask_link(client, "ada@acme.example").status_code == 200
    for n in range(sign_in.LINKS_PER_CLIENT):
        ask_link(client, f"nobody{n}@nowhere.example")
    add_contact(db, "bob@acme.example", name="Bob")
    ask_link(client, "bob@acme.example")  # this client is over its limit now
    with db.sessions() as session:
        sent = session.scalars(select(OutboxMessage.recipient)).all()
    assert sent == ["ada@acme.example"] * sign_in.LINKS_PER_ADDRESS


def test_the_portal_needs_a_sign_in_and_sign_out_ends_it(client: FlaskClient, db: Database) -> None:
    assert client.get("/portal").headers["Location"].endswith("/portal/sign-in")
    add_contact(db, "ada@acme.example")
    signed_in(client, db, "ada@acme.example")
    cookie = client.get_cookie("intake_portal", path="/portal")
    assert cookie is not None and cookie.http_only
    assert client.get("/").headers["Location"].startswith("/login")  # not a staff session
    token = csrf_token(client, "/portal")
    assert client.post("/portal/sign-out", data={"csrf_token": token}).status_code == 302
    assert client.get("/portal").status_code == 302
    client.set_cookie("intake_portal", cookie.value, path="/portal")  # the old cookie is dead
    assert client.get("/portal").status_code == 302


def test_a_request_logged_in_the_portal_goes_through_the_pipeline(
    client: FlaskClient, db: Database
) -> None:
    add_contact(db, "ada@acme.example")
    signed_in(client, db, "ada@acme.example")
    files = {"attachments": (io.BytesIO(b"trace line 1\n"), "trace.log", "text/plain")}
    answer = new_request(client, severity="2", subject="[Sev4] Exports fail", **files)
    assert answer.status_code == 302
    with db.sessions() as session:
        (request,) = session.scalars(select(ServiceRequest)).all()
        (row,) = session.scalars(select(IntakeRecord)).all()
        (file,) = session.scalars(select(IntakeAttachment)).all()
        ack = session.scalars(
            select(OutboxMessage).where(OutboxMessage.purpose == "acknowledgment")
        ).one()
    assert answer.headers["Location"].endswith(f"/portal/requests/{request.number}")
    assert (request.channel, request.severity, request.subject) == ("web", 2, "[Sev4] Exports fail")
    assert (row.channel, row.outcome, row.state, row.request_id) == (
        "web",
        "accepted",
        "done",
        request.id,
    )
    assert (file.filename, file.data) == ("trace.log", b"trace line 1\n")
    assert ack.recipient == "ada@acme.example" and request.number in str(
        message_from_bytes(ack.payload)["Subject"]
    )
    page = client.get(answer.headers["Location"]).get_data(as_text=True)
    assert request.number in page and "trace.log" in page


def test_severity_1_needs_the_confirmation_of_24x7_availability(
    client: FlaskClient, db: Database
) -> None:
    add_contact(db, "ada@acme.example")
    signed_in(client, db, "ada@acme.example")
    refused = new_request(client, severity="1")
    assert refused.status_code == 422
    assert "around the clock (24x7)" in refused.get_data(as_text=True)
    assert new_request(client, severity="1", confirm_critical="y").status_code == 302
    with db.sessions() as session:
        assert session.scalars(select(ServiceRequest.severity)).all() == [1]


def test_another_customers_request_answers_404(client: FlaskClient, db: Database) -> None:
    add_contact(db, "ada@acme.example")
    stranger = add_contact(db, "zed@globex.example", customer="Globex", name="Zed")
    theirs = add_request(db, stranger, subject="Globex secret")
    signed_in(client, db, "ada@acme.example")
    assert client.get(f"/portal/requests/{theirs.number}").status_code == 404
    assert "Globex secret" not in client.get("/portal?status=all").get_data(as_text=True)
    token = csrf_token(client, "/portal")
    for action in ("information", "escalation", "severity"):
        posted = client.post(
            f"/portal/requests/{theirs.number}/{action}",
            data={"csrf_token": token, "text": "x", "reason": "x", "severity": "1"},
        )
        assert posted.status_code == 404


def test_an_end_user_logs_and_follows_only_platform_and_recording_problems(
    client: FlaskClient, db: Database
) -> None:
    technical = add_contact(db, "ada@acme.example")
    add_request(db, technical, subject="Licence renewal question")
    add_contact(db, "eu@acme.example", role="end_user", name="Eve User")
    signed_in(client, db, "eu@acme.example")
    refused = new_request(client, subject="Exports fail")
    assert refused.status_code == 403
    assert "platform and recording problems only" in refused.get_data(as_text=True)
    assert new_request(client, subject="[Recording] Calls of 3 May missing").status_code == 302
    listed = client.get("/portal?status=all").get_data(as_text=True)
    assert "Calls of 3 May missing" in listed and "Licence renewal" not in listed
    with db.sessions() as session:
        outcomes = session.execute(select(IntakeRecord.outcome, IntakeRecord.reason)).all()
        mine = session.scalars(select(ServiceRequest).where(ServiceRequest.channel == "web")).one()
    assert sorted(map(tuple, outcomes)) == [
        ("accepted", "new_request"),
        ("rejected", "category_not_allowed"),
    ]
    page = client.get(f"/portal/requests/{mine.number}").get_data(as_text=True)
    assert 'id="escalation-form"' not in page  # following, not acting
    token = csrf_token(client, "/portal")
    data = {"csrf_token": token, "text": "more"}
    assert client.post(f"/portal/requests/{mine.number}/information", data=data).status_code == 404


def test_an_inactive_contact_is_told_why_and_what_to_do(client: FlaskClient, db: Database) -> None:
    add_contact(db, "old@acme.example", active=False)
    signed_in(client, db, "old@acme.example")
    page = client.get("/portal").get_data(as_text=True)
    assert "no longer active" in page and "technical contact to reinstate it" in page
    assert new_request(client).status_code == 403


def test_information_escalation_and_severity_requests(client: FlaskClient, db: Database) -> None:
    contact = add_contact(db, "ada@acme.example")
    sr = add_request(db, contact, subject="Exports fail", severity=3)
    signed_in(client, db, "ada@acme.example")
    token = csrf_token(client, f"/portal/requests/{sr.number}")
    base = f"/portal/requests/{sr.number}"
    info = {"csrf_token": token, "text": "It fails at 09:00 daily."}
    info["attachments"] = (io.BytesIO(b"PNG"), "screen.png", "image/png")  # type: ignore[assignment]
    assert client.post(f"{base}/information", data=info).status_code == 302
    upgrade = {"csrf_token": token, "severity": "2", "justification": ""}
    client.post(f"{base}/severity", data=upgrade)
    page = client.get(base).get_data(as_text=True)
    assert "needs the impact" in page
    client.post(f"{base}/severity", data=upgrade | {"justification": "All 40 agents stopped."})
    escalation = {
        "csrf_token": token,
        "reason": "No answer for two days.",
        "counterpart_name": "Grace Hopper",
        "counterpart_reach": "grace@acme.example",
    }
    client.post(f"{base}/escalation", data=escalation)
    with db.sessions() as session:
        events = session.scalars(
            select(RequestEvent).where(RequestEvent.request_id == sr.id).order_by(RequestEvent.id)
        ).all()
        request = session.get_one(ServiceRequest, sr.id)
    kinds = [e.type for e in events]
    assert kinds[-3:] == ["message", "severity_requested", "escalated"]
    assert events[-3].detail["attachments"][0]["filename"] == "screen.png"
    assert events[-2].detail["justification"] == "All 40 agents stopped."
    assert events[-1].detail["counterpart"] == "Grace Hopper (grace@acme.example)"
    assert request.severity == 3  # asked for, not changed: staff decide
    page = client.get(base).get_data(as_text=True)
    assert "Grace Hopper" in page and "All 40 agents stopped." in page


def test_the_timeline_never_shows_internal_notes(client: FlaskClient, db: Database) -> None:
    contact = add_contact(db, "ada@acme.example")
    sr = add_request(db, contact, subject="Exports fail")
    with db.transaction() as session:
        add_event(session, sr.id, "note", text="Customer is difficult")
        add_event(session, sr.id, "status_report", text="Fix deployed to staging.")
        add_event(session, sr.id, "delivery_failed", to="ada@acme.example", why="mailbox full")
    signed_in(client, db, "ada@acme.example")
    page = client.get(f"/portal/requests/{sr.number}").get_data(as_text=True)
    assert "Fix deployed to staging." in page
    assert "Customer is difficult" not in page and "mailbox full" not in page


def test_the_status_link_offers_to_sign_in(client: FlaskClient, db: Database) -> None:
    from intake.outbox.links import status_token

    contact = add_contact(db, "ada@acme.example")
    sr = add_request(db, contact, subject="Exports fail")
    page = client.get(f"/status/{status_token(KEY, sr.number)}").get_data(as_text=True)
    assert 'href="/portal/sign-in"' in page


def test_a_portal_row_left_pending_is_finished_by_the_worker_job(
    client: FlaskClient, db: Database, redis_url: str
) -> None:
    """When the portal cannot finish its row, the sweep hands it to the web channel's job."""
    contact = add_contact(db, "ada@acme.example")
    raw = (
        b"From: ada@acme.example\r\nTo: support@intake.localhost\r\nSubject: Docs question\r\n"
        b"Message-ID: <q1@portal>\r\nX-Intake-Severity: 4\r\n\r\nWhere is the API guide?\r\n"
    )
    item = InboundMessage(
        channel="web",
        sender="ada@acme.example",
        dedupe_key="web:test-1",
        raw=raw,
        subject="Docs question",
        contact_id=contact,
    )
    decision, intake_id = record(db, item)
    assert decision.outcome == "accepted"
    queue = Queue("test-portal", connection=redis.Redis.from_url(redis_url))
    enqueue_intake(queue, intake_id, "web")
    (job,) = queue.get_jobs()
    assert job.func_name == "intake.jobs.jobs.process_web_intake"
    process_web_intake(intake_id)
    with db.sessions() as session:
        request = session.scalars(select(ServiceRequest)).one()
        row = session.get_one(IntakeRecord, intake_id)
    assert (request.channel, request.severity, row.state) == ("web", 4, "done")


def test_files_larger_than_a_mail_may_be_are_refused(
    settings: Settings, db: Database, redis_url: str
) -> None:
    app = create_app(
        settings.replace(secret_key=KEY, max_message_size=2048),
        db=db,
        redis_client=redis.Redis.from_url(redis_url),
    )
    client = app.test_client()
    add_contact(db, "ada@acme.example")
    signed_in(client, db, "ada@acme.example")
    files = {"attachments": (io.BytesIO(b"x" * 4096), "dump.bin", "application/octet-stream")}
    refused = new_request(client, **files)
    assert refused.status_code == 413 and "larger than 2,048 bytes" in refused.get_data(
        as_text=True
    )
    with db.sessions() as session:
        assert session.scalars(select(IntakeRecord)).all() == []


def test_staff_see_the_counterpart_named_in_a_portal_escalation(
    client: FlaskClient, db: Database, settings: Settings, redis_url: str
) -> None:
    contact = add_contact(db, "ada@acme.example")
    sr = add_request(db, contact, subject="Exports fail")
    signed_in(client, db, "ada@acme.example")
    escalation = {
        "csrf_token": csrf_token(client, f"/portal/requests/{sr.number}"),
        "reason": "No answer for two days.",
        "counterpart_name": "Grace Hopper",
        "counterpart_reach": "grace@acme.example",
    }
    client.post(f"/portal/requests/{sr.number}/escalation", data=escalation)
    add_staff(db, "alice", PASSWORD)
    staff = create_app(
        settings.replace(secret_key=KEY), db=db, redis_client=redis.Redis.from_url(redis_url)
    ).test_client()
    staff_sign_in(staff, "alice")
    page = staff.get(f"/requests/{sr.number}").get_data(as_text=True)
    assert "Grace Hopper (grace@acme.example)" in page
