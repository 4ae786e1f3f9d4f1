"""What a contact's follow-up asks for, beyond adding information: a line ``Severity: N``
becomes a request for a change of severity, and "escalate" in the subject or first line
escalates the request (intake.workflows.escalation). A mail saying "escalate" and asking for
another severity gets both: escalation is not the way to change the business impact."""

from __future__ import annotations

from sqlalchemy.orm import Session

from intake.store.models import ServiceRequest
from intake.workflows import escalation, severity_requests
from intake.workflows.desk import Desk
from parsers import severity_from_body


def act_on_follow_up(
    session: Session,
    desk: Desk,
    request: ServiceRequest,
    *,
    sender: str,
    subject: str,
    text: str,
) -> None:
    """Called with the follow-up already on the request's timeline; ``text`` is the new part
    of the mail (quoted text and signature stripped)."""
    severity = severity_from_body(text)
    if severity is not None:
        severity_requests.request_change(
            session, desk, request, severity=severity, text=text, requested_by=sender
        )
    if escalation.asks_for_escalation(subject, text):
        escalation.escalated_by_contact(session, desk, request, sender=sender, text=text)
