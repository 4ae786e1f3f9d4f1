"""What the templates need to show things in words: filters and globals for Jinja.

Nothing here marks text as safe: whatever came by mail or phone is escaped by autoescape.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping

from flask import Flask

from intake.store.intake_log import OUTCOME_WORDS, reason_in_words
from intake.store.models import (
    OPEN_STATUSES,
    RequestEvent,
    ServiceRequest,
    format_request_number,
    utcnow,
)
from intake.workflows.goal import clock_start, goal_of
from web import services, timefmt

EVENT_TITLES = {
    "created": "Request opened",
    "message": "Mail from the contact",
    "acknowledged": "Acknowledgment sent",
    "severity_changed": "Severity changed",
    "escalated": "Escalated",
    "assigned": "Assigned",
    "resolved": "Resolved",
    "reopened": "Reopened by a follow-up",
    "voicemail": "Voicemail",
    "transcription": "Transcription of the voicemail",
    "status_report": "Status report",
    "reply": "Reply to the contact",
    "internal_note": "Internal note",
    "goal_met": "Response goal met",
    "goal_warning": "Response goal warning",
    "goal_breached": "Response goal breached",
    "severity_requested": "Severity change requested by the contact",
    "severity_request_decided": "Severity request decided",
    "action_plan": "Action plan",
    "status_report_due": "Status report due",
    "rota_unanswered": "Nobody on the rota answered",
}
STATUS_WORDS = {
    "new": "new",
    "acknowledged": "acknowledged",
    "in_progress": "in progress",
    "resolved": "resolved",
    "closed": "closed",
}


def event_title(event: RequestEvent) -> str:
    title = EVENT_TITLES.get(event.type, event.type.replace("_", " ").capitalize())
    if event.type == "severity_changed":
        return f"{title}: {event.detail.get('from')} → {event.detail.get('to')}"
    return title


def severity_label(severity: int) -> str:
    """``Sev 2 · Serious``, with the name the configured policy gives."""
    levels = services().policy.levels
    return f"Sev {severity} · {levels[severity].name}" if severity in levels else f"Sev {severity}"


def goal_state(request: ServiceRequest, now: dt.datetime | None = None) -> str:
    """``met`` once a person responded in time (assignment and first reply, as configured;
    never the acknowledgment), ``met_late`` when that came after the goal; ``closed`` for a
    request closed without a response nor a breach; else ``breached``, ``near`` or ``ok``
    (see timefmt.urgency)."""
    now = now or utcnow()
    goal = goal_of(request, now)
    if goal.met_at is not None:
        return "met" if goal.state == "met" else "met_late"
    if goal.state == "breached":
        return "breached"
    if request.status not in OPEN_STATUSES:
        return "closed"
    length = request.response_due_at - clock_start(request)
    return timefmt.urgency(request.response_due_at, length, now)


def with_cursor(args: Mapping[str, str], cursor: str | None) -> dict[str, str]:
    """The page's query (its filters) with another cursor, or none for the first page."""
    query = {k: v for k, v in args.items() if k != "cursor" and v}
    return query | {"cursor": cursor} if cursor else query


def register(app: Flask) -> None:
    app.add_template_filter(timefmt.time_left, "time_left")
    app.add_template_filter(timefmt.utc_text, "utc")
    app.add_template_filter(timefmt.ago, "ago")
    app.add_template_filter(event_title, "event_title")
    app.add_template_filter(severity_label, "severity_label")
    app.add_template_filter(goal_state, "goal_state")
    app.add_template_filter(lambda status: STATUS_WORDS.get(status, status), "status_words")
    app.add_template_filter(format_request_number, "request_number")
    app.add_template_filter(with_cursor, "with_cursor")
    app.add_template_global(reason_in_words, "reason_in_words")
    app.jinja_env.globals["OUTCOME_WORDS"] = OUTCOME_WORDS
