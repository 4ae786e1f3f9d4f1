"""The acknowledgment mail: threaded to the original, marked auto-replied, stating
the severity, the response goal, when it falls due, and a signed link to the request's status.
Its Message-ID and its Reply-To carry the request number with an HMAC tag, so a reply finds its
request without trusting anything the replier could have guessed."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from email.charset import QP, Charset
from email.header import Header
from email.message import EmailMessage, Message
from email.policy import SMTPUTF8 as SMTPUTF8_POLICY
from email.policy import compat32
from email.utils import format_datetime, formataddr

from intake.outbox.links import message_tag, reply_address, status_url
from intake.policy import SeverityLevel
from parsers import LOOP_HEADER

__all__ = [
    "LOOP_HEADER",
    "AckFacts",
    "ack_message_id",
    "acknowledgment_bytes",
    "compose_acknowledgment",
]

_COMPAT32_SMTP = compat32.clone(linesep="\r\n")
_QP_UTF8 = Charset("utf-8")
_QP_UTF8.body_encoding = QP  # readable in any client's source view, unlike base64


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
    notice: str = ""  # a requirement the contact must hear of (Severity 1 without a 24x7 contact)


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
    for name, value in _headers(facts, from_address, secret_key, support_address):
        msg[name] = value
    msg.set_content(_body(facts, status_url(public_url, secret_key, facts.number)))
    return msg


def acknowledgment_bytes(
    facts: AckFacts,
    *,
    from_address: str,
    public_url: str,
    secret_key: str,
    support_address: str = "",
) -> bytes:
    """The acknowledgment as it goes over SMTP (CRLF line ends).

    To an ASCII address it is built with the compat32 classes, which cost a fifth of the
    modern header objects' CPU on a busy worker; an internationalised address (RFC 6532) needs
    the modern policy's raw UTF-8 headers, sent with SMTPUTF8.
    """
    if not facts.to_address.isascii():
        message = compose_acknowledgment(
            facts,
            from_address=from_address,
            public_url=public_url,
            secret_key=secret_key,
            support_address=support_address,
        )
        return message.as_bytes(policy=SMTPUTF8_POLICY)
    text = Message()
    # set_payload with a charset adds MIME-Version, Content-Type and the QP encoding.
    text.set_payload(_body(facts, status_url(public_url, secret_key, facts.number)), _QP_UTF8)
    for name, value in _headers(facts, from_address, secret_key, support_address):
        text[name] = (
            value
            if value.isascii()
            else Header(value, "utf-8", header_name=name).encode(linesep="\r\n")
        )
    return text.as_bytes(policy=_COMPAT32_SMTP)


def _headers(
    facts: AckFacts, from_address: str, secret_key: str, support_address: str
) -> list[tuple[str, str]]:
    headers = [
        ("From", from_address),
        ("Reply-To", reply_address(secret_key, facts.number, support_address or from_address)),
        ("To", _mailbox(facts.to_name, facts.to_address)),
        ("Subject", f"[{facts.number}] Received: {facts.original_subject or '(no subject)'}"),
        ("Date", format_datetime(dt.datetime.now(dt.UTC))),
        ("Message-ID", ack_message_id(secret_key, facts.number, from_address)),
    ]
    if facts.original_message_id:
        references = " ".join((*facts.original_references, facts.original_message_id))
        headers += [("In-Reply-To", facts.original_message_id), ("References", references)]
    return [
        *headers,
        ("Auto-Submitted", "auto-replied"),
        ("X-Auto-Response-Suppress", "All"),
        (LOOP_HEADER, from_address),
    ]


def _mailbox(name: str, address: str) -> str:
    """``Name <address>``; an internationalised address (RFC 6532), which formataddr refuses,
    stands alone (it goes out with SMTPUTF8)."""
    return formataddr((name, address), charset="utf-8") if address.isascii() else address


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
        + (f"{facts.notice}\n\n" if facts.notice else "")
        + f"You can follow the request here:\n{link}\n\n"
        f"To add information, reply to this message and keep [{facts.number}] in the subject.\n\n"
        "This is an automatic acknowledgment from the support desk.\n"
    )
