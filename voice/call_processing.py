"""The worker's half of the phone door: from an accepted call to a request and its outbox.

:func:`process_call` is the RQ job for a call's row (enqueued by its name, which
:data:`intake.jobs.jobs.PHONE_JOB` holds). While the caller waits, the door only opens the bare
request with :func:`open_call_request`, so that the caller hears its number (see
:mod:`voice.call_outcomes`); the job does the rest. The request is opened with the severity the
caller chose (the default when none was chosen), its voicemail and transcription are attached
as events when they are known (they may come later: see :func:`attach_media`), and both
acknowledgments, the email and the SMS, are written to the outbox in the job's transaction.
"""

from __future__ import annotations

import logging

from sqlalchemy.orm import Session

from intake.jobs.jobs import finish_and_send
from intake.outbox.acknowledgment import AckFacts
from intake.outbox.rows import acknowledgment_row
from intake.outbox.sms import acknowledgment_sms
from intake.policy import Policy
from intake.requests.opening import add_event, open_request
from intake.settings import Settings
from intake.store.models import CallSession, Contact, IntakeRecord, OutboxMessage, ServiceRequest
from intake.workflows.around_the_clock import acknowledgment_notice, flag_missing_24x7_contact
from intake.workflows.desk import desk_for
from intake.workflows.phone import record_call_outcome, subject_with_transcription
from voice.calls import call_sid_of, find_call

log = logging.getLogger(__name__)

DESCRIPTION_LIMIT = 100_000


def process_call(intake_id: int) -> None:
    """The job for a call's row: open its request if the door could not, then send its
    acknowledgments."""
    finish_and_send(intake_id, finish_call)


def finish_call(session: Session, settings: Settings, policy: Policy, row: IntakeRecord) -> None:
    """Open the request of an accepted call unless the door did, then write what follows:
    the 24x7 check, the call's outcome and both acknowledgments to the outbox."""
    if row.outcome != "accepted":
        return
    call_sid = call_sid_of(row.dedupe_key)
    call = find_call(session, call_sid) if call_sid else None
    if call is None or row.contact_id is None:
        log.error("intake #%s: no call %r or contact to open a request for", row.id, call_sid)
        return
    contact = session.get_one(Contact, row.contact_id)
    opened = session.get(ServiceRequest, row.request_id) if row.request_id else None
    request = opened or _open(session, policy, row, call, contact)
    attach_media(session, call)
    flag_missing_24x7_contact(session, request)
    record_call_outcome(session, desk_for(settings, policy), call)
    session.add_all(acknowledgments(settings, policy, request, contact, row))


def open_call_request(session: Session, policy: Policy, call: CallSession) -> None:
    """The door's part while the caller waits: the bare request, whose number the caller hears;
    the row stays pending and the worker's :func:`finish_call` writes the rest."""
    row = session.get_one(IntakeRecord, call.intake_id)
    if row.request_id is None and row.contact_id is not None:
        _open(session, policy, row, call, session.get_one(Contact, row.contact_id))
        attach_media(session, call)


def _open(
    session: Session, policy: Policy, row: IntakeRecord, call: CallSession, contact: Contact
) -> ServiceRequest:
    request = open_request(
        session,
        policy,
        customer_id=contact.customer_id,
        contact_id=contact.id,
        channel="phone",
        severity=call.severity or policy.default_severity,
        subject=row.subject,
        description="",
        received_at=row.received_at,
    )
    row.request_id = call.request_id = request.id
    return request


def attach_media(session: Session, call: CallSession) -> None:
    """Add to the call's request the voicemail and transcription events it lacks (each once)."""
    if call.request_id is None:
        return
    request = session.get_one(ServiceRequest, call.request_id)
    if call.recording_url and not call.voicemail_attached:
        detail = {
            "recording_url": call.recording_url,
            "recording_sid": call.recording_sid,
            "duration_seconds": call.recording_duration,
        }
        add_event(session, request, "voicemail", detail)
        call.voicemail_attached = True
    if call.transcription is not None and not call.transcription_attached:
        text = call.transcription[:DESCRIPTION_LIMIT]
        status = "completed" if text else "failed"
        add_event(session, request, "transcription", {"text": text, "status": status})
        request.description = request.description or text
        request.subject = subject_with_transcription(request.subject, text)
        call.transcription_attached = True


def acknowledgments(
    settings: Settings, policy: Policy, request: ServiceRequest, contact: Contact, row: IntakeRecord
) -> list[OutboxMessage]:
    """The email (when the contact has an address) and the SMS to the registered phone."""
    level = policy.level(request.severity)
    rows = []
    if contact.primary_email:
        rows.append(_email(settings, policy, request, contact, row))
    if contact.phone:
        rows.append(acknowledgment_sms(settings, level, request, contact.phone, row.id))
    return rows


def _email(
    settings: Settings, policy: Policy, request: ServiceRequest, contact: Contact, row: IntakeRecord
) -> OutboxMessage:
    address = contact.primary_email or ""
    facts = AckFacts(
        number=request.number,
        to_name=contact.name,
        to_address=address,
        original_subject=row.subject,
        original_message_id="",  # a call has no message to thread to
        original_references=(),
        level=policy.level(request.severity),
        due_at=request.response_due_at,
        received_at=row.received_at,
        notice=acknowledgment_notice(request, contact.customer.name),
    )
    return acknowledgment_row(settings, facts, request_id=request.id, intake_id=row.id)
