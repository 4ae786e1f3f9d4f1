"""The worker process: an RQ worker (with RQ's scheduler, for retries with backoff) and RQ's
cron scheduler running the outbox sweep."""

from __future__ import annotations

import logging
import threading
import time
from typing import Any

from redis import Redis
from rq import SimpleWorker
from rq.cron import CronScheduler

from intake import jobs, runtime
from intake.queue import make_queue

log = logging.getLogger(__name__)


class _ThreadCronScheduler(CronScheduler):
    """RQ's cron scheduler, run in a thread of the worker process: the worker owns signals."""

    def _install_signal_handlers(self) -> None:
        return None


def start_cron(connection: Redis, queue_name: str, interval: int) -> threading.Thread:
    cron = _ThreadCronScheduler(connection=connection)
    cron.register(
        jobs.sweep_outbox,
        queue_name,
        kwargs={"grace_seconds": interval},
        interval=interval,
        job_timeout=300,
    )
    thread = threading.Thread(
        target=_keep_running, args=(cron, interval), name="intake-cron", daemon=True
    )
    thread.start()
    return thread


def _keep_running(cron: CronScheduler, interval: int) -> None:
    """The sweep is what recovers from a Redis outage, so an outage must not end the sweep."""
    while True:
        try:
            cron.start()  # type: ignore[no-untyped-call]
        except Exception as exc:
            log.warning("cron scheduler stopped (%s); restarting in %d s", exc, interval)
            time.sleep(interval)


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
    if cron and not burst:
        start_cron(connection, queue.name, rt.settings.sweep_interval)
    # SimpleWorker runs jobs in this process: no fork per job, the database pool is reused.
    kwargs: dict[str, Any] = {"connection": connection}
    if name:
        kwargs["name"] = name
    worker = SimpleWorker([queue], **kwargs)
    log.info("worker %s listening on queue %r", worker.name, queue.name)
    return bool(worker.work(burst=burst, with_scheduler=True, logging_level="WARNING"))
