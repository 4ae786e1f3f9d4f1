"""Status report reminders: Severity 1 and 2 get a status report at least every few hours
(``[status_reports]``, default 4 and 8) until resolved. When one is due and none has gone out
since the last report (or the receipt, or the last reminder), the request gets a
``status_report_due`` event and whoever should act a mail (as the breach watch chooses).

The periodic sweep runs :func:`remind_due`; time comes in as ``now``.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from intake.requests.opening import add_event
from intake.store.models import OPEN_STATUSES, ServiceRequest
from intake.workflows import alerts
from intake.workflows.breach_watch import notification_recipient
from intake.workflows.desk import Desk
from intake.workflows.outgoing import mail_to_staff

BATCH = 500


def last_report_or_reminder(request: ServiceRequest) -> dt.datetime:
    moments = [request.created_at, request.status_reported_at, request.report_reminded_at]
    return max(m for m in moments if m is not None)


def is_due(request: ServiceRequest, desk: Desk, now: dt.datetime) -> bool:
    hours = desk.config.report_every(request.severity)
    if hours is None or request.status not in OPEN_STATUSES:
        return False
    return now - last_report_or_reminder(request) >= dt.timedelta(hours=hours)


def remind_due(session: Session, desk: Desk, now: dt.datetime) -> list[int]:
    """Remind of every status report that is due; returns the requests reminded of."""
    return [rid for rid in _due_ids(session, desk, now) if remind(session, desk, rid, now)]


def _due_ids(session: Session, desk: Desk, now: dt.datetime) -> list[int]:
    """Open requests whose last report, reminder or receipt is a cadence ago, per severity
    (found in SQL, so a long list of open requests is never cut short)."""
    due: list[int] = []
    for severity in (1, 2, 3, 4):
        hours = desk.config.report_every(severity)
        if hours is None:
            continue
        since = now - dt.timedelta(hours=hours)
        due += session.scalars(
            select(ServiceRequest.id)
            .where(
                ServiceRequest.status.in_(OPEN_STATUSES),
                ServiceRequest.severity == severity,
                ServiceRequest.created_at <= since,
                or_(
                    ServiceRequest.status_reported_at.is_(None),
                    ServiceRequest.status_reported_at <= since,
                ),
                or_(
                    ServiceRequest.report_reminded_at.is_(None),
                    ServiceRequest.report_reminded_at <= since,
                ),
            )
            .order_by(ServiceRequest.id)
            .limit(BATCH)
        ).all()
    return due


def remind(session: Session, desk: Desk, request_id: int, now: dt.datetime) -> bool:
    request = session.get(ServiceRequest, request_id, with_for_update=True)
    if request is None or not is_due(request, desk, now):
        return False
    hours = desk.config.report_every(request.severity) or 0
    last_report = request.status_reported_at
    request.report_reminded_at = now
    recipient = notification_recipient(request, desk)
    notice = alerts.status_report_due(request, hours, desk.settings.public_url)
    session.add(
        mail_to_staff(desk.settings, request, notice, recipient.address, purpose="report_due")
    )
    detail = {
        "every_hours": hours,
        "last_report_at": last_report.isoformat() if last_report else None,
        "notified": recipient.who,
    }
    add_event(session, request, "status_report_due", detail, at=now)
    return True
