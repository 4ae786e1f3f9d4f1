"""No client behaviour and no database lock can stop the SMTP door, and a door that is alive but
stuck is seen by /api/health and restarted by `intake run`. Real processes (`intake smtp`,
`intake run`), real SQLite and PostgreSQL locks, real clients that give up or hang up."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import smtplib
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
from sqlalchemy import func, select

from intake.accounts.credentials import add_staff
from intake.mail.smtp import SmtpDoor
from intake.ops.health import record_heartbeat
from intake.ops.liveness import read_report
from intake.settings import Settings
from intake.store.db import Database
from intake.store.models import IntakeRecord
from tests.helpers import PrivateRedis, add_contact, free_port, wait_for
from tests.hygiene_support import SUPPORT, RawSmtp
from tests.liveness_support import (
    ADA,
    SmtpProcess,
    Timed,
    data_reply,
    hang_up_after_the_dot,
    log_problems,
    process_env,
    send,
    write_lock,
)
from tests.web_support import PASSWORD, sign_in
from web import create_app

pytestmark = pytest.mark.slow

STORAGE_TIMEOUT = 5


@pytest.fixture
def prepared(settings: Settings, redis_url: str) -> Settings:
    """The test's settings with its Redis, and Ada registered."""
    settings = settings.replace(redis_url=redis_url)
    db = Database.from_settings(settings)
    add_contact(db, ADA)
    db.dispose()
    return settings


@pytest.fixture
def door(prepared: Settings, tmp_path: Path) -> Iterator[SmtpProcess]:
    smtp = SmtpProcess(prepared, tmp_path / "smtp.log").start()
    yield smtp
    smtp.stop()


def rows(settings: Settings) -> int:
    db = Database.from_settings(settings)
    try:
        with db.sessions() as session:
            return int(session.scalar(select(func.count()).select_from(IntakeRecord)) or 0)
    finally:
        db.dispose()


def test_a_client_giving_up_during_a_lock_leaves_the_door_answering(
    door: SmtpProcess, prepared: Settings
) -> None:
    # The reproduction: the write lock held for 8 s, a client giving up after 2 s.
    with write_lock(prepared.database_url):
        locked_at = time.monotonic()
        with pytest.raises((OSError, smtplib.SMTPException)):
            send(door.port, "Given up", timeout=2)
        time.sleep(max(0.0, locked_at + 6.5 - time.monotonic()))
        during = Timed(door.port, "Sent while locked", timeout=20)  # waits for the lock
        time.sleep(max(0.0, locked_at + 8 - time.monotonic()))
    released_at = time.monotonic()
    during.join()
    assert (during.code, during.error) == (250, "")
    since_release = during.done_at - released_at
    print(
        f"\n{door.env['INTAKE_DATABASE_URL'].split(':')[0]}: 250 came {since_release:.3f} s "
        "after the lock's release"
    )
    assert since_release < 1.0
    assert send(door.port, "After the lock")[0] == 250
    assert door.process is not None and door.process.poll() is None
    assert log_problems(door.log()) == []


def test_replies_during_a_long_lock_do_not_queue_behind_each_other(
    door: SmtpProcess, prepared: Settings
) -> None:
    with write_lock(prepared.database_url):
        senders = []
        for n in range(5):  # arriving one after another, as a relay's retries do
            senders.append(Timed(door.port, f"Locked out {n}", timeout=40))
            time.sleep(0.5)
        for sender in senders:
            sender.join()
        assert [(s.code, s.error) for s in senders] == [(451, "")] * 5
    code, took = data_reply(door.port, "Unlocked")
    assert code == 250 and took < STORAGE_TIMEOUT
    print(f"\n451s during a lock came after {', '.join(f'{s.took:.2f}' for s in senders)} s")
    assert all(s.took < STORAGE_TIMEOUT + 1.5 for s in senders)  # not 5, 10, 15, ... s


