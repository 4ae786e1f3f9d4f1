"""What of a request's history a contact sees: the public events only, never staff's notes or
the gateway's bookkeeping (delivery failures, suppressed acknowledgments, breaches)."""

from __future__ import annotations

from intake.store.models import RequestEvent, ServiceRequest

PUBLIC_TITLES = {
    "created": "Request logged",
    "acknowledged": "Acknowledgment sent",
    "message": "Information from the contact",
    "reply": "Reply from support",
    "status_report": "Status report",
    "severity_changed": "Severity changed",
    "severity_requested": "Severity change asked for",
    "escalated": "Escalated",
    "resolved": "Resolved",
    "reopened": "Reopened",
    "closed": "Closed",
}


def public_events(request: ServiceRequest) -> list[RequestEvent]:
    return [e for e in request.events if e.type in PUBLIC_TITLES]


def public_title(event: RequestEvent) -> str:
    title = PUBLIC_TITLES.get(event.type, "")
    if event.type in ("severity_changed", "severity_requested"):
        return f"{title}: {event.detail.get('from')} → {event.detail.get('to')}"
    return title
