"""A contact's request for another severity: a follow-up with a line ``Severity: N`` becomes a
request for a change, with the rest of the mail as the contact's justification.

An upgrade needs information showing the increased impact: one without any such text is refused
at once, with a sentence saying what is missing. Otherwise staff accept it (the severity changes,
the goal's clock restarts, the contact is told) or refuse it with a note (the contact is told
why). Every request for a change leaves a ``severity_requested`` event.
"""

from __future__ import annotations

import datetime as dt
import re

from sqlalchemy.orm import Session

from intake.requests.opening import add_event
from intake.requests.refused import ActionRefused
from intake.store.models import ServiceRequest, SeverityRequest, utcnow
from intake.workflows import notices, tell
from intake.workflows.desk import Desk
from intake.workflows.notices import Notice
from intake.workflows.outgoing import mail_to_contact
from intake.workflows.staff_actions import (
    TEXT_LIMIT,
    ensure_open,
    request_for_update,
    required_text,
)

MIN_JUSTIFICATION_WORDS = 4  # "it is worse now" is not yet information about the impact
_SEVERITY_LINE = re.compile(r"^[ \t]*severity[ \t]*:[ \t]*[1-4](?![0-9]).*$", re.I | re.M)
_ESCALATE_LINE = re.compile(r"^[ \t]*(please[ \t]+)?escalat\w*[ \t.!]*$", re.I | re.M)
MISSING_IMPACT = (
    "an upgrade needs a description of the increased business impact: what no longer works, "
    "who is affected and since when. Reply with that and the line 'Severity: {severity}'."
)


def justification_of(text: str) -> str:
    """The mail's text without its 'Severity: N' line and a bare 'escalate' line."""
    without = _ESCALATE_LINE.sub("", _SEVERITY_LINE.sub("", text))
    return "\n".join(line.rstrip() for line in without.strip().splitlines()).strip()


def request_change(
    session: Session,
    desk: Desk,
    request: ServiceRequest,
    *,
    severity: int,
    text: str,
    requested_by: str,
    now: dt.datetime | None = None,
) -> SeverityRequest | None:
    """Record the contact's request for ``severity``; None when it asks for the severity the
    request already has, or the request is no longer open."""
    now = now or utcnow()
    if severity == request.severity or request.status not in ("new", "acknowledged", "in_progress"):
        return None
    justification = justification_of(text)[:TEXT_LIMIT]
    change = SeverityRequest(
        request_id=request.id,
        severity=severity,
        previous_severity=request.severity,
        justification=justification,
        requested_by=requested_by,
        created_at=now,
    )
    upgrade = severity < request.severity
    if upgrade and len(justification.split()) < MIN_JUSTIFICATION_WORDS:
        change.state, change.note = "refused", MISSING_IMPACT.format(severity=severity)
        change.decided_by, change.decided_at = "the gateway", now
    session.add(change)
    session.flush()
    add_event(session, request, "severity_requested", severity_request_json(change), at=now)
    notice = (
        notices.severity_request_refused(request, severity, change.note)
        if change.state == "refused"
        else notices.severity_request_received(request, severity)
    )
    _mail_contact(session, desk, request, notice)
    return change


def accept(
    session: Session,
    desk: Desk,
    request_id: int,
    change_id: int,
    *,
    note: str,
    by: str,
    now: dt.datetime | None = None,
) -> ServiceRequest:
    """Change the severity as the contact asked; the contact hears of it with the reason."""
    now = now or utcnow()
    change = _pending(session, request_id, change_id)
    reason = f"Requested by {change.requested_by}: {change.justification}"
    if note.strip():
        reason += f"\n\n{note.strip()}"
    request = tell.change_severity(
        session,
        desk.settings,
        desk.policy,
        desk.config,
        request_id,
        severity=change.severity,
        justification=reason[:TEXT_LIMIT],
        by=by,
        now=now,
    )
    _decide(change, "accepted", note, by, now)
    add_event(session, request, "severity_request_decided", severity_request_json(change), at=now)
    return request


def refuse(
    session: Session,
    desk: Desk,
    request_id: int,
    change_id: int,
    *,
    note: object,
    by: str,
    now: dt.datetime | None = None,
) -> SeverityRequest:
    """Refuse the change, saying why (the note is required: the contact is told it)."""
    now = now or utcnow()
    why = required_text(note, "note")
    change = _pending(session, request_id, change_id)
    request = ensure_open(request_for_update(session, request_id))
    _decide(change, "refused", why, by, now)
    add_event(session, request, "severity_request_decided", severity_request_json(change), at=now)
    notice = notices.severity_request_refused(request, change.severity, why)
    _mail_contact(session, desk, request, notice)
    return change


def _pending(session: Session, request_id: int, change_id: int) -> SeverityRequest:
    request_for_update(session, request_id)  # 404 for an unknown request; locks it
    change = session.get(SeverityRequest, change_id, with_for_update=True)
    if change is None or change.request_id != request_id:
        raise ActionRefused("not_found", "not_found", f"There is no severity request {change_id}.")
    if change.state != "pending":
        raise ActionRefused(
            "conflict", "decided", f"Severity request {change_id} is already {change.state}."
        )
    return change


def _decide(change: SeverityRequest, state: str, note: str, by: str, now: dt.datetime) -> None:
    change.state, change.note, change.decided_by, change.decided_at = state, note.strip(), by, now


def severity_request_json(change: SeverityRequest) -> dict[str, object]:
    """A request for a change as events and the API show it."""
    return {
        "id": change.id,
        "severity": change.severity,
        "previous_severity": change.previous_severity,
        "justification": change.justification,
        "state": change.state,
        "note": change.note,
        "requested_by": change.requested_by,
        "decided_by": change.decided_by,
    }


def _mail_contact(session: Session, desk: Desk, request: ServiceRequest, notice: Notice) -> None:
    row = mail_to_contact(desk.settings, request, notice, purpose="severity_request")
    if row is not None:
        session.add(row)
