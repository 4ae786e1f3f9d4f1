"""Which requests are Twilio's: every voice route checks ``X-Twilio-Signature``.

Twilio signs the URL it requested, which is the public one (``INTAKE_PUBLIC_URL``, say
``https://support.example.com``), while behind a TLS-terminating proxy the app sees
``http://127.0.0.1:8080``: so the URL checked is the public URL with the request's path and
query, never the URL the app was reached at. The form's ``AccountSid`` must be ours too, so a
request signed for another account (another auth token that leaked) is refused as well.
"""

from __future__ import annotations

from flask import Request, Response
from twilio.request_validator import RequestValidator

from intake.settings import Settings

SIGNATURE_HEADER = "X-Twilio-Signature"
NOT_CONFIGURED = (
    "Voice is not configured: set TWILIO_ACCOUNT_SID, TWILIO_AUTH_TOKEN and TWILIO_PHONE_NUMBER."
)


def public_request_url(settings: Settings, request: Request) -> str:
    """The URL Twilio requested: the public base with this request's path and query."""
    query = request.query_string.decode("latin-1")
    return settings.public_url.rstrip("/") + request.path + ("?" + query if query else "")


def is_from_twilio(settings: Settings, request: Request) -> bool:
    signature = request.headers.get(SIGNATURE_HEADER, "")
    if not signature:
        return False
    validator = RequestValidator(settings.twilio_auth_token)
    url = public_request_url(settings, request)
    if not validator.validate(url, request.form, signature):
        return False
    return request.form.get("AccountSid") == settings.twilio_account_sid


def refusal(settings: Settings, request: Request, configured: bool) -> Response | None:
    """The answer for a request we must not serve (503 unconfigured, 403 unsigned), or None."""
    if not configured:
        return Response(NOT_CONFIGURED + "\n", status=503, mimetype="text/plain")
    if not is_from_twilio(settings, request):
        return Response("Forbidden: not a signed Twilio request.\n", 403, mimetype="text/plain")
    return None
