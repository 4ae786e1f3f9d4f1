"""The JSON API's write side: severity changes, escalations, replies and status reports,
assignments, quarantine releases.

Bodies are JSON objects. A Bearer token needs nothing more; a browser's staff session must also
send the page's CSRF token (``X-CSRFToken``), since its cookie travels on its own. Refusals
are the API's JSON errors: 404 for an unknown request or entry, 409 when the action does not
fit the current state (a closed request, a message no longer quarantined), 422 when the body
is missing something (a justification, a reason) or the sender may not open a request.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

from flask import Blueprint, Response, jsonify, request
from sqlalchemy import select
from sqlalchemy.orm import Session, load_only
from werkzeug.exceptions import Conflict, HTTPException, NotFound, UnprocessableEntity

from intake.jobs.jobs import (
    enqueue_quietly,
    schedule_goal_checks_quietly,
    send_request_mail_quietly,
)
from intake.jobs.queue import make_queue
from intake.requests import quarantine
from intake.requests.refused import ActionRefused
from intake.store.models import IntakeRecord
from intake.workflows import escalation, replies, severity_requests, tell, transfer
from intake.workflows.config import WorkflowConfig, load_workflow_config
from intake.workflows.desk import Desk, desk_for
from web import services
from web.api import INTAKE_LIST_COLUMNS, MAX_ID, request_detail_statement, request_id_or_404
from web.auth import current_actor, require_csrf_for_staff, require_staff_or_token
from web.errors import API_PREFIX, json_response
from web.serialize import event_json, intake_json, request_detail_json

bp = Blueprint("api_actions", __name__, url_prefix=API_PREFIX)
T = TypeVar("T")
REFUSALS: dict[str, type[HTTPException]] = {
    "not_found": NotFound,
    "conflict": Conflict,
    "invalid": UnprocessableEntity,
}


@bp.before_request
def _authenticate() -> None:
    require_staff_or_token()
    require_csrf_for_staff()


def json_body() -> dict[str, Any]:
    """The request's JSON object; anything else is a 422 saying what to send."""
    body = request.get_json(silent=True)
    if not isinstance(body, dict):
        error = UnprocessableEntity("Send a JSON object (Content-Type: application/json).")
        error.error_code = "invalid_body"  # type: ignore[attr-defined]
        raise error
    return body


@contextmanager
def refusals_as_errors() -> Iterator[None]:
    """An ActionRefused becomes the API error of its kind, with its code and sentence."""
    try:
        yield
    except ActionRefused as refused:
        error = REFUSALS[refused.kind](refused.message)
        error.error_code = refused.code  # type: ignore[attr-defined]
        raise error from None


def _in_transaction(work: Callable[[Session], T]) -> T:
    with refusals_as_errors(), services().db.transaction() as session:
        return work(session)


def _workflows() -> WorkflowConfig:
    return load_workflow_config(services().settings.policy)


def _desk() -> Desk:
    svc = services()
    return desk_for(svc.settings, svc.policy)


def _send_mail_of(request_id: int) -> None:
    """What the action wrote to the outbox goes out now (or with the sweep, Redis willing)."""
    svc = services()
    send_request_mail_quietly(make_queue(svc.settings, svc.redis), request_id)


@bp.post("/requests/<number>/severity")
def change_severity(number: str) -> Response:
    """The updated request (with its events); 422 without a justification."""
    request_id, body, svc = request_id_or_404(number), json_body(), services()
    justification = body.get("justification")
    _in_transaction(
        lambda s: tell.change_severity(
            s,
            svc.settings,
            svc.policy,
            _workflows(),
            request_id,
            severity=body.get("severity"),  # type: ignore[arg-type]  # checked there
            justification=justification if isinstance(justification, str) else "",
            by=current_actor(),
        )
    )
    _send_mail_of(request_id)
    schedule_goal_checks_quietly(make_queue(svc.settings, svc.redis), request_id)
    return jsonify(_request_detail(request_id))


@bp.post("/requests/<number>/replies")
def reply(number: str) -> Response:
    """201 with the event; a reply or status report goes to the contact, a note stays here."""
    request_id, body, settings = request_id_or_404(number), json_body(), services().settings
    event = _in_transaction(
        lambda s: replies.post_reply(
            s,
            settings,
            _workflows(),
            request_id,
            body=body.get("body"),
            kind=body.get("kind", "reply"),
            by=current_actor(),
        )
    )
    _send_mail_of(request_id)
    return json_response(event_json(event), 201)


