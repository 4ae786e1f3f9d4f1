"""What staff do to a request: assign it, change its severity, escalate it, resolve it.

Each action locks the request, checks that it makes sense, changes it and writes its event in
the caller's transaction; the staff pages and the JSON API both call these. A refusal raises
:class:`ActionRefused`, whose ``kind`` the web layer turns into 404, 409 or 422.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from intake.policy import SEVERITIES, Policy
from intake.requests.opening import add_event
from intake.requests.refused import ActionRefused
from intake.store.models import (
    OPEN_STATUSES,
    RequestEvent,
    ServiceRequest,
    StaffUser,
    format_request_number,
    utcnow,
)
from intake.workflows import goal
from intake.workflows.config import WorkflowConfig

TEXT_LIMIT = 10_000  # a justification or a reason is a few sentences, not a document


def change_severity(
    session: Session,
    policy: Policy,
    request_id: int,
    *,
    severity: int,
    justification: str,
    by: str,
    now: dt.datetime | None = None,
) -> ServiceRequest:
    """Set a new severity with its justification; the response goal counts from now."""
    now = now or utcnow()
    request = request_for_update(session, request_id)
    justification = required_text(justification, "justification")
    if isinstance(severity, bool) or severity not in SEVERITIES:
        raise ActionRefused("invalid", "invalid_severity", "The severity must be 1, 2, 3 or 4.")
    ensure_open(request)
    if severity == request.severity:
        raise ActionRefused(
            "conflict", "same_severity", f"{request.number} already has severity {severity}."
        )
    previous, request.severity = request.severity, severity
    goal.restart_clock(request, policy, now)
    detail = {"from": previous, "to": severity, "justification": justification, "by": by}
    detail["response_due_at"] = request.response_due_at.isoformat()
    add_event(session, request, "severity_changed", detail, at=now)
    return request


def escalate(
    session: Session, request_id: int, *, reason: str, by: str, now: dt.datetime | None = None
) -> RequestEvent:
    """Hand the request to an escalation manager, with the reason; a closed one cannot be."""
    request = request_for_update(session, request_id)
    reason = required_text(reason, "reason")
    if request.status == "closed":
        raise ActionRefused("conflict", "closed", f"{request.number} is closed.")
    return add_event(
        session, request, "escalated", {"reason": reason, "by": by}, at=now or utcnow()
    )


def assign(
    session: Session,
    request_id: int,
    *,
    assignee: str,
    by: str,
    now: dt.datetime | None = None,
    config: WorkflowConfig | None = None,
) -> ServiceRequest:
    """Give an open request to a staff member; it is then in progress, and the assignment
    counts toward the response goal."""
    now = now or utcnow()
    request = open_request_for_update(session, request_id)
    staff_id = session.scalar(
        select(StaffUser.id).where(func.lower(StaffUser.username) == assignee.strip().lower())
    )
    if staff_id is None:
        raise ActionRefused("invalid", "unknown_staff", f"There is no staff user {assignee!r}.")
    request.assignee_id = staff_id
    request.status = "in_progress"
    add_event(session, request, "assigned", {"to": assignee.strip(), "by": by}, at=now)
    goal.note_assignment(session, request, config or WorkflowConfig(), now)
    return request


def resolve(
    session: Session, request_id: int, *, note: str, by: str, now: dt.datetime | None = None
) -> ServiceRequest:
    """Mark an open request resolved; the note says what solved it (may be empty)."""
    request = open_request_for_update(session, request_id)
    previous, request.status = request.status, "resolved"
    detail = {"from": previous, "note": note.strip()[:TEXT_LIMIT], "by": by}
    add_event(session, request, "resolved", detail, at=now or utcnow())
    return request


def request_for_update(session: Session, request_id: int) -> ServiceRequest:
    """The request, locked for this transaction (two staff acting at once queue up)."""
    request = session.get(ServiceRequest, request_id, with_for_update=True)
    if request is None:
        number = format_request_number(request_id)
        raise ActionRefused("not_found", "not_found", f"There is no request {number}.")
    return request


def open_request_for_update(session: Session, request_id: int) -> ServiceRequest:
    return ensure_open(request_for_update(session, request_id))


def ensure_open(request: ServiceRequest) -> ServiceRequest:
    if request.status not in OPEN_STATUSES:
        status = request.status.replace("_", " ")
        raise ActionRefused("conflict", "not_open", f"{request.number} is {status}, not open.")
    return request


def required_text(value: object, name: str) -> str:
    """A non-empty text field, trimmed; anything else is refused with a sentence naming it."""
    text = value.strip() if isinstance(value, str) else ""
    if not text:
        raise ActionRefused("invalid", f"missing_{name}", f"A {name} is needed: say why.")
    if len(text) > TEXT_LIMIT:
        raise ActionRefused(
            "invalid", f"long_{name}", f"The {name} is too long (at most {TEXT_LIMIT} characters)."
        )
    return text
