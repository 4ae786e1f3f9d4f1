"""What a technical contact asks of a request from the portal: an escalation, a different
severity. The one place the portal's forms reach the request workflows, so both can be
pointed at other workflows without touching the views.

An escalation is recorded as staff record theirs (an ``escalated`` event), with the contact as
its author and the counterpart at the customer's level whom the escalation manager should
speak to. A severity change is asked for, not made: a ``severity_requested`` event carries the
wish and its justification to staff, who decide (the policy wants the impact for an upgrade).
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.orm import Session

from intake.requests.opening import add_event
from intake.requests.staff_actions import (
    ActionRefused,
    ensure_open,
    escalate,
    request_for_update,
    required_text,
)
from intake.store.models import utcnow

__all__ = ["ActionRefused", "Counterpart", "request_escalation", "request_severity_change"]


@dataclass(frozen=True)
class Counterpart:
    """Who at the customer speaks for it at the escalation manager's level."""

    name: str
    reach: str  # an address or a phone number


def request_escalation(
    session: Session, request_id: int, *, reason: str, counterpart: Counterpart, by: str
) -> None:
    """Escalate the request at the contact's word, naming the customer's counterpart."""
    name = required_text(counterpart.name, "counterpart")
    reach = required_text(counterpart.reach, "counterpart's address or phone")
    event = escalate(session, request_id, reason=reason, by=by)
    event.detail = event.detail | {
        "counterpart": name,
        "counterpart_reach": reach,
        "asked_by_contact": True,
    }


def request_severity_change(
    session: Session, request_id: int, *, severity: int, justification: str, by: str
) -> None:
    """Ask staff for another severity; an upgrade must say what the impact is."""
    request = ensure_open(request_for_update(session, request_id))
    if severity not in (1, 2, 3, 4):
        raise ActionRefused("invalid", "invalid_severity", "The severity must be 1, 2, 3 or 4.")
    if severity == request.severity:
        raise ActionRefused(
            "conflict", "same_severity", f"{request.number} already has severity {severity}."
        )
    if severity < request.severity and not justification.strip():
        raise ActionRefused(
            "invalid",
            "missing_impact",
            f"An upgrade to Severity {severity} needs the impact: say what no longer works, "
            "for how many users, and whether there is a workaround.",
        )
    justification = required_text(justification, "justification")
    detail = {"from": request.severity, "to": severity, "justification": justification, "by": by}
    add_event(session, request, "severity_requested", detail, at=utcnow())
