"""Hostile SMTP sessions against the real door, mostly over raw sockets so that every byte is
the test's: the session always answers, one bad message never blocks the next, nothing is
split or smuggled, budgets and timeouts hold, and STARTTLS works when a certificate is set."""

from __future__ import annotations

import smtplib
import ssl
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from sqlalchemy import select

from intake.errors import ConfigError
from intake.jobs.runtime import Runtime, build_runtime
from intake.mail.smtp import MAX_RECIPIENTS, SmtpDoor, session_timeout
from intake.pipeline import steps
from intake.pipeline.steps import Context, Decision
from intake.settings import Settings
from intake.store.models import IntakeRecord
from tests.helpers import add_contact, free_port, make_mail
from tests.hygiene_support import ADA, SUPPORT, RawSmtp, self_signed_certificate

pytestmark = pytest.mark.timeout(120)


@contextmanager
def door_for(settings: Settings, **door_options: float) -> Iterator[tuple[SmtpDoor, Runtime]]:
    """The SMTP door alone (no worker), Ada registered."""
    settings = settings.replace(smtp_port=free_port(), secret_key="k")
    rt = build_runtime(settings)
    add_contact(rt.db, ADA)
    door = SmtpDoor(settings, rt.db, None, **door_options)
    door.start()
    try:
        yield door, rt
    finally:
        door.stop()
        rt.db.dispose()


@pytest.fixture
def door(settings: Settings) -> Iterator[tuple[SmtpDoor, Runtime]]:
    with door_for(settings) as pair:
        yield pair


def rows(rt: Runtime) -> list[IntakeRecord]:
    with rt.db.sessions() as session:
        return list(session.scalars(select(IntakeRecord).order_by(IntakeRecord.id)))


def envelope(client: RawSmtp, sender: str = ADA) -> None:
    assert client.command("EHLO client.example")[0] == 250
    assert client.command(f"MAIL FROM:<{sender}>")[0] == 250
    assert client.command(f"RCPT TO:<{SUPPORT}>")[0] == 250
    assert client.command("DATA")[0] == 354


