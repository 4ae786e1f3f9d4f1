"""RQ jobs: finish an intake row and send its acknowledgment, and the periodic outbox sweep.

Jobs take ids, are idempotent, and have deterministic job ids, so enqueueing one twice (the door
after its commit, the sweep after a Redis outage) does the work once.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Sequence

from redis import Redis
from redis.exceptions import RedisError
from rq import Queue, Retry
from rq.exceptions import NoSuchJobError
from rq.job import Job, JobStatus
from sqlalchemy import select

from intake.jobs import runtime
from intake.mail.bounces import skip_undeliverable
from intake.mail.finish import finish_mail, finish_web
from intake.outbox.delivery import PermanentDeliveryError, deliver
from intake.outbox.rows import mark_sent
from intake.pipeline.processing import Finisher, finish_intake, unsent_outbox_ids
from intake.store.models import IntakeRecord, OutboxMessage, utcnow

log = logging.getLogger(__name__)

RETRY = Retry(max=8, interval=[1, 5, 15, 30, 60, 120, 300, 600])
LIVE_STATES = (JobStatus.QUEUED, JobStatus.STARTED, JobStatus.SCHEDULED, JobStatus.DEFERRED)
SWEEP_BATCH = 500
# After this many failed sends a row waits for a person (it shows on the status page).
MAX_SEND_ATTEMPTS = 25
# The phone door's job, by the dotted name RQ imports in the worker: it lives in voice/, which
# nothing in intake/ imports.
PHONE_JOB = "voice.call_processing.process_call"


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
    with rt.db.transaction() as session:
        finish_intake(session, rt.settings, rt.policy, intake_id, finish)
        outbox_ids = unsent_outbox_ids(session, intake_id)
    for outbox_id in outbox_ids:
        send_outbox(outbox_id)


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


def note_failure(outbox_id: int, exc: Exception, *, give_up: bool = False) -> None:
    log.warning("sending outbox #%s failed: %s", outbox_id, exc)
    rt = runtime.current()
    with rt.db.transaction() as session:
        row = session.get_one(OutboxMessage, outbox_id)
        row.attempts += 1
        if give_up:  # the sweep leaves rows at MAX_SEND_ATTEMPTS alone
            row.attempts = max(row.attempts, MAX_SEND_ATTEMPTS)
        row.last_error = f"{type(exc).__name__}: {exc}"[:2000]


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
    return _enqueue_missing(queue, pending, unsent)


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


def enqueue_quietly(queue: Queue, intake_id: int, channel: str = "email") -> bool:
    """Enqueue after the door's commit; when Redis is down the sweep will pick the row up."""
    try:
        enqueue_intake(queue, intake_id, channel)
    except (RedisError, OSError) as exc:
        log.warning("could not enqueue intake #%s (the sweep will): %s", intake_id, exc)
        return False
    return True
