"""The worker's half for mail: read the whole message, then open its request (with the
acknowledgment in the outbox), add the follow-up to its request, or learn from a bounce.

A message the parsers cannot build a part tree for, or whose reading fails in any other way,
is quarantined with the error: it is kept raw, and the job does not fail over and over. A
message staff released from the quarantine is read as well as it can be instead.

The contacts' portal writes what a contact typed and attached as a MIME message too (channel
``web``), so :func:`finish_web` reads, keeps and acknowledges it as mail is; only its severity
is the one the contact chose, carried in ``SEVERITY_HEADER``.
"""

from __future__ import annotations

import logging
from email.parser import BytesHeaderParser
from typing import Any

from sqlalchemy.orm import Session

from intake.mail.acks import acknowledge
from intake.mail.attachments import keep_attachments
from intake.mail.bounces import learn_from_bounce
from intake.pipeline.inbound import SEVERITY_HEADER
from intake.policy import Policy
from intake.requests.opening import append_message, open_request
from intake.senderauth import Verdict
from intake.settings import Settings
from intake.store.models import REOPENABLE, Contact, IntakeRecord, ServiceRequest
from intake.workflows.around_the_clock import flag_missing_24x7_contact
from intake.workflows.desk import Desk, desk_for
from intake.workflows.follow_ups import act_on_follow_up
from parsers import (
    MessageContent,
    clean_text,
    read_message,
    severity_from_body,
    severity_from_subject,
    strip_reply,
)

log = logging.getLogger(__name__)
DESCRIPTION_LIMIT = 100_000
QUARANTINED, PARSE_ERROR = "quarantined", "parse_error"


def finish_mail(session: Session, settings: Settings, policy: Policy, row: IntakeRecord) -> None:
    """Do what the door's decision left for the worker; the caller marks the row done."""
    if row.outcome == "suppressed":  # a bounce: the only suppressed mail left pending
        learn_from_bounce(session, settings, row)
        return
    content = _content_or_quarantine(row)
    if content is None:
        return
    if row.outcome == "accepted":
        severity = (
            severity_from_subject(row.subject)
            or severity_from_body(content.text)
            or policy.default_severity
        )
        _open(session, settings, policy, row, content, severity=severity)
    elif row.outcome == "appended":
        text = _append(session, row, content)
        _act_on_follow_up(session, desk_for(settings, policy), row, text)


def finish_web(session: Session, settings: Settings, policy: Policy, row: IntakeRecord) -> None:
    """A portal row: open its request with the chosen severity (and acknowledge it), or add
    the information to its request; the caller marks the row done."""
    content = _content_or_quarantine(row)
    if content is None:
        return
    if row.outcome == "accepted":
        severity = chosen_severity(row.raw or b"") or policy.default_severity
        _open(session, settings, policy, row, content, severity=severity)
    elif row.outcome == "appended":
        _append(session, row, content)


def chosen_severity(raw: bytes) -> int | None:
    """The severity the portal wrote into its message, when it is one of 1 to 4."""
    value = str(BytesHeaderParser().parsebytes(raw).get(SEVERITY_HEADER, "")).strip()
    return int(value) if value in ("1", "2", "3", "4") else None


def _content_or_quarantine(row: IntakeRecord) -> MessageContent | None:
    try:
        return read_message(row.raw or b"", strict=row.reason != "released")
    except Exception as exc:  # UnparseableMessage, or a parser bug: either way, keep it aside
        error = str(exc) or type(exc).__name__
    row.outcome, row.reason = QUARANTINED, PARSE_ERROR
    row.detail = f"The message could not be parsed: {error}"[:2000]
    return None


def _open(
    session: Session,
    settings: Settings,
    policy: Policy,
    row: IntakeRecord,
    content: MessageContent,
    *,
    severity: int,
) -> None:
    contact = session.get_one(Contact, row.contact_id)
    request = open_request(
        session,
        policy,
        customer_id=contact.customer_id,
        contact_id=contact.id,
        channel=row.channel,
        severity=severity,
        subject=row.subject,
        description=content.text[:DESCRIPTION_LIMIT],
        received_at=row.received_at,
        created_detail=_extras(session, row, content),
    )
    row.request_id = request.id
    flag_missing_24x7_contact(session, request)
    acknowledge(session, settings, policy, request=request, contact=contact, row=row)


def _append(session: Session, row: IntakeRecord, content: MessageContent) -> str:
    """The stripped reply is what the timeline shows (and what is returned); the full text
    stays beside it."""
    request = session.get_one(ServiceRequest, row.request_id)
    previous_status = request.status
    detail = {
        "intake_id": row.id,
        "from": row.sender,
        "subject": row.subject,
        "text": clean_text(strip_reply(content.text))[:DESCRIPTION_LIMIT],
        "full_text": content.text[:DESCRIPTION_LIMIT],
    }
    append_message(session, request, detail | _extras(session, row, content), at=row.received_at)
    reason = "reopened" if previous_status in REOPENABLE else "follow_up"
    if reason != row.reason:  # the request was resolved or reopened since the door decided
        log.info("intake #%s: appended %s (was %s at the door)", row.id, reason, row.reason)
        row.reason = reason
    if reason == "reopened":
        row.detail = f"It reopened {request.number}, which was {previous_status}."
    return str(detail["text"])


def _act_on_follow_up(session: Session, desk: Desk, row: IntakeRecord, text: str) -> None:
    """A follow-up may ask for another severity or for escalation (intake.workflows)."""
    request = session.get_one(ServiceRequest, row.request_id)
    session.flush()  # the follow-up's own event first on the timeline
    act_on_follow_up(session, desk, request, sender=row.sender, subject=row.subject, text=text)


def _extras(session: Session, row: IntakeRecord, content: MessageContent) -> dict[str, Any]:
    """The files kept from the message and its sanitised HTML, for an event's detail."""
    extras = keep_attachments(session, row.id, content.attachments)
    return extras | ({"html": content.html} if content.html else {}) | _sender_auth(row)


def _sender_auth(row: IntakeRecord) -> dict[str, Any]:
    """The verdict on the message's sender, as the request's timeline shows it."""
    return {"auth": Verdict.from_json(row.auth).api_json()} if row.auth else {}
