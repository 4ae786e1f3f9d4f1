"""Per-message cost of each step of the pipeline, in one thread: the SMTP door's accept() and
the worker's job, without sockets to the client and without concurrency.

    .venv/bin/python bench/pipeline_steps.py [--db sqlite|postgres] [--messages N] [--profile]

On a fresh migrated database with the 50 benchmark senders and the real Redis (db 11, flushed
before and after), with a relay run here:

door    the functions IntakeHandler.accept calls, one message at a time: parse the headers
        (inbound_from_mail), decide and commit (pipeline.record), enqueue the RQ job
        (jobs.enqueue_quietly), and log the outcome as the door does;
worker  the job's two halves called directly (open the request and write the outbox in one
        transaction; send_outbox: relay + mark sent), then the same work done by a real RQ
        SimpleWorker in burst mode, which adds RQ's own per-job cost.

Prints the mean wall and CPU time per message of each step; --profile adds cProfile's top
functions of the door's steps. These are costs before any contention for the GIL, locks or
cores, so they bound what one process can do.
"""

from __future__ import annotations

import argparse
import cProfile
import io
import logging
import pstats
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH.parent))

import redis  # noqa: E402
from _load import build_messages  # noqa: E402
from smtp_intake import (  # noqa: E402
    CONFIG,
    REDIS_URL,
    PostgresDatabases,
    SqliteDatabases,
    flush_redis,
    relay,
)

SUPPORT = ("support@intake.localhost",)
Totals = dict[str, list[float]]


def timed(fn: Callable[[], Any], totals: Totals, name: str) -> Any:
    wall, cpu = time.perf_counter(), time.thread_time()
    result = fn()
    entry = totals.setdefault(name, [0.0, 0.0])
    entry[0] += time.perf_counter() - wall
    entry[1] += time.thread_time() - cpu
    return result


def door_pass(rt: Any, queue: Any, messages: list, totals: Totals) -> list[int]:
    """What IntakeHandler.accept does per message; returns the intake ids (queue None: no
    enqueue)."""
    from intake.jobs.jobs import enqueue_quietly
    from intake.mail.message import inbound_from_mail
    from intake.pipeline.steps import record

    log = logging.getLogger("intake.mail.smtp")
    ids = []
    for sender, _mid, wire in messages:
        raw = wire[: -len(b".\r\n")]  # what aiosmtpd hands the handler (still CRLF)
        message = timed(
            lambda raw=raw, sender=sender: inbound_from_mail(
                raw, recipients=SUPPORT, envelope_sender=sender
            ),
            totals,
            "door: inbound_from_mail",
        )
        decision, intake_id = timed(
            lambda m=message: record(rt.db, m), totals, "door: pipeline.record"
        )
        if queue is not None:
            timed(lambda i=intake_id: enqueue_quietly(queue, i), totals, "door: enqueue (RQ)")
        timed(
            lambda m=message, d=decision, i=intake_id: log.info(
                "intake #%s from %s: %s %s", i, m.sender, d.outcome, d.reason
            ),
            totals,
            "door: log.info",
        )
        ids.append(intake_id)
    return ids


def worker_pass(rt: Any, intake_ids: list[int], totals: Totals) -> None:
    """process_intake's two halves, called directly."""
    from intake.jobs.jobs import send_outbox
    from intake.mail.finish import finish_mail
    from intake.pipeline.processing import finish_intake, unsent_outbox_ids

    def finish(intake_id: int) -> list[int]:
        with rt.db.transaction() as session:
            finish_intake(session, rt.settings, rt.policy, intake_id, finish_mail)
            return unsent_outbox_ids(session, intake_id)

    for intake_id in intake_ids:
        outbox_ids = timed(lambda i=intake_id: finish(i), totals, "worker: open request+outbox")
        for outbox_id in outbox_ids:
            timed(lambda o=outbox_id: send_outbox(o), totals, "worker: send_outbox")


