"""Fault injection for the promises about loss: Redis stopped while mail arrives, and a worker
killed with SIGKILL while it is sending. Real processes, real Redis, real relay."""

from __future__ import annotations

import os
import signal
import smtplib
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from intake.jobs import runtime
from intake.jobs.batch import enqueue_intakes_quietly
from intake.jobs.queue import make_queue
from intake.jobs.runtime import build_runtime
from intake.mail.smtp import SmtpDoor
from intake.settings import Settings
from tests.helpers import PrivateRedis, Relay, add_contact, free_port, make_mail, wait_for

pytestmark = pytest.mark.slow


class WorkerProcess:
    """`intake worker` in a process of its own."""

    def __init__(self, settings: Settings) -> None:
        self.env = dict(os.environ) | {
            "INTAKE_CONFIG": settings.config,
            "INTAKE_VAR_DIR": settings.var_dir,
            "INTAKE_DATABASE_URL": settings.database_url,
            "INTAKE_REDIS_URL": settings.redis_url,
            "INTAKE_OUTBOUND_SMTP_URL": settings.outbound_smtp_url,
            "INTAKE_SECRET_KEY": settings.secret_key,
            "INTAKE_SWEEP_INTERVAL": "1",
            "INTAKE_JOB_TIMEOUT": "3",
        }
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.process = subprocess.Popen([sys.executable, "-m", "intake", "worker"], env=self.env)

    def kill(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        self.process.wait()

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.kill()


@pytest.fixture
def private_redis(tmp_path: Path) -> Iterator[PrivateRedis]:
    server = PrivateRedis(tmp_path)
    server.start()
    yield server
    if server.process and server.process.poll() is None:
        server.kill()


@pytest.fixture
def parts(
    settings: Settings, private_redis: PrivateRedis, relay: Relay
) -> Iterator[tuple[Settings, SmtpDoor, WorkerProcess]]:
    settings = settings.replace(
        redis_url=private_redis.url,
        outbound_smtp_url=relay.url,
        smtp_port=free_port(),
        secret_key="durable-secret-of-at-least-32-bytes",
        sweep_interval=1,
        job_timeout=3,
    )
    rt = build_runtime(settings)
    runtime.install(rt)
    add_contact(rt.db, "ada@acme.example")
    queue = make_queue(settings, redis.Redis.from_url(settings.redis_url))
    door = SmtpDoor(settings, rt.db, lambda ids: enqueue_intakes_quietly(queue, ids))
    door.start()
    worker = WorkerProcess(settings)
    yield settings, door, worker
    worker.stop()
    door.stop()
    rt.db.dispose()


def _send(door: SmtpDoor, subject: str) -> None:
    with smtplib.SMTP("127.0.0.1", door.port, timeout=30) as client:
        client.send_message(make_mail("ada@acme.example", subject))


def test_a_redis_outage_delays_acknowledgments_but_loses_none(
    parts: tuple[Settings, SmtpDoor, WorkerProcess], private_redis: PrivateRedis, relay: Relay
) -> None:
    _settings, door, worker = parts
    worker.start()
    private_redis.kill()
    for n in range(3):
        _send(door, f"Export fails {n}")  # 250: the database has it, though Redis is gone
    private_redis.start()  # back, and empty: every queued job is lost
    wait_for(lambda: len(relay.messages) >= 3, timeout=60)
    time.sleep(3)  # a few more sweeps: nothing may arrive twice
    subjects = sorted(str(m["Subject"]) for m in relay.messages)
    assert subjects == [
        f"[SR-00000{i}] Received: Export fails {i - 1}" for i in (1, 2, 3)
    ] or sorted(s.split("] ", 1)[1] for s in subjects) == [
        f"Received: Export fails {n}" for n in range(3)
    ]
    assert len(relay.messages) == 3


def test_a_worker_killed_while_sending_sends_once_after_restart(
    parts: tuple[Settings, SmtpDoor, WorkerProcess], relay: Relay
) -> None:
    _settings, door, worker = parts
    relay.handler.delay = 4.0  # the relay holds its answer; the worker waits inside DATA
    worker.start()
    _send(door, "Export fails")
    time.sleep(2.5)
    worker.kill()
    assert relay.messages == []
    relay.handler.delay = 0.0
    worker.start()  # a fresh worker; the sweep finds the dead worker's job and sends again
    wait_for(lambda: len(relay.messages) >= 1, timeout=60)
    time.sleep(3)
    assert len(relay.messages) == 1


def _children_of(pid: int) -> list[int]:
    children = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            children.append(int(stat.parent.name))
    return children


def test_a_relay_that_says_try_later_gets_the_acknowledgment_again(
    parts: tuple[Settings, SmtpDoor, WorkerProcess], relay: Relay
) -> None:
    _settings, door, worker = parts
    relay.handler.refuse_with, relay.handler.refusals_left = "451 4.3.0 try again later", 2
    worker.start()
    _send(door, "Export fails")
    wait_for(lambda: len(relay.messages) >= 1, timeout=60)  # RQ's retries with backoff
    time.sleep(2)
    assert len(relay.messages) == 1
    assert relay.handler.refusals_left == 0
    # The worker forks nothing: a child would inherit its database connections.
    assert worker.process is not None and _children_of(worker.process.pid) == []
