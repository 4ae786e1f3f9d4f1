"""What a technical contact asks of a request from the portal: an escalation, a different
severity. The one place the portal's forms reach the request workflows.

An escalation goes one level up as staff's would (its manager engaged and asked for an action
plan), with the contact as its author and the counterpart at the customer's level whom the
escalation manager should speak to. A severity change is asked for, not made: staff decide,
and an upgrade that does not say what the impact is gets refused at once, saying so.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.orm import Session

from intake.requests.refused import ActionRefused
from intake.workflows import escalation, severity_requests
from intake.workflows.desk import Desk
from intake.workflows.staff_actions import ensure_open, request_for_update, required_text

__all__ = ["ActionRefused", "Counterpart", "request_escalation", "request_severity_change"]


@dataclass(frozen=True)
class Counterpart:
    """Who at the customer speaks for it at the escalation manager's level."""

    name: str
    reach: str  # an address or a phone number


def request_escalation(
    session: Session,
    desk: Desk,
    request_id: int,
    *,
    reason: str,
    counterpart: Counterpart,
    by: str,
) -> None:
    """Escalate the request at the contact's word, naming the customer's counterpart."""
    name = required_text(counterpart.name, "counterpart")
    reach = required_text(counterpart.reach, "counterpart's address or phone")
    escalation.escalate(
        session, desk, request_id, reason=reason, by=by, counterpart=f"{name} ({reach})"
    )


def request_severity_change(
    session: Session, desk: Desk, request_id: int, *, severity: int, justification: str, by: str
) -> None:
    """Ask staff for another severity; an upgrade must say what the impact is."""
    request = ensure_open(request_for_update(session, request_id))
    if severity not in (1, 2, 3, 4):
        raise ActionRefused("invalid", "invalid_severity", "The severity must be 1, 2, 3 or 4.")
    change = severity_requests.request_change(
        session, desk, request, severity=severity, text=justification, requested_by=by
    )
    if change is None:
        raise ActionRefused(
            "conflict", "same_severity", f"{request.number} already has severity {severity}."
        )
    if change.state == "refused":  # said on the form; nothing is recorded
        raise ActionRefused(
            "invalid",
            "missing_impact",
            f"An upgrade to Severity {severity} needs the impact: say what no longer works, "
            "for how many users, and whether there is a workaround.",
        )