def rq_pass(rt: Any, connection: Any, totals: Totals) -> None:
    """A real RQ SimpleWorker draining the queued jobs in burst mode."""
    from intake.jobs.worker import run_worker

    timed(lambda: run_worker(rt, connection, burst=True, cron=False), totals, "RQ worker, burst")


def report(title: str, totals: Totals, count: int) -> None:
    print(f"\n{title}")
    print(f"{'step':<30}{'wall ms/msg':>12}{'CPU ms/msg':>12}")
    for name, (wall, cpu) in totals.items():
        print(f"{name:<30}{wall / count * 1000:>12.3f}{cpu / count * 1000:>12.3f}")
    wall = sum(t[0] for t in totals.values())
    cpu = sum(t[1] for t in totals.values())
    print(
        f"{'total':<30}{wall / count * 1000:>12.3f}{cpu / count * 1000:>12.3f}"
        f"   (one thread: {count / wall:.0f} msgs/s; CPU-bound limit {count / cpu:.0f} msgs/s)"
    )


def profiled(fn: Callable[..., Any], *args: Any) -> str:
    profiler = cProfile.Profile()
    profiler.runcall(fn, *args)
    out = io.StringIO()
    pstats.Stats(profiler, stream=out).sort_stats("cumulative").print_stats(45)
    return out.getvalue()


def build(url: str, workdir: Path, relay_port: int) -> Any:
    from intake.jobs.runtime import build_runtime, install
    from intake.logs import setup_logging
    from intake.settings import load_settings

    settings = load_settings(
        env={"INTAKE_CONFIG": str(CONFIG)},
        overrides={
            "var_dir": str(workdir / "var"),
            "database_url": url,
            "redis_url": REDIS_URL,
            "secret_key": "bench-secret",
            "outbound_smtp_url": f"smtp://127.0.0.1:{relay_port}",
            "ack_limit": "1000000/hour",
        },
    )
    setup_logging(settings.log_level, settings.log_format, "smtp")
    rt = build_runtime(settings)
    install(rt)
    return rt


def run(args: argparse.Namespace, url: str, workdir: Path, log_file: Any) -> None:
    from intake.jobs.queue import make_queue

    with relay() as (recorder, relay_port):
        rt = build(url, workdir, relay_port)
        logging.getLogger().handlers[0].stream = log_file  # same formatting, not the terminal
        connection = redis.Redis.from_url(REDIS_URL)
        queue = make_queue(rt.settings, connection)
        n = args.messages
        worker_pass(rt, door_pass(rt, queue, build_messages(50, "warm"), {}), {})
        flush_redis()

        door: Totals = {}
        door_pass(rt, queue, build_messages(n, "door"), door)
        report(f"door, {n} messages, {args.db}, one thread", door, n)

        rq: Totals = {}
        rq_pass(rt, connection, rq)
        worker: Totals = {}
        worker_pass(rt, door_pass(rt, None, build_messages(n, "worker"), {}), worker)
        report(f"worker job called directly, {n} messages", worker, n)
        report(f"the same jobs run by one RQ SimpleWorker (burst), {n} jobs", rq, n)
        print(f"\nacknowledgments the relay received: {recorder.count()}")
        if args.profile:
            print("\ncProfile of the door's steps:")
            print(profiled(door_pass, rt, None, build_messages(n, "prof"), {}))
            ids = door_pass(rt, None, build_messages(n, "prof-worker"), {})
            print("\ncProfile of the worker's job, called directly:")
            print(profiled(worker_pass, rt, ids, {}))
        connection.close()
        rt.db.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--db", choices=["sqlite", "postgres"], default="sqlite")
    parser.add_argument("--messages", type=int, default=1000)
    parser.add_argument("--profile", action="store_true")
    args = parser.parse_args()
    workdir = Path(tempfile.mkdtemp(prefix="intake-steps-"))
    databases = SqliteDatabases(workdir) if args.db == "sqlite" else PostgresDatabases()
    try:
        with (workdir / "gateway.log").open("w") as log_file:
            databases.prepare()
            flush_redis()
            run(args, databases.fresh(), workdir, log_file)
    finally:
        flush_redis()
        databases.close()
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
