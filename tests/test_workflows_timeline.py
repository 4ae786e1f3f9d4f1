"""One Severity 1 request through the whole policy, at chosen instants: received at night,
warned at half and four fifths of its hour, breached, escalated, given an action plan, assigned
and reported on, reminded of a status report, and resolved; as the API and the request page show
it. Run with ``-s`` to see the timeline printed."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator

import pytest
import redis

from intake.accounts.credentials import add_staff, create_token
from intake.jobs import jobs, runtime
from intake.jobs.queue import make_queue
from intake.jobs.runtime import Runtime, build_runtime
from intake.jobs.worker import run_worker
from intake.settings import Settings
from intake.workflows import breach_watch, escalation, replies, tell
from intake.workflows.desk import desk_for
from tests.helpers import Relay
from tests.test_workflows_breach import run_scheduled_until
from tests.web_support import PASSWORD, add_contact, add_request, sign_in
from web import create_app

UTC = dt.UTC
MANAGERS = [{"name": "Grace", "email": "grace@desk.example", "level": 1}]


def at(hour: int, minute: int, day: int = 28) -> dt.datetime:
    return dt.datetime(2026, 11, day, hour, minute, tzinfo=UTC)


@pytest.fixture
def rt(settings: Settings, redis_url: str, relay: Relay) -> Iterator[Runtime]:
    tables = dict(settings.policy) | {
        "escalation": {"managers": MANAGERS},
        "goal": {"notify": "desk@intake.localhost"},
    }
    built = build_runtime(
        settings.replace(policy=tables, redis_url=redis_url, outbound_smtp_url=relay.url)
    )
    runtime.install(built)
    yield built
    breach_watch.set_clock(lambda: dt.datetime.now(UTC))
    built.db.dispose()


def test_a_severity_1_request_from_night_to_resolution(
    rt: Runtime, redis_client: redis.Redis, relay: Relay
) -> None:
    db, desk = rt.db, desk_for(rt.settings, rt.policy)
    contact = add_contact(db, "ada@acme.example")
    created = at(2, 10)  # Saturday 28 November 2026, 02:10 UTC
    request = add_request(
        db,
        contact,
        severity=1,
        created_at=created,
        response_due_at=rt.policy.response_due(1, created),
        status="acknowledged",
        acknowledged_at=created + dt.timedelta(seconds=1),
        subject="Payroll run stops at step 3",
    )
    queue = make_queue(rt.settings, redis_client)
    jobs.schedule_goal_checks(queue, request.id)
    for instant in (at(2, 40), at(2, 58), at(3, 10)):
        run_scheduled_until(rt, queue, instant)
    add_staff(db, "alice", PASSWORD, email="alice@desk.example")

    with db.transaction() as s:
        escalation.escalate(
            s,
            desk,
            request.id,
            reason="Payroll must run by 06:00.",
            by="ada@acme.example",
            counterpart="Bob Stone, CTO",
            now=at(3, 15),
        )
    with db.transaction() as s:
        tell.assign(
            s, rt.settings, desk.config, request.id, assignee="alice", by="grace", now=at(3, 18)
        )
    with db.transaction() as s:
        escalation.record_action_plan(
            s,
            desk,
            request.id,
            plan="Alice restores step 3 from the 01:00 backup; "
            "reports every hour; Grace calls Bob at 04:00.",
            by="grace",
            now=at(3, 25),
        )
    with db.transaction() as s:
        replies.post_reply(
            s,
            rt.settings,
            desk.config,
            request.id,
            kind="status_report",
            body="Backup restored; rerunning step 3.",
            by="alice",
            now=at(3, 40),
        )
    assert jobs.remind_status_reports(at(7, 40)) == 1  # four hours without a report
    with db.transaction() as s:
        replies.post_reply(
            s,
            rt.settings,
            desk.config,
            request.id,
            kind="status_report",
            body="Payroll completed at 07:55.",
            by="alice",
            now=at(7, 58),
        )
    with db.transaction() as s:
        tell.resolve(
            s,
            rt.settings,
            desk.config,
            request.id,
            note="Step 3 fixed; payroll ran.",
            by="alice",
            now=at(8, 5),
        )
    jobs.send_request_mail_quietly(queue, request.id)  # as the pages and the API do
    run_worker(rt, redis_client, burst=True, cron=False)

    client = create_app(rt.settings, db=db, redis_client=redis_client).test_client()
    auth = {"Authorization": f"Bearer {create_token(db, 'report')}"}
    body = client.get(f"/api/requests/{request.number}", headers=auth).json
    timeline = [(e["at"][11:16], e["type"], e["detail"]) for e in body["events"]]
    print(f"\n{body['number']} Severity {body['severity']}: {body['subject']}")
    print(f"goal: {body['goal']}, assignee: {body['assignee']}, status: {body['status']}")
    for when, kind, detail in timeline:
        words = {k: v for k, v in detail.items() if k not in ("response_due_at",)}
        print(f"  {when}  {kind:<16} {words}")

    assert [kind for _, kind, _ in timeline] == [
        "created",
        "goal_warning",
        "goal_warning",
        "goal_breached",
        "escalated",
        "assigned",
        "action_plan",
        "status_report",
        "goal_met",
        "status_report_due",
        "status_report",
        "resolved",
    ]
    assert body["goal"] == {"state": "breached", "met_at": at(3, 40).isoformat()}
    assert body["status"] == "resolved"
    reminder = next(d for _, kind, d in timeline if kind == "status_report_due")
    assert reminder["notified"] == "alice (assignee)"
    to_contact = [str(m["Subject"]) for m in relay.messages if "ada@acme.example" in str(m["To"])]
    assert to_contact == [
        f"[{request.number}] Escalated to Grace",
        f"[{request.number}] Assigned to alice",
        f"[{request.number}] Action plan",
        f"[{request.number}] Status report: Payroll run stops at step 3",
        f"[{request.number}] Status report: Payroll run stops at step 3",
        f"[{request.number}] Resolved",
    ]
    sign_in(client, "alice")
    page = client.get(f"/requests/{request.number}").get_data(as_text=True)
    for title in (
        "Response goal warning",
        "Response goal breached",
        "Escalated",
        "Action plan",
        "Status report due",
        "Resolved",
        "met late",
    ):
        assert title in page
