"""The staff pages about requests: the dashboard, the request list and a request's own page.

Every page here is behind the sign-in (login.require_staff_page). Lists are paged by keyset
like the API (web.api), so the thousandth page costs what the first does; the pages refresh
their live parts by themselves (static/app.js), so none needs a manual reload to be right.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from flask import Blueprint, Flask, current_app, render_template
from flask_wtf import FlaskForm
from sqlalchemy import ColumnElement, select
from sqlalchemy.orm import Session, joinedload, selectinload
from werkzeug.exceptions import NotFound, default_exceptions
from werkzeug.wrappers import Response

from intake.accounts.sign_in import staff_names
from intake.ops import stats
from intake.store.models import (
    Contact,
    IntakeRecord,
    OutboxMessage,
    RequestEvent,
    ServiceRequest,
    SeverityRequest,
    format_request_number,
    parse_request_number,
    utcnow,
)
from intake.workflows.around_the_clock import contacts_24x7
from voice.recordings import RecordingUnavailable, fetch_recording
from web import api, present, search, services
from web.charts import latency_rows, volume_bars
from web.doors import JOB_STATES, door_states, jobs_by_state, queue_state
from web.forms import (
    ActionPlanForm,
    AssignForm,
    EscalationForm,
    ReplyForm,
    ResolveForm,
    SeverityDecisionForm,
    SeverityForm,
    severity_choices,
    staff_choices,
)
from web.login import require_staff_page

bp = Blueprint("pages", __name__)
bp.before_request(require_staff_page)

PAGE_SIZE = 50
DAY = dt.timedelta(days=1)
REFRESH_SECONDS = 15  # how often a page's live parts are fetched again (INTAKE_REFRESH_SECONDS)
SEVERITIES = (1, 2, 3, 4)
# The request list's filters: the API's, and free text.
FILTERS = ("status", "severity", "channel", "customer", "contact", "q")


def init_templates(app: Flask) -> None:
    present.register(app)
    app.config.setdefault("INTAKE_REFRESH_SECONDS", REFRESH_SECONDS)
    app.context_processor(_refresh_seconds)


def _refresh_seconds() -> dict[str, Any]:
    return {"REFRESH_SECONDS": current_app.config["INTAKE_REFRESH_SECONDS"]}


@bp.get("/")
def dashboard() -> str:
    svc, now = services(), utcnow()
    with svc.db.sessions() as session:
        figures = _dashboard_figures(session, now)
    return render_template(
        "dashboard.html",
        now=now,
        doors=door_states(svc.settings, svc.redis),
        queue=queue_state(svc.settings, svc.redis),
        severities=SEVERITIES,
        **figures,
    )


def _dashboard_figures(session: Session, now: Any) -> dict[str, Any]:
    hours = stats.intake_by_hour(session, 24, now)
    day: dict[str, int] = {}
    for count in hours:
        day[count.outcome] = day.get(count.outcome, 0) + count.count
    return {
        "open_requests": stats.open_requests_by_urgency(session),
        "counts": stats.open_counts(session, now),
        "pending_intake": stats.pending_intake(session),
        "last_hour": stats.outcome_counts_since(session, now - stats.HOUR),
        "last_day": day,
        "volume": volume_bars(hours, now),
        "latency": latency_rows(stats.acknowledgment_latency(session, DAY, now)),
    }


@bp.get("/jobs")
def jobs() -> str:
    """The queue's jobs behind the dashboard's figures, with the error that makes one retry."""
    svc = services()
    listed = jobs_by_state(svc.settings, svc.redis)
    errors: dict[str, str] = {}
    if listed is not None:
        with svc.db.sessions() as session:
            errors = _stored_errors(session, [j.job_id for js in listed.values() for j in js])
    return render_template("jobs.html", jobs=listed, states=JOB_STATES, errors=errors)


def _stored_errors(session: Session, job_ids: list[str]) -> dict[str, str]:
    """The last error the store kept for each job's intake row or outbox row, by job id."""
    ids = {kind: _row_ids(job_ids, kind) for kind in ("intake", "outbox")}
    found: dict[str, str] = {}
    for kind, model in (("intake", IntakeRecord), ("outbox", OutboxMessage)):
        rows = session.execute(
            select(model.id, model.last_error).where(
                model.id.in_(ids[kind]), model.last_error != ""
            )
        )
        found |= {f"{kind}-{row.id}": row.last_error for row in rows}
    return found


def _row_ids(job_ids: list[str], kind: str) -> list[int]:
    """The row ids in job ids like ``intake-12`` (intake.jobs.jobs names its jobs so)."""
    numbers = [job_id.removeprefix(f"{kind}-") for job_id in job_ids if job_id.startswith(kind)]
    return [int(n) for n in numbers if n.isascii() and n.isdigit() and int(n) <= api.MAX_ID]


