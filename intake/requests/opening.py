"""Service requests: opening them, adding events, and the facts the acknowledgment states."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import func, select, text
from sqlalchemy.orm import Session

from intake.policy import Policy
from intake.store.db import transaction_scratch
from intake.store.models import REOPENABLE, RequestEvent, ServiceRequest

_RESERVED = "intake.reserved_request_ids"


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
    created_detail: dict[str, Any] | None = None,
) -> ServiceRequest:
    """A new request with its response goal counted from receipt, and its first event
    (``created``, whose detail adds ``created_detail``: the files kept, the sender's verdict).

    Its id (the request number) is one :func:`reserve_request_ids` took for the transaction,
    or else comes from a flush of the session at once."""
    reserved = _reserved_id(session)
    request = ServiceRequest(
        id=reserved,
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
    if reserved is None:
        session.flush()  # the id is the request number
    detail = {"channel": channel, "severity": severity} | (created_detail or {})
    add_event(session, request, "created", detail, at=received_at)
    return request


def reserve_request_ids(session: Session, count: int) -> None:
    """Take the next ``count`` request ids for this transaction in one statement, so that
    opening a request of a batch writes nothing until the batch's one flush.

    A reserved id left unused is a number never given (PostgreSQL's sequence moves on, as it
    does for a rolled-back insert); on SQLite the transaction holds the write lock, so the ids
    after the highest ever given are free."""
    if count <= 0:
        return
    if session.get_bind().dialect.name == "postgresql":
        ids = session.scalars(
            text(
                "SELECT nextval(pg_get_serial_sequence('service_requests', 'id')) "
                "FROM generate_series(1, :count)"
            ),
            {"count": count},
        ).all()
    else:
        highest = max(
            session.scalar(select(func.max(ServiceRequest.id))) or 0,
            session.scalar(text("SELECT seq FROM sqlite_sequence WHERE name = 'service_requests'"))
            or 0,
        )
        ids = list(range(highest + 1, highest + 1 + count))
    transaction_scratch(session, _RESERVED)["ids"] = list(reversed(ids))


def _reserved_id(session: Session) -> int | None:
    ids: list[int] = transaction_scratch(session, _RESERVED).get("ids", [])
    return ids.pop() if ids else None


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
