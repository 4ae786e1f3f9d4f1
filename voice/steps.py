"""The IVR's moves: for each answer the caller gives, where the call goes next.

Each handler reads the webhook's fields, changes the call (its ``state`` and what it learnt) and
may say a sentence before the next prompt (``Step.say``); the TwiML is then rendered from the
state (:mod:`voice.twiml`). Work to do after the commit (enqueueing jobs) goes to
``after_commit``.

    incoming: a caller ID that names one contact, and that the trust setting believes (by
      default: fully attested), goes straight to the entitlement check; otherwise
      identify_phone, identify_pin (3 tries, or a PIN lockout, then unidentified)
    entitlement: refused, or (end users) category first, then menu
    menu: 1 to 4 or speech; 9 is status_lookup (then menu again);
      1, or speech heard unsure, waits in confirm for a confirming 1;
      status and Severity 1 need a PIN or a fully attested caller ID: a caller named by an
      unattested caller ID (trust "always") is asked for the PIN first (identify_pin)
    recording (an empty one asked for once more), then recorded: the request number;
      Severity 1 with a rota: connecting, engineer by engineer, then done
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from sqlalchemy.orm import Session

from intake.store.contacts import find_contact_by_id, refusal_for
from intake.store.models import (
    CallSession,
    Contact,
    PinLockout,
    ServiceRequest,
    format_request_number,
    utcnow,
)
from intake.workflows.phone import record_call_outcome
from voice import prompts
from voice.call_input import (
    category_from_input,
    confident,
    keys_only,
    phone_from_keys,
    request_id_from_keys,
    severity_from_keys,
    severity_from_speech,
)
from voice.call_outcomes import accept_call, note_recording, page_engineers
from voice.callers import (
    PIN_TRIES_PER_CALL,
    PinVerdicts,
    check_pin,
    describe_lockout,
    identify_by_caller_id,
    strongly_identified,
    verify_pin_ahead,
)
from voice.calls import caller_number, find_call, note_on_intake_row, record_call
from voice.context import VoiceContext
from voice.enqueue import enqueue_intake, enqueue_outbox_rows

MAX_UNANSWERED = 3  # silent or unclear answers to one prompt before the call ends
MAX_EMPTY_RECORDINGS = 2  # an empty recording is asked for once more


@dataclass
class Step:
    """One webhook of a call being handled: what a handler reads and may change."""

    session: Session
    call: CallSession
    form: Mapping[str, str]
    vc: VoiceContext
    now: dt.datetime
    after_commit: list[Callable[[], None]] = field(default_factory=list)

    def value(self, name: str) -> str:
        return self.form.get(name, "").strip()

    def say(self, text: str) -> None:
        self.call.notice = f"{self.call.notice} {text}".strip()

    def move(self, state: str) -> None:
        self.call.state = state


Handler = Callable[[Step], None]


def greet(step: Step) -> None:
    """A new call: a caller ID that names one contact, and is believed, skips the keypad."""
    step.say(prompts.WELCOME)
    call = step.call
    trust = step.vc.policy.voice.caller_id_trust
    contact = identify_by_caller_id(step.session, call.caller, call.attestation, trust)
    if contact is None:
        step.move("identify_phone")
        return
    _identified(step, contact, "caller_id")


def _identified(step: Step, contact: Contact, by: str) -> None:
    """Greet the caller and check entitlement; a PIN that confirmed an unattested caller ID
    goes on to what the caller had asked for (status, Severity 1)."""
    call = step.call
    call.contact_id, call.identified_by = contact.id, by
    then, call.after_pin = call.after_pin, ""
    if not then:
        step.say(f"Hello {contact.name}.")
    route_identified(step)
    if then and call.state == "menu":
        step.move(then)


def _confirm_with_pin(step: Step, then: str) -> None:
    """A caller named only by an unattested caller ID gives the PIN of that number first."""
    call = step.call
    contact = step.session.get(Contact, call.contact_id) if call.contact_id else None
    call.after_pin, call.entered_phone = then, (contact.phone if contact else None) or ""
    step.say(prompts.PIN_NEEDED)
    step.move("identify_pin")


def route_identified(step: Step) -> None:
    """The same entitlement rules as mail; an end user is first asked for the problem area."""
    call = step.call
    assert call.contact_id is not None
    view = find_contact_by_id(step.session, call.contact_id)
    sender = caller_number(call, step.session.get(Contact, call.contact_id))
    refusal = refusal_for(view, sender, step.now.date(), call.category)
    if refusal is None:
        step.move("menu")
    elif refusal.reason == "category_not_allowed" and call.category is None:
        step.move("category")
    else:
        call.reason = refusal.reason
        step.say(prompts.refused(refusal.reason, view.customer_name if view else ""))
        step.move("refused")
        record_call(step.session, call)


def unanswered(step: Step, notice: str = prompts.NO_INPUT) -> None:
    """No usable answer: ask again, up to MAX_UNANSWERED times, then end the call."""
    step.call.prompt_attempts += 1
    if step.call.prompt_attempts < MAX_UNANSWERED:
        step.say(notice)
        return
    step.say(prompts.SILENT)
    step.move("silent")
    automatic = "status_inquiry" if step.call.status_lookups else "call_abandoned"
    record_call(step.session, step.call, automatic=automatic)


def take_phone(step: Step) -> None:
    keys = keys_only(step.value("Digits"))
    if not keys:
        unanswered(step)
        return
    # A number that is no number, or nobody's, is not told apart: the PIN check fails alike.
    step.call.entered_phone = phone_from_keys(keys) or ""
    step.move("identify_pin")


def take_pin(step: Step, verdicts: PinVerdicts | None = None) -> None:
    keys, call = keys_only(step.value("Digits")), step.call
    if not keys:
        unanswered(step)
        return
    voice = step.vc.policy.voice
    checked = check_pin(
        step.session,
        call.caller,
        call.entered_phone,
        keys,
        now=step.now,
        voice=voice,
        verdicts=verdicts,
    )
    if checked.contact is not None:
        _identified(step, checked.contact, "pin")
        return
    if checked.lockout is not None:
        _locked_out(step, checked.lockout)
        return
    call.pin_attempts += 1
    if call.pin_attempts < PIN_TRIES_PER_CALL:
        step.say(prompts.NO_MATCH)
        step.move("identify_phone")
        return
    _unidentified(step)


def pin_verdicts(vc: VoiceContext, form: Mapping[str, str]) -> PinVerdicts:
    """The PIN typed, checked against the PINs of the number the call entered before the
    step's writing transaction (see verify_pin_ahead); nothing for a call not found."""
    with vc.db.sessions() as session:
        call = find_call(session, form.get("CallSid", ""), lock=False)
        if call is None:
            return {}
        pin = keys_only(form.get("Digits", ""))
        return verify_pin_ahead(session, call.caller, call.entered_phone, pin, now=utcnow())


