"""Support for the liveness tests: `intake smtp` and `intake run` as real processes, the
database's write lock held from outside, and SMTP clients that give up or hang up."""

from __future__ import annotations

import contextlib
import os
import smtplib
import socket
import sqlite3
import struct
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy import text
from sqlalchemy.engine import make_url

from intake.settings import Settings
from intake.store.db import make_engine
from tests.helpers import free_port, make_mail, wait_for
from tests.hygiene_support import on_the_wire

SUPPORT = "support@intake.localhost"
ADA = "ada@acme.example"


def process_env(settings: Settings, **more: str) -> dict[str, str]:
    """The environment of an `intake` process on the test's settings."""
    return dict(os.environ) | {
        "INTAKE_CONFIG": settings.config,
        "INTAKE_VAR_DIR": settings.var_dir,
        "INTAKE_DATABASE_URL": settings.database_url,
        "INTAKE_REDIS_URL": settings.redis_url,
        "INTAKE_SECRET_KEY": "liveness-test-secret-of-at-least-32-bytes",
        "INTAKE_SENDER_AUTH": "off",
        **more,
    }


class SmtpProcess:
    """`intake smtp` in a process of its own, its output in a log file."""

    def __init__(self, settings: Settings, log_path: Path, **env: str) -> None:
        self.port = free_port()
        self.env = process_env(settings, INTAKE_SMTP_PORT=str(self.port), **env)
        self.log_path = log_path
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> SmtpProcess:
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "intake", "smtp"],
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        wait_for(lambda: answers(self.port), timeout=60, interval=0.2)
        return self

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.terminate()
        try:
            self.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()

    def log(self) -> str:
        return self.log_path.read_text(encoding="utf-8", errors="replace")


def answers(port: int) -> bool:
    try:
        with smtplib.SMTP("127.0.0.1", port, timeout=2) as client:
            return client.noop()[0] == 250
    except OSError:
        return False


def send(port: int, subject: str, timeout: float = 20) -> tuple[int, bytes]:
    """One message from Ada; the reply to its DATA (a refusal raises, as smtplib does)."""
    raw = on_the_wire(make_mail(ADA, subject))
    with smtplib.SMTP("127.0.0.1", port, timeout=timeout) as client:
        client.ehlo()
        client.mail(ADA)
        client.rcpt(SUPPORT)
        return client.data(raw)


def data_reply(port: int, subject: str, timeout: float = 30) -> tuple[int, float]:
    """The code answering DATA (250, 451, ...) and how long it took, refusals included."""
    started = time.monotonic()
    try:
        code, _ = send(port, subject, timeout)
    except smtplib.SMTPDataError as refused:
        code = refused.smtp_code
    return code, time.monotonic() - started


def hang_up_after_the_dot(port: int, subject: str, *, reset: bool) -> None:
    """A client that sends a whole message and closes the socket before any reply: with a
    FIN, or with a RST (``reset``), as a killed process's socket ends."""
    raw = on_the_wire(make_mail(ADA, subject))
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        reader = sock.makefile("rb")
        reader.readline()  # the greeting
        for command in (b"HELO client.example", f"MAIL FROM:<{ADA}>".encode()):
            sock.sendall(command + b"\r\n")
            reader.readline()
        sock.sendall(f"RCPT TO:<{SUPPORT}>\r\n".encode())
        reader.readline()
        sock.sendall(b"DATA\r\n")
        reader.readline()
        sock.sendall(raw + b"\r\n.\r\n")
        if reset:  # linger on, for zero seconds: close() sends RST
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))


@contextlib.contextmanager
def write_lock(database_url: str) -> Iterator[None]:
    """Hold the write lock that storing mail needs, from another connection, until the block
    ends: SQLite's database lock (BEGIN IMMEDIATE), or PostgreSQL's lock on the intake table
    (readers still pass, writers wait)."""
    url = make_url(database_url)
    if url.get_backend_name() == "sqlite":
        conn = sqlite3.connect(str(url.database), isolation_level=None, timeout=30)
        try:
            conn.execute("BEGIN IMMEDIATE")
            yield
            conn.execute("ROLLBACK")
        finally:
            conn.close()
        return
    engine = make_engine(database_url)
    try:
        with engine.begin() as pg:
            pg.execute(text("LOCK TABLE intake_log IN EXCLUSIVE MODE"))
            yield
    finally:
        engine.dispose()


@dataclass
class Timed:
    """A send run in a thread: when it finished and how."""

    port: int
    subject: str
    timeout: float
    code: int = 0
    error: str = ""
    done_at: float = 0.0
    started_at: float = field(default_factory=time.monotonic)
    thread: threading.Thread = field(init=False)

    @property
    def took(self) -> float:
        return self.done_at - self.started_at

    def __post_init__(self) -> None:
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        try:
            self.code, _ = send(self.port, self.subject, self.timeout)
        except smtplib.SMTPDataError as refused:
            self.code = refused.smtp_code
        except (OSError, smtplib.SMTPException) as exc:
            self.error = repr(exc)
        self.done_at = time.monotonic()

    def join(self) -> Timed:
        self.thread.join(self.timeout + 5)
        return self


def log_problems(text: str) -> list[str]:
    """Each traceback (or InvalidStateError) in a process's log, with the lines that follow."""
    lines = text.splitlines()
    marks = [n for n, line in enumerate(lines) if "Traceback" in line or "InvalidState" in line]
    return ["\n".join(lines[max(0, n - 1) : n + 25]) for n in marks]
