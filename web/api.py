"""The JSON API under ``/api``, read side: health, requests and the intake log.

Every route but ``/api/health`` needs an API token or a staff session. Every error under
``/api`` is JSON: ``{"error": {"code": "...", "message": "..."}}`` (see web.errors). The write
side is in web.api_actions.

Lists are newest first and paged by keyset, never OFFSET and never COUNT(*): rows are ordered
by (time, id) descending, which the (created_at, id) and (received_at, id) indexes serve, and
``next`` is an opaque cursor naming the last row of the page (null on the last page). Empty
query parameters count as absent; ``limit`` defaults to 50 and is capped at 200.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import re
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

from flask import Blueprint, Response, jsonify, request
from sqlalchemy import ColumnElement, Select, select, tuple_
from sqlalchemy.orm import InstrumentedAttribute, Session, joinedload, load_only, selectinload
from werkzeug.exceptions import NotFound, UnprocessableEntity

from intake.ops.health import component_status, degraded_reasons
from intake.store.intake_log import OUTCOMES
from intake.store.models import (
    Contact,
    Customer,
    IntakeRecord,
    ServiceRequest,
    format_request_number,
    parse_request_number,
)
from web import search, services
from web.auth import require_staff_or_token
from web.errors import API_PREFIX, json_response
from web.serialize import (
    customer_json,
    intake_detail_json,
    intake_json,
    request_detail_json,
    request_json,
)

bp = Blueprint("api", __name__, url_prefix=API_PREFIX)
PUBLIC_ENDPOINTS = frozenset({"api.health"})

REQUEST_STATUSES = ("new", "acknowledged", "in_progress", "resolved", "closed")
CHANNELS = ("email", "phone", "web")
SEVERITIES = (1, 2, 3, 4)
DEFAULT_LIMIT = 50
MAX_LIMIT = 200
MAX_ID = 2**63 - 1  # the largest BIGINT; larger ids cannot exist and would upset PostgreSQL
CURSOR_PATTERN = re.compile(r"[A-Za-z0-9_-]+")

# What the intake list shows: never the raw message, which may be megabytes.
INTAKE_LIST_COLUMNS = (
    IntakeRecord.channel,
    IntakeRecord.sender,
    IntakeRecord.subject,
    IntakeRecord.outcome,
    IntakeRecord.reason,
    IntakeRecord.received_at,
    IntakeRecord.request_id,
)


Row = TypeVar("Row", ServiceRequest, IntakeRecord)


class InvalidParameter(UnprocessableEntity):
    """A query parameter has a value the API does not accept."""

    error_code = "invalid_parameter"


@bp.before_request
def _authenticate() -> None:
    if request.endpoint not in PUBLIC_ENDPOINTS:
        require_staff_or_token()


@bp.get("/health")
def health() -> Response:
    """200 while the database and Redis answer and no door is stalled, 503 (with the reasons)
    otherwise; intake.ops.health has the parts."""
    state = services()
    healthy, components = component_status(state.db, state.redis)
    body: dict[str, object] = {"status": "ok" if healthy else "degraded", "components": components}
    if not healthy:
        body["reasons"] = degraded_reasons(components)
    return json_response(body, 200 if healthy else 503)


@bp.get("/requests")
def list_requests() -> Response:
    """Requests, newest first, filtered by status, severity, channel, customer and contact (a
    part of a name or address, in any case)."""
    limit, after = page_args()
    with services().db.sessions() as session:
        conditions = request_conditions()
        if after is not None:
            conditions.append(after_row(session, ServiceRequest, after))
        stmt = (
            select(ServiceRequest)
            .where(*conditions)
            .options(
                joinedload(ServiceRequest.customer),
                joinedload(ServiceRequest.contact).selectinload(Contact.emails),
                joinedload(ServiceRequest.assignee),
            )
            .order_by(ServiceRequest.created_at.desc(), ServiceRequest.id.desc())
            .limit(limit + 1)
        )
        return page_response(session.scalars(stmt).all(), limit, request_json)


def request_detail_statement(request_id: int) -> Select[ServiceRequest]:
    """One request with everything its detail view shows, loaded in three queries."""
    return (
        select(ServiceRequest)
        .where(ServiceRequest.id == request_id)
        .options(
            joinedload(ServiceRequest.customer),
            joinedload(ServiceRequest.contact).selectinload(Contact.emails),
            joinedload(ServiceRequest.assignee),
            selectinload(ServiceRequest.events),
        )
    )


@bp.get("/requests/<number>")
def get_request(number: str) -> Response:
    """One request with its events; 404 for a number that is malformed or unknown."""
    request_id = request_id_or_404(number)
    with services().db.sessions() as session:
        found = session.scalars(request_detail_statement(request_id)).one_or_none()
        if found is None:
            raise NotFound(f"There is no request {format_request_number(request_id)}.")
        return jsonify(request_detail_json(found))


@bp.get("/intake")
def list_intake() -> Response:
    """The intake log, newest first, filtered by outcome and channel."""
    limit, after = page_args()
    conditions: list[ColumnElement[bool]] = []
    if (outcome := choice_arg("outcome", OUTCOMES)) is not None:
        conditions.append(IntakeRecord.outcome == outcome)
    if (channel := choice_arg("channel", CHANNELS)) is not None:
        conditions.append(IntakeRecord.channel == channel)
    with services().db.sessions() as session:
        if after is not None:
            conditions.append(after_row(session, IntakeRecord, after))
        stmt = (
            select(IntakeRecord)
            .where(*conditions)
            .options(load_only(*INTAKE_LIST_COLUMNS))
            .order_by(IntakeRecord.received_at.desc(), IntakeRecord.id.desc())
            .limit(limit + 1)
        )
        return page_response(session.scalars(stmt).all(), limit, intake_json)


@bp.get("/intake/<int:intake_id>")
def get_intake(intake_id: int) -> Response:
    """One intake entry with its decision and the verdict on its sender."""
    with services().db.sessions() as session:
        row = session.get(IntakeRecord, intake_id) if intake_id <= MAX_ID else None
        if row is None:
            raise NotFound(f"There is no intake entry #{intake_id}.")
        return jsonify(intake_detail_json(row))


@bp.get("/customers/<name>")
def get_customer(name: str) -> Response:
    """A customer by name, with the sender verification its mail gets."""
    with services().db.sessions() as session:
        customer = session.scalar(select(Customer).where(Customer.name == name))
        if customer is None:
            raise NotFound(f"There is no customer named {name!r}.")
        return jsonify(customer_json(customer, services().settings.sender_auth))


def request_id_or_404(number: str) -> int:
    """The id behind a request number; 404 for one that is malformed or out of range."""
    request_id = parse_request_number(number)
    if request_id is None or request_id > MAX_ID:
        raise NotFound(f"{number!r} is not a request number like SR-000123.")
    return request_id


def request_conditions() -> list[ColumnElement[bool]]:
    """The WHERE terms of the request list's filters: ``customer`` is a part of a customer's
    name, ``contact`` a part of a contact's name or address, either in any case (web.search)."""
    conditions: list[ColumnElement[bool]] = []
    if (status := choice_arg("status", REQUEST_STATUSES)) is not None:
        conditions.append(ServiceRequest.status == status)
    if (severity := severity_arg()) is not None:
        conditions.append(ServiceRequest.severity == severity)
    if (channel := choice_arg("channel", CHANNELS)) is not None:
        conditions.append(ServiceRequest.channel == channel)
    if (customer := text_arg("customer")) is not None:
        conditions.append(search.customer_condition(customer))
    if (contact := text_arg("contact")) is not None:
        conditions.append(search.contact_condition(contact))
    return conditions


