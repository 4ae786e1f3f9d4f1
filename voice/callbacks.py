"""Webhooks outside the caller's menus: Twilio's status, recording and transcription callbacks,
the engineer's leg of a Severity 1 connection (the whisper), and the fallback URL.

The callbacks may come in any order and more than once (a transcription before the recording
action, ``completed`` before everything); each only adds what the call does not have yet, under
the call's row lock, so any order gives the same request.
"""

from __future__ import annotations

import logging

from flask import Response, request
from sqlalchemy.exc import SQLAlchemyError

from intake.store.models import CallSession, Contact, format_request_number, utcnow
from intake.workflows.phone import record_call_outcome
from voice import prompts, twiml
from voice.blueprint import bp
from voice.call_outcomes import (
    FINAL_CALL_STATUSES,
    end_call,
    note_recording,
    note_transcription,
)
from voice.call_processing import attach_media
from voice.calls import find_call, start_call
from voice.context import voice_context
from voice.enqueue import enqueue_intake
from voice.routes import twiml_response

log = logging.getLogger(__name__)


def _no_content() -> Response:
    return Response(status=204)


def _field(name: str) -> str:
    return request.form.get(name, "").strip()


def _seconds(name: str) -> int:
    try:
        return int(_field(name))
    except ValueError:
        return 0


@bp.post("/status")
def status() -> Response:
    """Twilio's status callback: the call's progress, and its end (which logs it if needed)."""
    vc = voice_context()
    with vc.transaction() as session:
        call = find_call(session, _field("CallSid"))
        if call is None:
            log.info("status %s for unknown call %s", _field("CallStatus"), _field("CallSid"))
            return _no_content()
        call.call_status = _field("CallStatus")[:20]
        if call.call_status not in FINAL_CALL_STATUSES:
            return _no_content()
        call.ended_at = call.ended_at or utcnow()
        needs_job = end_call(session, vc.policy, call)
        intake_id = call.intake_id
    if needs_job and intake_id is not None:
        enqueue_intake(vc, intake_id)
    return _no_content()


@bp.post("/recording")
def recording() -> Response:
    """The recording status callback: the description's recording, whenever it is ready."""
    vc = voice_context()
    with vc.transaction() as session:
        call = find_call(session, _field("CallSid"))
        if call is not None and _field("RecordingStatus") == "completed":
            url, sid = _field("RecordingUrl"), _field("RecordingSid")
            note_recording(call, url, sid, _seconds("RecordingDuration"))
            attach_media(session, call)
    return _no_content()


@bp.post("/transcription")
def transcription() -> Response:
    """The transcription of the description: onto the request, now or once it is opened."""
    vc = voice_context()
    with vc.transaction() as session:
        call = find_call(session, _field("CallSid"))
        if call is not None:
            text, state = _field("TranscriptionText"), _field("TranscriptionStatus")
            note_transcription(call, text, state, _field("RecordingSid"))
            attach_media(session, call)
    return _no_content()


@bp.post("/whisper")
def whisper() -> Response:
    """The engineer answered: who is calling about what, and press 1 to take the call."""
    vc = voice_context()
    index = _engineer_index()
    with vc.db.sessions() as session:
        call = find_call(session, request.args.get("call", ""), lock=False)
        if not _rings(call, index) or call is None or call.contact_id is None:
            return twiml_response(twiml.said_then_hangup(prompts.NOT_ACCEPTED))
        contact = session.get_one(Contact, call.contact_id)
        number = format_request_number(call.request_id) if call.request_id else ""
        caller, customer = contact.name, contact.customer.name
    answer_url = vc.url("whisper/answer", call=call.call_sid, engineer=index)
    return twiml_response(twiml.whisper(number, caller, customer, answer_url))


@bp.post("/whisper/answer")
def whisper_answer() -> Response:
    """1 takes the call (a voicemail never presses it); anything else leaves it to the next."""
    vc = voice_context()
    index = _engineer_index()
    with vc.transaction() as session:
        call = find_call(session, request.args.get("call", ""))
        if _field("Digits").rstrip("#") != "1" or not _rings(call, index) or call is None:
            return twiml_response(twiml.said_then_hangup(prompts.NOT_ACCEPTED))
        call.accepted_by = index
        # The engineer who took the call is assigned (once the request exists).
        record_call_outcome(session, vc.desk, call)
    return twiml_response(twiml.bridge())


def _engineer_index() -> int:
    try:
        return int(request.args.get("engineer", ""))
    except ValueError:
        return -1


def _rings(call: CallSession | None, index: int) -> bool:
    """Whether this engineer is the one the call is ringing now."""
    return call is not None and call.state == "connecting" and call.rota_index == index


@bp.post("/fallback")
def fallback() -> Response:
    """Twilio's fallback URL: an apology and a recording prompt, without the database."""
    return twiml_response(twiml.fallback(voice_context().url("fallback/recorded")))


@bp.post("/fallback/recorded")
def fallback_recorded() -> Response:
    """A message left on the fallback: logged in full, and kept on the call when we can."""
    sid, url = _field("CallSid"), _field("RecordingUrl")
    log.warning("fallback message on call %s from %s: %s", sid, _field("From"), url or "(none)")
    try:
        _keep_fallback_message(sid, url)
    except SQLAlchemyError as exc:
        log.error("fallback message of call %s not stored (%s); Twilio keeps %s", sid, exc, url)
    return twiml_response(twiml.said_then_hangup(prompts.FALLBACK_THANKS))


def _keep_fallback_message(call_sid: str, url: str) -> None:
    """The call ends in the fallback state; its end (status callback) logs it."""
    vc = voice_context()
    with vc.transaction() as session:
        call = find_call(session, call_sid) or start_call(
            session, call_sid, _field("From"), _field("StirVerstat")
        )
        if call.intake_id is None:
            note_recording(call, url, _field("RecordingSid"), _seconds("RecordingDuration"))
            call.state = "fallback"
        attach_media(session, call)
