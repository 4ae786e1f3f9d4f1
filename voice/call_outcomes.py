"""What becomes of a call: its request opened while the caller listens, the recording and its
transcription kept whenever they arrive, the engineers paged, and the call's end.

The door opens the bare request itself, inside its own transaction and under a savepoint, so
the caller hears the number before hanging up; the intake row stays pending and the worker
writes the rest (the acknowledgments, the 24x7 check, the call's outcome). If the opening fails
the worker opens it too (the caller then hears that the number comes by text). The callers of
these functions hold the call's row.
"""

from __future__ import annotations

import datetime as dt
import logging

from sqlalchemy.orm import Session

from intake.outbox.sms import page_sms, page_text
from intake.policy import Policy
from intake.rota import Rota
from intake.store.models import CallSession, Contact, ServiceRequest
from voice.call_processing import attach_media, open_call_request
from voice.callers import identify_by_caller_id
from voice.calls import caller_number, record_call

log = logging.getLogger(__name__)

MIN_RECORDING_SECONDS = 2  # shorter is a click or a breath: asked for once more
FINAL_CALL_STATUSES = ("completed", "busy", "failed", "no-answer", "canceled")


def accept_call(session: Session, policy: Policy, call: CallSession) -> bool:
    """Log the call as a new request and open it at once (the bare request: the worker writes
    the acknowledgments); True when the row needs a job (always, for an accepted call)."""
    decision = record_call(session, call)
    if decision is None:  # logged already (the hang-up came first): attach what came late
        attach_media(session, call)
        return False
    if decision.outcome != "accepted" or call.intake_id is None:
        return False
    try:
        with session.begin_nested():
            open_call_request(session, policy, call)
    except Exception:
        log.exception("opening the request of call %s failed; the worker retries", call.call_sid)
    return True


def note_recording(call: CallSession, url: str, sid: str, duration: int) -> bool:
    """Keep the call's description recording; False for an empty one (nothing kept)."""
    if not url or duration < MIN_RECORDING_SECONDS:
        return False
    if not call.recording_url:
        call.recording_url, call.recording_sid, call.recording_duration = url, sid, duration
        if call.transcribed_sid and call.transcribed_sid != sid:
            call.transcription = None  # it was of an earlier, empty recording
    return True


def note_transcription(call: CallSession, text: str, status: str, recording_sid: str) -> None:
    """Keep the first transcription of the call's recording (failed ones as empty text)."""
    if call.transcription is not None or call.transcription_attached:
        return
    if call.recording_sid and recording_sid and recording_sid != call.recording_sid:
        return  # of another recording, one we did not keep
    call.transcription = text.strip() if status == "completed" else ""
    call.transcribed_sid = recording_sid


def page_engineers(session: Session, call: CallSession, rota: Rota, now: dt.datetime) -> list[int]:
    """Page every engineer on call by SMS (once per call); returns the outbox ids to send."""
    if call.paged_at is not None or not rota.engineers:
        return []
    call.paged_at = now
    contact = session.get(Contact, call.contact_id) if call.contact_id else None
    request = session.get(ServiceRequest, call.request_id) if call.request_id else None
    text = page_text(
        request.number if request else "call " + call.call_sid,
        contact.name if contact else "a caller",
        contact.customer.name if contact else "an unknown customer",
        caller_number(call, contact),
    )
    rows = page_sms(rota.engineers, text, call.request_id, call.intake_id)
    session.add_all(rows)
    session.flush()
    return [row.id for row in rows]


def end_call(session: Session, policy: Policy, call: CallSession) -> bool:
    """The call is over: log it if nothing did yet. A caller who hung up while describing the
    problem (or on the fallback recording) still gets a request; one who asked for nothing is
    kept as suppressed. True when the row needs a job."""
    if call.intake_id is not None:
        return False
    if call.state == "fallback" and call.contact_id is None:
        _identify_fallback_caller(session, call, policy.voice.caller_id_trust)
    if call.state == "recording" or (call.state == "fallback" and call.contact_id is not None):
        return accept_call(session, policy, call)
    automatic = None if call.state == "fallback" else _why_nothing_was_asked(call)
    record_call(session, call, automatic=automatic)
    return False


def _identify_fallback_caller(session: Session, call: CallSession, trust: str) -> None:
    contact = identify_by_caller_id(session, call.caller, call.attestation, trust)
    if contact is not None:
        call.contact_id, call.identified_by = contact.id, "caller_id"


def _why_nothing_was_asked(call: CallSession) -> str:
    return "status_inquiry" if call.status_lookups else "call_abandoned"
