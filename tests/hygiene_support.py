"""Support for the mail-hygiene and hostile-input tests: the whole gateway (the real SMTP door,
a burst RQ worker, a real relay), a raw-socket SMTP client, a self-signed certificate, and the
hand-made messages the tests send (DSNs, out-of-office replies, replies to acknowledgments)."""

from __future__ import annotations

import re
import smtplib
import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import make_msgid
from pathlib import Path
from typing import Any

import redis
from sqlalchemy import select

from intake.jobs import runtime
from intake.jobs.batch import enqueue_intakes_quietly
from intake.jobs.queue import make_queue
from intake.jobs.runtime import Runtime, build_runtime
from intake.jobs.worker import run_worker
from intake.mail.smtp import SmtpDoor
from intake.settings import Settings
from intake.store.models import (
    IntakeAttachment,
    IntakeRecord,
    OutboxMessage,
    RequestEvent,
    ServiceRequest,
    UndeliverableAddress,
)
from tests.helpers import Relay, add_contact, free_port, make_mail

SUPPORT = "support@intake.localhost"
ADA = "ada@acme.example"
_LINE_END = re.compile(rb"\r\n|\n|\r(?!\n)")


@dataclass
class Gateway:
    rt: Runtime
    door: SmtpDoor
    relay: Relay
    redis: redis.Redis

    def send(self, message: EmailMessage | bytes, sender: str = ADA, to: str = SUPPORT) -> None:
        with smtplib.SMTP("127.0.0.1", self.door.port, timeout=30) as client:
            client.sendmail(sender, [to], on_the_wire(message))

    def drain(self) -> None:
        """Run burst workers until no intake row waits: a job that failed once comes back
        through RQ's retry schedule, not at once."""
        deadline = time.monotonic() + 30
        run_worker(self.rt, self.redis, burst=True, cron=False)
        while self.all(IntakeRecord, IntakeRecord.state == "pending"):
            assert time.monotonic() < deadline, "intake rows still pending"
            time.sleep(0.05)
            run_worker(self.rt, self.redis, burst=True, cron=False)

    def all(self, model: Any, *where: Any) -> list[Any]:
        with self.rt.db.sessions() as session:
            return list(session.scalars(select(model).where(*where).order_by(model.id)))

    def rows(self) -> list[IntakeRecord]:
        return self.all(IntakeRecord)

    def requests(self) -> list[ServiceRequest]:
        return self.all(ServiceRequest)

    def events(self, request_id: int, kind: str | None = None) -> list[RequestEvent]:
        where = [RequestEvent.request_id == request_id]
        return self.all(RequestEvent, *where, *([RequestEvent.type == kind] if kind else []))

    def outbox(self) -> list[OutboxMessage]:
        return self.all(OutboxMessage)

    def attachments(self, intake_id: int) -> list[IntakeAttachment]:
        return self.all(IntakeAttachment, IntakeAttachment.intake_id == intake_id)

    def undeliverable(self) -> list[UndeliverableAddress]:
        return self.all(UndeliverableAddress)

    def first_request_and_ack(self, subject: str = "Export fails") -> tuple[int, EmailMessage]:
        """Ada opens a request; its id and the acknowledgment the relay got."""
        self.send(make_mail(ADA, subject))
        self.drain()
        request = self.requests()[-1]
        return request.id, self.relay.messages[-1]


def on_the_wire(message: EmailMessage | bytes) -> bytes:
    """The message with CRLF line ends, as an MTA sends it (smtplib leaves bytes as they are)."""
    raw = message if isinstance(message, bytes) else message.as_bytes()
    return _LINE_END.sub(b"\r\n", raw)


