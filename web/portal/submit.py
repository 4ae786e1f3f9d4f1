"""The portal as a door: what a contact types and attaches becomes an inbound item of channel
``web`` and goes through the same pipeline as mail and calls.

The submission is written as a MIME message (its text, its files, the chosen severity in
``SEVERITY_HEADER``), so its intake-log row holds it raw like a mail, and the worker's half of
mail reads it, keeps its files within the same caps and sends the same acknowledgment. The
steps decide it (one intake-log row, the same entitlement rules); the portal then finishes the
row at once, as the phone door does its calls, because it answers with the request's number.
If finishing fails, the worker's job does it (the row stays pending, the sweep finds it).
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from email.message import EmailMessage
from email.policy import SMTP, SMTPUTF8
from email.utils import format_datetime, make_msgid

from redis.exceptions import RedisError

from intake.jobs.jobs import enqueue_outbox, enqueue_quietly, finish_web_row
from intake.jobs.queue import make_queue
from intake.pipeline.inbound import SEVERITY_HEADER, InboundMessage
from intake.pipeline.steps import record
from intake.store.models import utcnow
from parsers import end_user_category
from web import Services
from web.portal.access import PortalUser

log = logging.getLogger(__name__)
CHANNEL = "web"


@dataclass(frozen=True)
class Upload:
    """One file from a form, as the browser sent it."""

    filename: str
    content_type: str
    data: bytes


@dataclass(frozen=True)
class Submitted:
    """What became of a submission: the request it opened or joined (None while the worker
    still has it), or the pipeline's sentence saying why it was refused."""

    request_id: int | None = None
    refusal: str = ""


def log_request(
    svc: Services,
    user: PortalUser,
    *,
    severity: int,
    subject: str,
    description: str,
    uploads: Sequence[Upload],
) -> Submitted:
    """Open a request as the contact, through the pipeline."""
    message = _mime(svc, user, subject, description, uploads)
    message[SEVERITY_HEADER] = str(severity)
    return _submit(svc, user, message, subject, request_numbers=())


def add_information(
    svc: Services, user: PortalUser, number: str, *, text: str, uploads: Sequence[Upload]
) -> Submitted:
    """Add text and files to request ``number`` as the contact, as a follow-up mail would."""
    subject = f"[{number}] Additional information"
    message = _mime(svc, user, subject, text, uploads)
    return _submit(svc, user, message, subject, request_numbers=(number,))


def _mime(
    svc: Services, user: PortalUser, subject: str, text: str, uploads: Sequence[Upload]
) -> EmailMessage:
    domain = svc.settings.ack_from.rpartition("@")[2] or "intake.localhost"
    message = EmailMessage()
    message["From"] = user.address
    message["To"] = svc.settings.support_addresses[0]
    message["Subject"] = subject
    message["Date"] = format_datetime(utcnow())
    message["Message-ID"] = make_msgid("portal", domain=domain)
    message.set_content(text)
    for upload in uploads:
        maintype, subtype = _mime_type(upload.content_type)
        message.add_attachment(
            upload.data, maintype=maintype, subtype=subtype, filename=upload.filename
        )
    return message


def _mime_type(declared: str) -> tuple[str, str]:
    maintype, _, subtype = declared.partition(";")[0].strip().lower().partition("/")
    if not maintype or not subtype or maintype == "multipart":
        return "application", "octet-stream"
    return maintype, subtype


def _submit(
    svc: Services,
    user: PortalUser,
    message: EmailMessage,
    subject: str,
    request_numbers: tuple[str, ...],
) -> Submitted:
    raw = message.as_bytes(policy=SMTP if user.address.isascii() else SMTPUTF8)
    inbound = InboundMessage(
        channel=CHANNEL,
        sender=user.address,
        dedupe_key=f"web:{uuid.uuid4().hex}",
        raw=raw,
        subject=subject,
        message_id=str(message["Message-ID"]),
        recipients=(svc.settings.support_addresses[0],),
        request_numbers=request_numbers,
        category=end_user_category(subject),
        contact_id=user.contact.contact_id,
        # Signed in by a link mailed to the registered address: the sender is proven.
        sender_verified=True,
    )
    decision, intake_id = record(svc.db, inbound)
    if decision.outcome == "rejected":
        return Submitted(refusal=decision.sentence)
    return Submitted(request_id=_finish(svc, intake_id))


def _finish(svc: Services, intake_id: int) -> int | None:
    """Finish the row now and hand its outbox to the workers; on failure, the row to them."""
    queue = make_queue(svc.settings, svc.redis)
    try:
        request_id, outbox_ids = finish_web_row(intake_id)
    except Exception:
        log.exception("intake #%s: could not finish the portal row; the worker will", intake_id)
        enqueue_quietly(queue, intake_id, CHANNEL)
        return None
    send_quietly(svc, outbox_ids)
    return request_id


def send_quietly(svc: Services, outbox_ids: Sequence[int]) -> None:
    """Hand outbox rows to the workers; with Redis down, the outbox sweep sends them later."""
    queue = make_queue(svc.settings, svc.redis)
    for outbox_id in outbox_ids:
        try:
            enqueue_outbox(queue, outbox_id)
        except (RedisError, OSError) as exc:
            log.warning("could not enqueue outbox #%s (the sweep will): %s", outbox_id, exc)
            return
