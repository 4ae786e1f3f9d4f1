"""The contact's status page, reached from the signed, expiring link in the acknowledgment.

No account is needed: the link itself is the credential, and it shows that one request only
(its status, severity, response-goal countdown and latest status report), nothing of others.
A tampered or expired link gets a 404, which tells nothing about which requests exist.
"""

from __future__ import annotations

from flask import Blueprint, abort, render_template
from sqlalchemy import select
from sqlalchemy.orm import Session

from intake.outbox.links import request_number_from_status_token
from intake.store.models import RequestEvent, ServiceRequest, parse_request_number
from web import services
from web.timefmt import time_left

bp = Blueprint("status", __name__)
NOT_VALID = "This status link is not valid or has expired."


@bp.get("/status/<token>")
def request_status(token: str) -> str:
    svc = services()
    number = request_number_from_status_token(svc.settings.secret_key, token)
    request_id = parse_request_number(number) if number else None
    if request_id is None:
        abort(404, NOT_VALID)
    with svc.db.sessions() as session:
        request = session.get(ServiceRequest, request_id)
        if request is None:
            abort(404, NOT_VALID)
        report = _latest_report(session, request_id)
    return render_template(
        "status.html",
        request=request,
        level=svc.policy.level(request.severity),
        report=report,
        time_left=time_left(request.response_due_at),
    )


def _latest_report(session: Session, request_id: int) -> RequestEvent | None:
    return session.scalar(
        select(RequestEvent)
        .where(RequestEvent.request_id == request_id, RequestEvent.type == "status_report")
        .order_by(RequestEvent.id.desc())
        .limit(1)
    )
