"""What the desk is told by mail, in one place: a response goal nearing or past its time, a
status report due, an escalation that asks a manager for an action plan. Each links to the
request's staff page."""

from __future__ import annotations

from intake.store.models import ServiceRequest
from intake.workflows.notices import Notice


def _page(public_url: str, request: ServiceRequest) -> str:
    return f"{public_url.rstrip('/')}/requests/{request.number}"


def _facts(request: ServiceRequest) -> str:
    due = request.response_due_at.strftime("%Y-%m-%d %H:%M UTC")
    return (
        f"Severity {request.severity}, {request.customer.name}, contact {request.contact.name}.\n"
        f"Subject: {request.subject}\nResponse due: {due}\n"
    )


def goal_alert(request: ServiceRequest, share: int, public_url: str) -> Notice:
    if share >= 100:
        subject = f"Response goal BREACHED (Severity {request.severity})"
        lead = "The response goal has passed and nobody has responded to the contact yet."
    else:
        subject = f"Response goal {share} % gone (Severity {request.severity})"
        lead = f"{share} % of the response goal has passed without a response to the contact."
    body = (
        f"{lead}\n\n{_facts(request)}\nAssign an engineer and reply or send a status report:\n"
        f"{_page(public_url, request)}\n"
    )
    return Notice(subject, body)


def goal_sms(request: ServiceRequest, share: int) -> str:
    """The text the engineer on call gets for a Severity 1 request nobody has answered."""
    state = "BREACHED" if share >= 100 else f"{share}% gone"
    return (
        f"SEV1 {request.number} response goal {state}: {request.customer.name}, "
        f"{request.subject[:60]}. Assign and answer the contact."
    )


def status_report_due(request: ServiceRequest, hours: int, public_url: str) -> Notice:
    body = (
        f"No status report has gone to the contact for {hours} hours; Severity "
        f"{request.severity} gets one at least that often until it is resolved.\n\n"
        f"{_facts(request)}\n{_page(public_url, request)}\n"
    )
    return Notice(f"Status report due (Severity {request.severity})", body)


def escalation_engaged(
    request: ServiceRequest, level: int, reason: str, by: str, public_url: str
) -> Notice:
    body = (
        f"{request.number} is escalated to you (level {level}) by {by}:\n\n{reason}\n\n"
        f"{_facts(request)}\nPlease work out an action plan with the contact and record it on "
        f"the request's page (it is sent to the contact):\n{_page(public_url, request)}\n"
    )
    return Notice(f"Escalation level {level}: action plan needed", body)
