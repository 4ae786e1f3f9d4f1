"""Errors as the caller can read them: JSON under ``/api`` and ``/metrics``
(``{"error": {"code": "...", "message": "..."}}``), a plain page with a sentence elsewhere.

Every HTTP error (401, 404, 405, 422, 500, ...) passes through here; a view raises a werkzeug
exception with a description, and may give it an ``error_code`` more precise than its name.
"""

from __future__ import annotations

import re

from flask import Flask, Response, jsonify, render_template, request
from werkzeug.exceptions import HTTPException

API_PREFIX = "/api"
JSON_PREFIXES = (API_PREFIX, "/metrics")


def register_error_pages(app: Flask) -> None:
    app.register_error_handler(HTTPException, _http_error)


def _http_error(exc: HTTPException) -> Response:
    if is_api_path(request.path):
        return error_response(exc)
    return error_page(exc)


def is_api_path(path: str) -> bool:
    """Whether errors at ``path`` are answered in JSON (the API and /metrics)."""
    return any(path == p or path.startswith(p + "/") for p in JSON_PREFIXES)


def error_code(exc: HTTPException) -> str:
    name = exc.name or "Error"
    return getattr(exc, "error_code", None) or re.sub(r"\W+", "_", name.lower())


def error_response(exc: HTTPException) -> Response:
    """``{"error": {"code", "message"}}`` with the exception's status and headers (Allow,
    WWW-Authenticate)."""
    body = {"error": {"code": error_code(exc), "message": exc.description or exc.name}}
    return _with_headers(json_response(body, exc.code or 500), exc)


def error_page(exc: HTTPException) -> Response:
    """A page that says what went wrong in a sentence, never a traceback."""
    html = render_template("error.html", title=exc.name, message=exc.description)
    return _with_headers(Response(html, status=exc.code or 500, mimetype="text/html"), exc)


def _with_headers(response: Response, exc: HTTPException) -> Response:
    for header, value in exc.get_headers():
        if header.lower() != "content-type":
            response.headers[header] = value
    return response


def json_response(body: object, status: int) -> Response:
    response = jsonify(body)
    response.status_code = status
    return response
