"""The SMTP conversation as a well-kept MTA holds it, and the door's caps: raw-socket clients
and smtplib against the real door, on SQLite and PostgreSQL."""

from __future__ import annotations

import re
import smtplib
import socket
import time
from collections.abc import Iterator

import pytest
from sqlalchemy import select

from intake.errors import ConfigError
from intake.jobs.runtime import Runtime
from intake.mail.smtp import SmtpDoor
from intake.settings import Settings, load_settings
from intake.store.models import IntakeRecord
from tests.conftest import ROOT
from tests.helpers import Relay, make_mail, wait_for
from tests.hygiene_support import ADA, SUPPORT, RawSmtp, gateway_for, on_the_wire
from tests.test_hostile_smtp import door_for

pytestmark = pytest.mark.timeout(120)
ENHANCED = re.compile(r"^[245]\.\d{1,3}\.\d{1,3} ")


@pytest.fixture
def door(settings: Settings) -> Iterator[tuple[SmtpDoor, Runtime]]:
    with door_for(settings.replace(smtp_hostname="mx.intake.test")) as pair:
        yield pair


def rows(rt: Runtime) -> list[IntakeRecord]:
    with rt.db.sessions() as session:
        return list(session.scalars(select(IntakeRecord).order_by(IntakeRecord.id)))


def message_bytes(subject: str, size: int = 0) -> bytes:
    return on_the_wire(make_mail(ADA, subject, size=size))


def test_the_greeting_names_the_set_host_and_no_software(
    door: tuple[SmtpDoor, Runtime],
) -> None:
    client = RawSmtp(door[0].port)
    assert client.greeting == (220, "mx.intake.test ESMTP")
    code, lines = client.command("EHLO client.example")
    assert code == 250 and lines.splitlines()[0] == "mx.intake.test"
    client.close()


def test_the_greeting_defaults_to_the_machines_name(settings: Settings) -> None:
    with door_for(settings) as (server, _):
        client = RawSmtp(server.port)
        assert client.greeting == (220, f"{socket.gethostname()} ESMTP")
        assert "Python" not in client.greeting[1] and "1.4" not in client.greeting[1]
        client.close()


def test_ehlo_offers_enhanced_codes_and_pipelining_and_no_auth(
    door: tuple[SmtpDoor, Runtime],
) -> None:
    client = RawSmtp(door[0].port)
    code, lines = client.command("EHLO client.example")
    offered = lines.splitlines()[1:]
    assert code == 250
    assert {"ENHANCEDSTATUSCODES", "PIPELINING", "8BITMIME", "HELP"} <= set(offered)
    assert not any(o.startswith("AUTH") for o in offered)
    client.close()


def test_every_reply_carries_an_enhanced_code(door: tuple[SmtpDoor, Runtime]) -> None:
    client = RawSmtp(door[0].port)
    before_helo = [client.command(c) for c in ("MAIL FROM:<x@y.example>", "NOOP")]
    client.command("EHLO client.example")
    session = [
        client.command(c)
        for c in (
            "RCPT TO:<support@intake.localhost>",  # out of order: no MAIL yet
            "DATA",
            "MAIL FROM:",
            f"MAIL FROM:<{ADA}>",
            f"MAIL FROM:<{ADA}>",  # nested
            "RCPT TO:<someone@elsewhere.example>",
            f"RCPT TO:<{SUPPORT}>",
            "VRFY someone",
            "EXPN list",
            "BOGUS",
            "HELP",
            "HELP MAIL",
            "HELP NOSUCH",
            "RSET",
            "NOOP",
        )
    ]
    replies = before_helo + session + [client.command("QUIT")]
    assert all(ENHANCED.match(text) for _, text in replies), replies
    codes = dict(zip(["MAIL before HELO", "NOOP before HELO"], before_helo, strict=True))
    assert codes["MAIL before HELO"][0] == 503
    assert session[0] == (503, "5.5.1 Error: need MAIL command")
    assert session[3] == (250, "2.1.0 OK")
    assert session[6] == (250, "2.1.5 OK")
    assert replies[-1] == (221, "2.0.0 Bye")
    client.close()


