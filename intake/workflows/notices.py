"""What the contact is told by mail, in one place: replies and status reports from the desk,
and the short notices of a severity change, an assignment, an escalation step, an action plan,
a resolution and a decision on a request for another severity.

Each is a :class:`Notice` (subject after the request number, and the text); which of the
automatic notices go out at all is configured per kind (``[notices]``).
"""

from __future__ import annotations

from dataclasses import dataclass

from intake.policy import SeverityLevel
from intake.store.models import ServiceRequest

SIGNATURE = "\n\nReply to this message to add information; keep [{number}] in the subject.\n"


@dataclass(frozen=True)
class Notice:
    subject: str
    body: str
    automatic: bool = True  # written by the gateway, not typed by a person


def _mail(request: ServiceRequest, text: str) -> str:
    greeting = f"Hello {request.contact.name},\n\n"
    return greeting + text.strip() + SIGNATURE.format(number=request.number)


def reply(request: ServiceRequest, text: str, by: str) -> Notice:
    return Notice(f"Re: {request.subject}", _mail(request, f"{text}\n\n{by}"), automatic=False)


def status_report(request: ServiceRequest, text: str, by: str) -> Notice:
    body = f"Status report on {request.number}:\n\n{text}\n\n{by}"
    return Notice(f"Status report: {request.subject}", _mail(request, body), automatic=False)


def severity_changed(
    request: ServiceRequest, previous: int, level: SeverityLevel, justification: str
) -> Notice:
    text = (
        f"the severity of {request.number} changed from {previous} to {level.number} "
        f"({level.name}: {level.meaning}).\n\nWhy: {justification}\n\n"
        f"Response goal: {level.describe_goal()}, due "
        f"{request.response_due_at.strftime('%Y-%m-%d %H:%M UTC')}."
    )
    return Notice(f"Severity changed to {level.number}", _mail(request, text))


def assigned(request: ServiceRequest, engineer: str) -> Notice:
    text = f"{engineer} of the support desk is now working on {request.number}."
    return Notice(f"Assigned to {engineer}", _mail(request, text))


def escalated(request: ServiceRequest, manager: str, level: int) -> Notice:
    text = (
        f"{request.number} has been escalated (level {level}). {manager}, the escalation "
        "manager, will work out an action plan with you and send it to you.\n\n"
        "Escalation does not change the severity: to ask for another severity, reply with a "
        "line 'Severity: N' and tell us how the impact has changed."
    )
    return Notice(f"Escalated to {manager}", _mail(request, text))


def action_plan(request: ServiceRequest, plan: str, manager: str) -> Notice:
    text = f"the action plan for {request.number}:\n\n{plan}\n\n{manager}, escalation manager"
    return Notice("Action plan", _mail(request, text))


def resolved(request: ServiceRequest, note: str) -> Notice:
    text = f"{request.number} is resolved." + (f"\n\n{note}" if note else "")
    text += "\n\nIf the problem is not solved, reply to this message and the request reopens."
    return Notice("Resolved", _mail(request, text))


def severity_request_refused(request: ServiceRequest, severity: int, why: str) -> Notice:
    text = f"your request to change {request.number} to severity {severity} was refused: {why}"
    return Notice(f"Severity {severity} refused", _mail(request, text))


def severity_request_accepted(request: ServiceRequest, severity: int, note: str) -> Notice:
    text = f"{request.number} now has severity {severity}, as you asked." + (
        f"\n\n{note}" if note else ""
    )
    return Notice(f"Severity {severity} accepted", _mail(request, text))


def severity_request_received(request: ServiceRequest, severity: int) -> Notice:
    text = (
        f"we have your request to change {request.number} to severity {severity}; "
        "an engineer will decide on it and tell you."
    )
    return Notice(f"Severity {severity} requested", _mail(request, text))