def after_row(
    session: Session, model: type[ServiceRequest] | type[IntakeRecord], row_id: int
) -> ColumnElement[bool]:
    """Rows after ``row_id`` in (time, id) descending order: the keyset condition."""
    time_column = _time_column(model)
    anchor: dt.datetime | None = session.scalar(select(time_column).where(model.id == row_id))
    if anchor is None:
        raise InvalidParameter("'cursor' does not name a row of this list.")
    return tuple_(time_column, model.id) < tuple_(anchor, row_id)


def _time_column(
    model: type[ServiceRequest] | type[IntakeRecord],
) -> InstrumentedAttribute[dt.datetime]:
    return ServiceRequest.created_at if model is ServiceRequest else IntakeRecord.received_at


def page_response(rows: Sequence[Row], limit: int, to_json: Callable[[Row], Any]) -> Response:
    """The first ``limit`` of ``rows`` (which hold one more when another page follows)."""
    items = rows[:limit]
    next_cursor = encode_cursor(items[-1].id) if len(rows) > limit else None
    return jsonify({"items": [to_json(row) for row in items], "next": next_cursor})


# Query parameters.


def page_args() -> tuple[int, int | None]:
    """``limit`` (default 50, at most 200) and the id named by ``cursor``, if any."""
    limit = positive_int_arg("limit")
    cursor = text_arg("cursor")
    after = decode_cursor(cursor) if cursor is not None else None
    return min(limit or DEFAULT_LIMIT, MAX_LIMIT), after


def text_arg(name: str) -> str | None:
    """A text parameter, trimmed; a NUL character (which no name or address holds, and which
    PostgreSQL refuses in text) is a 422."""
    value = request.args.get(name, "").strip()
    if "\x00" in value:
        raise InvalidParameter(f"'{name}' must not contain NUL characters.")
    return value or None


def choice_arg(name: str, choices: Sequence[str]) -> str | None:
    value = text_arg(name)
    if value is not None and value not in choices:
        raise InvalidParameter(f"'{name}' must be one of {', '.join(choices)}; not {value!r}.")
    return value


def positive_int_arg(name: str) -> int | None:
    value = text_arg(name)
    if value is None:
        return None
    if not (value.isascii() and value.isdigit()) or int(value) < 1:
        raise InvalidParameter(f"'{name}' must be a positive whole number; not {value!r}.")
    return int(value)


def severity_arg() -> int | None:
    value = text_arg("severity")
    if value is None:
        return None
    if value not in {str(s) for s in SEVERITIES}:
        raise InvalidParameter(f"'severity' must be 1, 2, 3 or 4; not {value!r}.")
    return int(value)


def encode_cursor(row_id: int) -> str:
    return base64.urlsafe_b64encode(str(row_id).encode("ascii")).decode("ascii").rstrip("=")


def decode_cursor(cursor: str) -> int:
    """The id inside a cursor made by :func:`encode_cursor`; anything else is a 422."""
    try:
        text = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode("ascii")
        row_id = int(text)
    except (binascii.Error, UnicodeDecodeError, ValueError):
        row_id = 0
    valid = CURSOR_PATTERN.fullmatch(cursor) and 0 < row_id <= MAX_ID
    if not valid or encode_cursor(row_id) != cursor:
        raise InvalidParameter("'cursor' is not a cursor this API handed out.")
    return row_id