def test_clients_hanging_up_after_the_dot_never_stop_the_door(
    door: SmtpProcess, prepared: Settings
) -> None:
    replies: list[int] = []
    stop = threading.Event()

    def steady_sender(name: str) -> None:
        while not stop.is_set():
            replies.append(send(door.port, f"Steady {name} {len(replies)}", timeout=20)[0])

    steady = [threading.Thread(target=steady_sender, args=(n,)) for n in "ab"]
    for thread in steady:
        thread.start()
    try:
        for n in range(100):
            hang_up_after_the_dot(door.port, f"Hung up {n}", reset=n % 2 == 1)
    finally:
        stop.set()
        for thread in steady:
            thread.join(30)
    assert replies and set(replies) == {250}
    assert send(door.port, "After the hang-ups", timeout=10)[0] == 250
    assert rows(prepared) >= len(replies) + 1
    assert log_problems(door.log()) == []


def test_redis_unreachable_after_a_commit_still_answers_250(
    prepared: Settings, tmp_path: Path
) -> None:
    # The hand-over to the workers fails for every message; the door goes on and the rows wait.
    dead = PrivateRedis(tmp_path)
    dead.start()
    smtp = SmtpProcess(prepared.replace(redis_url=dead.url), tmp_path / "smtp.log").start()
    try:
        dead.kill()
        assert [send(smtp.port, f"No Redis {n}")[0] for n in range(3)] == [250] * 3
        # The door's gatherer hands the rows on after the 250s, in its own thread.
        wait_for(lambda: "could not enqueue intake rows" in smtp.log())
    finally:
        smtp.stop()
    assert rows(prepared) == 3


def test_a_failing_post_commit_callback_never_stops_the_recorder(prepared: Settings) -> None:
    handed: list[list[int]] = []

    def refuse(ids: list[int]) -> None:
        handed.append(ids)
        raise ConnectionError("the queue refused the rows")

    settings = prepared.replace(smtp_port=free_port())
    db = Database.from_settings(settings)
    smtp = SmtpDoor(settings, db, refuse)
    smtp.start()
    try:
        assert [send(smtp.port, f"Callback {n}")[0] for n in range(3)] == [250] * 3
        progress = wait_for(lambda: (p := smtp.recorder.progress()).waiting == 0 and p)
        assert progress.alive and progress.last_batch_at is not None and not progress.last_error
    finally:
        smtp.stop()
        db.dispose()
    assert sum(len(ids) for ids in handed) == 3


def health(web_port: int) -> dict[str, object] | None:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{web_port}/api/health", timeout=2) as r:
            body: dict[str, object] = json.load(r)
    except urllib.error.HTTPError as answered:
        body = json.load(answered)
    except OSError:
        return None
    return body


class RunProcess:
    """`intake run` with its stderr read line by line, each line's arrival time kept."""

    def __init__(self, settings: Settings, home: Path, **env: str) -> None:
        self.smtp_port, self.web_port = free_port(), free_port()
        environment = process_env(
            settings,
            INTAKE_SMTP_PORT=str(self.smtp_port),
            INTAKE_WEB_PORT=str(self.web_port),
            **env,
        )
        self.process = subprocess.Popen(
            [sys.executable, "-m", "intake", "run"],
            cwd=home,
            env=environment,
            stderr=subprocess.PIPE,
            text=True,
        )
        self.lines: list[tuple[float, str]] = []
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self) -> None:
        assert self.process.stderr is not None
        for line in self.process.stderr:
            self.lines.append((time.monotonic(), line))

    def said(self, words: str) -> float | None:
        return next((at for at, line in self.lines if words in line), None)

    def stop(self) -> str:
        self.process.send_signal(2)
        self.process.wait(timeout=40)
        self.reader.join(5)
        return "".join(line for _, line in self.lines)