@bp.get("/requests")
def request_list() -> str:
    limit, after = api.page_args()
    with services().db.sessions() as session:
        conditions = [*api.request_conditions(), *_text_condition(session)]
        if after is not None:
            conditions.append(api.after_row(session, ServiceRequest, after))
        rows = session.scalars(
            select(ServiceRequest)
            .where(*conditions)
            .options(joinedload(ServiceRequest.customer), joinedload(ServiceRequest.contact))
            .order_by(ServiceRequest.created_at.desc(), ServiceRequest.id.desc())
            .limit(min(limit, PAGE_SIZE) + 1)
        ).all()
    page, more = rows[: min(limit, PAGE_SIZE)], len(rows) > min(limit, PAGE_SIZE)
    return render_template(
        "requests.html",
        rows=page,
        next_cursor=api.encode_cursor(page[-1].id) if more else None,
        filters={name: api.text_arg(name) or "" for name in FILTERS},
        statuses=api.REQUEST_STATUSES,
        channels=api.CHANNELS,
        severities=SEVERITIES,
    )


def _text_condition(session: Session) -> list[ColumnElement[bool]]:
    """Free text finds a request by its number, by a part of its contact's address, or by the
    words of its subject, its description and its messages."""
    text = api.text_arg("q")
    if text is None:
        return []
    request_id = parse_request_number(text)
    if request_id is not None and request_id <= api.MAX_ID:
        return [ServiceRequest.id == request_id]
    if "@" in text:
        return [search.contact_condition(text)]
    return [search.words_condition(session, text)]


@bp.get("/requests/<number>")
def request_page(number: str) -> tuple[str, int]:
    return render_request_page(api.request_id_or_404(number))


def render_request_page(
    request_id: int, forms: dict[str, FlaskForm] | None = None, status: int = 200
) -> tuple[str, int]:
    """The request with its timeline and the staff actions' forms (those given keep what was
    typed and show their errors)."""
    with services().db.sessions() as session:
        sr = session.scalars(
            select(ServiceRequest)
            .where(ServiceRequest.id == request_id)
            .options(
                joinedload(ServiceRequest.customer),
                joinedload(ServiceRequest.contact).selectinload(Contact.emails),
                joinedload(ServiceRequest.assignee),
                selectinload(ServiceRequest.events),
            )
        ).one_or_none()
        if sr is None:
            raise NotFound(f"There is no request {format_request_number(request_id)}.")
        pending = session.scalars(
            select(SeverityRequest)
            .where(SeverityRequest.request_id == request_id, SeverityRequest.state == "pending")
            .order_by(SeverityRequest.id)
        ).all()
        around_the_clock = contacts_24x7(session, sr.customer_id) if sr.severity == 1 else []
    html = render_template(
        "request.html",
        sr=sr,
        forms=_action_forms(sr, forms or {}),
        severity_requests=pending,
        contacts_24x7=around_the_clock,
    )
    return html, status


@bp.get("/requests/<number>/voicemail/<int:event_id>")
def voicemail(number: str, event_id: int) -> Response:
    """A voicemail's recording for the page's player, fetched from Twilio here: the account's
    credentials stay on the server."""
    request_id = api.request_id_or_404(number)
    with services().db.sessions() as session:
        event = session.get(RequestEvent, event_id) if event_id <= api.MAX_ID else None
        if event is None or event.request_id != request_id or event.type != "voicemail":
            raise NotFound(f"{number} has no voicemail #{event_id}.")
        recording_sid = str(event.detail.get("recording_sid", ""))
    try:
        recording = fetch_recording(services().settings, recording_sid)
    except RecordingUnavailable as exc:
        raise default_exceptions[exc.status](str(exc)) from exc
    headers = {"Cache-Control": "private, no-store"}
    return Response(recording.data, mimetype=recording.content_type, headers=headers)


def _action_forms(sr: ServiceRequest, given: dict[str, FlaskForm]) -> dict[str, FlaskForm]:
    forms: dict[str, FlaskForm] = {
        "severity": given.get("severity") or SeverityForm(prefix="sev", severity=sr.severity),
        "escalate": given.get("escalate") or EscalationForm(prefix="esc"),
        "assign": given.get("assign") or AssignForm(prefix="asg"),
        "resolve": given.get("resolve") or ResolveForm(prefix="res"),
        "reply": given.get("reply") or ReplyForm(prefix="rep"),
        "plan": given.get("plan") or ActionPlanForm(prefix="plan"),
        "decide": given.get("decide") or SeverityDecisionForm(prefix="dec"),
    }
    add_choices(forms["severity"], forms["assign"])
    return forms


def add_choices(severity: SeverityForm, assign: AssignForm) -> None:
    """The severities of the configured policy and the staff one may assign to."""
    severity.severity.choices = severity_choices(services().policy)
    assign.assignee.choices = staff_choices(staff_names(services().db))
