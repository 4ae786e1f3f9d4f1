"""The one note an unknown person who wrote to a support mailbox gets: how to be registered.

At SMTP time such mail is refused with a 550 and the sending server tells its author; mail
found in a mailbox was accepted long ago, so the refusal is recorded and, for a person only,
one short note goes out through the outbox. Never to automatic mail (auto-replies, bounces,
lists, our own loop), never twice within a day to one address, and no more than
NOTES_PER_HOUR in all, so a flood of forged senders cannot turn the desk into a spam cannon.
The note is itself automatic mail (Auto-Submitted, our loop header, a null return path).
"""

from __future__ import annotations

import datetime as dt
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from intake.pipeline.inbound import InboundMessage
from intake.pipeline.steps import Decision
from intake.settings import Settings
from intake.store.models import OutboxMessage, utcnow
from parsers import LOOP_HEADER

PURPOSE = "registration_note"
NOTES_PER_HOUR = 30
ONCE_PER = dt.timedelta(days=1)


def wants_note(message: InboundMessage, decision: Decision) -> bool:
    """A refusal of an unknown sender who is a person (no sign of automatic mail)."""
    return (
        decision.outcome == "rejected"
        and decision.reason == "unknown_sender"
        and decision.duplicate_of is None
        and message.automatic is None
        and "@" in message.sender
    )


def note_unknown_sender_in(
    session: Session,
    settings: Settings,
    message: InboundMessage,
    intake_id: int,
    now: dt.datetime | None = None,
) -> bool:
    """Put the note in the outbox (in the caller's transaction) unless the limits say no."""
    now = now or utcnow()
    address = message.sender.lower()
    if (
        _notes_since(session, now - ONCE_PER, address)
        or _notes_since(session, now - dt.timedelta(hours=1)) >= NOTES_PER_HOUR
    ):
        return False
    note_id = make_msgid(domain=settings.ack_from.rpartition("@")[2] or None)
    payload = note_bytes(settings, address, note_id, message, now)
    session.add(
        OutboxMessage(
            channel="email",
            purpose=PURPOSE,
            intake_id=intake_id,
            recipient=address,
            message_id=note_id,
            payload=payload,
            created_at=now,
        )
    )
    return True


def _notes_since(session: Session, since: dt.datetime, address: str | None = None) -> int:
    query = (
        select(func.count())
        .select_from(OutboxMessage)
        .where(OutboxMessage.purpose == PURPOSE, OutboxMessage.created_at >= since)
    )
    if address is not None:
        query = query.where(OutboxMessage.recipient == address)
    return int(session.scalar(query) or 0)


def note_bytes(
    settings: Settings, address: str, note_id: str, message: InboundMessage, now: dt.datetime
) -> bytes:
    note = EmailMessage()
    note["From"] = settings.ack_from
    note["To"] = address
    subject = " ".join(message.subject.split())[:150] or "(no subject)"
    note["Subject"] = f"Not registered: {subject}"
    note["Date"] = format_datetime(now)
    note["Message-ID"] = note_id
    if message.message_id:
        note["In-Reply-To"] = message.message_id
    note["Auto-Submitted"] = "auto-replied"
    note["X-Auto-Response-Suppress"] = "All"
    note[LOOP_HEADER] = settings.ack_from
    note.set_content(
        "Hello,\n\n"
        "your message reached the support desk, but your address is not registered as a "
        "contact of a customer with support, so no request was opened.\n\n"
        "Please ask your company's support coordinator to register you (or the address you "
        "write from), then send your message again.\n\n"
        "This is an automatic note; you will get it at most once a day.\n"
    )
    return note.as_bytes()
