"""The outbox's bookkeeping: the acknowledgment row, marking rows sent, and what an
acknowledgment's sending means for its request (acknowledged_at, the status, an event). A few
set-based statements serve a whole batch: on a busy worker the round trips to the database, not
the CPU, set the pace."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

from sqlalchemy import Row, case, func, insert, update
from sqlalchemy.orm import Session

from intake.outbox.acknowledgment import AckFacts, ack_message_id, acknowledgment_bytes
from intake.settings import Settings
from intake.store.models import OutboxMessage, RequestEvent, ServiceRequest, utcnow


def acknowledgment_row(
    settings: Settings, facts: AckFacts, *, request_id: int, intake_id: int
) -> OutboxMessage:
    """The acknowledgment mail of a request, ready to send, for the outbox; replies go to the
    first support address with the request's signed token."""
    payload = acknowledgment_bytes(
        facts,
        from_address=settings.ack_from,
        public_url=settings.public_url,
        secret_key=settings.secret_key,
        support_address=settings.support_addresses[0],
    )
    return OutboxMessage(
        channel="email",
        purpose="acknowledgment",
        request_id=request_id,
        intake_id=intake_id,
        recipient=facts.to_address,
        message_id=ack_message_id(settings.secret_key, facts.number, settings.ack_from),
        payload=payload,
    )


def mark_sent(session: Session, sent: Sequence[tuple[int, str]]) -> None:
    """Record that each (outbox id, where it went) was handed on, in the caller's transaction.
    A row already marked is left as it was."""
    now = utcnow()
    where_by_id = dict(sent)
    marked = session.execute(
        update(OutboxMessage)
        .where(OutboxMessage.id.in_(list(where_by_id)), OutboxMessage.sent_at.is_(None))
        .values(sent_at=now, attempts=OutboxMessage.attempts + 1)
        .returning(
            OutboxMessage.id,
            OutboxMessage.purpose,
            OutboxMessage.request_id,
            OutboxMessage.recipient,
        )
        .execution_options(synchronize_session=False)
    ).all()
    acks = [r for r in marked if r.purpose == "acknowledgment" and r.request_id is not None]
    if acks:
        _acknowledge(session, acks, where_by_id, now)


def _acknowledge(
    session: Session,
    acks: Sequence[Row[int, str, int | None, str]],
    where_by_id: dict[int, str],
    now: dt.datetime,
) -> None:
    request_ids = [a.request_id for a in acks]
    session.execute(
        update(ServiceRequest)
        .where(ServiceRequest.id.in_(request_ids))
        .values(
            acknowledged_at=func.coalesce(ServiceRequest.acknowledged_at, now),
            status=case(
                (ServiceRequest.status == "new", "acknowledged"), else_=ServiceRequest.status
            ),
        )
        .execution_options(synchronize_session=False)
    )
    session.execute(
        insert(RequestEvent),
        [
            {
                "request_id": a.request_id,
                "type": "acknowledged",
                "at": now,
                "detail": {"to": a.recipient, "via": where_by_id[a.id]},
            }
            for a in acks
        ],
    )