def test_help_lists_what_is_offered_and_explains_a_command(
    door: tuple[SmtpDoor, Runtime],
) -> None:
    client = RawSmtp(door[0].port)
    code, text = client.command("HELP")
    commands = text.split("Commands: ", 1)[1].split(";")[0].split()
    assert code == 214
    assert {"MAIL", "RCPT", "DATA", "QUIT"} <= set(commands) and "AUTH" not in commands
    code, text = client.command("HELP mail")
    assert code == 214 and "MAIL FROM:<address>" in text
    assert client.command("HELP AUTH")[0] == 504
    client.close()


def test_a_pipelining_client_gets_every_reply_in_order(door: tuple[SmtpDoor, Runtime]) -> None:
    server, rt = door
    client = RawSmtp(server.port)
    client.command("EHLO client.example")
    client.send(
        f"MAIL FROM:<{ADA}>\r\nRCPT TO:<nobody@elsewhere.example>\r\n"
        f"RCPT TO:<{SUPPORT}>\r\nDATA\r\n".encode()
    )
    group = [client.reply()[0] for _ in range(4)]
    assert group == [250, 550, 250, 354]
    client.send(message_bytes("Pipelined one") + b".\r\n")
    # The end of one message, the next envelope and its DATA, in one write.
    client.send(f"RSET\r\nMAIL FROM:<{ADA}>\r\nRCPT TO:<{SUPPORT}>\r\nDATA\r\n".encode())
    assert [client.reply()[0] for _ in range(5)] == [250, 250, 250, 250, 354]
    client.send(message_bytes("Pipelined two") + b".\r\nQUIT\r\n")
    assert [client.reply()[0] for _ in range(2)] == [250, 221]
    client.close()
    assert [r.subject for r in rows(rt)] == ["Pipelined one", "Pipelined two"]


def test_smtplib_sends_with_pipelining_offered(door: tuple[SmtpDoor, Runtime]) -> None:
    server, rt = door
    with smtplib.SMTP("127.0.0.1", server.port, timeout=30) as client:
        refused = client.sendmail(ADA, [SUPPORT], message_bytes("By smtplib"))
    assert refused == {}
    assert [r.outcome for r in rows(rt)] == ["accepted"]


def connect_from(address: str, port: int) -> RawSmtp:
    """A raw client whose connection comes from another loopback address."""
    client = RawSmtp.__new__(RawSmtp)
    client.sock = socket.create_connection(
        ("127.0.0.1", port), timeout=30, source_address=(address, 0)
    )
    client.buffer = b""
    client.greeting = client.reply()
    return client


def test_sessions_are_capped_in_all_and_per_client_address(settings: Settings) -> None:
    capped = settings.replace(smtp_max_sessions=3, smtp_max_sessions_per_ip=2)
    with door_for(capped) as (server, _):
        first, second = RawSmtp(server.port), RawSmtp(server.port)
        assert first.greeting[0] == second.greeting[0] == 220
        third = RawSmtp(server.port)
        assert third.greeting[0] == 421 and third.greeting[1].startswith("4.7.0 ")
        assert "your address" in third.greeting[1] and third.reply() == (0, "")
        other = connect_from("127.0.0.2", server.port)
        assert other.greeting[0] == 220
        fourth = connect_from("127.0.0.3", server.port)
        assert fourth.greeting[0] == 421 and fourth.greeting[1].startswith("4.7.0 Too many")
        first.command("QUIT")
        first.close()
        again = wait_for(lambda: (c := RawSmtp(server.port)).greeting[0] == 220 and c)
        assert again.command("NOOP")[0] == 250
        for client in (second, third, other, fourth, again):
            client.close()


def start_data(port: int, size_option: str = "") -> RawSmtp:
    client = RawSmtp(port)
    client.command("EHLO client.example")
    assert client.command(f"MAIL FROM:<{ADA}>{size_option}")[0] == 250
    assert client.command(f"RCPT TO:<{SUPPORT}>")[0] == 250
    return client