def test_an_exception_inside_the_handler_answers_451_and_the_next_message_goes_through(
    door: tuple[SmtpDoor, Runtime], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Fault injection: a pipeline step with a bug, raising for one subject only."""

    def buggy_step(ctx: Context) -> Decision | None:
        if ctx.message.subject == "boom":
            raise RuntimeError("a bug in a step")
        return None

    monkeypatch.setattr(steps, "STEPS", (("buggy", buggy_step), *steps.STEPS))
    server, rt = door
    with smtplib.SMTP("127.0.0.1", server.port) as client:
        with pytest.raises(smtplib.SMTPDataError) as failed:
            client.send_message(make_mail(ADA, "boom"))
        assert failed.value.smtp_code == 451 and failed.value.smtp_error.startswith(b"4.3.0")
        client.send_message(make_mail(ADA, "fine"))  # same session, next message
    assert [(r.subject, r.outcome) for r in rows(rt)] == [("fine", "accepted")]


def test_the_same_bytes_twice_at_once_are_stored_once(door: tuple[SmtpDoor, Runtime]) -> None:
    server, rt = door
    raw = make_mail(ADA, "Export fails").as_bytes()

    def deliver() -> None:
        with smtplib.SMTP("127.0.0.1", server.port) as client:
            client.sendmail(ADA, [SUPPORT], raw)

    threads = [threading.Thread(target=deliver) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    found = rows(rt)
    assert sorted(r.outcome for r in found) == ["accepted", "duplicate"]
    assert sum(r.raw is not None for r in found) == 1


def test_a_slow_sender_is_cut_off_with_421_and_others_are_served(settings: Settings) -> None:
    with door_for(settings, timeout=1.5) as (server, rt):
        slow = RawSmtp(server.port)
        envelope(slow)
        started = time.monotonic()
        stop = threading.Event()

        def dribble() -> None:  # one byte every 0.2 s: never a whole line, never a dot
            while not stop.is_set():
                try:
                    slow.send(b"x")
                except OSError:
                    return
                time.sleep(0.2)

        threading.Thread(target=dribble, daemon=True).start()
        with smtplib.SMTP("127.0.0.1", server.port) as fast:
            fast.send_message(make_mail(ADA, "Meanwhile"))
        code, text = slow.reply()
        stop.set()
        assert code == 421 and "Timed out" in text
        assert 1.0 < time.monotonic() - started < 10
        assert slow.reply() == (0, "")  # and the connection is closed
        slow.close()
        assert [r.subject for r in rows(rt)] == ["Meanwhile"]


def test_an_idle_client_gets_421(settings: Settings) -> None:
    with door_for(settings, timeout=0.5) as (server, _):
        client = RawSmtp(server.port)
        assert client.reply()[0] == 421
        client.close()


def test_a_session_has_a_limited_lifetime(settings: Settings) -> None:
    with door_for(settings, lifetime=1.0) as (server, _):
        client = RawSmtp(server.port)
        deadline = time.monotonic() + 10
        code, text = 250, ""
        while code == 250 and time.monotonic() < deadline:
            time.sleep(0.2)
            code, text = client.command("NOOP")
        assert code == 421 and "Session too long" in text
        client.close()


def test_the_idle_timeout_is_sized_for_the_size_limit() -> None:
    assert session_timeout(25 * 1024 * 1024) == 300  # 210 s at 1 Mbit/s: the RFC's 5 minutes
    assert session_timeout(200 * 1024 * 1024) == pytest.approx(1677.7, abs=0.1)


@pytest.mark.slow
def test_200_megabytes_without_size_get_552_and_the_session_goes_on(
    door: tuple[SmtpDoor, Runtime],
) -> None:
    server, rt = door
    client = RawSmtp(server.port, timeout=120)
    envelope(client)
    line = b"x" * 998 + b"\r\n"
    chunk = b"From: ada@acme.example\r\nSubject: huge\r\n\r\n" + line * 1000  # ~1 MB
    for _ in range(200):
        client.send(chunk)
    client.send(b".\r\n")
    code, text = client.reply()
    assert code == 552 and text.startswith("5.3.4")
    assert client.command("NOOP")[0] == 250
    client.close()
    (row,) = rows(rt)
    assert (row.outcome, row.reason, row.raw) == ("rejected", "too_large", None)


@pytest.mark.parametrize(
    "dot",
    [b"\n.\n", b"\r.\r", b"\n.\r\n", b"\r\n.\n", b"\r.\r\n", b"\n.\r"],
    ids=["LF.LF", "CR.CR", "LF.CRLF", "CRLF.LF", "CR.CRLF", "LF.CR"],
)
def test_bare_cr_or_lf_around_a_dot_never_splits_a_message(
    door: tuple[SmtpDoor, Runtime], dot: bytes
) -> None:
    server, rt = door
    client = RawSmtp(server.port)
    envelope(client)
    smuggled = (
        b"MAIL FROM:<mallory@evil.example>\r\nRCPT TO:<support@intake.localhost>\r\nDATA\r\n"
        b"From: ada@acme.example\r\nSubject: [Sev1] smuggled\r\n\r\nforged\r\n"
    )
    client.send(b"From: ada@acme.example\r\nSubject: honest\r\n\r\nhello" + dot + smuggled)
    client.send(b".\r\n")
    assert client.reply()[0] == 250  # one reply: for one message
    assert client.command("QUIT")[0] == 221
    client.close()
    (row,) = rows(rt)
    assert row.subject == "honest" and b"smuggled" in (row.raw or b"")


def test_a_thousand_recipients_get_their_budget_and_one_message(
    door: tuple[SmtpDoor, Runtime],
) -> None:
    server, rt = door
    client = RawSmtp(server.port)
    assert client.command("EHLO client.example")[0] == 250
    assert client.command(f"MAIL FROM:<{ADA}>")[0] == 250
    client.send(f"RCPT TO:<{SUPPORT}>\r\n".encode() * 1000)  # pipelined
    codes = [client.reply()[0] for _ in range(1000)]
    assert codes.count(250) == MAX_RECIPIENTS and codes.count(452) == 1000 - MAX_RECIPIENTS
    assert client.command("DATA")[0] == 354
    client.send(make_mail(ADA, "Many recipients").as_bytes().replace(b"\n", b"\r\n") + b".\r\n")
    assert client.reply()[0] == 250
    client.close()
    (row,) = rows(rt)
    assert row.recipients.count(SUPPORT) == MAX_RECIPIENTS


def test_a_command_over_its_budget_ends_the_session(door: tuple[SmtpDoor, Runtime]) -> None:
    client = RawSmtp(door[0].port)
    replies = [client.command("HELP")[0] for _ in range(20)]
    assert set(replies) == {214}
    code, text = client.command("HELP")
    assert (code, text) == (421, "4.7.0 HELP sent too many times")
    assert client.reply() == (0, "")
    client.close()


def test_long_lines_are_taken_and_a_130000_character_line_is_refused_alone(
    door: tuple[SmtpDoor, Runtime],
) -> None:
    server, rt = door
    client = RawSmtp(server.port)
    envelope(client)
    client.send(b"From: ada@acme.example\r\nSubject: long\r\n\r\n" + b"y" * 5000 + b"\r\n.\r\n")
    assert client.reply()[0] == 250
    assert client.command(f"MAIL FROM:<{ADA}>")[0] == 250
    assert client.command(f"RCPT TO:<{SUPPORT}>")[0] == 250
    assert client.command("DATA")[0] == 354
    client.send(b"From: ada@acme.example\r\nSubject: " + b"z" * 130_000 + b"\r\n\r\nx\r\n.\r\n")
    code, text = client.reply()
    assert code == 500 and "Line too long" in text
    assert client.command("NOOP")[0] == 250  # the session goes on
    client.close()
    assert [r.subject for r in rows(rt)] == ["long"]


def test_starttls_is_offered_with_a_certificate(settings: Settings, tmp_path: Path) -> None:
    cert, key = self_signed_certificate(tmp_path)
    tls = settings.replace(tls_cert_file=str(cert), tls_key_file=str(key))
    with door_for(tls) as (server, rt), smtplib.SMTP("127.0.0.1", server.port) as client:
        client.ehlo()
        assert client.has_extn("starttls")
        context = ssl.create_default_context(cafile=str(cert))
        context.check_hostname = False  # the certificate names 127.0.0.1 as its CN only
        client.starttls(context=context)
        client.ehlo()
        client.send_message(make_mail(ADA, "Over TLS"))
        assert [r.subject for r in rows(rt)] == ["Over TLS"]


def test_no_starttls_without_a_certificate(door: tuple[SmtpDoor, Runtime]) -> None:
    with smtplib.SMTP("127.0.0.1", door[0].port) as client:
        client.ehlo()
        assert not client.has_extn("starttls")


def test_tls_settings_are_checked(settings: Settings, tmp_path: Path) -> None:
    cert, key = self_signed_certificate(tmp_path)
    settings.replace(tls_cert_file=str(cert), tls_key_file=str(key))  # a good pair
    with pytest.raises(ConfigError, match="'tls_key_file' is set but 'tls_cert_file' is not"):
        settings.replace(tls_key_file=str(key))
    with pytest.raises(ConfigError, match="not a readable file"):
        settings.replace(tls_cert_file=str(tmp_path / "missing.pem"))
    with pytest.raises(ConfigError, match="usable certificate"):
        settings.replace(tls_cert_file=str(key), tls_key_file=str(cert))
