"""What a Severity 1 call's transfer to the rota leaves on its request: the engineer who pressed
1 to take the call is assigned (the response goal's assignment; a staff login of the same name
becomes the assignee), and a rota where nobody answered leaves a ``rota_unanswered`` event with
the engineers paged. Also the words a phone request's subject gains from its transcription.

The call's outcome may come before or after the worker opened the request, so both sides call
:func:`record_call_outcome`; it writes each fact once.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from intake.requests.opening import add_event
from intake.store.models import CallSession, RequestEvent, ServiceRequest, StaffUser, utcnow
from intake.workflows import goal
from intake.workflows.desk import Desk

ROTA = "the phone rota"
SUBJECT_WORDS = 60  # characters of the transcription the subject shows


def record_call_outcome(
    session: Session, desk: Desk, call: CallSession, now: dt.datetime | None = None
) -> None:
    if call.request_id is None:
        return  # the worker opening the request calls again
    now = now or utcnow()
    request = session.get_one(ServiceRequest, call.request_id)
    engineers = desk.rota.engineers
    accepted = call.accepted_by
    taken = accepted is not None and 0 <= accepted < len(engineers)
    if taken and accepted is not None and not _has_event(session, request.id, "assigned", ROTA):
        _assign_engineer(session, desk, request, engineers[accepted].name, now)
    if call.paged_at is not None and not _has_event(session, request.id, "rota_unanswered"):
        detail = {"paged": [e.name for e in engineers], "paged_at": call.paged_at.isoformat()}
        add_event(session, request, "rota_unanswered", detail, at=call.paged_at)


def _assign_engineer(
    session: Session, desk: Desk, request: ServiceRequest, name: str, now: dt.datetime
) -> None:
    staff_id = session.scalar(
        select(StaffUser.id).where(func.lower(StaffUser.username) == name.lower())
    )
    if staff_id is not None:
        request.assignee_id = staff_id
    if request.status in ("new", "acknowledged"):
        request.status = "in_progress"
    detail = {"to": name, "by": ROTA, "via": "accepted the Severity 1 call"}
    add_event(session, request, "assigned", detail, at=now)
    goal.note_assignment(session, request, desk.config, now)


def _has_event(session: Session, request_id: int, kind: str, by: str | None = None) -> bool:
    events = session.scalars(
        select(RequestEvent.detail).where(
            RequestEvent.request_id == request_id, RequestEvent.type == kind
        )
    ).all()
    return any(by is None or detail.get("by") == by for detail in events)


def subject_with_transcription(subject: str, text: str) -> str:
    """``Severity 1 phone call from Ada: The payroll export stops at…``."""
    words = " ".join(text.split())
    if not words or ": " in subject:
        return subject
    cut = words if len(words) <= SUBJECT_WORDS else words[:SUBJECT_WORDS].rstrip() + "…"
    return f"{subject}: {cut}"
