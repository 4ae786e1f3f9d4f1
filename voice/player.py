"""A stand-in for Twilio: plays one call against the running app, as Twilio would.

It posts signed form requests (``X-Twilio-Signature`` made with Twilio's own validator over the
public URL) and follows the TwiML it gets back: <Say>, <Gather> (keys or speech), <Record>,
<Redirect>, <Dial> with the engineer's whisper leg, <Hangup>. What the caller does comes from a
:class:`Caller` (typed at a terminal by ``intake call simulate``, scripted in the tests and the
benchmark). The callbacks Twilio sends on its own time (call status, recording, transcription,
and the recording action of a caller who hung up while recording) are kept in ``pending`` so
they can be delivered in any order.
"""

from __future__ import annotations

import http.client
import socket
import time
import uuid
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from dataclasses import dataclass, field
from urllib.parse import urlencode, urlsplit

from twilio.request_validator import RequestValidator

from voice.caller import Answer, Caller, Describe, HangUp, Keys, Pickup, Silence, Speech

Follow = tuple[str, dict[str, str]] | None  # the next request to make, if any


@dataclass
class Callback:
    name: str
    url: str
    params: dict[str, str]


@dataclass
class TwilioPlayer:
    app_url: str  # where the app listens
    public_url: str  # INTAKE_PUBLIC_URL: what Twilio requests, and signs
    account_sid: str
    auth_token: str
    to: str  # our Twilio number
    caller_id: str
    attestation: str | None = None  # StirVerstat as the carrier gave it; None: Twilio sends none
    call_sid: str = field(default_factory=lambda: "CA" + uuid.uuid4().hex)
    pending: list[Callback] = field(default_factory=list)
    timings: list[tuple[str, float]] = field(default_factory=list)
    ended: bool = False
    _recordings: int = 0
    _connection: http.client.HTTPConnection | None = None

    def base_params(self, call_sid: str | None = None) -> dict[str, str]:
        params = {
            "AccountSid": self.account_sid,
            "ApiVersion": "2010-04-01",
            "CallSid": call_sid or self.call_sid,
            "CallStatus": "in-progress",
            "Direction": "inbound",
            "From": self.caller_id,
            "To": self.to,
        }
        if self.attestation is not None and call_sid is None:  # the caller's leg only
            params["StirVerstat"] = self.attestation
        return params

    def post(self, url: str, params: dict[str, str]) -> tuple[int, str]:
        """POST a signed form to ``url`` (a public URL), through the app's own address."""
        signature = RequestValidator(self.auth_token).compute_signature(url, params)
        path = url.removeprefix(self.public_url.rstrip("/"))
        body = urlencode(params).encode()  # bytes: headers and body go out in one segment
        headers = {
            "Content-Type": "application/x-www-form-urlencoded",
            "X-Twilio-Signature": signature,
        }
        started = time.perf_counter()
        status, text = self._send(path, body, headers)
        self.timings.append((urlsplit(url).path, time.perf_counter() - started))
        return status, text

    def _send(self, path: str, body: bytes, headers: dict[str, str]) -> tuple[int, str]:
        for attempt in (1, 2):  # a kept-alive connection the server closed: reconnect once
            connection = self._connection or self._connect()
            try:
                connection.request("POST", path, body=body, headers=headers)
                response = connection.getresponse()
                return response.status, response.read().decode("utf-8")
            except (http.client.HTTPException, ConnectionError):
                self.close()
                if attempt == 2:
                    raise
        raise AssertionError("unreachable")

    def _connect(self) -> http.client.HTTPConnection:
        parts = urlsplit(self.app_url)
        connection = http.client.HTTPConnection(
            parts.hostname or "127.0.0.1", parts.port or 80, timeout=30
        )
        connection.connect()
        # Small requests on a kept-alive connection: no Nagle delay waiting for an ACK.
        connection.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self._connection = connection
        return connection

    def close(self) -> None:
        if self._connection is not None:
            self._connection.close()
            self._connection = None

    def url(self, path: str) -> str:
        return self.public_url.rstrip("/") + path

    def call(self, caller: Caller) -> None:
        """Ring the Voice URL and follow the TwiML until the call ends."""
        status, text = self.post(self.url("/voice/incoming"), self.base_params())
        self._follow(status, text, caller)
        if not self.ended:
            self.hang_up()

    def hang_up(self) -> None:
        self.ended = True
        params = self.base_params() | {"CallStatus": "completed", "CallDuration": "42"}
        self.pending.append(Callback("status", self.url("/voice/status"), params))

    def deliver(self, names: tuple[str, ...] | None = None) -> list[int]:
        """Send the pending callbacks, in ``names`` order (each name once) or as they came."""
        chosen = self.pending if names is None else [self._take(name) for name in names]
        self.pending = [c for c in self.pending if c not in chosen]
        return [self.post(c.url, c.params)[0] for c in chosen]

    def _take(self, name: str) -> Callback:
        return next(c for c in self.pending if c.name == name)

    def _follow(self, status: int, text: str, caller: Caller) -> None:
        while not self.ended:
            if status != 200:
                raise RuntimeError(f"the app answered {status}: {text[:200]}")
            next_request = self._play(_verbs(text), caller)
            if next_request is None:
                return
            status, text = self.post(*next_request)

    def _play(self, verbs: Iterator[ET.Element], caller: Caller) -> Follow:
        """Run verbs until one leads to a request; None when the call ended."""
        for verb in verbs:
            follow = VERBS[verb.tag](self, verb, caller)
            if follow is not None or self.ended:
                return follow
        self.hang_up()  # Twilio hangs up when the TwiML runs out
        return None


