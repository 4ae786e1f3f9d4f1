"""The phone door: Twilio's webhooks under ``/voice`` (CONTRACT §8).

For now only the three URLs a Twilio number is configured with exist, and each answers 503:
while the Twilio settings are unset (CONTRACT §3) with a sentence naming the variables to set,
and, once they are set, with "The phone door is not built yet." The IVR itself (signature
check, TwiML prompts, call state) comes in a later issue and replaces these placeholders.

The settings are read from ``current_app.extensions["intake"].settings``, where
``web.create_app`` puts them; ``voice`` never imports ``web`` (``web`` imports ``voice``).
"""

from __future__ import annotations

from flask import Blueprint, Response, current_app

from intake.settings import Settings

bp = Blueprint("voice", __name__, url_prefix="/voice")

NOT_CONFIGURED = (
    "Voice is not configured: set TWILIO_ACCOUNT_SID, TWILIO_AUTH_TOKEN and TWILIO_PHONE_NUMBER."
)
NOT_BUILT = "The phone door is not built yet."


def twilio_configured(settings: Settings) -> bool:
    """Whether all three Twilio settings are given."""
    return all(
        (settings.twilio_account_sid, settings.twilio_auth_token, settings.twilio_phone_number)
    )


def _settings() -> Settings:
    settings: Settings = current_app.extensions["intake"].settings
    return settings


def _unavailable() -> Response:
    text = NOT_BUILT if twilio_configured(_settings()) else NOT_CONFIGURED
    return Response(text + "\n", status=503, mimetype="text/plain")


@bp.post("/incoming")
def incoming() -> Response:
    """Twilio's Voice URL: the start of a call."""
    return _unavailable()


@bp.post("/status")
def status() -> Response:
    """Twilio's status callback: a call's progress and end."""
    return _unavailable()


@bp.post("/fallback")
def fallback() -> Response:
    """Twilio's fallback URL: called when the Voice URL failed."""
    return _unavailable()
