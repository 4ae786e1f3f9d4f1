"""The job the mail doors enqueue for their commits: finish several intake rows in one
transaction, then send their acknowledgments over one relay connection; and the SMTP door's
gatherer, which makes one job of the commits of a moment (:class:`Gatherer`).

One job, one transaction (with one statement per kind of row rather than per row) and one SMTP
connection for a whole batch is what lets the workers keep up with a busy door. It stays
idempotent like the single-row jobs: a row already finished is skipped, an outbox row already
sent is not sent again.
"""

from __future__ import annotations

import logging
import queue as queues
import threading
import time
from collections.abc import Sequence

from rq import Queue
from sqlalchemy import select
from sqlalchemy.orm import Session

from intake.jobs import jobs, runtime
from intake.mail.bounces import skip_undeliverable
from intake.mail.finish import finish_mail
from intake.outbox.delivery import Mailer, PermanentDeliveryError, deliver
from intake.outbox.ratelimit import read_budgets
from intake.outbox.rows import mark_sent
from intake.pipeline.processing import finish_intakes, unsent_outbox_of_intakes
from intake.requests.opening import reserve_request_ids
from intake.settings import Settings
from intake.store.models import IntakeRecord, OutboxMessage
from intake.workflows.breach_watch import Check

log = logging.getLogger(__name__)
# How long the door's gatherer waits for more commits before it enqueues (at 100 messages a
# second, about ten rows a job: 50 ms left PostgreSQL's workers just short of keeping up), and
# how many rows one job may take at most.
GATHER_SECONDS = 0.1
GATHER_MOST = 100


def process_intakes(intake_ids: list[int]) -> None:
    """Open the requests of several accepted rows, then send what they put in the outbox."""
    try:
        outbox_ids, checks = _finish_together(intake_ids)
    except Exception:
        log.exception("finishing intake rows %s together failed; one by one now", intake_ids)
        _finish_one_by_one(intake_ids)
        return
    send_outbox_rows(outbox_ids)
    jobs.enqueue_goal_checks_of_job(checks)


def _finish_together(intake_ids: Sequence[int]) -> tuple[list[int], list[Check]]:
    """Finish the rows in one transaction; returns what they left to send and the breach
    watch's checks of the requests they opened."""
    rt = runtime.current()
    with rt.db.transaction() as session:
        finish_intakes(session, rt.settings, rt.policy, intake_ids, finish_mail, prepare=_prepare)
        checks = jobs.goal_checks_of_intakes(session, intake_ids)
        return unsent_outbox_of_intakes(session, list(intake_ids)), checks


def _prepare(session: Session, pending: Sequence[IntakeRecord]) -> None:
    """What the accepted rows need, read or taken in one statement each rather than one for
    each row: the numbers of the requests they open (opening each then writes nothing until
    the batch's one flush), and their senders' acknowledgment budgets."""
    accepted = [row for row in pending if row.outcome == "accepted"]
    reserve_request_ids(session, len(accepted))
    limit = runtime.current().settings.ack_limit_count_and_window
    read_budgets(session, [(row.sender, row.sender_verified) for row in accepted], limit)


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


class Gatherer:
    """The door's commits, gathered for a moment (``GATHER_SECONDS``) into one job.

    At a steady 100 messages a second the door commits them one or two at a time, and a job for
    each commit would cost the workers more in RQ's bookkeeping (some seventy Redis commands a
    job) than in the work. The gatherer runs in a thread of its own, so neither Redis's round
    trip nor a Redis outage holds up the door's recorder. Rows it had not enqueued when the
    process died are pending in the database, where the sweep finds them.
    """

    def __init__(
        self, queue: Queue, seconds: float = GATHER_SECONDS, most: int = GATHER_MOST
    ) -> None:
        self.queue, self.seconds, self.most = queue, seconds, most
        self._ids: queues.SimpleQueue[int | None] = queues.SimpleQueue()
        self._thread = threading.Thread(target=self._run, name="intake-enqueuer", daemon=True)
        self._thread.start()

    def __call__(self, intake_ids: Sequence[int]) -> None:
        """Take the ids of a commit (the door's on-commit callback); never blocks."""
        for intake_id in intake_ids:
            self._ids.put(intake_id)

    def close(self, timeout: float = 5.0) -> None:
        """Enqueue what was gathered, then stop."""
        self._ids.put(None)
        self._thread.join(timeout)

    def _run(self) -> None:
        stopping = False
        while not stopping:
            first = self._ids.get()
            if first is None:
                return
            batch, stopping = self._gather(first)
            enqueue_intakes_quietly(self.queue, batch)

    def _gather(self, first: int) -> tuple[list[int], bool]:
        """``first`` and what follows it within the window; and whether close() was called."""
        batch = [first]
        deadline = time.monotonic() + self.seconds
        while len(batch) < self.most:
            try:
                item = self._ids.get(timeout=max(0.0, deadline - time.monotonic()))
            except queues.Empty:
                break
            if item is None:
                return batch, True
            batch.append(item)
        return batch, False
