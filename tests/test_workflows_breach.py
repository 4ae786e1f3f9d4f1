"""The breach watch with a real Redis, RQ's scheduled-job registry and scheduler, burst RQ
workers and a real relay, on SQLite and PostgreSQL. Time comes from the breach watch's clock,
set to the instants each test chooses: no sleeps."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator

import pytest
import redis
from rq import Queue
from rq.job import Job
from sqlalchemy import select

from intake.accounts.credentials import add_staff
from intake.jobs import jobs, runtime
from intake.jobs.queue import make_queue
from intake.jobs.runtime import Runtime, build_runtime
from intake.jobs.worker import _ThreadScheduler, run_worker
from intake.settings import Settings
from intake.store.db import Database
from intake.store.models import Contact, OutboxMessage, RequestEvent, ServiceRequest, StaffUser
from intake.workflows import breach_watch
from intake.workflows.goal import goal_of
from tests.helpers import Relay
from tests.web_support import PASSWORD, add_contact, add_intake, add_request

UTC = dt.UTC
HOLIDAY = dt.date(2026, 12, 25)  # a Friday


def at(*parts: int) -> dt.datetime:
    return dt.datetime(*parts, tzinfo=UTC)


@pytest.fixture
def rt(settings: Settings, redis_url: str, relay: Relay) -> Iterator[Runtime]:
    tables = dict(settings.policy) | {
        "calendar": {"timezone": "UTC", "holidays": [HOLIDAY]},
        "goal": {"notify": "desk@intake.localhost"},
    }
    runtime_ = build_runtime(
        settings.replace(
            policy=tables, redis_url=redis_url, outbound_smtp_url=relay.url, secret_key="k"
        )
    )
    runtime.install(runtime_)
    yield runtime_
    breach_watch.set_clock(lambda: dt.datetime.now(UTC))
    runtime_.db.dispose()


@pytest.fixture
def queue(rt: Runtime, redis_client: redis.Redis) -> Queue:
    return make_queue(rt.settings, redis_client)


def new_request(rt: Runtime, severity: int, created: dt.datetime) -> int:
    with rt.db.sessions() as session:
        known = session.scalar(select(Contact.id).limit(1))
    contact = known if known is not None else add_contact(rt.db, "ada@acme.example")
    due = rt.policy.response_due(severity, created)
    return add_request(
        rt.db,
        contact,
        severity=severity,
        created_at=created,
        response_due_at=due,
        status="acknowledged",
    ).id


def run_scheduled_until(rt: Runtime, queue: Queue, instant: dt.datetime) -> None:
    """What RQ's scheduler and a worker do when the clock shows ``instant``: the scheduled jobs
    whose time has come are enqueued and run."""
    breach_watch.set_clock(lambda: instant)
    registry = queue.scheduled_job_registry
    for job_id in registry.get_jobs_to_schedule(int(instant.timestamp())):
        job = Job.fetch(job_id, connection=queue.connection)
        registry.remove(job)
        queue.enqueue_job(job)
    run_worker(rt, queue.connection, burst=True, cron=False)


def goal_events(db: Database, request_id: int) -> list[tuple[str, int, dt.datetime]]:
    with db.sessions() as session:
        rows = session.query(RequestEvent).filter(
            RequestEvent.request_id == request_id,
            RequestEvent.type.in_(("goal_warning", "goal_breached")),
        )
        return [(e.type, e.detail["share"], e.at) for e in rows.order_by(RequestEvent.id)]


def scheduled_times(queue: Queue) -> dict[str, dt.datetime]:
    registry = queue.scheduled_job_registry
    return {
        job_id: registry.get_scheduled_time(job_id).astimezone(UTC)
        for job_id in registry.get_job_ids()
    }


def test_severity_1_at_night_warns_at_half_and_four_fifths_then_breaches(
    rt: Runtime, queue: Queue, relay: Relay
) -> None:
    created = at(2026, 11, 28, 2, 10)  # Saturday, 02:10: Severity 1 runs around the clock
    request_id = new_request(rt, 1, created)
    jobs.schedule_goal_checks(queue, request_id)
    basis = int(created.timestamp())
    assert scheduled_times(queue) == {
        f"goal-{request_id}-{basis}-50": at(2026, 11, 28, 2, 40),
        f"goal-{request_id}-{basis}-80": at(2026, 11, 28, 2, 58),
        f"goal-{request_id}-{basis}-100": at(2026, 11, 28, 3, 10),
    }

    run_scheduled_until(rt, queue, at(2026, 11, 28, 2, 39, 59))
    assert goal_events(rt.db, request_id) == []
    run_scheduled_until(rt, queue, at(2026, 11, 28, 2, 40))
    assert goal_events(rt.db, request_id) == [("goal_warning", 50, at(2026, 11, 28, 2, 40))]
    run_scheduled_until(rt, queue, at(2026, 11, 28, 2, 58))
    run_scheduled_until(rt, queue, at(2026, 11, 28, 3, 10))
    assert goal_events(rt.db, request_id) == [
        ("goal_warning", 50, at(2026, 11, 28, 2, 40)),
        ("goal_warning", 80, at(2026, 11, 28, 2, 58)),
        ("goal_breached", 100, at(2026, 11, 28, 3, 10)),
    ]
    with rt.db.sessions() as session:
        request = session.get_one(ServiceRequest, request_id)
        assert goal_of(request, at(2026, 11, 28, 3, 10)).state == "breached"
    # Nobody assigned, nobody on call: the desk's address hears of each.
    subjects = [(str(m["To"]), str(m["Subject"])) for m in relay.messages]
    number = f"SR-{request_id:06d}"
    assert subjects == [
        ("desk@intake.localhost", f"[{number}] Response goal 50 % gone (Severity 1)"),
        ("desk@intake.localhost", f"[{number}] Response goal 80 % gone (Severity 1)"),
        ("desk@intake.localhost", f"[{number}] Response goal BREACHED (Severity 1)"),
    ]


def test_severity_3_skips_a_weekend_and_a_holiday(rt: Runtime, queue: Queue) -> None:
    # Thursday 24 December, noon: Friday is Christmas, then the weekend; three business days
    # are the rest of Thursday, Monday, Tuesday and half of Wednesday.
    created = at(2026, 12, 24, 12, 0)
    request_id = new_request(rt, 3, created)
    jobs.schedule_goal_checks(queue, request_id)
    assert sorted(scheduled_times(queue).values()) == [
        at(2026, 12, 29, 0, 0),  # 50 %: 36 business hours
        at(2026, 12, 29, 21, 36),  # 80 %
        at(2026, 12, 30, 12, 0),  # the goal
    ]
    run_scheduled_until(rt, queue, at(2026, 12, 28, 23, 59))  # Monday night: under half
    assert goal_events(rt.db, request_id) == []
    run_scheduled_until(rt, queue, at(2026, 12, 30, 12, 0))
    assert [(kind, share) for kind, share, _ in goal_events(rt.db, request_id)] == [
        ("goal_warning", 50),
        ("goal_warning", 80),
        ("goal_breached", 100),
    ]


def test_a_check_is_idempotent_and_never_early(rt: Runtime, queue: Queue) -> None:
    created = at(2026, 12, 24, 12, 0)
    request_id = new_request(rt, 3, created)
    basis, half = int(created.timestamp()), int(at(2026, 12, 29).timestamp())
    # A check run too early (Saturday, inside the holiday weekend) does nothing...
    breach_watch.set_clock(lambda: at(2026, 12, 26, 12, 0))
    jobs.check_goal(request_id, 50, basis, half)
    assert goal_events(rt.db, request_id) == []
    # ...and run twice on time, it records one warning.
    breach_watch.set_clock(lambda: at(2026, 12, 29, 0, 5))
    jobs.check_goal(request_id, 50, basis, half)
    jobs.check_goal(request_id, 50, basis, half)
    assert [kind for kind, _, _ in goal_events(rt.db, request_id)] == ["goal_warning"]


def test_the_assignee_is_notified_and_an_answered_request_is_left_alone(
    rt: Runtime, queue: Queue, relay: Relay
) -> None:
    created = at(2026, 11, 28, 2, 10)
    request_id = new_request(rt, 1, created)
    add_staff(rt.db, "alice", PASSWORD)
    with rt.db.transaction() as session:
        alice = session.query(StaffUser).filter_by(username="alice").one()
        alice.email = "alice@desk.example"
        session.get_one(ServiceRequest, request_id).assignee_id = alice.id
    jobs.schedule_goal_checks(queue, request_id)
    run_scheduled_until(rt, queue, at(2026, 11, 28, 2, 40))
    assert [str(m["To"]) for m in relay.messages] == ["alice@desk.example"]
    with rt.db.sessions() as session:
        warning = session.query(RequestEvent).filter_by(type="goal_warning").one()
        assert warning.detail["notified"] == "alice (assignee)"
    with rt.db.transaction() as session:
        session.get_one(ServiceRequest, request_id).goal_met_at = at(2026, 11, 28, 2, 45)
    run_scheduled_until(rt, queue, at(2026, 11, 28, 3, 10))
    assert [kind for kind, _, _ in goal_events(rt.db, request_id)] == ["goal_warning"]


def test_the_engineer_on_call_is_notified_when_nobody_is_assigned(
    settings: Settings, redis_url: str, relay: Relay, redis_client: redis.Redis
) -> None:
    rota = {"engineers": [{"name": "Linus", "phone": "+14155550190", "email": "linus@x.example"}]}
    rt = build_runtime(
        settings.replace(
            policy=dict(settings.policy) | {"rota": rota},
            outbound_smtp_url=relay.url,
            secret_key="k",
        )
    )
    runtime.install(rt)
    try:
        request_id = new_request(rt, 2, at(2026, 11, 28, 2, 0))
        queue = make_queue(rt.settings, redis_client)
        jobs.schedule_goal_checks(queue, request_id)
        run_scheduled_until(rt, queue, at(2026, 11, 28, 3, 0))
        assert [str(m["To"]) for m in relay.messages] == ["linus@x.example"]
    finally:
        breach_watch.set_clock(lambda: dt.datetime.now(UTC))
        rt.db.dispose()


def test_a_severity_change_restarts_the_watch(rt: Runtime, queue: Queue) -> None:
    from intake.workflows.goal import restart_clock

    created = at(2026, 11, 30, 9, 0)  # Monday, Severity 3
    request_id = new_request(rt, 3, created)
    jobs.schedule_goal_checks(queue, request_id)
    changed = at(2026, 11, 30, 10, 0)
    with rt.db.transaction() as session:
        request = session.get_one(ServiceRequest, request_id)
        request.severity = 1
        restart_clock(request, rt.policy, changed)
    new_checks = jobs.schedule_goal_checks(queue, request_id)
    assert [c.at for c in new_checks] == [
        at(2026, 11, 30, 10, 30),
        at(2026, 11, 30, 10, 48),
        at(2026, 11, 30, 11, 0),
    ]
    # Past the old clock's first check and the new clock's goal: only the new clock counts.
    run_scheduled_until(rt, queue, at(2026, 12, 2, 0, 0))
    assert [(k, s) for k, s, _ in goal_events(rt.db, request_id)] == [
        ("goal_warning", 50),
        ("goal_warning", 80),
        ("goal_breached", 100),
    ]
    with rt.db.sessions() as session:
        breached = session.query(RequestEvent).filter_by(type="goal_breached").one()
        assert breached.detail["response_due_at"] == at(2026, 11, 30, 11, 0).isoformat()


def test_rq_s_own_scheduler_enqueues_the_checks_whose_time_has_come(
    rt: Runtime, queue: Queue, redis_client: redis.Redis
) -> None:
    created = dt.datetime.now(UTC) - dt.timedelta(minutes=40)  # Severity 1: past half
    request_id = new_request(rt, 1, created)
    jobs.schedule_goal_checks(queue, request_id)
    scheduler = _ThreadScheduler([queue.name], connection=redis_client)
    scheduler.acquire_locks()
    scheduler.enqueue_scheduled_jobs()
    scheduler.release_locks()
    assert queue.count == 1  # the 50 % check; 80 % and the goal are still ahead
    run_worker(rt, redis_client, burst=True, cron=False)
    assert [(k, s) for k, s, _ in goal_events(rt.db, request_id)] == [("goal_warning", 50)]


def test_the_sweep_catches_up_with_checks_redis_lost(rt: Runtime, queue: Queue) -> None:
    request_id = new_request(rt, 1, at(2026, 11, 28, 2, 10))
    # No job was ever scheduled (Redis was down); long after the goal, only the breach counts.
    assert jobs.watch_overdue_goals(at(2026, 11, 28, 4, 0)) == 1
    assert jobs.watch_overdue_goals(at(2026, 11, 28, 4, 1)) == 0
    assert [(k, s) for k, s, _ in goal_events(rt.db, request_id)] == [("goal_breached", 100)]
    with rt.db.sessions() as session:
        purposes = [r.purpose for r in session.query(OutboxMessage)]
    assert purposes == ["goal_breached"]


def test_a_new_request_gets_its_checks_scheduled_by_the_intake_job(
    rt: Runtime, queue: Queue, redis_client: redis.Redis
) -> None:
    contact_id = add_contact(rt.db, "ada@acme.example")
    raw = (
        b"From: ada@acme.example\r\nTo: support@intake.localhost\r\n"
        b"Subject: [Sev1] Down\r\n\r\nEverything is down.\r\n"
    )
    intake_id = add_intake(
        rt.db,
        "k1",
        outcome="accepted",
        reason="",
        state="pending",
        raw=raw,
        subject="[Sev1] Down",
        contact_id=contact_id,
    )
    jobs.enqueue_intake(queue, intake_id)
    run_worker(rt, redis_client, burst=True, cron=False)
    with rt.db.sessions() as session:
        request = session.query(ServiceRequest).one()
        basis = int(request.created_at.timestamp())
        expected = {
            f"goal-{request.id}-{basis}-{share}": rt.policy.goal_instant(
                1, request.created_at, share / 100
            )
            for share in (50, 80, 100)
        }
    times = scheduled_times(queue)
    assert set(times) == set(expected)
    for job_id, instant in expected.items():  # rounded up to whole seconds
        assert dt.timedelta(0) <= times[job_id] - instant < dt.timedelta(seconds=1)


def reminders_of(db: Database, request_id: int) -> list[dt.datetime]:
    with db.sessions() as session:
        rows = session.query(RequestEvent).filter_by(
            request_id=request_id, type="status_report_due"
        )
        return [e.at for e in rows.order_by(RequestEvent.id)]


def test_severity_1_gets_a_status_report_reminder_every_4_hours_until_resolved(
    rt: Runtime, relay: Relay
) -> None:
    sev1 = new_request(rt, 1, at(2026, 11, 28, 2, 10))
    sev3 = new_request(rt, 3, at(2026, 11, 28, 2, 10))
    assert jobs.remind_status_reports(at(2026, 11, 28, 6, 9)) == 0
    assert jobs.remind_status_reports(at(2026, 11, 28, 6, 10)) == 1
    assert jobs.remind_status_reports(at(2026, 11, 28, 6, 11)) == 0  # reminded already
    assert str(relay.messages[-1]["Subject"]).endswith("Status report due (Severity 1)")
    with rt.db.transaction() as session:  # a report goes out at 07:00
        session.get_one(ServiceRequest, sev1).status_reported_at = at(2026, 11, 28, 7, 0)
    assert jobs.remind_status_reports(at(2026, 11, 28, 10, 59)) == 0
    assert jobs.remind_status_reports(at(2026, 11, 28, 11, 0)) == 1
    with rt.db.transaction() as session:
        session.get_one(ServiceRequest, sev1).status = "resolved"
    assert jobs.remind_status_reports(at(2026, 11, 29, 11, 0)) == 0
    assert reminders_of(rt.db, sev1) == [at(2026, 11, 28, 6, 10), at(2026, 11, 28, 11, 0)]
    assert reminders_of(rt.db, sev3) == []


def test_severity_2_is_reminded_every_8_hours(rt: Runtime) -> None:
    sev2 = new_request(rt, 2, at(2026, 11, 28, 2, 0))
    assert jobs.remind_status_reports(at(2026, 11, 28, 9, 59)) == 0
    assert jobs.remind_status_reports(at(2026, 11, 28, 10, 0)) == 1
    assert reminders_of(rt.db, sev2) == [at(2026, 11, 28, 10, 0)]
