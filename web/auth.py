"""Who is calling: a signed-in staff member (the session cookie) or an API token
(``Authorization: Bearer <token>``).

:func:`current_staff_or_token` answers once per request; :func:`require_staff_or_token` turns
"nobody" into a 401 with a ``WWW-Authenticate`` header (RFC 6750), which the API renders as its
JSON error. A staff session's writes need the page's CSRF token (:func:`require_csrf_for_staff`):
the cookie is sent by the browser on its own, a bearer token never is.
"""

from __future__ import annotations

from typing import Literal

from flask import g, request
from flask_login import current_user
from werkzeug.datastructures import WWWAuthenticate
from werkzeug.exceptions import Unauthorized

from intake.accounts.credentials import token_is_valid, token_name
from web import services
from web.security import csrf

REALM = "intake"
SAFE_METHODS = ("GET", "HEAD", "OPTIONS")
Caller = Literal["token", "staff"]


def bearer_token() -> str | None:
    """The token of an ``Authorization: Bearer …`` header, or None."""
    auth = request.authorization
    if auth is None or auth.type != "bearer" or not auth.token:
        return None
    return auth.token


def current_staff_or_token() -> Caller | None:
    """``"staff"`` for a signed-in staff member, ``"token"`` for a valid API token, None for
    nobody (checked once per request). A request that sends a token is judged by its token."""
    if "intake_caller" not in g:
        token = bearer_token()
        if token is not None:
            g.intake_caller = "token" if token_is_valid(services().db, token) else None
        else:
            g.intake_caller = "staff" if current_user.is_authenticated else None
    caller: Caller | None = g.intake_caller
    return caller


def current_actor() -> str:
    """Who does what the request asks, as events and the intake log name them."""
    caller = current_staff_or_token()
    if caller == "staff":
        return str(current_user.username)
    token = bearer_token()
    name = token_name(services().db, token) if caller == "token" and token else None
    return name or "an API client"


def require_csrf_for_staff() -> None:
    """A write from a staff session must carry the page's CSRF token (header or form field)."""
    if request.method not in SAFE_METHODS and current_staff_or_token() == "staff":
        csrf.protect()


def require_staff_or_token() -> Caller:
    """The caller, or a 401 that says how to authenticate."""
    caller = current_staff_or_token()
    if caller is None:
        raise unauthorized(token_given=bearer_token() is not None)
    return caller


def unauthorized(*, token_given: bool) -> Unauthorized:
    values: dict[str, str | None] = {"realm": REALM}
    if token_given:
        values["error"] = "invalid_token"
    message = (
        "The API token is not valid."
        if token_given
        else "Send an API token as 'Authorization: Bearer <token>' (intake token create NAME)."
    )
    return Unauthorized(description=message, www_authenticate=WWWAuthenticate("Bearer", values))
