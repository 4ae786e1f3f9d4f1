"""The SMTP door behind a TCP load balancer (INTAKE_SMTP_PROXY_PROTOCOL): each connection's
PROXY header names the client, whose address the caps per address, SPF and the intake log use;
a connection without one is closed unanswered."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import select

from intake.jobs.runtime import Runtime
from intake.mail.smtp import SmtpDoor
from intake.settings import Settings
from intake.store.models import IntakeRecord
from tests.hygiene_support import ADA, SUPPORT, RawSmtp
from tests.test_hostile_smtp import door_for
from tests.test_smtp_conversation import message_bytes

CLIENT = "203.0.113.7"


def proxied(port: int, header: str) -> RawSmtp:
    """A client that starts with ``header``, as a load balancer does, then reads the greeting."""
    client = RawSmtp.__new__(RawSmtp)
    client.sock = socket.create_connection(("127.0.0.1", port), timeout=30)
    client.buffer = b""
    client.send(header.encode())
    client.greeting = client.reply()
    return client


def v1(source: str, source_port: int = 40000) -> str:
    return f"PROXY TCP4 {source} 127.0.0.1 {source_port} 25\r\n"


@contextmanager
def balanced_door(settings: Settings, **values: object) -> Iterator[tuple[SmtpDoor, Runtime]]:
    with door_for(settings.replace(smtp_proxy_protocol=True, **values)) as pair:
        yield pair


def test_the_client_named_by_the_proxy_header_is_the_sender_of_record(
    settings: Settings,
) -> None:
    with balanced_door(settings) as (door, rt):
        client = proxied(door.port, v1(CLIENT))
        assert client.greeting[0] == 220
        assert client.command("EHLO relay.example")[0] == 250
        assert client.command(f"MAIL FROM:<{ADA}>")[0] == 250
        assert client.command(f"RCPT TO:<{SUPPORT}>")[0] == 250
        assert client.command("DATA")[0] == 354
        client.send(message_bytes("Behind the balancer") + b".\r\n")
        assert client.reply()[0] == 250
        client.close()
        with rt.db.sessions() as session:
            (row,) = session.scalars(select(IntakeRecord)).all()
        assert row.auth is not None and row.auth["client_ip"] == CLIENT


def test_the_caps_per_address_count_the_clients_not_the_balancer(settings: Settings) -> None:
    with balanced_door(settings, smtp_max_sessions=5, smtp_max_sessions_per_ip=1) as (door, _):
        first = proxied(door.port, v1(CLIENT))
        again = proxied(door.port, v1(CLIENT, 40001))
        other = proxied(door.port, v1("198.51.100.9"))
        assert first.greeting[0] == 220
        assert again.greeting[0] == 421 and "your address" in again.greeting[1]
        assert other.greeting[0] == 220
        for client in (first, again, other):
            client.close()


def test_a_connection_without_a_header_is_closed_unanswered(settings: Settings) -> None:
    with balanced_door(settings) as (door, _):
        client = proxied(door.port, "EHLO straight.example\r\n")
        assert client.greeting == (0, "")
        health_check = proxied(door.port, "PROXY UNKNOWN\r\n")  # the balancer's own probe
        assert health_check.greeting[0] == 220
        health_check.close()


def test_without_the_setting_a_proxy_line_is_no_command(settings: Settings) -> None:
    with door_for(settings) as (door, _):
        client = RawSmtp(door.port)
        assert client.greeting[0] == 220
        assert client.command(v1(CLIENT).strip())[0] == 500
        client.close()
