"""Staff decisions on quarantined intake: release a message so it becomes a request, or discard it.

A released row becomes what the pipeline would have made of an accepted message (outcome
``accepted``, state ``pending``), so the worker opens and acknowledges its request exactly as
for any other mail; the caller enqueues it after the commit. A discarded row keeps its outcome
and its raw copy (nothing is ever deleted) and leaves the quarantine by its state.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy.orm import Session

from intake.requests.refused import ActionRefused
from intake.store.contacts import find_contact_by_email, refusal_for
from intake.store.models import IntakeRecord, utcnow
from parsers import end_user_category

QUARANTINED = "quarantined"
DISCARDED = "discarded"


def release(session: Session, intake_id: int, *, by: str, now: dt.datetime | None = None) -> int:
    """Turn a quarantined message into an accepted one; returns the row's id to enqueue.

    The sender must still be a contact who may open a request (the quarantine stopped the
    message for its authenticity, not for its sender's entitlement).
    """
    now = now or utcnow()
    row = quarantined_row(session, intake_id)
    contact = find_contact_by_email(session, row.sender) if row.sender else None
    refusal = refusal_for(contact, row.sender, now.date(), end_user_category(row.subject))
    if refusal is not None or contact is None:
        sentence = refusal.sentence if refusal else "The sender is not a contact."
        raise ActionRefused("invalid", "sender_not_entitled", f"Not released: {sentence}")
    was = f"{row.reason}: {row.detail}" if row.detail else row.reason
    row.outcome, row.reason, row.state = "accepted", "released", "pending"
    row.contact_id = contact.contact_id
    row.detail = f"Released from quarantine by {by} at {now:%Y-%m-%d %H:%M} UTC (was {was})."
    return row.id


def discard(session: Session, intake_id: int, *, by: str, now: dt.datetime | None = None) -> None:
    """Take a message out of the quarantine for good; the row and its raw copy stay."""
    now = now or utcnow()
    row = quarantined_row(session, intake_id)
    row.state = DISCARDED
    row.detail = f"{row.detail} Discarded by {by} at {now:%Y-%m-%d %H:%M} UTC.".strip()


def quarantined_row(session: Session, intake_id: int) -> IntakeRecord:
    """The row, locked; refused when it is unknown or not (or no longer) in the quarantine."""
    row = session.get(IntakeRecord, intake_id, with_for_update=True)
    if row is None:
        raise ActionRefused("not_found", "not_found", f"There is no intake entry #{intake_id}.")
    if row.outcome != QUARANTINED or row.state == DISCARDED:
        state = "discarded" if row.state == DISCARDED else row.outcome
        raise ActionRefused(
            "conflict", "not_quarantined", f"Intake entry #{intake_id} is {state}, not quarantined."
        )
    return row
