"""The staff actions on a request's page: write (reply, status report, internal note), change
severity, escalate, assign, resolve.

Each is a form POST (with its CSRF token) that calls intake.workflows.staff_actions in one
transaction and answers with a redirect back to the request (post/redirect/get), saying what was
done. A form with a missing field shows the page again with the field's error and what was
typed; an action that cannot be done (a closed request) says why.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from flask import Blueprint, flash, redirect, url_for
from flask_login import current_user
from flask_wtf import FlaskForm
from sqlalchemy.orm import Session
from werkzeug.exceptions import NotFound
from werkzeug.wrappers import Response

from intake.jobs.jobs import schedule_goal_checks_quietly, send_request_mail_quietly
from intake.jobs.queue import make_queue
from intake.requests.refused import ActionRefused
from intake.workflows import escalation, replies, severity_requests, tell
from intake.workflows.config import WorkflowConfig, load_workflow_config
from intake.workflows.desk import Desk, desk_for
from web import services
from web.api import request_id_or_404
from web.forms import (
    ActionPlanForm,
    AssignForm,
    EscalationForm,
    ReplyForm,
    ResolveForm,
    SeverityDecisionForm,
    SeverityForm,
)
from web.login import require_staff_page
from web.pages import add_choices, render_request_page

bp = Blueprint("request_actions", __name__)
bp.before_request(require_staff_page)

Answer = Response | tuple[str, int]


def _act(number: str, work: Callable[[Session, int, str], Any], done: str) -> Response:
    """Run one action in a transaction; flash what happened; back to the request's page."""
    request_id = request_id_or_404(number)
    try:
        with services().db.transaction() as session:
            work(session, request_id, str(current_user.username))
        flash(done)
        svc = services()
        send_request_mail_quietly(make_queue(svc.settings, svc.redis), request_id)
    except ActionRefused as refused:
        if refused.kind == "not_found":
            raise NotFound(refused.message) from None
        flash(refused.message, "error")
    return redirect(url_for("pages.request_page", number=number.upper()))


def _workflows() -> WorkflowConfig:
    return load_workflow_config(services().settings.policy)


def _desk() -> Desk:
    return desk_for(services().settings, services().policy)


def _invalid(number: str, name: str, form: FlaskForm) -> tuple[str, int]:
    return render_request_page(request_id_or_404(number), {name: form}, status=422)


@bp.post("/requests/<number>/severity")
def change_severity(number: str) -> Answer:
    form = SeverityForm(prefix="sev")
    add_choices(form, AssignForm(prefix="asg"))
    if not form.validate_on_submit():
        return _invalid(number, "severity", form)
    severity, why = int(form.severity.data), form.justification.data or ""
    svc, config = services(), _workflows()
    answer = _act(
        number,
        lambda s, rid, by: tell.change_severity(
            s, svc.settings, svc.policy, config, rid, severity=severity, justification=why, by=by
        ),
        f"Severity changed to {severity}; the response goal now counts from this moment.",
    )
    schedule_goal_checks_quietly(make_queue(svc.settings, svc.redis), request_id_or_404(number))
    return answer


@bp.post("/requests/<number>/escalate")
def escalate(number: str) -> Answer:
    form = EscalationForm(prefix="esc")
    if not form.validate_on_submit():
        return _invalid(number, "escalate", form)
    reason, counterpart, desk = form.reason.data or "", form.counterpart.data or "", _desk()
    return _act(
        number,
        lambda s, rid, by: escalation.escalate(
            s, desk, rid, reason=reason, by=by, counterpart=counterpart
        ),
        "Escalated: the next level's manager is asked for an action plan.",
    )


@bp.post("/requests/<number>/action-plan")
def action_plan(number: str) -> Answer:
    form = ActionPlanForm(prefix="plan")
    if not form.validate_on_submit():
        return _invalid(number, "plan", form)
    plan, desk = form.plan.data or "", _desk()
    return _act(
        number,
        lambda s, rid, by: escalation.record_action_plan(s, desk, rid, plan=plan, by=by),
        "Action plan recorded and sent to the contact.",
    )


@bp.post("/requests/<number>/severity-requests/<int:change_id>/<any(accept, refuse):decision>")
def decide_severity_request(number: str, change_id: int, decision: str) -> Answer:
    form = SeverityDecisionForm(prefix="dec")
    if not form.validate_on_submit():
        return _invalid(number, "decide", form)
    note, desk = form.note.data or "", _desk()
    if decision == "accept":
        answer = _act(
            number,
            lambda s, rid, by: severity_requests.accept(s, desk, rid, change_id, note=note, by=by),
            "Severity changed as the contact asked; the contact is told.",
        )
        schedule_goal_checks_quietly(
            make_queue(desk.settings, services().redis), request_id_or_404(number)
        )
        return answer
    return _act(
        number,
        lambda s, rid, by: severity_requests.refuse(s, desk, rid, change_id, note=note, by=by),
        "Request for another severity refused; the contact is told why.",
    )


@bp.post("/requests/<number>/assign")
def assign(number: str) -> Answer:
    form = AssignForm(prefix="asg")
    add_choices(SeverityForm(prefix="sev"), form)
    if not form.validate_on_submit():
        return _invalid(number, "assign", form)
    assignee, settings, config = str(form.assignee.data), services().settings, _workflows()
    return _act(
        number,
        lambda s, rid, by: tell.assign(s, settings, config, rid, assignee=assignee, by=by),
        f"Assigned to {assignee}; the request is in progress.",
    )


@bp.post("/requests/<number>/resolve")
def resolve(number: str) -> Answer:
    form = ResolveForm(prefix="res")
    if not form.validate_on_submit():
        return _invalid(number, "resolve", form)
    note, settings, config = form.note.data or "", services().settings, _workflows()
    return _act(
        number,
        lambda s, rid, by: tell.resolve(s, settings, config, rid, note=note, by=by),
        "Resolved.",
    )


@bp.post("/requests/<number>/replies")
def reply(number: str) -> Answer:
    form = ReplyForm(prefix="rep")
    if not form.validate_on_submit():
        return _invalid(number, "reply", form)
    kind, text = str(form.kind.data), form.body.data or ""
    settings, config = services().settings, _workflows()
    done = {
        "reply": "Reply sent to the contact.",
        "status_report": "Status report sent to the contact.",
    }.get(kind, "Internal note added (not sent).")
    return _act(
        number,
        lambda s, rid, by: replies.post_reply(
            s, settings, config, rid, body=text, kind=kind, by=by
        ),
        done,
    )
