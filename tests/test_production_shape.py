"""The production shape on one machine: `intake smtp --processes 2`, two `intake worker`
processes and `intake web` on PostgreSQL and Redis. Mail comes in through both listeners while
one listener and one worker are killed with SIGKILL; every message that got its 250 is in the
intake log once, opens one request and is acknowledged once at the relay."""

from __future__ import annotations

import os
import signal
import smtplib
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import func, select

from intake.settings import Settings, load_settings
from intake.store.db import Database
from intake.store.models import IntakeRecord, OutboxMessage, ServiceRequest
from tests.conftest import ROOT, empty_postgres
from tests.dns_server import LocalDns
from tests.helpers import Relay, add_contact, free_port, make_mail, wait_for
from tests.liveness_support import ADA, SmtpProcess, process_env
from tests.test_durability import WorkerProcess
from tests.test_liveness import health
from tests.test_smtp_processes import listener_pids

pytestmark = [pytest.mark.postgres, pytest.mark.slow, pytest.mark.timeout(300)]

MESSAGES = 240
SENDERS = 6


@pytest.fixture
def shape_settings(
    postgres_url: str, redis_url: str, relay: Relay, local_dns: LocalDns, tmp_path: Path
) -> Settings:
    empty_postgres(postgres_url)
    return load_settings(
        env={"INTAKE_CONFIG": str(ROOT / "config" / "intake.toml")},
        overrides={
            "var_dir": str(tmp_path / "var"),
            "database_url": postgres_url,
            "redis_url": redis_url,
            "outbound_smtp_url": relay.url,
            "dns_resolver": local_dns.address,
            "secret_key": "production-shape-secret-of-at-least-32-bytes",
            "ack_limit": "10000/hour",  # one sender writes all of it
        },
    )


class WebProcess:
    def __init__(self, settings: Settings, log: Path) -> None:
        self.port = free_port()
        env = process_env(settings, INTAKE_WEB_PORT=str(self.port))
        with log.open("ab") as out:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "intake", "web"], env=env, stdout=out, stderr=out
            )

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(timeout=20)


Shape = tuple[SmtpProcess, list[WorkerProcess], WebProcess]


@pytest.fixture
def shape(
    shape_settings: Settings, tmp_path: Path
) -> Iterator[tuple[SmtpProcess, list[WorkerProcess], WebProcess]]:
    db = Database(shape_settings.database_url)
    add_contact(db, ADA)
    db.dispose()
    smtp = SmtpProcess(
        shape_settings,
        tmp_path / "smtp.log",
        INTAKE_SMTP_PROCESSES="2",
        INTAKE_ACK_LIMIT="10000/hour",
        INTAKE_SMTP_MAX_SESSIONS_PER_IP="100",
    ).start()
    workers = [WorkerProcess(shape_settings) for _ in range(2)]
    for worker in workers:
        worker.env["INTAKE_ACK_LIMIT"] = "10000/hour"  # one sender writes all of it
        worker.start()
    web = WebProcess(shape_settings, tmp_path / "web.log")
    try:
        yield smtp, workers, web
    finally:
        web.stop()
        for worker in workers:
            worker.stop()
        smtp.stop()


def test_every_message_250d_is_recorded_once_and_acknowledged_once_through_kills(
    shape: Shape,
    shape_settings: Settings,
    relay: Relay,
) -> None:
    smtp, workers, web = shape
    assert smtp.process is not None
    wait_for(lambda: len(listener_pids(smtp.process.pid)) == 2, timeout=30)
    accepted: list[str] = []
    lock = threading.Lock()
    numbers = iter(range(MESSAGES))

    def sender() -> None:
        for number in numbers:  # the iterator is shared: each message is sent once
            subject = f"Export fails, case {number:04d}"
            try:
                with smtplib.SMTP("127.0.0.1", smtp.port, timeout=30) as client:
                    client.send_message(make_mail(ADA, subject))
            except (OSError, smtplib.SMTPException):
                continue  # no 250: a real relay would send it again later
            with lock:
                accepted.append(subject)

    threads = [threading.Thread(target=sender) for _ in range(SENDERS)]
    for thread in threads:
        thread.start()
    wait_for(lambda: len(accepted) >= MESSAGES // 3, timeout=120)
    os.kill(listener_pids(smtp.process.pid)[0], signal.SIGKILL)
    workers[0].kill()
    for thread in threads:
        thread.join(timeout=240)
    assert len(accepted) >= MESSAGES * 3 // 4, "most messages should get through"

    db = Database(shape_settings.database_url)
    try:
        rows = _subjects_of_rows(db)
        assert all(count == 1 for count in rows.values()), "a message recorded twice"
        assert set(accepted) <= set(rows), "a message that got its 250 is missing"
        # Every row opens one request and is acknowledged, the killed worker's jobs included.
        wait_for(lambda: _acknowledged(relay) >= set(rows), timeout=120, interval=0.5)
        with db.sessions() as session:
            requests = session.scalar(select(func.count()).select_from(ServiceRequest))
            acks = session.scalar(
                select(func.count())
                .select_from(OutboxMessage)
                .where(OutboxMessage.purpose == "acknowledgment")
            )
        assert requests == acks == len(rows)
    finally:
        db.dispose()
    time.sleep(3)  # a few sweeps more: nothing may be sent again
    deliveries = Counter(_acknowledged_subject(m) for m in relay.messages)
    # A worker killed between the relay's 250 and its own commit sends that one again.
    print(
        f"\n{len(accepted)} of {MESSAGES} messages got their 250; {len(rows)} rows; "
        f"{sum(deliveries.values())} acknowledgments delivered, {len(deliveries)} distinct"
    )
    assert sum(deliveries.values()) - len(deliveries) <= 1, deliveries.most_common(3)
    status = wait_for(lambda: (health(web.port) or {}).get("status"), timeout=30)
    assert status in ("ok", "degraded")


def _subjects_of_rows(db: Database) -> Counter[str]:
    with db.sessions() as session:
        subjects = session.scalars(
            select(IntakeRecord.subject).where(IntakeRecord.outcome == "accepted")
        ).all()
    return Counter(subjects)


def _acknowledged(relay: Relay) -> set[str]:
    return {_acknowledged_subject(m) for m in list(relay.messages)}


def _acknowledged_subject(message: object) -> str:
    return str(message["Subject"]).split("Received: ", 1)[-1]  # type: ignore[index]
