"""The ``/voice`` blueprint and what every voice route shares: the 503 while Twilio is not
configured, the signature check (403), and the answer when the database fails.

A caller must never hear Twilio's "application error": when storage fails under a menu step,
the answer is the fallback's apology and recording prompt, built without the database.
Callbacks that Twilio does not play to anyone (status, recording, transcription) get a 503.
"""

from __future__ import annotations

import logging

from flask import Blueprint, Response, request
from flask.blueprints import BlueprintSetupState
from sqlalchemy.exc import SQLAlchemyError

from intake.errors import StorageUnavailable
from voice import context, twiml
from voice.security import refusal

log = logging.getLogger(__name__)

bp = Blueprint("voice", __name__, url_prefix="/voice")

# Routes whose answer nobody hears: a failure there is a plain 503.
SILENT_ENDPOINTS = ("voice.status", "voice.transcription", "voice.recording")


@bp.record_once
def _set_up(state: BlueprintSetupState) -> None:
    context.set_up(state.app)


@bp.before_request
def only_twilio() -> Response | None:
    vc = context.voice_context()
    return refusal(vc.settings, request, context.twilio_configured(vc.settings))


@bp.errorhandler(SQLAlchemyError)
@bp.errorhandler(StorageUnavailable)
def storage_failed(exc: Exception) -> Response:
    log.error("voice %s failed on storage: %s", request.path, exc)
    if request.endpoint in SILENT_ENDPOINTS:
        return Response("storage unavailable\n", status=503, mimetype="text/plain")
    vc = context.voice_context()
    return Response(twiml.fallback(vc.url("fallback/recorded")), mimetype="application/xml")
