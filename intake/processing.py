"""The worker's half of the pipeline: from an accepted intake row to a request and its outbox.

The door has already committed the decision; here the whole message is parsed (which is too
slow for the SMTP handler), the request opened or the follow-up appended, and the
acknowledgment written to the outbox in the same transaction.
"""

from __future__ import annotations

from email.policy import SMTP as SMTP_POLICY

from sqlalchemy import select
from sqlalchemy.orm import Session

from intake.acknowledgment import AckFacts, ack_message_id, compose_acknowledgment
from intake.call_processing import finish_call
from intake.models import Contact, IntakeRecord, OutboxMessage, ServiceRequest
from intake.policy import Policy
from intake.requests import append_message, open_request
from intake.settings import Settings
from parsers import parse_body, read_headers, severity_from_body, severity_from_subject

DESCRIPTION_LIMIT = 100_000


def finish_intake(session: Session, settings: Settings, policy: Policy, intake_id: int) -> None:
    """Open the request (or append the follow-up) for a pending row; a done row is left alone."""
    row = session.get(IntakeRecord, intake_id, with_for_update=True)
    if row is None or row.state != "pending":
        return
    if row.channel == "phone":
        finish_call(session, settings, policy, row)
    elif row.outcome == "accepted":
        _open_from_mail(session, settings, policy, row)
    elif row.outcome == "appended":
        _append_from_mail(session, row)
    row.state = "done"


def _open_from_mail(
    session: Session, settings: Settings, policy: Policy, row: IntakeRecord
) -> None:
    raw = row.raw or b""
    body = parse_body(raw)
    severity = (
        severity_from_subject(row.subject)
        or severity_from_body(body.text)
        or policy.default_severity
    )
    contact = session.get_one(Contact, row.contact_id)
    request = open_request(
        session,
        policy,
        customer_id=contact.customer_id,
        contact_id=contact.id,
        channel=row.channel,
        severity=severity,
        subject=row.subject,
        description=body.text[:DESCRIPTION_LIMIT],
        received_at=row.received_at,
    )
    row.request_id = request.id
    session.add(_acknowledgment(settings, policy, request, contact, row=row, raw=raw))


def _append_from_mail(session: Session, row: IntakeRecord) -> None:
    request = session.get_one(ServiceRequest, row.request_id)
    text = parse_body(row.raw or b"").text
    detail = {
        "intake_id": row.id,
        "from": row.sender,
        "subject": row.subject,
        "text": text[:DESCRIPTION_LIMIT],
    }
    append_message(session, request, detail, at=row.received_at)


def _acknowledgment(
    settings: Settings,
    policy: Policy,
    request: ServiceRequest,
    contact: Contact,
    *,
    row: IntakeRecord,
    raw: bytes,
) -> OutboxMessage:
    headers = read_headers(raw)
    facts = AckFacts(
        number=request.number,
        to_name=contact.name,
        to_address=row.sender,
        original_subject=row.subject,
        original_message_id=row.message_id,
        original_references=headers.references,
        level=policy.level(request.severity),
        due_at=request.response_due_at,
        received_at=row.received_at,
    )
    message = compose_acknowledgment(
        facts,
        from_address=settings.ack_from,
        public_url=settings.public_url,
        secret_key=settings.secret_key,
    )
    return OutboxMessage(
        channel="email",
        purpose="acknowledgment",
        request_id=request.id,
        intake_id=row.id,
        recipient=row.sender,
        message_id=ack_message_id(settings.secret_key, request.number, settings.ack_from),
        payload=message.as_bytes(policy=SMTP_POLICY),  # CRLF line ends, as SMTP wants
    )


def unsent_outbox_ids(session: Session, intake_id: int) -> list[int]:
    return list(
        session.scalars(
            select(OutboxMessage.id).where(
                OutboxMessage.intake_id == intake_id, OutboxMessage.sent_at.is_(None)
            )
        )
    )