def test_the_bytes_of_data_in_flight_are_capped(settings: Settings) -> None:
    capped = settings.replace(max_message_size=100_000, smtp_max_data_in_flight=150_000)
    with door_for(capped) as (server, rt):
        holding = start_data(server.port)
        assert holding.command("DATA")[0] == 354
        body = message_bytes("Held open", size=80_000)
        holding.send(body)  # all but the final dot
        time.sleep(0.5)
        declared = start_data(server.port, " SIZE=90000")
        code, text = declared.command("DATA")
        assert code == 452 and text.startswith("4.3.1 ")
        crossing = start_data(server.port)
        assert crossing.command("DATA")[0] == 354
        crossing.send(message_bytes("Crossing", size=80_000))
        code, text = crossing.reply()
        assert code == 421 and text.startswith("4.3.1 ") and crossing.reply() == (0, "")
        holding.send(b".\r\n")
        assert holding.reply()[0] == 250
        after = start_data(server.port, " SIZE=90000")
        assert after.command("DATA")[0] == 354
        after.send(message_bytes("After") + b".\r\n")
        assert after.reply()[0] == 250
        for client in (holding, declared, crossing, after):
            client.close()
        assert [r.subject for r in rows(rt)] == ["Held open", "After"]
        wait_for(lambda: (server.limits.sessions, server.limits.data_in_flight) == (0, 0))


def test_accept_and_log_answers_250_keeps_the_refusal_and_sends_nothing(
    settings: Settings, redis_url: str, relay: Relay
) -> None:
    with gateway_for(settings, redis_url, relay, refusals="accept_and_log") as gateway:
        stranger = "mallory@forged.example"
        gateway.send(make_mail(stranger, "Buy now"), sender=stranger)
        gateway.drain()
        (row,) = gateway.rows()
        assert (row.outcome, row.reason, row.sender) == ("rejected", "unknown_sender", stranger)
        assert "not a registered contact" in row.detail
        assert gateway.outbox() == [] and relay.messages == []
        assert gateway.requests() == []


@pytest.mark.parametrize(
    ("name", "value", "words"),
    [
        ("INTAKE_REFUSALS", "bounce", "'refusals'"),
        ("INTAKE_SMTP_MAX_SESSIONS", "0", "'smtp_max_sessions'"),
        ("INTAKE_SMTP_MAX_SESSIONS_PER_IP", "500", "'smtp_max_sessions_per_ip'"),
        ("INTAKE_SMTP_MAX_DATA_IN_FLIGHT", "1000", "'smtp_max_data_in_flight'"),
        ("INTAKE_SMTP_HOSTNAME", "mx intake", "'smtp_hostname'"),
        ("INTAKE_STORAGE_TIMEOUT", "0", "'storage_timeout'"),
        ("INTAKE_STALL_SECONDS", "1", "'stall_seconds'"),
    ],
)
def test_a_bad_door_setting_is_one_sentence_naming_it(name: str, value: str, words: str) -> None:
    env = {"INTAKE_CONFIG": str(ROOT / "config" / "intake.toml"), name: value}
    with pytest.raises(ConfigError, match=words):
        load_settings(env)


def test_door_settings_come_from_the_environment() -> None:
    env = {
        "INTAKE_CONFIG": str(ROOT / "config" / "intake.toml"),
        "INTAKE_REFUSALS": "accept_and_log",
        "INTAKE_SMTP_HOSTNAME": "mx.example.net",
        "INTAKE_SMTP_MAX_SESSIONS_PER_IP": "5",
    }
    loaded = load_settings(env)
    assert (loaded.refusals, loaded.smtp_hostname, loaded.smtp_max_sessions_per_ip) == (
        "accept_and_log",
        "mx.example.net",
        5,
    )


def test_a_hundred_idle_sockets_from_one_address_leave_the_door_to_others(
    door: tuple[SmtpDoor, Runtime],
) -> None:
    server, rt = door
    idle = [RawSmtp(server.port) for _ in range(100)]  # connect, read the greeting, say nothing
    greetings = [client.greeting[0] for client in idle]
    assert greetings.count(220) == 20 and greetings.count(421) == 80
    with smtplib.SMTP(
        "127.0.0.1", server.port, timeout=10, source_address=("127.0.0.2", 0)
    ) as client:
        assert client.sendmail(ADA, [SUPPORT], message_bytes("From elsewhere")) == {}
    for client in idle:
        client.close()
    assert [r.subject for r in rows(rt)] == ["From elsewhere"]
