"""Who is calling: an API token (``Authorization: Bearer <token>``) or, later, a staff session.

:func:`current_staff_or_token` is the one hook to extend when staff logins arrive;
:func:`require_staff_or_token` turns "nobody" into a 401 with a ``WWW-Authenticate`` header
(RFC 6750), which the API renders as its JSON error.
"""

from __future__ import annotations

from typing import Literal

from flask import g, request
from werkzeug.datastructures import WWWAuthenticate
from werkzeug.exceptions import Unauthorized

from intake.accounts import token_is_valid
from web import services

REALM = "intake"
Caller = Literal["token", "staff"]


def bearer_token() -> str | None:
    """The token of an ``Authorization: Bearer …`` header, or None."""
    auth = request.authorization
    if auth is None or auth.type != "bearer" or not auth.token:
        return None
    return auth.token


def current_staff_or_token() -> Caller | None:
    """``"token"`` for a valid API token, None for nobody (checked once per request).

    The hook for staff sessions: once staff can log in, a logged-in staff user answers
    ``"staff"`` here, before the token is looked at.
    """
    if "intake_caller" not in g:
        token = bearer_token()
        valid = token is not None and token_is_valid(services().db, token)
        g.intake_caller = "token" if valid else None
    caller: Caller | None = g.intake_caller
    return caller


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
