"""Bounces of our own mail: a delivery failure about one of our acknowledgments marks its
recipient undeliverable for a while, and the outbox holds back what would go there meanwhile.

Which acknowledgment a bounce is about comes from the Message-ID it returns, and only a
Message-ID whose tag verifies counts (anyone can write a bounce). Delay warnings, read receipts
and reports that every recipient got the mail mark nothing.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from intake.outbox.links import verified_numbers
from intake.requests.opening import add_event
from intake.settings import Settings
from intake.store.db import Database
from intake.store.models import (
    IntakeRecord,
    OutboxMessage,
    ServiceRequest,
    UndeliverableAddress,
    parse_request_number,
    utcnow,
)
from parsers import DeliveryReport, read_delivery_report, signed_ids_in

UNDELIVERABLE_FOR = dt.timedelta(hours=24)
FAILURE_REPORTS = ("delivery-status", "")  # a DSN, or a bounce that follows no standard


def learn_from_bounce(session: Session, settings: Settings, row: IntakeRecord) -> None:
    """When the bounce ``row`` reports one of our acknowledgments as failed, its recipient is
    undeliverable for a while, and the acknowledged request learns of it."""
    report = read_delivery_report(row.raw or b"")
    if not _reports_failure(report):
        return
    numbers = verified_numbers(settings.secret_key, signed_ids_in(report.message_ids))
    until = utcnow() + UNDELIVERABLE_FOR
    why = _failure_words(report)
    for ack in _acknowledgments_of(session, numbers):
        mark_undeliverable(session, ack.recipient, until, why, row.id)
        request = session.get_one(ServiceRequest, ack.request_id)
        add_event(session, request, "delivery_failed", {"to": ack.recipient, "why": why})
        row.request_id = row.request_id or request.id
        row.detail = f"Our acknowledgment of {request.number} to {ack.recipient} failed: {why}."


def _reports_failure(report: DeliveryReport) -> bool:
    if report.report_type not in FAILURE_REPORTS:
        return False
    return not report.recipients or any(r.failed for r in report.recipients)


def _failure_words(report: DeliveryReport) -> str:
    failed = [
        f"{r.address}: {r.action or 'failed'} {r.status}" for r in report.recipients if r.failed
    ]
    return "; ".join(failed)[:500] if failed else "the mail system returned it"


def _acknowledgments_of(session: Session, numbers: Sequence[str]) -> Sequence[OutboxMessage]:
    ids = [i for n in numbers if (i := parse_request_number(n)) is not None]
    if not ids:
        return []
    return session.scalars(
        select(OutboxMessage).where(
            OutboxMessage.request_id.in_(ids),
            OutboxMessage.purpose == "acknowledgment",
            OutboxMessage.channel == "email",
        )
    ).all()


def mark_undeliverable(
    session: Session, address: str, until: dt.datetime, reason: str, intake_id: int | None
) -> None:
    """No acknowledgment goes to ``address`` before ``until`` (a later bounce extends it)."""
    entry = session.scalar(
        select(UndeliverableAddress).where(UndeliverableAddress.address == address.lower())
    )
    if entry is None:
        entry = UndeliverableAddress(address=address.lower(), until=until)
        session.add(entry)
    entry.until = max(entry.until, until)
    entry.reason, entry.intake_id = reason, intake_id


@dataclass(frozen=True)
class HeldBack:
    """An unsent outbox row whose recipient is undeliverable."""

    outbox_id: int
    recipient: str
    request_id: int | None
    until: dt.datetime
    reason: str


def skip_undeliverable(db: Database, outbox_ids: Sequence[int], *, give_up_at: int) -> set[int]:
    """Of these unsent outbox rows, those addressed to an undeliverable address: each is marked
    as given up (``attempts``), with the reason, and its request is told. Returns their ids."""
    with db.sessions() as session:
        held = _held_back(session, outbox_ids, utcnow())
    if held:
        with db.transaction() as session:
            for entry in held:
                _give_up(session, entry, give_up_at)
    return {entry.outbox_id for entry in held}


def _held_back(session: Session, outbox_ids: Sequence[int], now: dt.datetime) -> list[HeldBack]:
    rows = session.execute(
        select(
            OutboxMessage.id,
            OutboxMessage.recipient,
            OutboxMessage.request_id,
            UndeliverableAddress.until,
            UndeliverableAddress.reason,
        )
        .join(UndeliverableAddress, UndeliverableAddress.address == OutboxMessage.recipient)
        .where(
            OutboxMessage.id.in_(list(outbox_ids)),
            OutboxMessage.channel == "email",
            OutboxMessage.sent_at.is_(None),
            UndeliverableAddress.until > now,
        )
    )
    return [HeldBack(*row) for row in rows]


def _give_up(session: Session, entry: HeldBack, give_up_at: int) -> None:
    """The sweep leaves a row at ``give_up_at`` attempts alone; the request is told why."""
    row = session.get_one(OutboxMessage, entry.outbox_id)
    row.attempts = max(row.attempts, give_up_at)
    row.last_error = f"undeliverable until {entry.until:%Y-%m-%d %H:%M} UTC: {entry.reason}"
    if entry.request_id is not None:
        request = session.get_one(ServiceRequest, entry.request_id)
        detail = {"reason": "undeliverable", "to": entry.recipient, "why": entry.reason}
        add_event(session, request, "acknowledgment_suppressed", detail)
