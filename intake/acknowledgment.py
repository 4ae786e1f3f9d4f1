"""The acknowledgment mail (CONTRACT §6): threaded to the original, marked auto-replied, stating
the severity, the response goal, when it falls due, and a signed link to the request's status.
Its Message-ID and its Reply-To carry the request number with an HMAC tag, so a reply finds its
request without trusting anything the replier could have guessed."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import format_datetime, formataddr

from intake.links import message_tag, reply_address, status_url
from intake.policy import SeverityLevel
from parsers import LOOP_HEADER

__all__ = ["LOOP_HEADER", "AckFacts", "ack_message_id", "compose_acknowledgment"]


@dataclass(frozen=True)
class AckFacts:
    number: str
    to_name: str
    to_address: str
    original_subject: str
    original_message_id: str
    original_references: tuple[str, ...]
    level: SeverityLevel
    due_at: dt.datetime
    received_at: dt.datetime


def ack_message_id(secret_key: str, number: str, from_address: str) -> str:
    """Deterministic, so a resend is recognisably the same message; signed with the key."""
    domain = from_address.rpartition("@")[2] or "intake.localhost"
    return f"<{number.lower()}.ack.{message_tag(secret_key, number)}@{domain}>"


def compose_acknowledgment(
    facts: AckFacts,
    *,
    from_address: str,
    public_url: str,
    secret_key: str,
    support_address: str = "",
) -> EmailMessage:
    """The acknowledgment; replies go to ``support_address`` (default: the From) plus the
    request's signed token, an address the SMTP door accepts."""
    msg = EmailMessage()
    msg["From"] = from_address
    msg["Reply-To"] = reply_address(secret_key, facts.number, support_address or from_address)
    msg["To"] = _mailbox(facts.to_name, facts.to_address)
    msg["Subject"] = f"[{facts.number}] Received: {facts.original_subject or '(no subject)'}"
    msg["Date"] = format_datetime(dt.datetime.now(dt.UTC))
    msg["Message-ID"] = ack_message_id(secret_key, facts.number, from_address)
    if facts.original_message_id:
        msg["In-Reply-To"] = facts.original_message_id
        msg["References"] = " ".join((*facts.original_references, facts.original_message_id))
    msg["Auto-Submitted"] = "auto-replied"
    msg["X-Auto-Response-Suppress"] = "All"
    msg[LOOP_HEADER] = from_address
    msg.set_content(_body(facts, status_url(public_url, secret_key, facts.number)))
    return msg


def _mailbox(name: str, address: str) -> str:
    """``Name <address>``; an internationalised address (RFC 6532), which formataddr refuses,
    stands alone (it goes out with SMTPUTF8)."""
    return formataddr((name, address)) if address.isascii() else address


def _body(facts: AckFacts, link: str) -> str:
    level = facts.level
    due = facts.due_at.astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    clock = " around the clock" if level.around_the_clock else ""
    return (
        f"Hello {facts.to_name},\n\n"
        f"we have received your request and registered it as {facts.number}.\n\n"
        f"Severity:       {level.number} ({level.name}: {level.meaning})\n"
        f"Response goal:  {level.describe_goal()}{clock}\n"
        f"Response due:   {due}\n\n"
        f"You can follow the request here:\n{link}\n\n"
        f"To add information, reply to this message and keep [{facts.number}] in the subject.\n\n"
        "This is an automatic acknowledgment from the support desk.\n"
    )
