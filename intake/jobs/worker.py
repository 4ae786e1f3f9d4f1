"""The worker process: an RQ worker, RQ's scheduler (for retries with backoff) and RQ's cron
scheduler running the outbox sweep.

Both schedulers run as threads of the worker process. RQ would fork its scheduler into a child
process, which inherits the worker's open database connections: after a SIGKILL of the worker
the child would keep a half-done transaction, and its row locks, alive for ever.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any

from redis import Redis
from rq import SimpleWorker
from rq.cron import CronScheduler
from rq.job_lifecycle import call_exception_handlers
from rq.scheduler import RQScheduler

from intake.jobs import jobs, runtime
from intake.jobs.queue import make_queue

log = logging.getLogger(__name__)


class _ThreadCronScheduler(CronScheduler):
    """RQ's cron scheduler, run in a thread of the worker process: the worker owns signals."""

    def _install_signal_handlers(self) -> None:
        return None


class _ThreadScheduler(RQScheduler):
    """RQ's scheduler of delayed jobs (retries), run in a thread rather than a forked child."""

    def _install_signal_handlers(self) -> None:
        return None


class _QuietWorker(SimpleWorker):
    """RQ's worker, quiet about failures intake.jobs.jobs logged already in one line (a relay or
    Twilio refusing: their traceback only at DEBUG). Any other failure, a fault of ours, keeps
    its traceback in the log."""

    def handle_exception(self, job: Any, *exc_info: Any) -> None:
        error = exc_info[1]
        if jobs.REPORTED_NOTE in getattr(error, "__notes__", ()):
            log.debug("job %s failed", job.id, exc_info=exc_info)
        else:
            log.error("job %s failed: %s", job.id, type(error).__name__, exc_info=exc_info)
        call_exception_handlers(self._exc_handlers, job, *exc_info)


def start_scheduler(connection: Redis, queue_name: str) -> threading.Thread:
    scheduler = _ThreadScheduler([queue_name], connection=connection)
    return _start_thread(scheduler.work, "intake-scheduler", retry_after=5)


def _start_thread(loop: Callable[[], object], name: str, retry_after: int) -> threading.Thread:
    thread = threading.Thread(
        target=_keep_running, args=(loop, name, retry_after), name=name, daemon=True
    )
    thread.start()
    return thread


def start_cron(connection: Redis, queue_name: str, interval: int) -> threading.Thread:
    cron = _ThreadCronScheduler(connection=connection)
    cron.register(
        jobs.sweep_outbox,
        queue_name,
        kwargs={"grace_seconds": interval},
        interval=interval,
        job_timeout=300,
    )
    return _start_thread(cron.start, "intake-cron", retry_after=interval)


def _keep_running(loop: Callable[[], object], name: str, retry_after: int) -> None:
    """The schedulers are what recover from a Redis outage, so an outage must not end them."""
    while True:
        try:
            loop()
            log.warning("%s returned; restarting in %d s", name, retry_after)
        except Exception as exc:
            log.warning("%s stopped (%s); restarting in %d s", name, exc, retry_after)
        time.sleep(retry_after)  # also after a plain return: never a busy loop


def run_worker(
    rt: runtime.Runtime,
    connection: Redis,
    *,
    burst: bool = False,
    cron: bool = True,
    name: str | None = None,
) -> bool:
    """Work the queue until stopped (or, with burst, until it is empty)."""
    runtime.install(rt)
    queue = make_queue(rt.settings, connection)
    if not burst:
        start_scheduler(connection, queue.name)
    if cron and not burst:
        start_cron(connection, queue.name, rt.settings.sweep_interval)
    # SimpleWorker runs jobs in this process: no fork per job, the database pool is reused.
    kwargs: dict[str, Any] = {"connection": connection}
    if name:
        kwargs["name"] = name
    worker = _QuietWorker([queue], **kwargs)
    log.info("worker %s listening on queue %r", worker.name, queue.name)
    return bool(worker.work(burst=burst, with_scheduler=False, logging_level="WARNING"))
