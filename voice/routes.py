"""The IVR's webhooks: the Voice URL and the action URLs the TwiML names (all POST).

Each runs :func:`answer_step`: one transaction holding the call's row, the retry check, the
handler of :mod:`voice.steps`, and the TwiML of the state the call reached, which is kept on
the call for a retry. The TwiML is answered as soon as the transaction commits; the slow work
(mail, SMS, pages) is only enqueued for the worker.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable

from flask import Response, request
from sqlalchemy.exc import IntegrityError

from intake.store.models import CallSession, utcnow
from voice import steps, twiml
from voice.blueprint import bp
from voice.calls import find_call, remember_answer, replayed_answer, request_key, start_call
from voice.context import VoiceContext, voice_context
from voice.security import public_request_url

log = logging.getLogger(__name__)

TWIML_MIMETYPE = "application/xml"


def twiml_response(text: str) -> Response:
    return Response(text, mimetype=TWIML_MIMETYPE)


def answer_step(handler: steps.Handler, *, starts_call: bool = False) -> Response:
    """Run one step of a call and answer with the TwiML of where the call is then."""
    vc = voice_context()
    form = request.form.to_dict()
    key = request_key(public_request_url(vc.settings, request), form)
    try:
        answer, after_commit = _step_in_transaction(vc, form, key, handler, starts_call)
    except IntegrityError:  # the same new call started by a concurrent retry: it is there now
        answer, after_commit = _step_in_transaction(vc, form, key, handler, starts_call)
    for action in after_commit:
        action()
    return twiml_response(answer)


def _step_in_transaction(
    vc: VoiceContext, form: dict[str, str], key: str, handler: steps.Handler, starts_call: bool
) -> tuple[str, list[Callable[[], None]]]:
    with vc.transaction() as session:
        call = find_call(session, form.get("CallSid", ""))
        if call is None and not starts_call:
            log.warning("step for unknown call %s: answered with the fallback", form.get("CallSid"))
            return twiml.fallback(vc.url("fallback/recorded")), []
        if call is None:
            call = start_call(
                session, form.get("CallSid", ""), form.get("From", ""), form.get("StirVerstat", "")
            )
        elif (replay := replayed_answer(call, key)) is not None:
            return replay, []
        elif starts_call or _step_of_request() != call.step:
            return twiml.render(call, vc), []  # out of order or stale: where the caller is
        step = steps.Step(session, call, form, vc, utcnow())
        _advance(step, handler)
        answer = twiml.render(call, vc)
        remember_answer(call, key, answer)
        return answer, step.after_commit


def _advance(step: steps.Step, handler: steps.Handler) -> None:
    call: CallSession = step.call
    state_before = call.state
    call.notice = ""
    handler(step)
    if call.state != state_before:
        call.prompt_attempts = 0
    call.step += 1


def _step_of_request() -> int:
    try:
        return int(request.args.get("step", ""))
    except ValueError:
        return -1


@bp.post("/incoming")
def incoming() -> Response:
    """Twilio's Voice URL: the start of a call."""
    return answer_step(steps.greet, starts_call=True)


@bp.post("/phone")
def phone() -> Response:
    return answer_step(steps.take_phone)


@bp.post("/pin")
def pin() -> Response:
    verdicts = steps.pin_verdicts(voice_context(), request.form)  # the hashing, outside the lock
    return answer_step(functools.partial(steps.take_pin, verdicts=verdicts))


@bp.post("/category")
def category() -> Response:
    return answer_step(steps.take_category)


@bp.post("/severity")
def severity() -> Response:
    return answer_step(steps.take_severity)


@bp.post("/confirm")
def confirm() -> Response:
    return answer_step(steps.take_confirmation)


@bp.post("/lookup")
def lookup() -> Response:
    return answer_step(steps.take_request_number)


@bp.post("/recorded")
def recorded() -> Response:
    return answer_step(steps.take_recording)


@bp.post("/connect")
def connect() -> Response:
    return answer_step(steps.take_connect)


@bp.post("/dialed")
def dialed() -> Response:
    return answer_step(steps.take_dial_result)
