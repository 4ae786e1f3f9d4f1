"""``GET /api/openapi.json``: the OpenAPI 3.1 document of the JSON API.

Written by hand beside the routes it describes; the contract test (tests/test_api_contract.py)
drives the running app from this document with schemathesis, so a route that answers other
than it says fails there.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Response, jsonify

from intake import __version__
from intake.settings import SENDER_AUTH_MODES
from intake.store.intake_log import OUTCOMES
from web.api import CHANNELS, MAX_LIMIT, REQUEST_STATUSES, SEVERITIES
from web.errors import API_PREFIX

bp = Blueprint("openapi", __name__, url_prefix=API_PREFIX)

Schema = dict[str, Any]
REF = "#/components/schemas/"
NUMBER_PATTERN = "^[Ss][Rr]-[0-9]{6,18}$"
NO_NUL = "^[^\\u0000]*$"  # text parameters never hold NUL (422)


@bp.get("/openapi.json")
def document() -> Response:
    """The document itself needs no token: it describes, it does not show data."""
    return jsonify(openapi_document())


def openapi_document() -> Schema:
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "Intake gateway API",
            "version": __version__,
            "description": "Service requests and the intake log. Authenticate with "
            "'Authorization: Bearer <token>' (intake token create NAME) or a staff session.",
        },
        "servers": [{"url": "/"}],
        "security": [{"bearer": []}],
        "paths": _paths(),
        "components": {
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
            "schemas": _schemas(),
        },
    }


def _ref(name: str) -> Schema:
    return {"$ref": REF + name}


def _json(schema: Schema, description: str) -> Schema:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def _errors(*codes: int) -> dict[str, Schema]:
    words = {
        401: "No valid token or session.",
        404: "No such resource.",
        409: "The action does not fit the current state.",
        422: "A parameter or the body is not acceptable.",
    }
    return {str(code): _json(_ref("Error"), words[code]) for code in (401, *codes)}


def _query(name: str, schema: Schema, description: str) -> Schema:
    return {
        "name": name,
        "in": "query",
        "required": False,
        "schema": schema,
        "description": description,
    }


def _paging() -> list[Schema]:
    return [
        _query(
            "limit",
            {"type": "integer", "minimum": 1},
            f"page size (default 50, at most {MAX_LIMIT})",
        ),
        _query(
            "cursor", {"type": "string", "pattern": "^[A-Za-z0-9_-]+$"}, "'next' of the page before"
        ),
    ]


def _number_parameter() -> Schema:
    schema = {"type": "string", "pattern": NUMBER_PATTERN}
    return {"name": "number", "in": "path", "required": True, "schema": schema}


def _intake_id_parameter() -> Schema:
    schema = {"type": "integer", "minimum": 1, "maximum": 2**63 - 1}
    return {"name": "id", "in": "path", "required": True, "schema": schema}


def _body(schema: Schema) -> Schema:
    return {"required": True, "content": {"application/json": {"schema": schema}}}


def _paths() -> Schema:
    return {
        "/api/health": {"get": _health()},
        "/api/requests": {"get": _list_requests()},
        "/api/requests/{number}": {"get": _get_request()},
        "/api/requests/{number}/severity": {"post": _change_severity()},
        "/api/requests/{number}/escalations": {"post": _escalate()},
        "/api/requests/{number}/replies": {"post": _reply()},
        "/api/requests/{number}/assign": {"post": _assign()},
        "/api/requests/{number}/action-plan": {"post": _action_plan()},
        "/api/requests/{number}/severity-requests/{id}/accept": {"post": _decide("accept")},
        "/api/requests/{number}/severity-requests/{id}/refuse": {"post": _decide("refuse")},
        "/api/contacts/transfer": {"post": _transfer()},
        "/api/intake": {"get": _list_intake()},
        "/api/intake/{id}": {"get": _get_intake()},
        "/api/customers/{name}": {"get": _get_customer()},
        "/api/intake/{id}/release": {"post": _release()},
        "/api/intake/{id}/discard": {"post": _discard()},
    }


def _health() -> Schema:
    return {
        "summary": "The state of the database, Redis, the doors and the workers",
        "security": [],
        "responses": {
            "200": _json(_ref("Health"), "Database and Redis answer; no door is stalled."),
            "503": _json(_ref("Health"), "Database or Redis is down, or a door is stalled."),
        },
    }


def _list_requests() -> Schema:
    text = {"type": "string", "pattern": NO_NUL}
    return {
        "summary": "Requests, newest first",
        "parameters": [
            _query("status", {"type": "string", "enum": list(REQUEST_STATUSES)}, "status"),
            _query("severity", {"type": "integer", "enum": list(SEVERITIES)}, "severity"),
            _query("channel", {"type": "string", "enum": list(CHANNELS)}, "channel"),
            _query("customer", text, "a part of the customer's name, in any case"),
            _query("contact", text, "a part of the contact's name or email address, in any case"),
            *_paging(),
        ],
        "responses": {"200": _json(_ref("RequestPage"), "A page of requests."), **_errors(422)},
    }


def _get_request() -> Schema:
    return {
        "summary": "One request with its events",
        "parameters": [_number_parameter()],
        "responses": {"200": _json(_ref("RequestDetail"), "The request."), **_errors(404)},
    }


def _change_severity() -> Schema:
    body = {
        "type": "object",
        "required": ["severity", "justification"],
        "properties": {
            "severity": {"type": "integer", "enum": list(SEVERITIES)},
            "justification": {"type": "string", "minLength": 1, "pattern": "\\S"},
        },
    }
    return {
        "summary": "Change the severity; the response goal counts from now",
        "parameters": [_number_parameter()],
        "requestBody": _body(body),
        "responses": {
            "200": _json(_ref("RequestDetail"), "The updated request."),
            **_errors(404, 409, 422),
        },
    }


def _escalate() -> Schema:
    body = {
        "type": "object",
        "required": ["reason"],
        "properties": {"reason": {"type": "string", "minLength": 1, "pattern": "\\S"}},
    }
    return {
        "summary": "Escalate to an escalation manager",
        "parameters": [_number_parameter()],
        "requestBody": _body(body),
        "responses": {"201": _json(_ref("Event"), "The escalation."), **_errors(404, 409, 422)},
    }


def _reply() -> Schema:
    body = {
        "type": "object",
        "required": ["body"],
        "properties": {
            "body": {"type": "string", "minLength": 1, "pattern": "\\S"},
            "kind": {"type": "string", "enum": ["reply", "status_report", "internal_note"]},
        },
    }
    return {
        "summary": "Write on the request: a reply or status report to the contact (through the "
        "outbox), or an internal note that never leaves",
        "parameters": [_number_parameter()],
        "requestBody": _body(body),
        "responses": {"201": _json(_ref("Event"), "The event."), **_errors(404, 409, 422)},
    }


def _assign() -> Schema:
    body = {
        "type": "object",
        "required": ["staff"],
        "properties": {"staff": {"type": "string", "minLength": 1, "pattern": "\\S"}},
    }
    return {
        "summary": "Assign an engineer (a staff login); counts toward the response goal",
        "parameters": [_number_parameter()],
        "requestBody": _body(body),
        "responses": {
            "200": _json(_ref("RequestDetail"), "The updated request."),
            **_errors(404, 409, 422),
        },
    }


def _action_plan() -> Schema:
    body = {
        "type": "object",
        "required": ["plan"],
        "properties": {"plan": {"type": "string", "minLength": 1, "pattern": "\\S"}},
    }
    return {
        "summary": "Record the escalation's action plan; it is sent to the contact",
        "parameters": [_number_parameter()],
        "requestBody": _body(body),
        "responses": {"201": _json(_ref("Event"), "The plan's event."), **_errors(404, 409, 422)},
    }


def _decide(decision: str) -> Schema:
    note: Schema = {"type": "string"}
    if decision == "refuse":
        note = {"type": "string", "minLength": 1, "pattern": "\\S"}
    body = {
        "type": "object",
        "required": ["note"] if decision == "refuse" else [],
        "properties": {"note": note},
    }
    answer = (
        _json(_ref("RequestDetail"), "The request with the severity the contact asked for.")
        if decision == "accept"
        else _json(_ref("SeverityRequest"), "The refused request for a change.")
    )
    return {
        "summary": f"{decision.capitalize()} a contact's request for another severity "
        "(the contact is told)",
        "parameters": [
            _number_parameter(),
            _intake_id_parameter()
            | {"description": "The request for a change (its severity_requested event's id)."},
        ],
        "requestBody": _body(body),
        "responses": {"200": answer, **_errors(404, 409, 422)},
    }


def _transfer() -> Schema:
    address = {"type": "string", "minLength": 3, "pattern": "@"}
    body = {
        "type": "object",
        "required": ["from", "to"],
        "properties": {"from": address, "to": address},
    }
    done = _object(
        {
            "from": {"type": "string"},
            "to": {"type": "string"},
            "requests": {"type": "array", "items": {"type": "string"}},
        }
    )
    return {
        "summary": "Transfer technical-contact duties: the new contact takes over the open "
        "requests, the old one is refused from then on",
        "requestBody": _body(body),
        "responses": {"200": _json(done, "The transfer."), **_errors(404, 409, 422)},
    }


def _list_intake() -> Schema:
    return {
        "summary": "The intake log, newest first: every message and call, and its outcome",
        "parameters": [
            _query("outcome", {"type": "string", "enum": list(OUTCOMES)}, "outcome"),
            _query("channel", {"type": "string", "enum": list(CHANNELS)}, "channel"),
            *_paging(),
        ],
        "responses": {"200": _json(_ref("IntakePage"), "A page of the log."), **_errors(422)},
    }


def _get_intake() -> Schema:
    return {
        "summary": "One intake entry: its decision and the verdict on its sender (auth)",
        "parameters": [_intake_id_parameter()],
        "responses": {"200": _json(_ref("IntakeDetail"), "The entry."), **_errors(404)},
    }


def _get_customer() -> Schema:
    schema = {"type": "string", "minLength": 1, "maxLength": 200}  # as the import file allows
    name = {"name": "name", "in": "path", "required": True, "schema": schema}
    return {
        "summary": "A customer, with the sender verification its mail gets",
        "parameters": [name],
        "responses": {"200": _json(_ref("Customer"), "The customer."), **_errors(404)},
    }


def _release() -> Schema:
    return {
        "summary": "Release a quarantined message: it becomes a request (a worker opens it)",
        "parameters": [_intake_id_parameter()],
        "responses": {
            "202": _json(_ref("IntakeItem"), "Accepted; the request follows."),
            **_errors(404, 409, 422),
        },
    }


def _discard() -> Schema:
    return {
        "summary": "Discard a quarantined message (it is kept, out of the quarantine)",
        "parameters": [_intake_id_parameter()],
        "responses": {"200": _json(_ref("IntakeItem"), "Discarded."), **_errors(404, 409)},
    }


def _nullable(kind: str, **more: Any) -> Schema:
    return {"type": [kind, "null"], **more}


def _object(properties: Schema, **more: Any) -> Schema:
    return {"type": "object", "required": list(properties), "properties": properties, **more}


def _schemas() -> Schema:
    time = {"type": "string", "format": "date-time"}
    text = {"type": "string"}
    severity = {"type": "integer", "enum": list(SEVERITIES)}
    request = {
        "number": {"type": "string", "pattern": "^SR-[0-9]{6,}$"},
        "customer": text,
        "contact": _object(
            {"name": text, "email": _nullable("string"), "phone": _nullable("string")}
        ),
        "channel": {"type": "string", "enum": list(CHANNELS)},
        "severity": severity,
        "initial_severity": severity,
        "status": {"type": "string", "enum": list(REQUEST_STATUSES)},
        "subject": text,
        "description": text,
        "created_at": time,
        "response_due_at": time,
        "acknowledged_at": _nullable("string", format="date-time"),
        "goal": _object(
            {
                "state": {"type": "string", "enum": ["pending", "met", "breached"]},
                "met_at": _nullable("string", format="date-time"),
            }
        ),
        "assignee": _nullable("string"),
    }
    event = _object({"type": text, "at": time, "detail": {"type": "object"}})
    intake = {
        "id": {"type": "integer"},
        "channel": {"type": "string", "enum": list(CHANNELS)},
        "sender": text,
        "subject": text,
        "outcome": {"type": "string", "enum": list(OUTCOMES)},
        "reason": _nullable("string"),
        "received_at": time,
        "request": _nullable("string", pattern="^SR-[0-9]{6,}$"),
    }
    next_cursor = _nullable("string")
    auth = dict.fromkeys(("dmarc", "spf", "dkim", "arc", "aligned_domain", "explanation"), text)
    modes = {"type": "string", "enum": list(SENDER_AUTH_MODES)}
    customer = {
        "name": text,
        "offering": text,
        "support_start": {"type": "string", "format": "date"},
        "support_end": {"type": "string", "format": "date"},
        "sender_auth": modes,
        "sender_auth_override": {"type": "boolean"},
    }
    return {
        "Error": _object({"error": _object({"code": text, "message": text})}),
        "Health": {
            "type": "object",
            "required": ["status", "components"],
            "properties": {
                "status": {"type": "string", "enum": ["ok", "degraded"]},
                "components": {"type": "object"},
                # When degraded: one sentence per part that is down or stalled.
                "reasons": {"type": "array", "items": {"type": "string"}},
            },
        },
        "Request": _object(request),
        "Event": event,
        "RequestDetail": _object(
            request
            | {
                "escalation": _object({"level": {"type": "integer"}, "owner": _nullable("string")}),
                "needs_24x7_contact": {"type": "boolean"},
                "events": {"type": "array", "items": _ref("Event")},
            }
        ),
        "RequestPage": _object(
            {"items": {"type": "array", "items": _ref("Request")}, "next": next_cursor}
        ),
        "IntakeItem": _object(intake),
        "IntakeDetail": _object(
            intake
            | {"detail": text, "state": text, "auth": {"oneOf": [_object(auth), {"type": "null"}]}}
        ),
        "Customer": _object(customer),
        "SeverityRequest": _object(
            {
                "id": {"type": "integer"},
                "severity": severity,
                "previous_severity": severity,
                "justification": text,
                "state": {"type": "string", "enum": ["pending", "accepted", "refused"]},
                "note": text,
                "requested_by": text,
                "decided_by": text,
            }
        ),
        "IntakePage": _object(
            {"items": {"type": "array", "items": _ref("IntakeItem")}, "next": next_cursor}
        ),
    }
