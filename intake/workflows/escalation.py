"""Escalation to a manager: each escalation of a request engages the manager of the next level
(``[escalation] managers``), who becomes its escalation owner, is asked by mail for an action
plan, and whose plan, once recorded, is sent to the contact. The contact is told of each step.

Staff escalate from the request's page or the API; a contact by a follow-up whose subject or
first line says "escalate". Escalation does not change the severity: that takes a request for
a change with its justification (intake.workflows.severity_requests).
"""

from __future__ import annotations

import datetime as dt
import re

from sqlalchemy.orm import Session

from intake.requests.opening import add_event
from intake.requests.refused import ActionRefused
from intake.store.models import RequestEvent, ServiceRequest, utcnow
from intake.workflows import alerts, notices
from intake.workflows.desk import Desk
from intake.workflows.outgoing import mail_to_staff
from intake.workflows.staff_actions import TEXT_LIMIT, request_for_update, required_text
from intake.workflows.tell import tell_contact

COUNTERPART_LIMIT = 200
_ESCALATE = re.compile(r"\bescalat(e|ed|ion|ing)\b", re.IGNORECASE)
_COUNTERPART = re.compile(r"^\s*counterpart\s*:\s*(.+?)\s*$", re.IGNORECASE | re.MULTILINE)


def asks_for_escalation(subject: str, text: str) -> bool:
    """Whether a follow-up's subject or first non-empty line says "escalate"."""
    first_line = next((line for line in text.splitlines() if line.strip()), "")
    return bool(_ESCALATE.search(subject) or _ESCALATE.search(first_line))


def escalate(
    session: Session,
    desk: Desk,
    request_id: int,
    *,
    reason: object,
    by: str,
    counterpart: str = "",
    now: dt.datetime | None = None,
) -> RequestEvent:
    """Take the request one level up: its manager owns the escalation and is asked for an
    action plan. Without managers configured, the escalation is recorded for the desk."""
    now = now or utcnow()
    request = request_for_update(session, request_id)
    why = required_text(reason, "reason")
    if request.status == "closed":
        raise ActionRefused("conflict", "closed", f"{request.number} is closed.")
    level = request.escalation_level + 1
    manager = desk.config.manager_at(level)
    if manager is None and desk.config.managers:
        top = request.escalation_level
        raise ActionRefused(
            "conflict", "highest_level", f"{request.number} is already at level {top}, the top."
        )
    detail: dict[str, object] = {"reason": why, "by": by, "level": level}
    if counterpart.strip():
        detail["counterpart"] = counterpart.strip()[:COUNTERPART_LIMIT]
    request.escalation_level = level
    if manager is not None:
        request.escalation_owner = manager.name
        detail["manager"] = manager.name
        alert = alerts.escalation_engaged(request, level, why, by, desk.settings.public_url)
        mail = mail_to_staff(desk.settings, request, alert, manager.email, purpose="escalation")
        session.add(mail)
        notice = notices.escalated(request, manager.name, level)
        tell_contact(session, desk.settings, desk.config, request, kind="escalated", notice=notice)
    return add_event(session, request, "escalated", detail, at=now)


def record_action_plan(
    session: Session,
    desk: Desk,
    request_id: int,
    *,
    plan: object,
    by: str,
    now: dt.datetime | None = None,
) -> RequestEvent:
    """The escalation owner's action plan, on the timeline and sent to the contact."""
    now = now or utcnow()
    request = request_for_update(session, request_id)
    text = required_text(plan, "plan")
    if request.escalation_level == 0:
        raise ActionRefused(
            "conflict", "not_escalated", f"{request.number} is not escalated: no plan is asked."
        )
    owner = request.escalation_owner or by
    detail = {"text": text, "by": by, "manager": owner, "level": request.escalation_level}
    event = add_event(session, request, "action_plan", detail, at=now)
    notice = notices.action_plan(request, text, owner)
    tell_contact(session, desk.settings, desk.config, request, kind="action_plan", notice=notice)
    return event


def escalated_by_contact(
    session: Session, desk: Desk, request: ServiceRequest, *, sender: str, text: str
) -> RequestEvent | None:
    """A follow-up asking for escalation escalates the request (the reason is the mail's
    text; a line "Counterpart: NAME" names the contact's counterpart at that level); one at
    the top level is only recorded on the timeline."""
    reason = text.strip()[:TEXT_LIMIT] or "The contact asked for escalation."
    named = _COUNTERPART.search(text)
    counterpart = named.group(1) if named else ""
    try:
        return escalate(
            session, desk, request.id, reason=reason, by=sender, counterpart=counterpart
        )
    except ActionRefused as refused:
        detail = {"reason": reason, "by": sender, "refused": refused.message}
        return add_event(session, request, "escalation_requested", detail)
