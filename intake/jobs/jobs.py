"""RQ jobs: finish an intake row and send its acknowledgment, the breach watch's scheduled
checks of a response goal, and the periodic sweep (outbox, and goal checks Redis lost).

Jobs take ids, are idempotent, and have deterministic job ids, so enqueueing one twice (the door
after its commit, the sweep after a Redis outage) does the work once.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
import math
from collections.abc import Sequence

from redis import Redis
from redis.exceptions import RedisError
from rq import Queue, Retry
from rq.exceptions import NoSuchJobError
from rq.job import Job, JobStatus
from sqlalchemy import select
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from intake.jobs import runtime
from intake.mail.bounces import skip_undeliverable
from intake.mail.finish import finish_mail, finish_web
from intake.outbox.delivery import PermanentDeliveryError, deliver
from intake.outbox.rows import mark_sent
from intake.pipeline.processing import Finisher, finish_intake, unsent_outbox_ids
from intake.store.models import IntakeRecord, OutboxMessage, ServiceRequest, utcnow
from intake.workflows import breach_watch, reminders
from intake.workflows.breach_watch import Check
from intake.workflows.desk import desk_for

log = logging.getLogger(__name__)

RETRY = Retry(max=8, interval=[1, 5, 15, 30, 60, 120, 300, 600])
LIVE_STATES = (JobStatus.QUEUED, JobStatus.STARTED, JobStatus.SCHEDULED, JobStatus.DEFERRED)
SWEEP_BATCH = 500
# After this many failed sends a row waits for a person (it shows on the status page).
MAX_SEND_ATTEMPTS = 25
# The phone door's job, by the dotted name RQ imports in the worker: it lives in voice/, which
# nothing in intake/ imports.
PHONE_JOB = "voice.call_processing.process_call"
# Noted on an exception whose failure is logged already, with the reason and attempt count.
REPORTED_NOTE = "(logged by intake.jobs.jobs.note_failure)"


def process_intake(intake_id: int) -> None:
    """The job for a mail row: open its request, then send what it put in the outbox."""
    finish_and_send(intake_id, finish_mail)


def process_web_intake(intake_id: int) -> None:
    """The job for a portal row the portal could not finish itself (see :func:`finish_web_row`):
    open its request or add its information, then send what it put in the outbox."""
    finish_and_send(intake_id, finish_web)


def finish_web_row(intake_id: int) -> tuple[int | None, list[int]]:
    """Finish a portal row at once, as the phone door finishes its calls: the portal answers
    with the request's number. Returns the row's request id and the outbox rows to send."""
    rt = runtime.current()
    with rt.db.transaction() as session:
        finish_intake(session, rt.settings, rt.policy, intake_id, finish_web)
        request_id = session.get_one(IntakeRecord, intake_id).request_id
        return request_id, unsent_outbox_ids(session, intake_id)


def finish_and_send(intake_id: int, finish: Finisher) -> None:
    """Open the request for an accepted row with its door's ``finish``, then send what it put in
    the outbox."""
    rt = runtime.current()
    try:
        with rt.db.transaction() as session:
            finish_intake(session, rt.settings, rt.policy, intake_id, finish)
            outbox_ids = unsent_outbox_ids(session, intake_id)
    except Exception as exc:
        note_intake_failure(intake_id, exc)
        raise  # RQ retries it on RETRY's schedule
    for outbox_id in outbox_ids:
        send_outbox(outbox_id)
    schedule_goal_checks_of_intakes([intake_id])


def send_outbox(outbox_id: int) -> None:
    """Send one outbox row unless it was sent already; mark it sent once the relay took it."""
    rt = runtime.current()
    with rt.db.sessions() as session:
        row = session.get(OutboxMessage, outbox_id)
        if row is None or row.sent_at is not None:
            return
        recipient, payload, channel = row.recipient, row.payload, row.channel
    if skip_undeliverable(rt.db, [outbox_id], give_up_at=MAX_SEND_ATTEMPTS):
        return  # it bounced lately: marked with the reason, never retried
    try:
        where = deliver(rt.settings, channel, outbox_id, recipient, payload)
    except PermanentDeliveryError as exc:
        note_failure(outbox_id, exc, give_up=True)  # no retry: it waits for a person
        return
    except Exception as exc:
        note_failure(outbox_id, exc)
        raise
    _mark_sent(outbox_id, where)


def _mark_sent(outbox_id: int, where: str) -> None:
    with runtime.current().db.transaction() as session:
        mark_sent(session, [(outbox_id, where)])


def note_intake_failure(intake_id: int, exc: Exception) -> None:
    """Keep the error on the intake row, where the staff pages show why its job is retrying
    (RQ keeps no error for a job it will retry). A database too sick to take the note is
    already the error the job raises."""
    log.warning("finishing intake #%s failed: %s", intake_id, exc)
    with contextlib.suppress(SQLAlchemyError), runtime.current().db.transaction() as session:
        row = session.get(IntakeRecord, intake_id)
        if row is not None:
            row.attempts += 1
            row.last_error = f"{type(exc).__name__}: {exc}"[:2000]


def note_failure(outbox_id: int, exc: Exception, *, give_up: bool = False) -> None:
    """Count a failed send on its row and log it in one line (the worker then logs the
    exception's traceback only at DEBUG: see REPORTED_NOTE)."""
    rt = runtime.current()
    with rt.db.transaction() as session:
        row = session.get_one(OutboxMessage, outbox_id)
        row.attempts += 1
        attempt, channel = row.attempts, row.channel
        if give_up:  # the sweep leaves rows at MAX_SEND_ATTEMPTS alone
            row.attempts = max(row.attempts, MAX_SEND_ATTEMPTS)
        row.last_error = f"{type(exc).__name__}: {exc}"[:2000]
    after = "it waits for a person" if give_up else "it is retried with backoff"
    log.warning(
        "sending outbox #%s (%s) failed, attempt %d: %s; %s",
        outbox_id,
        channel,
        attempt,
        _one_line(exc),
        after,
    )
    exc.add_note(REPORTED_NOTE)


def _one_line(exc: Exception) -> str:
    text = " ".join(str(exc).split())
    return text[:300] or type(exc).__name__


def intake_job_id(intake_id: int) -> str:
    return f"intake-{intake_id}"


def outbox_job_id(outbox_id: int) -> str:
    return f"outbox-{outbox_id}"


def job_options(job_id: str) -> dict[str, object]:
    return {
        "job_id": job_id,
        "retry": RETRY,
        "result_ttl": 600,
        "failure_ttl": 7 * 86400,
        "job_timeout": runtime.current().settings.job_timeout,
    }


def enqueue_intake(queue: Queue, intake_id: int, channel: str = "email") -> None:
    options = job_options(intake_job_id(intake_id))
    if channel == "phone":
        queue.enqueue(PHONE_JOB, intake_id, **options)
    elif channel == "web":
        queue.enqueue(process_web_intake, intake_id, **options)
    else:
        queue.enqueue(process_intake, intake_id, **options)


def enqueue_outbox(queue: Queue, outbox_id: int) -> None:
    queue.enqueue(send_outbox, outbox_id, **job_options(outbox_job_id(outbox_id)))


def goal_check_job_id(check: Check) -> str:
    """One job per request, clock and share: scheduling it again changes nothing."""
    return f"goal-{check.request_id}-{check.basis}-{check.share}"


def check_goal(request_id: int, share: int, basis: int, at: int) -> None:
    """The breach watch's look at a request's goal when ``share`` percent of it has passed;
    then the notification it wrote is sent."""
    rt = runtime.current()
    check = Check(request_id, share, basis, dt.datetime.fromtimestamp(at, dt.UTC))
    desk = desk_for(rt.settings, rt.policy)
    with rt.db.transaction() as session:
        breach_watch.check_goal(session, desk, check, breach_watch.now())
    send_request_mail(request_id)


def unsent_of_request(request_id: int) -> list[int]:
    with runtime.current().db.sessions() as session:
        return list(
            session.scalars(
                select(OutboxMessage.id).where(
                    OutboxMessage.request_id == request_id, OutboxMessage.sent_at.is_(None)
                )
            )
        )


def send_request_mail(request_id: int) -> None:
    """Send what is waiting in the outbox for the request (in this job)."""
    for outbox_id in unsent_of_request(request_id):
        send_outbox(outbox_id)


def schedule_goal_checks(queue: Queue, request_id: int) -> list[Check]:
    """Schedule the breach watch's checks of the request's current clock (none once it is
    answered or closed); returns them."""
    rt = runtime.current()
    desk = desk_for(rt.settings, rt.policy)
    with rt.db.sessions() as session:
        request = session.get(ServiceRequest, request_id)
        if request is None or request.goal_met_at is not None:
            return []
        checks = breach_watch.checks_for(request, desk.policy, desk.config)
    enqueue_goal_checks(queue, checks)
    return checks


def enqueue_goal_checks(queue: Queue, checks: Sequence[Check]) -> None:
    """Schedule each check at its instant, all in one round trip to Redis."""
    if not checks:
        return
    with queue.connection.pipeline() as pipe:
        for check in checks:
            # Whole seconds, rounded up: a check never runs before its instant.
            at = math.ceil(check.at.timestamp())
            queue.enqueue_at(
                dt.datetime.fromtimestamp(at, dt.UTC),
                check_goal,
                check.request_id,
                check.share,
                check.basis,
                at,
                pipeline=pipe,
                **job_options(goal_check_job_id(check)),
            )
        pipe.execute()


def schedule_goal_checks_quietly(queue: Queue, request_id: int) -> None:
    """After a commit that started a clock; when Redis is down the sweep catches up."""
    try:
        schedule_goal_checks(queue, request_id)
    except (RedisError, OSError) as exc:
        log.warning("could not schedule goal checks of #%s (the sweep will): %s", request_id, exc)


def goal_checks_of_intakes(session: Session, intake_ids: Sequence[int]) -> list[Check]:
    """The breach watch's checks of the requests these rows opened, read in one statement (in
    the finishing transaction, where the requests are at hand)."""
    rt = runtime.current()
    desk = desk_for(rt.settings, rt.policy)
    opened = session.scalars(
        select(ServiceRequest)
        .join(IntakeRecord, IntakeRecord.request_id == ServiceRequest.id)
        .where(
            IntakeRecord.id.in_(list(intake_ids)),
            IntakeRecord.outcome == "accepted",
            ServiceRequest.goal_met_at.is_(None),
        )
        .order_by(ServiceRequest.id)
    ).all()
    return [c for r in opened for c in breach_watch.checks_for(r, desk.policy, desk.config)]


def schedule_goal_checks_of_intakes(intake_ids: Sequence[int]) -> None:
    """In an intake job: schedule the checks of the requests these rows opened."""
    with runtime.current().db.sessions() as session:
        checks = goal_checks_of_intakes(session, intake_ids)
    enqueue_goal_checks_of_job(checks)


def enqueue_goal_checks_of_job(checks: Sequence[Check]) -> None:
    """In a job: schedule ``checks`` on the job's own Redis; when Redis is down, or outside a
    worker, the sweep catches up."""
    from rq import get_current_job

    job = get_current_job()
    if job is None or not checks:
        return
    queue = Queue(runtime.current().settings.queue_name, connection=job.connection)
    try:
        enqueue_goal_checks(queue, checks)
    except (RedisError, OSError) as exc:
        requests = sorted({c.request_id for c in checks})
        log.warning("could not schedule goal checks of %s (the sweep will): %s", requests, exc)


def watch_overdue_goals(now: dt.datetime | None = None) -> int:
    """The sweep's part of the breach watch: run the checks whose time has passed but that
    no scheduled job recorded (Redis lost them); returns how many wrote an event."""
    rt = runtime.current()
    desk = desk_for(rt.settings, rt.policy)
    now = now or breach_watch.now()
    with rt.db.sessions() as session:
        overdue = breach_watch.overdue_checks(session, desk.policy, desk.config, now)
    written = 0
    for check in overdue:
        with rt.db.transaction() as session:
            written += breach_watch.check_goal(session, desk, check, now) is not None
        send_request_mail(check.request_id)
    return written


def remind_status_reports(now: dt.datetime | None = None) -> int:
    """The sweep's reminders of status reports due (Severity 1 and 2); returns how many."""
    rt = runtime.current()
    desk = desk_for(rt.settings, rt.policy)
    with rt.db.transaction() as session:
        reminded = reminders.remind_due(session, desk, now or breach_watch.now())
    for request_id in reminded:
        send_request_mail(request_id)
    return len(reminded)


def sweep_outbox(grace_seconds: int = 30) -> int:
    """The periodic job: re-enqueue what Redis lost; returns how many were enqueued."""
    from rq import get_current_job

    job = get_current_job()
    if job is None:
        raise RuntimeError("sweep_outbox runs as an RQ job; call sweep() directly otherwise")
    return sweep(
        Queue(runtime.current().settings.queue_name, connection=job.connection), grace_seconds
    )


def sweep(queue: Queue, grace_seconds: int = 30) -> int:
    """Re-enqueue pending intake rows and unsent outbox rows that no live job holds (Redis lost
    them, or a worker died); returns how many were enqueued."""
    rt = runtime.current()
    cutoff = utcnow() - dt.timedelta(seconds=grace_seconds)
    with rt.db.sessions() as session:
        pending = session.execute(
            select(IntakeRecord.id, IntakeRecord.channel)
            .where(
                IntakeRecord.state == "pending",
                IntakeRecord.received_at < cutoff,
            )
            .order_by(IntakeRecord.id)
            .limit(SWEEP_BATCH)
        ).all()
        unsent = session.scalars(
            select(OutboxMessage.id)
            .where(
                OutboxMessage.sent_at.is_(None),
                OutboxMessage.created_at < cutoff,
                OutboxMessage.attempts < MAX_SEND_ATTEMPTS,
            )
            .order_by(OutboxMessage.id)
            .limit(SWEEP_BATCH)
        ).all()
    count = _enqueue_missing(queue, pending, unsent)
    watch_overdue_goals()
    remind_status_reports()
    return count


def _enqueue_missing(
    queue: Queue, pending: Sequence[tuple[int, str]], unsent: Sequence[int]
) -> int:
    count = 0
    for intake_id, channel in pending:
        if not _is_live(queue.connection, intake_job_id(intake_id)):
            enqueue_intake(queue, intake_id, channel)
            count += 1
    for outbox_id in unsent:
        if not _is_live(queue.connection, outbox_job_id(outbox_id)):
            enqueue_outbox(queue, outbox_id)
            count += 1
    if count:
        log.info("sweep re-enqueued %d item(s)", count)
    return count


def _is_live(connection: Redis, job_id: str) -> bool:
    """Whether a job still holds the item: waiting, or running for less than its timeout (one
    that started longer ago belongs to a worker that died, killed or cut off)."""
    try:
        job = Job.fetch(job_id, connection=connection)
    except NoSuchJobError:
        return False
    status = job.get_status()
    if status == JobStatus.STARTED and job.started_at is not None:
        started = (
            job.started_at.replace(tzinfo=dt.UTC)
            if job.started_at.tzinfo is None
            else job.started_at
        )
        timeout = job.timeout or runtime.current().settings.job_timeout
        return utcnow() - started < dt.timedelta(seconds=timeout + 5)
    return status in LIVE_STATES


def send_request_mail_quietly(queue: Queue, request_id: int) -> int:
    """Enqueue the sending of a request's unsent outbox rows (a staff action just wrote them);
    when Redis is down the sweep sends them later. Returns how many were enqueued."""
    unsent = unsent_of_request(request_id)
    try:
        for outbox_id in unsent:
            enqueue_outbox(queue, outbox_id)
    except (RedisError, OSError) as exc:
        log.warning("could not enqueue mail of request #%s (the sweep will): %s", request_id, exc)
        return 0
    return len(unsent)


def enqueue_quietly(queue: Queue, intake_id: int, channel: str = "email") -> bool:
    """Enqueue after the door's commit; when Redis is down the sweep will pick the row up."""
    try:
        enqueue_intake(queue, intake_id, channel)
    except (RedisError, OSError) as exc:
        log.warning("could not enqueue intake #%s (the sweep will): %s", intake_id, exc)
        return False
    return True
