"""What keeps the pages safe: CSRF tokens on every form, and headers that let no injected
markup run.

Everything a message brings (subject, body, sender) is escaped by Jinja's autoescape; the
Content-Security-Policy is the second wall: scripts only from our own /static (no inline
script, so no ``onerror=`` handler and no ``javascript:`` URL can run), no plugins, no framing,
forms only to ourselves.
"""

from __future__ import annotations

from collections.abc import Iterable

from flask import Blueprint, Flask, render_template, request
from flask_wtf.csrf import CSRFError, CSRFProtect
from werkzeug.wrappers import Response

from web import services
from web.errors import error_response, is_api_path

csrf = CSRFProtect()

CONTENT_SECURITY_POLICY = "; ".join(
    (
        "default-src 'none'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self' data:",
        "media-src 'self'",  # voicemails, played through our own route
        "connect-src 'self'",
        "form-action 'self'",
        "base-uri 'none'",
        "frame-ancestors 'none'",
    )
)
PAGE_BLUEPRINTS = (
    "pages",
    "request_actions",
    "intake_pages",
    "login",
    "status",
    "settings",
    "portal",
)
SECURITY_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    # Contacts' status links carry their credential in the path: never leak it onwards.
    "Referrer-Policy": "no-referrer",
}
# Served over https (INTAKE_PUBLIC_URL): browsers are told to use nothing else for a year.
STRICT_TRANSPORT_SECURITY = "max-age=31536000"


def init_security(app: Flask, *, csrf_exempt: Iterable[Blueprint]) -> None:
    """CSRF protection on every form outside ``csrf_exempt``, and the headers on every answer."""
    csrf.init_app(app)
    for blueprint in csrf_exempt:
        csrf.exempt(blueprint)
    app.after_request(_add_headers)
    app.register_error_handler(CSRFError, _csrf_failed)


def _add_headers(response: Response) -> Response:
    for name, value in SECURITY_HEADERS.items():
        response.headers.setdefault(name, value)
    if services().settings.public_url.startswith("https://"):
        response.headers.setdefault("Strict-Transport-Security", STRICT_TRANSPORT_SECURITY)
    if request.blueprint in PAGE_BLUEPRINTS:
        # Pages show who is signed in and what they may see: no cache keeps them.
        response.headers.setdefault("Cache-Control", "no-store")
    return response


def _csrf_failed(error: CSRFError) -> Response | tuple[str, int]:
    if is_api_path(request.path):
        error.error_code = "csrf_failed"
        return error_response(error)
    return render_template("error.html", title="Form expired", message=_csrf_sentence(error)), 400


def _csrf_sentence(error: CSRFError) -> str:
    reason = (error.description or "").rstrip(".")
    return f"The form could not be accepted ({reason}). Reload the page and try again."