@contextmanager
def gateway_for(
    settings: Settings, redis_url: str, relay: Relay, **overrides: Any
) -> Iterator[Gateway]:
    """The gateway on ``settings`` (with ``overrides``), Ada registered at Acme Corp."""
    settings = settings.replace(
        outbound_smtp_url=relay.url,
        redis_url=redis_url,
        smtp_port=free_port(),
        secret_key="test-secret",
        **overrides,
    )
    rt = build_runtime(settings)
    runtime.install(rt)
    connection = redis.Redis.from_url(redis_url)
    queue = make_queue(settings, connection)
    door = SmtpDoor(settings, rt.db, lambda ids: enqueue_intakes_quietly(queue, ids))
    door.start()
    add_contact(rt.db, ADA)
    try:
        yield Gateway(rt, door, relay, connection)
    finally:
        door.stop()
        connection.close()
        rt.db.dispose()


def reply_to(ack: EmailMessage, body: str, **headers: str) -> EmailMessage:
    """Ada's reply to an acknowledgment, threaded as a mail client threads it."""
    reply = make_mail(ADA, "Re: " + str(ack["Subject"]), body)
    reply["In-Reply-To"] = str(ack["Message-ID"])
    reply["References"] = str(ack["Message-ID"])
    for name, value in headers.items():
        del reply[name]
        reply[name] = value
    return reply


def delivery_report(returned: EmailMessage, recipient: str, action: str = "failed") -> bytes:
    """An RFC 3464 DSN from a mail system returning the headers of ``returned``."""
    status = "5.1.1" if action == "failed" else "4.4.7"
    head = "".join(f"{k}: {v}\r\n" for k, v in returned.items())
    return (
        "From: Mail Delivery System <MAILER-DAEMON@mx.acme.example>\r\n"
        f"To: {SUPPORT}\r\nSubject: Undelivered Mail Returned to Sender\r\n"
        f"Message-ID: {make_msgid(domain='mx.acme.example')}\r\nMIME-Version: 1.0\r\n"
        'Content-Type: multipart/report; report-type=delivery-status; boundary="b1"\r\n\r\n'
        "--b1\r\nContent-Type: text/plain\r\n\r\nYour message could not be delivered.\r\n"
        "--b1\r\nContent-Type: message/delivery-status\r\n\r\n"
        "Reporting-MTA: dns; mx.acme.example\r\n\r\n"
        f"Final-Recipient: rfc822; {recipient}\r\nAction: {action}\r\nStatus: {status}\r\n"
        "--b1\r\nContent-Type: text/rfc822-headers\r\n\r\n"
        f"{head}--b1--\r\n"
    ).encode()


class RawSmtp:
    """An SMTP client on a plain socket: sends exactly the bytes given, reads whole replies."""

    def __init__(self, port: int, timeout: float = 30) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        self.buffer = b""
        self.greeting = self.reply()

    def send(self, data: bytes) -> None:
        self.sock.sendall(data)

    def command(self, line: str) -> tuple[int, str]:
        self.send(line.encode() + b"\r\n")
        return self.reply()

    def reply(self) -> tuple[int, str]:
        """One reply (all its lines); (0, "") when the server closed the connection."""
        lines = []
        while True:
            line = self._line()
            if line is None:
                return 0, ""
            lines.append(line)
            if len(line) < 4 or line[3:4] != "-":
                return int(line[:3]), "\n".join(x[4:] for x in lines)

    def _line(self) -> str | None:
        while b"\r\n" not in self.buffer:
            chunk = self.sock.recv(65536)
            if not chunk:
                return None
            self.buffer += chunk
        line, _, self.buffer = self.buffer.partition(b"\r\n")
        return line.decode("utf-8", "replace")

    def close(self) -> None:
        self.sock.close()


def self_signed_certificate(directory: Path) -> tuple[Path, Path]:
    """A throw-away certificate and key for 127.0.0.1, made with the openssl command."""
    cert, key = directory / "cert.pem", directory / "key.pem"
    subprocess.run(
        [
            "openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
            "-subj", "/CN=127.0.0.1", "-keyout", str(key), "-out", str(cert),
        ],
        check=True,
        capture_output=True,
    )  # fmt: skip
    return cert, key
