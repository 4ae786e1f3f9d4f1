"""The acknowledgment of a request opened from mail, written to the outbox in the request's
transaction; unless the address got its fill of acknowledgments lately (``INTAKE_ACK_LIMIT``,
counted apart for verified and unverified senders: see :mod:`intake.outbox.ratelimit`)
or the mail cannot be written at all: then the request stays open, unacknowledged, and the
intake log (outcome ``suppressed``) and the request say why."""

from __future__ import annotations

from email.errors import MessageError

from sqlalchemy.orm import Session

from intake.outbox.acknowledgment import AckFacts
from intake.outbox.ratelimit import budget_in_transaction, take
from intake.outbox.rows import acknowledgment_row
from intake.policy import Policy
from intake.requests.opening import add_event
from intake.settings import Settings
from intake.store.models import Contact, IntakeRecord, OutboxMessage, ServiceRequest
from intake.workflows.around_the_clock import acknowledgment_notice
from parsers import read_headers


def acknowledge(
    session: Session,
    settings: Settings,
    policy: Policy,
    *,
    request: ServiceRequest,
    contact: Contact,
    row: IntakeRecord,
) -> None:
    limit = settings.ack_limit_count_and_window
    budget = budget_in_transaction(session, row.sender, limit, verified=row.sender_verified)
    if budget.exhausted:
        why = f"{budget.explain()} (INTAKE_ACK_LIMIT {settings.ack_limit})"
        _suppress(session, request, row, "rate_limited", why, limit=settings.ack_limit)
        return
    try:
        outbox = _outbox_row(settings, policy, request, contact, row)
    except (ValueError, UnicodeError, MessageError) as exc:  # a header mail cannot carry
        _suppress(session, request, row, "unsendable", f"it cannot be written: {exc}")
        return
    session.add(outbox)
    take(session, budget)


def _suppress(
    session: Session,
    request: ServiceRequest,
    row: IntakeRecord,
    reason: str,
    why: str,
    **detail: str,
) -> None:
    """The request stays open without an acknowledgment; the log row and the request say why."""
    row.outcome, row.reason = "suppressed", reason
    row.detail = f"{request.number} was opened, but not acknowledged: {why}."[:2000]
    detail = {"reason": reason, "to": row.sender} | detail
    add_event(session, request, "acknowledgment_suppressed", detail, at=row.received_at)


def _outbox_row(
    settings: Settings,
    policy: Policy,
    request: ServiceRequest,
    contact: Contact,
    row: IntakeRecord,
) -> OutboxMessage:
    facts = AckFacts(
        number=request.number,
        to_name=contact.name,
        to_address=row.sender,
        original_subject=row.subject,
        original_message_id=row.message_id,
        original_references=read_headers(row.raw or b"").references,
        level=policy.level(request.severity),
        due_at=request.response_due_at,
        received_at=row.received_at,
        notice=acknowledgment_notice(request, contact.customer.name),
    )
    return acknowledgment_row(settings, facts, request_id=request.id, intake_id=row.id)
