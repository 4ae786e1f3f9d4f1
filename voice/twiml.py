"""TwiML for each place a caller can be, built with the twilio library's VoiceResponse.

:func:`render` is a function of the call's state alone: a retried or out-of-order webhook can
always be answered with the prompt of where the caller is. Every action URL carries the call's
step counter (see :mod:`voice.calls`). A <Gather> that hears nothing falls through to a
<Redirect> to the same action without input, which counts as no answer.
"""

from __future__ import annotations

from collections.abc import Callable

from twilio.twiml.voice_response import Gather, VoiceResponse

from intake.store.models import CallSession, format_request_number
from voice import prompts
from voice.context import VoiceContext

MAX_RECORDING_SECONDS = 110  # Twilio transcribes recordings of up to 120 seconds
SILENCE_ENDS_RECORDING = 5
KEYPAD_TIMEOUT = 10
MENU_TIMEOUT = 8
WHISPER_TIMEOUT = 10
SPEECH_HINTS = "severity one, severity two, severity three, severity four, critical, urgent"

Builder = Callable[[VoiceResponse, CallSession, VoiceContext], None]


def render(call: CallSession, vc: VoiceContext) -> str:
    """The TwiML for where the caller is: the notice, then the state's prompt."""
    response = VoiceResponse()
    if call.notice:
        response.say(call.notice)
    BUILDERS[call.state](response, call, vc)
    return str(response)


def _action(call: CallSession, vc: VoiceContext, path: str) -> str:
    return vc.url(path, step=call.step)


def _ask(
    response: VoiceResponse, call: CallSession, vc: VoiceContext, path: str, **gather: object
) -> Gather:
    action = _action(call, vc, path)
    asked = response.gather(action=action, method="POST", **gather)
    response.redirect(action, method="POST")  # nothing heard: the action without input
    return asked


def _keys(path: str, text: str) -> Builder:
    def build(response: VoiceResponse, call: CallSession, vc: VoiceContext) -> None:
        _ask(response, call, vc, path, input="dtmf", finish_on_key="#", timeout=KEYPAD_TIMEOUT).say(
            text
        )

    return build


def _menu(response: VoiceResponse, call: CallSession, vc: VoiceContext) -> None:
    _ask(
        response,
        call,
        vc,
        "severity",
        input="dtmf speech",
        num_digits=1,
        timeout=MENU_TIMEOUT,
        speech_timeout="auto",
        hints=SPEECH_HINTS,
        language="en-US",
    ).say(prompts.MENU)


def _category(response: VoiceResponse, call: CallSession, vc: VoiceContext) -> None:
    gather = _ask(
        response, call, vc, "category", input="dtmf speech", num_digits=1, timeout=MENU_TIMEOUT
    )
    gather.say(prompts.ASK_CATEGORY)


def _confirm(response: VoiceResponse, call: CallSession, vc: VoiceContext) -> None:
    text = prompts.confirm_severity(call.proposed_severity or 1)
    _ask(response, call, vc, "confirm", input="dtmf", num_digits=1, timeout=MENU_TIMEOUT).say(text)


def _recording(response: VoiceResponse, call: CallSession, vc: VoiceContext) -> None:
    action = _action(call, vc, "recorded")
    response.say(prompts.ASK_DESCRIPTION)
    response.record(
        action=action,
        method="POST",
        max_length=MAX_RECORDING_SECONDS,
        timeout=SILENCE_ENDS_RECORDING,
        finish_on_key="#",
        play_beep=True,
        transcribe=True,
        transcribe_callback=vc.url("transcription"),
        recording_status_callback=vc.url("recording"),
    )
    response.redirect(action, method="POST")  # Twilio skips the action for an empty recording


def _recorded(response: VoiceResponse, call: CallSession, vc: VoiceContext) -> None:
    if call.request_id is None:
        response.say(prompts.no_request_number())
    else:
        response.say(prompts.request_number(format_request_number(call.request_id)))
        response.say(prompts.CONFIRMATIONS_SENT)
    if call.severity == 1 and vc.rota.engineers:
        gather = response.gather(
            action=_action(call, vc, "connect"), method="POST", input="dtmf", num_digits=1
        )
        gather.say(prompts.OFFER_ENGINEER)
    _goodbye(response, call, vc)


def _connecting(response: VoiceResponse, call: CallSession, vc: VoiceContext) -> None:
    engineer = vc.rota.engineers[call.rota_index]
    dial = response.dial(
        action=_action(call, vc, "dialed"),
        method="POST",
        timeout=vc.rota.ring_seconds,
        caller_id=vc.settings.twilio_phone_number,
        answer_on_bridge=True,
    )
    whisper = vc.url("whisper", call=call.call_sid, engineer=call.rota_index)
    dial.number(engineer.phone, url=whisper, method="POST")


def _goodbye(response: VoiceResponse, call: CallSession, vc: VoiceContext) -> None:
    if not call.notice.endswith("Goodbye."):  # the ends' notices take their leave themselves
        response.say(prompts.GOODBYE)
    response.hangup()


def whisper(number: str, caller: str, customer: str, answer_url: str) -> str:
    """What the engineer hears before the caller is put through: press 1, or no connection."""
    response = VoiceResponse()
    gather = response.gather(
        action=answer_url, method="POST", input="dtmf", num_digits=1, timeout=WHISPER_TIMEOUT
    )
    gather.say(prompts.whisper(number, caller, customer) + " " + prompts.WHISPER_ACCEPT)
    response.say(prompts.NOT_ACCEPTED)
    response.hangup()
    return str(response)


def said_then_hangup(text: str = "") -> str:
    response = VoiceResponse()
    if text:
        response.say(text)
    response.hangup()
    return str(response)


def bridge() -> str:
    """The engineer accepted: an empty answer lets Twilio connect the two legs."""
    return str(VoiceResponse())


def fallback(recorded_url: str) -> str:
    """The apology and a recording prompt: built from nothing but the settings."""
    response = VoiceResponse()
    response.say(prompts.FALLBACK)
    response.record(
        action=recorded_url,
        method="POST",
        max_length=MAX_RECORDING_SECONDS,
        timeout=SILENCE_ENDS_RECORDING,
        finish_on_key="#",
        play_beep=True,
    )
    response.say(prompts.FALLBACK_THANKS)
    response.hangup()
    return str(response)


BUILDERS: dict[str, Builder] = {
    "identify_phone": _keys("phone", prompts.ASK_PHONE),
    "identify_pin": _keys("pin", prompts.ASK_PIN),
    "category": _category,
    "menu": _menu,
    "confirm": _confirm,
    "status_lookup": _keys("lookup", prompts.ASK_REQUEST_NUMBER),
    "recording": _recording,
    "recorded": _recorded,
    "connecting": _connecting,
    "refused": _goodbye,
    "unidentified": _goodbye,
    "silent": _goodbye,
    "done": _goodbye,
    "fallback": lambda response, _call, _vc: response.hangup(),  # the message is left
}