def _unidentified(step: Step) -> None:
    """The call ends unidentified (a caller ID it had named the caller by counts no more)."""
    call = step.call
    call.contact_id, call.identified_by, call.after_pin = None, "", ""
    step.say(prompts.unidentified(step.vc.rota))
    step.move("unidentified")
    record_call(step.session, call)


def _locked_out(step: Step, lockout: PinLockout) -> None:
    """PIN entry is locked for this caller: the call ends, and its intake row tells staff."""
    step.call.reason = "pin_lockout"
    _unidentified(step)
    note_on_intake_row(step.session, step.call, "pin_lockout", describe_lockout(lockout))
    if lockout.intake_id is None:  # the call that spent the budget: its row shows the lock
        lockout.intake_id = step.call.intake_id


def take_category(step: Step) -> None:
    digits, speech = step.value("Digits"), step.value("SpeechResult")
    category = category_from_input(digits, speech)
    if category is None:
        unanswered(step, prompts.NOT_UNDERSTOOD if digits or speech else prompts.NO_INPUT)
        return
    step.call.category = category
    route_identified(step)


def take_severity(step: Step) -> None:
    digits, speech = keys_only(step.value("Digits")), step.value("SpeechResult")
    if digits == "9":
        _move_once_strongly_identified(step, "status_lookup")
    elif digits:
        severity = severity_from_keys(digits)
        if severity is None:
            unanswered(step, prompts.NOT_A_CHOICE)
        else:
            _choose(step, severity, heard=False, sure=True)
    elif speech:
        severity = severity_from_speech(speech)
        if severity is None:
            unanswered(step, prompts.NOT_UNDERSTOOD)
        else:
            _choose(step, severity, heard=True, sure=confident(step.value("Confidence")))
    else:
        unanswered(step)