@pytest.fixture
def gateway(prepared: Settings, tmp_path: Path) -> Iterator[RunProcess]:
    run = RunProcess(
        prepared,
        tmp_path,
        # The lock below outlasts the stall threshold: the door waits on it, alive but stuck.
        INTAKE_STORAGE_TIMEOUT="60",
        INTAKE_SMTP_PROCESSES="1",  # one listener, whose restarts the tests follow
        INTAKE_STALL_SECONDS="3",
    )
    try:
        wait_for(lambda: (health(run.web_port) or {}).get("status") == "ok", timeout=90)
        wait_for(lambda: send_ok(run.smtp_port), timeout=60, interval=0.5)
        yield run
    finally:
        output = run.stop()
        assert run.process.returncode == 0, output


def send_ok(port: int) -> bool:
    try:
        return send(port, "Warming up", timeout=10)[0] == 250
    except (OSError, smtplib.SMTPException):
        return False


def test_a_stuck_door_is_reported_and_restarted_by_intake_run(
    gateway: RunProcess, prepared: Settings
) -> None:
    stalled_health: list[dict[str, object]] = []
    with write_lock(prepared.database_url):
        stuck_since = time.monotonic()
        blocked = Timed(gateway.smtp_port, "Blocked by the lock", timeout=60)

        seen: list[object] = []

        def stalled() -> bool:
            body = health(gateway.web_port) or {}
            seen.append(body)
            if body.get("status") == "degraded":
                stalled_health.append(body)
            return bool(stalled_health)

        try:
            wait_for(stalled, timeout=30, interval=0.2)
        except AssertionError:
            raise AssertionError(f"last health: {seen[-3:]}; log: {gateway.lines}") from None
        detected_at = time.monotonic()
        restarted_at = wait_for(lambda: gateway.said("smtp is stuck"), timeout=30)
    blocked.join()
    body = stalled_health[0]
    assert body["components"]["smtp"]["status"] == "stalled"  # type: ignore[index]
    assert any("smtp is stalled" in r and "waiting" in r for r in body["reasons"])  # type: ignore[attr-defined]
    assert blocked.code != 250  # its session ended with the stuck process
    wait_for(lambda: send_ok(gateway.smtp_port), timeout=60, interval=0.2)
    print(
        f"\nstuck to /api/health degraded: {detected_at - stuck_since:.2f} s; "
        f"stuck to restart: {restarted_at - stuck_since:.2f} s; "
        f"stuck to a 250 from the new process: {time.monotonic() - stuck_since:.2f} s"
    )
    wait_for(lambda: (health(gateway.web_port) or {}).get("status") == "ok", timeout=30)
    assert os.path.exists(Path(prepared.var_dir) / "run" / "smtp.liveness")


def test_under_systemd_the_door_says_ready_and_feeds_the_watchdog(
    prepared: Settings, tmp_path: Path
) -> None:
    address = str(tmp_path / "notify.sock")
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as listener:
        listener.bind(address)
        listener.settimeout(30)
        smtp = SmtpProcess(prepared, tmp_path / "smtp.log", NOTIFY_SOCKET=address).start()
        try:
            said = [listener.recv(64) for _ in range(3)]
        finally:
            smtp.stop()
    assert said == [b"READY=1", b"WATCHDOG=1", b"WATCHDOG=1"]


def test_the_dashboard_and_the_api_show_a_stalled_door(
    settings: Settings, db: Database, redis_client: redis.Redis
) -> None:
    add_staff(db, "alice", PASSWORD)
    app = create_app(settings.replace(secret_key="k"), db=db, redis_client=redis_client)
    stalled = "3 message(s) waiting for 14 s with no batch stored for over 10 s"
    detail = {"waiting": 3, "oldest_wait_seconds": 14.2, "last_batch_at": None}
    record_heartbeat(redis_client, "smtp", "mx1:2525", detail | {"stalled": stalled})
    client = app.test_client()

    answer = client.get("/api/health")
    assert sign_in(client, "alice").status_code == 302
    page = client.get("/").get_data(as_text=True)

    assert answer.status_code == 503 and answer.json is not None
    assert answer.json["status"] == "degraded"
    assert answer.json["reasons"] == [f"smtp is stalled: mx1:2525: {stalled}"]
    assert '<span class="badge stalled">stalled</span>' in page
    assert stalled in page and "3 for 14.2 s" in page


