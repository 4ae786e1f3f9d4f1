"""`intake smtp --processes N`: N listeners on the one port, every message taken in by one of
them, a killed listener replaced, and all of them stopped with the command."""

from __future__ import annotations

import os
import signal
import smtplib
import socket
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import redis
from click.testing import CliRunner
from sqlalchemy import func, select

from intake.cli import cli
from intake.ops.health import heartbeats
from intake.settings import Settings
from intake.store.db import Database
from intake.store.models import IntakeRecord
from tests.helpers import add_contact, free_port, wait_for
from tests.liveness_support import ADA, SmtpProcess, answers, process_env, send
from tests.test_liveness import RunProcess


def listener_pids(parent: int) -> list[int]:
    """The processes the command started (Linux lists a thread's children in /proc)."""
    children = Path(f"/proc/{parent}/task/{parent}/children")
    return sorted(int(p) for p in children.read_text().split()) if children.exists() else []


def listeners_with_mail(connection: redis.Redis, pids: list[int]) -> set[int]:
    """Which of ``pids`` have recorded a batch, by their heartbeats."""
    found = set()
    for beat in heartbeats(connection).get("smtp", []):
        pid = int(str(beat["instance"]).rsplit(" ", 1)[-1])
        if pid in pids and beat["detail"].get("last_batch_at"):
            found.add(pid)
    return found


def accepted(db: Database) -> int:
    with db.sessions() as session:
        count = session.scalar(select(func.count()).where(IntakeRecord.outcome == "accepted"))
    return int(count or 0)


def test_two_listeners_share_the_port_and_a_killed_one_is_replaced(
    settings: Settings, db: Database, redis_url: str, tmp_path: Path
) -> None:
    add_contact(db, ADA)
    settings = settings.replace(redis_url=redis_url)
    connection = redis.Redis.from_url(redis_url)
    door = SmtpProcess(settings, tmp_path / "smtp.log", INTAKE_SMTP_PROCESSES="2").start()
    assert door.process is not None
    parent = door.process.pid
    try:
        wait_for(lambda: len(listener_pids(parent)) == 2, timeout=30)
        first = listener_pids(parent)
        # Each message in a connection of its own: the kernel spreads them over both.
        assert [send(door.port, f"Export fails, case {n}")[0] for n in range(40)] == [250] * 40
        wait_for(lambda: listeners_with_mail(connection, first) == set(first), timeout=15)

        os.kill(first[0], signal.SIGKILL)
        wait_for(lambda: len(set(listener_pids(parent)) - {first[0]}) == 2, timeout=30)
        wait_for(lambda: answers(door.port), timeout=30)
        assert [send(door.port, f"Import fails, case {n}")[0] for n in range(20)] == [250] * 20
        assert accepted(db) == 60
        assert "smtp 1 exited with code -9; restarting it" in door.log()
        second = listener_pids(parent)
    finally:
        door.stop()
    assert door.process.returncode == 0
    assert not answers(door.port)
    assert not [pid for pid in second if Path(f"/proc/{pid}").exists() and _running(pid)]


def _running(pid: int) -> bool:
    status = Path(f"/proc/{pid}/status").read_text()
    return "State:\tZ" not in status


def test_processes_need_a_fixed_port(settings: Settings) -> None:
    result = CliRunner().invoke(
        cli, ["smtp", "--processes", "2", "--port", "0"], env=process_env(settings)
    )
    assert result.exit_code == 2
    assert "--processes needs a fixed port" in result.output


def test_a_port_in_use_is_one_sentence_before_any_listener_starts(settings: Settings) -> None:
    port = free_port()
    with socket.create_server(("127.0.0.1", port)):  # another program holds the port
        result = subprocess.run(
            [sys.executable, "-m", "intake", "smtp", "--processes", "2", "--port", str(port)],
            env=process_env(settings),
            check=False,
            capture_output=True,
            text=True,
            timeout=60,
        )
    assert result.returncode == 1
    assert f"The SMTP port 127.0.0.1:{port} is in use by another process" in result.stderr
    assert "Traceback" not in result.stderr


def test_the_default_suits_the_database() -> None:
    on_sqlite = Settings(database_url="sqlite:///var/intake.db")
    assert on_sqlite.smtp_process_count == 1  # one writer at a time
    on_postgres = Settings(database_url="postgresql+psycopg://h/db")
    assert on_postgres.smtp_process_count == min(8, os.cpu_count() or 1)
    assert replace(on_sqlite, smtp_processes=3).smtp_process_count == 3


def test_intake_run_starts_the_listeners_that_suit_the_database(
    settings: Settings, db: Database, redis_url: str, tmp_path: Path
) -> None:
    """One on SQLite; on PostgreSQL one per core (two on a machine of two), sharing the port."""
    add_contact(db, ADA)
    settings = settings.replace(redis_url=redis_url)
    gateway = RunProcess(settings, tmp_path)
    try:
        wait_for(lambda: answers(gateway.smtp_port), timeout=90, interval=0.5)
        listeners = [p for p in listener_pids(gateway.process.pid) if _is_smtp(p)]
        assert len(listeners) == settings.smtp_process_count
        replies = [send(gateway.smtp_port, f"Export fails, case {n}")[0] for n in range(20)]
        assert replies == [250] * 20
        wait_for(lambda: accepted(db) == 20, timeout=15)
    finally:
        output = gateway.stop()
    assert gateway.process.returncode == 0, output


def _is_smtp(pid: int) -> bool:
    arguments = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    return b"smtp" in arguments


def test_the_listeners_take_the_settings_file_named_on_the_command_line(
    settings: Settings, redis_url: str, tmp_path: Path
) -> None:
    config = tmp_path / "gateway.toml"
    config.write_text('smtp_hostname = "gateway.example"\n')
    port = free_port()
    env = process_env(settings.replace(redis_url=redis_url), INTAKE_SMTP_PORT=str(port))
    del env["INTAKE_CONFIG"]
    command = [sys.executable, "-m", "intake", "--config", str(config), "smtp", "--processes", "2"]
    with (tmp_path / "smtp.log").open("ab") as log:
        door = subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        wait_for(lambda: len(listener_pids(door.pid)) == 2, timeout=30)
        wait_for(lambda: answers(port), timeout=60, interval=0.2)
        for _ in range(6):  # connections land on either listener
            with smtplib.SMTP("127.0.0.1", port, timeout=10) as client:
                code, banner = client.ehlo()
            assert code == 250 and banner.startswith(b"gateway.example")
    finally:
        door.terminate()
        door.wait(timeout=30)
