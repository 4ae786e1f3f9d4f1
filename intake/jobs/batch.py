"""The job the SMTP door enqueues for each group commit: finish several intake rows in one
transaction, then send their acknowledgments over one relay connection.

One job, one commit and one SMTP connection for a whole batch is what lets a worker keep up with
a busy door. It stays idempotent like the single-row jobs: a row already finished is skipped, an
outbox row already sent is not sent again.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

from rq import Queue
from sqlalchemy import select

from intake.jobs import jobs, runtime
from intake.mail.bounces import skip_undeliverable
from intake.mail.finish import finish_mail
from intake.outbox.delivery import Mailer, PermanentDeliveryError, deliver
from intake.outbox.rows import mark_sent
from intake.pipeline.processing import finish_intake, unsent_outbox_of_intakes
from intake.settings import Settings
from intake.store.models import OutboxMessage

log = logging.getLogger(__name__)


def process_intakes(intake_ids: list[int]) -> None:
    """Open the requests of several accepted rows, then send what they put in the outbox."""
    try:
        outbox_ids = _finish_together(intake_ids)
    except Exception:
        log.exception("finishing intake rows %s together failed; one by one now", intake_ids)
        _finish_one_by_one(intake_ids)
        return
    send_outbox_rows(outbox_ids)
    jobs.schedule_goal_checks_of_intakes(intake_ids)


def _finish_together(intake_ids: Sequence[int]) -> list[int]:
    rt = runtime.current()
    with rt.db.transaction() as session:
        for intake_id in intake_ids:
            finish_intake(session, rt.settings, rt.policy, intake_id, finish_mail)
        return unsent_outbox_of_intakes(session, list(intake_ids))


def _finish_one_by_one(intake_ids: Sequence[int]) -> None:
    """Isolate the row that fails, so its neighbours are still acknowledged; then fail the job
    (RQ retries it, and the rows already done are skipped)."""
    errors = []
    for intake_id in intake_ids:
        try:
            jobs.process_intake(intake_id)
        except Exception as exc:
            errors.append(exc)
    if errors:
        raise errors[0]


def send_outbox_rows(outbox_ids: Sequence[int]) -> None:
    """Send the unsent rows among ``outbox_ids``; mark those handed on as sent, together."""
    rt = runtime.current()
    with rt.db.sessions() as session:
        rows = session.execute(
            select(
                OutboxMessage.id,
                OutboxMessage.channel,
                OutboxMessage.recipient,
                OutboxMessage.payload,
            ).where(OutboxMessage.id.in_(outbox_ids), OutboxMessage.sent_at.is_(None))
        ).all()
    held = skip_undeliverable(rt.db, [r.id for r in rows], give_up_at=jobs.MAX_SEND_ATTEMPTS)
    rows = [r for r in rows if r.id not in held]
    sent, failures = [], []
    mailer = _process_mailer(rt.settings)
    for row in rows:
        try:
            where = (
                mailer.send(row.id, row.recipient, row.payload)
                if row.channel == "email"
                else deliver(rt.settings, row.channel, row.id, row.recipient, row.payload)
            )
        except Exception as exc:
            failures.append((row.id, exc))
        else:
            sent.append((row.id, where))
    if sent:
        with rt.db.transaction() as session:
            mark_sent(session, sent)
    _report_failures(failures)


_mailer: Mailer | None = None


def _process_mailer(settings: Settings) -> Mailer:
    """The worker process's connection to the relay, kept open from job to job."""
    global _mailer  # noqa: PLW0603 - one relay connection per worker process
    if _mailer is None or _mailer.settings is not settings:
        if _mailer is not None:
            _mailer.close()
        _mailer = Mailer(settings)
    return _mailer


def _report_failures(failures: Sequence[tuple[int, Exception]]) -> None:
    retryable = []
    for outbox_id, exc in failures:
        permanent = isinstance(exc, PermanentDeliveryError)
        jobs.note_failure(outbox_id, exc, give_up=permanent)
        if not permanent:
            retryable.append(exc)
    if retryable:
        raise retryable[0]


def batch_job_id(intake_ids: Sequence[int]) -> str:
    return f"intakes-{intake_ids[0]}-{intake_ids[-1]}-{len(intake_ids)}"


def enqueue_intakes(queue: Queue, intake_ids: Sequence[int]) -> None:
    queue.enqueue(process_intakes, list(intake_ids), **jobs.job_options(batch_job_id(intake_ids)))


def enqueue_intakes_quietly(queue: Queue, intake_ids: Sequence[int]) -> bool:
    """After the door's commit; when Redis is down the sweep picks the rows up later."""
    try:
        enqueue_intakes(queue, intake_ids)
    except Exception as exc:
        log.warning("could not enqueue intake rows %s (the sweep will): %s", intake_ids, exc)
        return False
    return True
