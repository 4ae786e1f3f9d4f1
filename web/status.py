"""The contact's status page, reached from the signed, expiring link in the acknowledgment.

No account is needed: the link itself is the credential, and it shows that one request only
(its status, severity, response-goal countdown and latest status report), nothing of others.
A tampered or expired link gets a 404, which tells nothing about which requests exist. From the
page the contact may ask for escalation or for another severity (forms with a CSRF token), as
by mail (intake.workflows).
"""

from __future__ import annotations

from flask import Blueprint, abort, flash, redirect, render_template, url_for
from sqlalchemy import select
from sqlalchemy.orm import Session
from werkzeug.wrappers import Response

from intake.jobs.jobs import send_request_mail_quietly
from intake.jobs.queue import make_queue
from intake.outbox.links import request_number_from_status_token
from intake.store.models import RequestEvent, ServiceRequest, SeverityRequest, parse_request_number
from intake.workflows import escalation, severity_requests
from intake.workflows.desk import desk_for
from web import services
from web.forms import ContactEscalationForm, ContactSeverityForm
from web.timefmt import time_left

bp = Blueprint("status", __name__)
NOT_VALID = "This status link is not valid or has expired."


def _request_id(token: str) -> int:
    number = request_number_from_status_token(services().settings.secret_key, token)
    request_id = parse_request_number(number) if number else None
    if request_id is None:
        abort(404, NOT_VALID)
    return request_id


@bp.get("/status/<token>")
def request_status(token: str) -> str:
    svc = services()
    request_id = _request_id(token)
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
        escalation_form=ContactEscalationForm(prefix="esc"),
        severity_form=ContactSeverityForm(prefix="sev", severity=request.severity),
        token=token,
    )


@bp.post("/status/<token>/escalate")
def contact_escalates(token: str) -> Response:
    form = ContactEscalationForm(prefix="esc")
    request_id = _request_id(token)
    if not form.validate_on_submit():
        flash("Say why the request needs a manager.", "error")
        return redirect(url_for("status.request_status", token=token))
    text = form.reason.data or ""
    if form.counterpart.data:
        text += f"\nCounterpart: {form.counterpart.data}"
    svc = services()
    with svc.db.transaction() as session:
        request = _open_request(session, request_id)
        sender = request.contact.primary_email or request.contact.name
        escalation.escalated_by_contact(
            session, desk_for(svc.settings, svc.policy), request, sender=sender, text=text
        )
    send_request_mail_quietly(make_queue(svc.settings, svc.redis), request_id)
    flash("Your request is escalated; the escalation manager will contact you.")
    return redirect(url_for("status.request_status", token=token))


@bp.post("/status/<token>/severity")
def contact_asks_for_severity(token: str) -> Response:
    form = ContactSeverityForm(prefix="sev")
    request_id = _request_id(token)
    if not form.validate_on_submit():
        flash("Choose a severity from 1 to 4.", "error")
        return redirect(url_for("status.request_status", token=token))
    svc = services()
    with svc.db.transaction() as session:
        request = _open_request(session, request_id)
        sender = request.contact.primary_email or request.contact.name
        change = severity_requests.request_change(
            session,
            desk_for(svc.settings, svc.policy),
            request,
            severity=int(form.severity.data),
            text=form.justification.data or "",
            requested_by=sender,
        )
        answer = _severity_answer(change)
    send_request_mail_quietly(make_queue(svc.settings, svc.redis), request_id)
    flash(*answer)
    return redirect(url_for("status.request_status", token=token))


def _open_request(session: Session, request_id: int) -> ServiceRequest:
    request = session.get(ServiceRequest, request_id, with_for_update=True)
    if request is None:
        abort(404, NOT_VALID)
    return request


def _severity_answer(change: SeverityRequest | None) -> tuple[str, str]:
    if change is None:
        return "The request already has that severity, or is closed.", "error"
    if change.state == "refused":
        return f"Not accepted: {change.note}", "error"
    return "Your request for another severity is with the support desk; we will tell you.", "info"


def _latest_report(session: Session, request_id: int) -> RequestEvent | None:
    return session.scalar(
        select(RequestEvent)
        .where(RequestEvent.request_id == request_id, RequestEvent.type == "status_report")
        .order_by(RequestEvent.id.desc())
        .limit(1)
    )