def _choose(step: Step, severity: int, *, heard: bool, sure: bool) -> None:
    """Severity 1, and anything the recogniser was unsure of, waits for a confirming 1."""
    step.say(prompts.understood(severity) if heard else prompts.chosen(severity))
    if severity == 1 or not sure:
        step.call.proposed_severity = severity
        if severity == 1:
            _move_once_strongly_identified(step, "confirm")
        else:
            step.move("confirm")
    else:
        step.call.severity = severity
        step.move("recording")


def _move_once_strongly_identified(step: Step, state: str) -> None:
    """Status and Severity 1 need a PIN or a fully attested caller ID."""
    if strongly_identified(step.call):
        step.move(state)
    else:
        _confirm_with_pin(step, state)


def take_confirmation(step: Step) -> None:
    digits, call = keys_only(step.value("Digits")), step.call
    if digits == "1" and call.proposed_severity is not None:
        call.severity, call.proposed_severity = call.proposed_severity, None
        step.move("recording")
    elif digits:
        call.proposed_severity = None
        step.say(prompts.CHOOSE_AGAIN)
        step.move("menu")
    else:
        unanswered(step)


def take_request_number(step: Step) -> None:
    keys = keys_only(step.value("Digits"))
    if not keys:
        unanswered(step)
        return
    step.call.status_lookups += 1
    step.say(_status_of(step, keys))
    step.move("menu")


def _status_of(step: Step, keys: str) -> str:
    """A request's status, told only to a contact of the request's customer."""
    request_id = request_id_from_keys(keys)
    request = step.session.get(ServiceRequest, request_id) if request_id else None
    contact = step.session.get(Contact, step.call.contact_id) if step.call.contact_id else None
    if not strongly_identified(step.call) or request is None or contact is None:
        return prompts.no_such_request(keys[:20])
    if request.customer_id != contact.customer_id:
        return prompts.no_such_request(keys[:20])
    return prompts.status_report(request.number, request.severity, request.status)


def take_recording(step: Step) -> None:
    """The description: kept and the request opened; an empty one is asked for once more."""
    call = step.call
    duration = _whole_seconds(step.value("RecordingDuration"))
    url, sid = step.value("RecordingUrl"), step.value("RecordingSid")
    if not note_recording(call, url, sid, duration) and not call.recording_url:
        call.record_attempts += 1
        if call.record_attempts < MAX_EMPTY_RECORDINGS:
            step.say(prompts.EMPTY_RECORDING)
            return
    step.move("recorded")
    _open_request(step)


def _open_request(step: Step) -> None:
    vc = step.vc
    if accept_call(step.session, vc.policy, step.call):
        intake_id = step.call.intake_id
        assert intake_id is not None
        step.after_commit.append(lambda: enqueue_intake(vc, intake_id))


def take_connect(step: Step) -> None:
    call = step.call
    if keys_only(step.value("Digits")) == "1" and call.severity == 1 and step.vc.rota.engineers:
        call.rota_index, call.accepted_by = 0, None
        step.say(prompts.CONNECTING)
        step.move("connecting")
    else:
        step.move("done")


def take_dial_result(step: Step) -> None:
    """After a <Dial>: done if the engineer pressed 1, else the next one, else page them all."""
    call, engineers = step.call, step.vc.rota.engineers
    if call.accepted_by is not None and call.accepted_by == call.rota_index:
        step.move("done")
        return
    call.rota_index += 1
    if call.rota_index < len(engineers):
        step.say(prompts.NEXT_ENGINEER)
        step.move("connecting")
        return
    outbox_ids = page_engineers(step.session, call, step.vc.rota, step.now)
    record_call_outcome(step.session, step.vc.desk, call, step.now)
    step.after_commit.append(lambda: enqueue_outbox_rows(step.vc, outbox_ids))
    number = format_request_number(call.request_id) if call.request_id else None
    step.say(prompts.engineers_paged(number))
    step.move("done")


def _whole_seconds(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        return 0