@bp.post("/requests/<number>/assign")
def assign(number: str) -> Response:
    """The updated request; the assignment counts toward the response goal."""
    request_id, body, settings = request_id_or_404(number), json_body(), services().settings
    staff = body.get("staff")
    _in_transaction(
        lambda s: tell.assign(
            s,
            settings,
            _workflows(),
            request_id,
            assignee=staff if isinstance(staff, str) else "",
            by=current_actor(),
        )
    )
    _send_mail_of(request_id)
    return jsonify(_request_detail(request_id))


@bp.post("/requests/<number>/escalations")
def escalate(number: str) -> Response:
    """201 with the escalation's event: the next level's manager owns it and is asked for an
    action plan; 422 without a reason, 409 past the top level."""
    request_id, body, desk = request_id_or_404(number), json_body(), _desk()
    counterpart = body.get("counterpart")
    event = _in_transaction(
        lambda s: escalation.escalate(
            s,
            desk,
            request_id,
            reason=body.get("reason"),
            by=current_actor(),
            counterpart=counterpart if isinstance(counterpart, str) else "",
        )
    )
    _send_mail_of(request_id)
    return json_response(event_json(event), 201)


@bp.post("/requests/<number>/action-plan")
def action_plan(number: str) -> Response:
    """201 with the plan's event; it is sent to the contact. 409 when not escalated."""
    request_id, body, desk = request_id_or_404(number), json_body(), _desk()
    event = _in_transaction(
        lambda s: escalation.record_action_plan(
            s, desk, request_id, plan=body.get("plan"), by=current_actor()
        )
    )
    _send_mail_of(request_id)
    return json_response(event_json(event), 201)


@bp.post("/requests/<number>/severity-requests/<int:change_id>/accept")
def accept_severity_request(number: str, change_id: int) -> Response:
    """The updated request: the severity the contact asked for, the clock restarted."""
    request_id, body, desk = request_id_or_404(number), json_body(), _desk()
    note = body.get("note")
    _known_change(change_id)
    _in_transaction(
        lambda s: severity_requests.accept(
            s,
            desk,
            request_id,
            change_id,
            note=note if isinstance(note, str) else "",
            by=current_actor(),
        )
    )
    _send_mail_of(request_id)
    svc = services()
    schedule_goal_checks_quietly(make_queue(svc.settings, svc.redis), request_id)
    return jsonify(_request_detail(request_id))


@bp.post("/requests/<number>/severity-requests/<int:change_id>/refuse")
def refuse_severity_request(number: str, change_id: int) -> Response:
    """The refused request for a change; the note (required) is sent to the contact."""
    request_id, body, desk = request_id_or_404(number), json_body(), _desk()
    _known_change(change_id)
    change = _in_transaction(
        lambda s: severity_requests.severity_request_json(
            severity_requests.refuse(
                s, desk, request_id, change_id, note=body.get("note"), by=current_actor()
            )
        )
    )
    _send_mail_of(request_id)
    return jsonify(change)


@bp.post("/contacts/transfer")
def transfer_contact() -> Response:
    """200: the new contact took over the old one's open requests; the old one is refused."""
    body = json_body()
    done = _in_transaction(
        lambda s: transfer.transfer_contact(s, body.get("from"), body.get("to"), by=current_actor())
    )
    return jsonify(
        {"from": done.from_address, "to": done.to_address, "requests": list(done.requests)}
    )


@bp.post("/intake/<int:intake_id>/release")
def release(intake_id: int) -> Response:
    """202: the message is accepted again and a worker opens its request."""
    _known_id(intake_id)
    _in_transaction(lambda s: quarantine.release(s, intake_id, by=current_actor()))
    svc = services()
    enqueue_quietly(make_queue(svc.settings, svc.redis), intake_id)
    return json_response(_intake_item(intake_id), 202)


@bp.post("/intake/<int:intake_id>/discard")
def discard(intake_id: int) -> Response:
    """The entry, out of the quarantine for good (kept, with its raw copy)."""
    _known_id(intake_id)
    _in_transaction(lambda s: quarantine.discard(s, intake_id, by=current_actor()))
    return jsonify(_intake_item(intake_id))


def _known_id(intake_id: int) -> None:
    if intake_id > MAX_ID:
        raise NotFound(f"There is no intake entry #{intake_id}.")


def _known_change(change_id: int) -> None:
    if change_id > MAX_ID:
        raise NotFound(f"There is no severity request {change_id}.")


def _intake_item(intake_id: int) -> dict[str, Any]:
    with services().db.sessions() as session:
        stmt = select(IntakeRecord).where(IntakeRecord.id == intake_id)
        return intake_json(session.scalars(stmt.options(load_only(*INTAKE_LIST_COLUMNS))).one())


def _request_detail(request_id: int) -> dict[str, Any]:
    with services().db.sessions() as session:
        return request_detail_json(session.scalars(request_detail_statement(request_id)).one())