def _verbs(text: str) -> Iterator[ET.Element]:
    root = ET.fromstring(text)  # noqa: S314 - the TwiML of the app under test, not outside input
    return iter(list(root))


def _say(player: TwilioPlayer, verb: ET.Element, caller: Caller) -> Follow:
    caller.hear(verb.text or "", "caller")
    return None


def _gather(player: TwilioPlayer, verb: ET.Element, caller: Caller) -> Follow:
    prompt = " ".join(say.text or "" for say in verb.iter("Say"))
    caller.hear(prompt, "caller")
    answer = caller.gather(prompt)
    if isinstance(answer, HangUp):
        player.hang_up()
        return None
    params = _gathered(verb, answer)
    return None if params is None else (verb.attrib["action"], player.base_params() | params)


def _gathered(verb: ET.Element, answer: Answer) -> dict[str, str] | None:
    """The fields Twilio posts for an answer; None for no answer (the next verb follows)."""
    if isinstance(answer, Keys) and "dtmf" in verb.get("input", "dtmf"):
        digits = answer.digits.split(verb.get("finishOnKey", "#"))[0]
        limit = int(verb.get("numDigits", "0") or 0)
        return {"Digits": digits[:limit] if limit else digits}
    if isinstance(answer, Speech) and "speech" in verb.get("input", ""):
        return {"SpeechResult": answer.text, "Confidence": f"{answer.confidence:.2f}"}
    return None


def _record(player: TwilioPlayer, verb: ET.Element, caller: Caller) -> Follow:
    answer = caller.record()
    if isinstance(answer, Silence):
        return None  # an empty recording: Twilio skips the action
    text = answer.said if isinstance(answer, HangUp) else answer.text
    seconds = (answer.seconds if isinstance(answer, Describe) else 0) or _duration(text)
    recording = _recording_params(player, seconds)
    player.pending.extend(_recording_callbacks(player, verb, recording, text))
    action = (verb.attrib["action"], player.base_params() | recording | {"Digits": "#"})
    if not isinstance(answer, HangUp):
        return action
    hung_up = action[1] | {"Digits": "hangup", "CallStatus": "completed"}
    player.pending.append(Callback("recorded", action[0], hung_up))
    player.hang_up()
    return None