def resident_bytes(pid: int) -> int:
    status = Path(f"/proc/{pid}/status").read_text(encoding="ascii")
    kib = next(line.split()[1] for line in status.splitlines() if line.startswith("VmRSS:"))
    return int(kib) * 1024


def test_data_held_open_by_many_sessions_stays_under_the_cap(
    prepared: Settings, tmp_path: Path
) -> None:
    # 20 sessions each sending 4 MiB of DATA without the final dot: 80 MiB offered, 10 allowed.
    smtp = SmtpProcess(
        prepared,
        tmp_path / "smtp.log",
        INTAKE_MAX_MESSAGE_SIZE=str(5 * 2**20),
        INTAKE_SMTP_MAX_DATA_IN_FLIGHT=str(10 * 2**20),
        INTAKE_SMTP_MAX_SESSIONS_PER_IP="50",
    ).start()
    assert smtp.process is not None
    before = resident_bytes(smtp.process.pid)
    chunk = b"x" * 998 + b"\r\n"
    clients = []
    try:
        for _ in range(20):
            client = RawSmtp(smtp.port)
            for line in ("EHLO client.example", f"MAIL FROM:<{ADA}>", f"RCPT TO:<{SUPPORT}>"):
                client.command(line)
            clients.append((client, client.command("DATA")[0]))
            with contextlib.suppress(OSError):  # a session over the cap is closed mid-send
                client.send(chunk * (4 * 2**10))
        time.sleep(1)
        grown = resident_bytes(smtp.process.pid) - before
        assert send(smtp.port, "Still answering")[0] == 250
    finally:
        for client, _ in clients:
            client.close()
        smtp.stop()
    print(f"\nresident memory grew by {grown / 2**20:.1f} MiB for 80 MiB of DATA offered")
    assert grown < 40 * 2**20
    assert [code for _, code in clients].count(354) >= 2


def test_a_frozen_door_that_stops_reporting_is_restarted_by_intake_run(
    gateway: RunProcess, prepared: Settings
) -> None:
    report = wait_for(lambda: read_report(Path(prepared.var_dir) / "run" / "smtp.liveness"))
    os.kill(report.pid, signal.SIGSTOP)  # alive, holding its port, doing nothing
    frozen_at = time.monotonic()
    restarted_at = wait_for(lambda: gateway.said("smtp is stuck (no liveness report"), timeout=30)
    print(f"\nfrozen to restart: {restarted_at - frozen_at:.2f} s")
    assert restarted_at - frozen_at >= 3  # INTAKE_STALL_SECONDS: no restart before
    wait_for(lambda: send_ok(gateway.smtp_port), timeout=60, interval=0.2)
    liveness_file = Path(prepared.var_dir) / "run" / "smtp.liveness"
    wait_for(lambda: (new := read_report(liveness_file)) is not None and new.pid != report.pid)


def test_a_door_stuck_again_and_again_is_waited_out_not_a_stop_of_the_gateway(
    gateway: RunProcess, prepared: Settings
) -> None:
    stop = threading.Event()

    def keep_sending() -> None:  # each restart ends the session; a relay sends again
        while not stop.is_set():
            with contextlib.suppress(OSError, smtplib.SMTPException):
                send(gateway.smtp_port, "Sent again and again", timeout=60)
            time.sleep(0.2)

    sender = threading.Thread(target=keep_sending, daemon=True)
    with write_lock(prepared.database_url):
        sender.start()
        wait_for(lambda: gateway.said("waiting before another restart"), timeout=120)
        restarts = sum("smtp is stuck (" in line for _, line in gateway.lines)
        assert gateway.process.poll() is None and restarts >= 4
    stop.set()
    wait_for(lambda: send_ok(gateway.smtp_port), timeout=60, interval=0.2)
    wait_for(lambda: (health(gateway.web_port) or {}).get("status") == "ok", timeout=30)
    sender.join(70)
