"""Sending what the outbox holds: mail through the configured relay, or into the maildir
var/outbox/ when none is configured; other channels (SMS) through the sender registered for
them. Marking a row sent is the caller's job."""

from __future__ import annotations

import os
import smtplib
import time
from collections.abc import Callable
from pathlib import Path
from urllib.parse import unquote, urlsplit

from intake.errors import IntakeError
from intake.settings import Settings

SMTP_TIMEOUT = 30
IDLE_CHECK_SECONDS = 5

# A sender for one channel: (settings, recipient, payload) -> where it went; raises on failure.
# The core knows no telephony provider: the process that sends SMS registers one at start
# (`intake worker` registers voice.sms_sender for "sms").
Sender = Callable[[Settings, str, bytes], str]
_senders: dict[str, Sender] = {}


class PermanentDeliveryError(IntakeError):
    """The provider refused the message for good (an invalid number, an opted-out recipient):
    trying again cannot help, so the row waits for a person instead of being retried."""


def register_sender(channel: str, sender: Sender) -> None:
    """Use ``sender`` for outbox rows of ``channel`` ("sms") in this process."""
    _senders[channel] = sender


def deliver(
    settings: Settings, channel: str, outbox_id: int, recipient: str, payload: bytes
) -> str:
    """Hand one outbox row on by its channel; returns where it went."""
    if channel == "email":
        return deliver_mail(settings, outbox_id, recipient, payload)
    sender = _senders.get(channel)
    if sender is None:
        raise RuntimeError(f"no sender is registered for {channel!r} messages in this process")
    return sender(settings, recipient, payload)


def deliver_mail(settings: Settings, outbox_id: int, recipient: str, payload: bytes) -> str:
    """Hand one message on; returns where it went. Raises OSError/SMTPException on failure."""
    with Mailer(settings) as mailer:
        return mailer.send(outbox_id, recipient, payload)


class Mailer:
    """Sends one message or many: through the relay over one connection, opened on first use
    and kept open between messages, or into the maildir when no relay is configured."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.client: smtplib.SMTP | None = None
        self.last_used = 0.0

    def __enter__(self) -> Mailer:
        return self

    def __exit__(self, *exc: object) -> None:
        if self.client is not None:
            try:
                self.client.quit()
            except (OSError, smtplib.SMTPException):
                self.client.close()

    def send(self, outbox_id: int, recipient: str, payload: bytes) -> str:
        if not self.settings.outbound_smtp_url:
            return str(_write_to_maildir(self.settings.var_path / "outbox", outbox_id, payload))
        client = self._usable_client()
        try:
            # An automatic reply goes out with a null return path (RFC 3834), so a bounce of it
            # can never start a loop. An internationalised address (RFC 6531) needs SMTPUTF8.
            options = [] if recipient.isascii() else ["SMTPUTF8"]
            client.sendmail("<>", [recipient], payload, mail_options=options)
        except (smtplib.SMTPServerDisconnected, OSError):
            self.client = None  # the next message opens a new connection
            raise
        except smtplib.SMTPNotSupportedError as exc:  # the relay cannot carry it, ever
            raise PermanentDeliveryError(f"the relay refuses {recipient!r}: {exc}") from exc
        self.last_used = time.monotonic()
        return "relay"

    def _usable_client(self) -> smtplib.SMTP:
        """The open connection, checked with a NOOP when it sat idle (relays close idle
        connections), or a new one."""
        if self.client is not None and time.monotonic() - self.last_used > IDLE_CHECK_SECONDS:
            try:
                self.client.noop()
            except (smtplib.SMTPException, OSError):
                self.client.close()
                self.client = None
        if self.client is None:
            self.client = _connect(self.settings.outbound_smtp_url)
        return self.client

    def close(self) -> None:
        self.__exit__()
        self.client = None


def _connect(url: str) -> smtplib.SMTP:
    parts = urlsplit(url)
    host = parts.hostname or "127.0.0.1"
    if parts.scheme == "smtps":
        client: smtplib.SMTP = smtplib.SMTP_SSL(host, parts.port or 465, timeout=SMTP_TIMEOUT)
    else:
        client = smtplib.SMTP(host, parts.port or 25, timeout=SMTP_TIMEOUT)
    client.ehlo()
    if parts.scheme == "smtp" and client.has_extn("starttls") and parts.username:
        client.starttls()  # credentials never cross the network in clear
        client.ehlo()
    if parts.username:
        client.login(unquote(parts.username), unquote(parts.password or ""))
    return client


def _write_to_maildir(maildir: Path, outbox_id: int, payload: bytes) -> Path:
    """Write via tmp/ and rename into new/ under a name fixed by the row: doing it twice leaves
    one message."""
    for sub in ("tmp", "new", "cur"):
        (maildir / sub).mkdir(parents=True, exist_ok=True)
    name = f"outbox-{outbox_id:010d}.eml"
    temporary = maildir / "tmp" / f"{name}.{os.getpid()}"
    with open(temporary, "wb") as handle:
        handle.write(payload)
        handle.flush()
        os.fsync(handle.fileno())
    final = maildir / "new" / name
    os.replace(temporary, final)
    return final