def _duration(text: str) -> int:
    return max(1, round(len(text.split()) / 2)) if text else 0


def _recording_params(player: TwilioPlayer, seconds: int) -> dict[str, str]:
    player._recordings += 1
    sid = f"RE{uuid.uuid5(uuid.NAMESPACE_URL, player.call_sid + str(player._recordings)).hex}"
    url = f"https://api.twilio.com/2010-04-01/Accounts/{player.account_sid}/Recordings/{sid}"
    return {"RecordingSid": sid, "RecordingUrl": url, "RecordingDuration": str(seconds)}


def _recording_callbacks(
    player: TwilioPlayer, verb: ET.Element, recording: dict[str, str], text: str
) -> list[Callback]:
    base = player.base_params() | recording
    callbacks = []
    if verb.get("recordingStatusCallback"):
        params = base | {"RecordingStatus": "completed"}
        callbacks.append(Callback("recording", verb.attrib["recordingStatusCallback"], params))
    if verb.get("transcribe") == "true" and verb.get("transcribeCallback") and text:
        params = base | {
            "TranscriptionSid": "TR" + recording["RecordingSid"][2:],
            "TranscriptionStatus": "completed",
            "TranscriptionText": text,
        }
        callbacks.append(Callback("transcription", verb.attrib["transcribeCallback"], params))
    return callbacks


def _redirect(player: TwilioPlayer, verb: ET.Element, caller: Caller) -> Follow:
    return (verb.text or "").strip(), player.base_params()


def _hangup(player: TwilioPlayer, verb: ET.Element, caller: Caller) -> Follow:
    player.hang_up()
    return None


def _dial(player: TwilioPlayer, verb: ET.Element, caller: Caller) -> Follow:
    number = verb.find("Number")
    assert number is not None, "a <Dial> without a <Number>"
    status = _ring(player, number, caller)
    params = {"DialCallStatus": status, "DialCallSid": "CA" + uuid.uuid4().hex}
    return verb.attrib["action"], player.base_params() | params


def _ring(player: TwilioPlayer, number: ET.Element, caller: Caller) -> str:
    """The engineer's leg: the whisper URL is played to whoever picks up."""
    phone = (number.text or "").strip()
    pickup = caller.engineer(phone)
    if pickup.how == "no-answer":
        return "no-answer"
    leg = player.base_params("CA" + uuid.uuid4().hex) | {
        "ParentCallSid": player.call_sid,
        "Direction": "outbound-dial",
        "To": phone,
    }
    _status, text = player.post(number.attrib["url"], leg)
    _whisper(player, _verbs(text), leg, pickup, caller)
    # Answered, put through or not: only the app knows whether the engineer pressed 1.
    return "completed"


def _whisper(
    player: TwilioPlayer,
    verbs: Iterator[ET.Element],
    leg: dict[str, str],
    pickup: Pickup,
    caller: Caller,
) -> None:
    """The engineer hears who calls; 1 takes the call, a voicemail presses nothing."""
    for verb in verbs:
        if verb.tag == "Say":
            caller.hear(verb.text or "", "engineer")
        if verb.tag != "Gather":
            continue
        caller.hear(" ".join(s.text or "" for s in verb.iter("Say")), "engineer")
        digits = PICKUP_KEYS.get(pickup.how)
        if digits is None:
            continue  # a voicemail presses nothing: on to the whisper's next verb
        _status, answer = player.post(verb.attrib["action"], leg | {"Digits": digits})
        if "<Hangup" not in answer:
            caller.hear("(the engineer is on the line; the call is put through)", "bridge")
        return


PICKUP_KEYS = {"accept": "1", "decline": "2"}


VERBS = {
    "Say": _say,
    "Pause": lambda player, verb, caller: None,
    "Gather": _gather,
    "Record": _record,
    "Redirect": _redirect,
    "Hangup": _hangup,
    "Dial": _dial,
}
