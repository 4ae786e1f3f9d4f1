"""``intake call simulate``: a caller at the terminal, Twilio played by :mod:`voice.player`.

The prompts are printed as the caller would hear them; at each menu the caller types keys
(``2``, ``14155550101#``), ``say: severity one`` for speech (``say 0.4: ...`` to set the
recogniser's confidence), an empty line for silence, or ``hangup``. At the recording tone the
caller types the description (it comes back as Twilio's transcription). When the IVR rings an
engineer, the engineer's phone is played too: accept, voicemail, decline or no answer. After
the call, Twilio's own callbacks (recording, transcription, status) are sent as Twilio sends
them.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

from intake.settings import Settings
from voice.caller import (
    Answer,
    Describe,
    HangUp,
    Keys,
    Pickup,
    Silence,
    Speech,
)
from voice.player import TwilioPlayer

SPEECH = re.compile(r"say(?:\s+(?P<confidence>[01](?:\.\d+)?))?\s*:\s*(?P<text>.*)", re.I)
PICKUPS = {"a": "accept", "v": "voicemail", "d": "decline", "n": "no-answer"}
HELP = (
    "Type keys (2, or 14155550101# for a number), 'say: severity one' for speech "
    "('say 0.4: ...' sets the recogniser's confidence), Enter for silence, 'hangup' to hang up."
)


@dataclass
class TerminalCaller:
    read: Callable[[str], str]
    write: Callable[[str], None]

    def hear(self, text: str, leg: str) -> None:
        who = {"caller": "IVR", "engineer": "IVR to the engineer", "bridge": "..."}[leg]
        if text:
            self.write(f"{who}: {text}")

    def gather(self, prompt: str) -> Answer:
        return parse_answer(self.read("keys or speech> "))

    def record(self) -> Describe | Silence | HangUp:
        typed = self.read("(beep) say the description, Enter when done> ").strip()
        if typed.lower().startswith("hangup"):
            return HangUp()
        return Describe(typed) if typed else Silence()

    def engineer(self, number: str) -> Pickup:
        self.write(f"(ringing the engineer on call at {number})")
        typed = self.read("engineer: [a]ccept, [v]oicemail, [d]ecline, [n]o answer> ")
        return Pickup(PICKUPS.get(typed.strip().lower()[:1], "no-answer"))


def parse_answer(typed: str) -> Answer:
    """What a line typed at a menu means."""
    text = typed.strip()
    if not text:
        return Silence()
    if text.lower() == "hangup":
        return HangUp()
    spoken = SPEECH.fullmatch(text)
    if spoken:
        confidence = float(spoken.group("confidence") or 0.92)
        return Speech(spoken.group("text").strip(), confidence)
    return Keys(text)


def simulate(
    settings: Settings,
    caller_id: str,
    app_url: str,
    read: Callable[[str], str],
    write: Callable[[str], None],
    *,
    attestation: str | None = None,
) -> TwilioPlayer:
    """Walk one call through the IVR at ``app_url``; returns the player (its timings).
    ``attestation`` is the StirVerstat Twilio would pass (None: none)."""
    player = TwilioPlayer(
        app_url=app_url,
        public_url=settings.public_url,
        account_sid=settings.twilio_account_sid,
        auth_token=settings.twilio_auth_token,
        to=settings.twilio_phone_number,
        caller_id=caller_id,
        attestation=attestation,
    )
    write(
        f"Calling {settings.twilio_phone_number} from {caller_id or 'a withheld number'} "
        f"({app_url}, signed for {settings.public_url}). {HELP}"
    )
    try:
        player.call(TerminalCaller(read, write))
        write("(call ended)")
        for callback, status in zip(list(player.pending), player.deliver(), strict=True):
            write(f"(Twilio sends the {callback.name} callback: {status})")
    finally:
        player.close()
    return player
