"""Service requests: opening them, adding events, and the facts the acknowledgment states."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy.orm import Session

from intake.policy import Policy
from intake.store.models import REOPENABLE, RequestEvent, ServiceRequest


def open_request(
    session: Session,
    policy: Policy,
    *,
    customer_id: int,
    contact_id: int,
    channel: str,
    severity: int,
    subject: str,
    description: str,
    received_at: dt.datetime,
) -> ServiceRequest:
    """A new request with its response goal counted from receipt, and its first events."""
    request = ServiceRequest(
        customer_id=customer_id,
        contact_id=contact_id,
        channel=channel,
        severity=severity,
        initial_severity=severity,
        status="new",
        subject=subject,
        description=description,
        created_at=received_at,
        response_due_at=policy.response_due(severity, received_at),
    )
    session.add(request)
    session.flush()  # the id is the request number
    add_event(
        session, request, "created", {"channel": channel, "severity": severity}, at=received_at
    )
    return request


def add_event(
    session: Session,
    request: ServiceRequest,
    kind: str,
    detail: dict[str, Any],
    at: dt.datetime | None = None,
) -> RequestEvent:
    event = RequestEvent(request_id=request.id, type=kind, detail=detail)
    if at is not None:
        event.at = at
    session.add(event)
    return event


def append_message(
    session: Session, request: ServiceRequest, detail: dict[str, Any], at: dt.datetime
) -> None:
    """A follow-up joins its request; one on a resolved or closed request reopens it."""
    add_event(session, request, "message", detail, at=at)
    if request.status in REOPENABLE:
        add_event(session, request, "reopened", {"previous_status": request.status}, at=at)
        request.status = "in_progress"
