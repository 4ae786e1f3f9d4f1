"""The contact's status page, reached from the signed, expiring link in the acknowledgment.

No account is needed: the link itself is the credential, and it shows that one request only.
A tampered or expired link gets a 404, which tells nothing about which requests exist.
"""

from __future__ import annotations

import datetime as dt

from flask import Blueprint, abort, render_template
from sqlalchemy import select
from sqlalchemy.orm import joinedload

from intake.links import request_number_from_status_token
from intake.models import RequestEvent, ServiceRequest, parse_request_number
from intake.policy import load_policy
from web import services

bp = Blueprint("status", __name__)


@bp.get("/status/<token>")
def request_status(token: str) -> str:
    svc = services()
    number = request_number_from_status_token(svc.settings.secret_key, token)
    request_id = parse_request_number(number) if number else None
    if request_id is None:
        abort(404, "This status link is not valid or has expired.")
    with svc.db.sessions() as session:
        request = session.scalar(
            select(ServiceRequest)
            .where(ServiceRequest.id == request_id)
            .options(joinedload(ServiceRequest.customer))
        )
        if request is None:
            abort(404, "This status link is not valid or has expired.")
        report = session.scalar(
            select(RequestEvent)
            .where(
                RequestEvent.request_id == request_id,
                RequestEvent.type == "status_report",
            )
            .order_by(RequestEvent.id.desc())
            .limit(1)
        )
    level = load_policy(svc.settings.policy).level(request.severity)
    return render_template(
        "status.html",
        request=request,
        level=level,
        report=report,
        time_left=_time_left(request.response_due_at),
    )


def _time_left(due: dt.datetime) -> str:
    minutes = int((due - dt.datetime.now(dt.UTC)).total_seconds() // 60)
    if minutes < 0:
        return f"overdue by {_span(-minutes)}"
    return f"in {_span(minutes)}"


def _span(minutes: int) -> str:
    if minutes < 120:
        return f"{minutes} min"
    if minutes < 48 * 60:
        return f"{minutes // 60} h {minutes % 60} min"
    return f"{minutes // (24 * 60)} days"
