"""Call sessions: the phone door's state for one call, and its one row in the intake log.

Every webhook of a call is handled in one transaction that holds the call's row (SELECT ... FOR
UPDATE; on SQLite the writer's lock), so the webhooks of one call apply one at a time, whatever
order Twilio sends them in and however often. A step of the menus carries the call's ``step``
counter in its URL: the answer to the current step moves the call on, a retry of the step just
answered gets the same TwiML again, and anything older gets the current prompt.

A call enters the intake pipeline once, when its outcome is known: accepted when the caller
left a description (or hung up while leaving it), rejected when the caller was refused or could
not be identified, suppressed (``call_abandoned``, ``status_inquiry``) when the caller hung up
before asking for anything.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping

from sqlalchemy import select
from sqlalchemy.orm import Session

from intake.pipeline.inbound import InboundMessage
from intake.pipeline.steps import Decision, record_in
from intake.store.models import CallSession, Contact, IntakeRecord
from parsers.phones import normalise_phone
from voice.callers import strongly_identified

# Where a caller can be (the moves between them are in voice.steps): in the menus, or at an end
# (refused, not identified, silent, done, or a message left on the fallback).
MENU_STATES = (
    "identify_phone", "identify_pin", "category", "menu", "confirm", "status_lookup",
    "recording", "recorded", "connecting",
)  # fmt: skip
END_STATES = ("refused", "unidentified", "silent", "done", "fallback")
STATES = MENU_STATES + END_STATES
DEDUPE_PREFIX = "call:"


def find_call(session: Session, call_sid: str, *, lock: bool = True) -> CallSession | None:
    query = select(CallSession).where(CallSession.call_sid == call_sid)
    return session.scalar(query.with_for_update() if lock else query)


def start_call(session: Session, call_sid: str, caller: str, attestation: str = "") -> CallSession:
    """A new call's session (the caller flushes; a concurrent duplicate fails on the key);
    ``attestation`` is Twilio's StirVerstat for the caller ID, empty when it sent none."""
    call = CallSession(
        call_sid=call_sid,
        caller=caller[:64],
        attestation=attestation.strip()[:40],
        state="identify_phone",
    )
    session.add(call)
    session.flush()
    return call


def request_key(url: str, form: Mapping[str, str]) -> str:
    """A digest of one webhook request: its URL and its fields, in order."""
    text = url + "\n" + "\n".join(f"{k}={form[k]}" for k in sorted(form))
    return hashlib.sha256(text.encode()).hexdigest()


def replayed_answer(call: CallSession, key: str) -> str | None:
    """The answer given to this very request before (Twilio retried it), or None."""
    return call.last_answer if call.last_request_key == key and call.last_answer else None


def remember_answer(call: CallSession, key: str, answer: str) -> None:
    call.last_request_key, call.last_answer = key, answer


def caller_number(call: CallSession, contact: Contact | None) -> str:
    """The number the intake log names: the contact's, else what the caller typed or showed."""
    if contact is not None and contact.phone:
        return contact.phone
    return call.entered_phone or normalise_phone(call.caller) or call.caller or "anonymous"


def record_call(
    session: Session, call: CallSession, *, automatic: str | None = None
) -> Decision | None:
    """Log the call in the intake pipeline, once; None when it was logged already.

    ``automatic`` names why a call that asked for nothing is only kept (call_abandoned,
    status_inquiry); the pipeline suppresses those before any entitlement check.
    """
    if call.intake_id is not None:
        return None
    contact = session.get(Contact, call.contact_id) if call.contact_id else None
    decision, intake_id = record_in(session, inbound_for_call(call, contact, automatic))
    call.intake_id = intake_id
    return decision


def note_on_intake_row(session: Session, call: CallSession, reason: str, detail: str) -> None:
    """Give the call's intake row a more precise reason than the pipeline could know."""
    row = session.get(IntakeRecord, call.intake_id) if call.intake_id else None
    if row is not None:
        row.reason, row.detail = reason, detail


def inbound_for_call(
    call: CallSession, contact: Contact | None, automatic: str | None
) -> InboundMessage:
    sender = caller_number(call, contact)
    about = f" about the {call.category}" if call.category in ("platform", "recording") else ""
    return InboundMessage(
        channel="phone",
        sender=sender,
        dedupe_key=DEDUPE_PREFIX + call.call_sid,
        raw=call_record(call, sender),
        subject=f"{_severity_words(call)}hone call from {contact.name if contact else sender}"
        f"{about}",
        automatic=automatic,
        category=call.category,
        contact_id=call.contact_id,
        sender_verified=contact is not None and strongly_identified(call),
        received_at=call.started_at,
    )


def _severity_words(call: CallSession) -> str:
    """``Severity 1 p`` or ``P``: the start of the subject, with the severity once chosen."""
    return f"Severity {call.severity} p" if call.severity else "P"


def call_record(call: CallSession, sender: str) -> bytes:
    """The raw copy the intake log keeps of a call: what the caller gave us, as JSON."""
    facts = {
        "call_sid": call.call_sid,
        "caller_id": call.caller,
        "sender": sender,
        "identified_by": call.identified_by,
        "attestation": call.attestation,
        "entered_phone": call.entered_phone,
        "category": call.category,
        "severity": call.severity,
        "recording_url": call.recording_url,
        "recording_duration": call.recording_duration,
        "started_at": call.started_at.isoformat(),
    }
    return json.dumps(facts, indent=1).encode()


def call_sid_of(dedupe_key: str) -> str | None:
    """The CallSid behind an intake row's dedupe key, or None for another channel's key."""
    return dedupe_key.removeprefix(DEDUPE_PREFIX) if dedupe_key.startswith(DEDUPE_PREFIX) else None
