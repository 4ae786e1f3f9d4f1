"""Mail the desk writes about a request, as outbox rows: to the contact, threaded into the
request's conversation (In-Reply-To/References the acknowledgment, Reply-To the request's signed
reply address, so the answer comes back to the request), or to staff and managers.

Every row is written in the transaction that caused it; a worker sends it like an
acknowledgment (intake.jobs.jobs.send_outbox).
"""

from __future__ import annotations

import uuid
from email.message import EmailMessage
from email.policy import SMTP, SMTPUTF8
from email.utils import format_datetime, formataddr

from intake.outbox.acknowledgment import LOOP_HEADER, ack_message_id
from intake.outbox.links import reply_address
from intake.settings import Settings
from intake.store.models import OutboxMessage, ServiceRequest, utcnow
from intake.workflows.notices import Notice


def contact_address(request: ServiceRequest) -> tuple[str, str] | None:
    """(name, address) of the request's contact, or None when the contact has no address."""
    address = request.contact.primary_email
    return (request.contact.name, address) if address else None


def mail_to_contact(
    settings: Settings, request: ServiceRequest, notice: Notice, *, purpose: str
) -> OutboxMessage | None:
    """The notice as a mail to the request's contact, threaded to the request; None when the
    contact has no address to write to."""
    to = contact_address(request)
    if to is None:
        return None
    return _row(settings, request, notice, to, purpose=purpose, threaded=True)


def mail_to_staff(
    settings: Settings, request: ServiceRequest, notice: Notice, address: str, *, purpose: str
) -> OutboxMessage:
    """A notification for the desk (an assignee, the engineer on call, a manager)."""
    return _row(settings, request, notice, ("", address), purpose=purpose, threaded=False)


def _row(
    settings: Settings,
    request: ServiceRequest,
    notice: Notice,
    to: tuple[str, str],
    *,
    purpose: str,
    threaded: bool,
) -> OutboxMessage:
    domain = settings.ack_from.rpartition("@")[2] or "intake.localhost"
    message_id = f"<{request.number.lower()}.{purpose}.{uuid.uuid4().hex}@{domain}>"
    msg = EmailMessage()
    msg["From"] = settings.ack_from
    msg["To"] = formataddr(to) if to[1].isascii() else to[1]
    msg["Subject"] = f"[{request.number}] {notice.subject}"
    msg["Date"] = format_datetime(utcnow())
    msg["Message-ID"] = message_id
    if threaded:
        support = settings.support_addresses[0]
        msg["Reply-To"] = reply_address(settings.secret_key, request.number, support)
        ack_id = ack_message_id(settings.secret_key, request.number, settings.ack_from)
        msg["In-Reply-To"] = ack_id
        msg["References"] = ack_id
    if notice.automatic:
        msg["Auto-Submitted"] = "auto-generated"
    msg[LOOP_HEADER] = settings.ack_from
    msg.set_content(notice.body)
    payload = msg.as_bytes(policy=SMTP if to[1].isascii() else SMTPUTF8)
    return OutboxMessage(
        channel="email",
        purpose=purpose[:30],
        request_id=request.id,
        recipient=to[1],
        message_id=message_id,
        payload=payload,
    )
