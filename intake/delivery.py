"""Sending what the outbox holds: mail through the configured relay, or into the maildir
var/outbox/ when none is configured. Marking a row sent is the caller's job."""

from __future__ import annotations

import os
import smtplib
from pathlib import Path
from urllib.parse import unquote, urlsplit

from intake.settings import Settings

SMTP_TIMEOUT = 30


def deliver_mail(settings: Settings, outbox_id: int, recipient: str, payload: bytes) -> str:
    """Hand one message on; returns where it went. Raises OSError/SMTPException on failure."""
    if settings.outbound_smtp_url:
        _send_via_relay(settings.outbound_smtp_url, recipient, payload)
        return "relay"
    return str(_write_to_maildir(settings.var_path / "outbox", outbox_id, payload))


def _send_via_relay(url: str, recipient: str, payload: bytes) -> None:
    parts = urlsplit(url)
    host = parts.hostname or "127.0.0.1"
    if parts.scheme == "smtps":
        client: smtplib.SMTP = smtplib.SMTP_SSL(host, parts.port or 465, timeout=SMTP_TIMEOUT)
    else:
        client = smtplib.SMTP(host, parts.port or 25, timeout=SMTP_TIMEOUT)
    with client:
        if parts.scheme == "smtp" and client.has_extn("starttls") and parts.username:
            client.starttls()
        if parts.username:
            client.login(unquote(parts.username), unquote(parts.password or ""))
        # An automatic reply goes out with a null return path (RFC 3834), so a bounce of it
        # can never start a loop.
        client.sendmail("<>", [recipient], payload)


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
