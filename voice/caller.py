"""What a caller does at each prompt, for :mod:`voice.player`: keys, speech, silence, a
description at the tone, a hang-up; and what an engineer's phone does when the IVR rings it.

A :class:`Caller` is asked for these by the player: a person at a terminal (``voice.simulator``)
or a script (the tests, the benchmark).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True)
class Keys:
    digits: str  # as typed, "4321#" included


@dataclass(frozen=True)
class Speech:
    text: str
    confidence: float = 0.92


@dataclass(frozen=True)
class Silence:
    pass


@dataclass(frozen=True)
class HangUp:
    said: str = ""  # while recording: what was said before the hang-up


@dataclass(frozen=True)
class Describe:
    text: str  # what the caller says; Twilio's transcription of it
    seconds: int = 0  # 0: about two words a second


@dataclass(frozen=True)
class Pickup:
    """What an engineer's phone does: "accept" (presses 1), "voicemail" (answers, presses
    nothing), "decline" (answers, presses another key) or "no-answer"."""

    how: str


Answer = Keys | Speech | Silence | HangUp


class Caller(Protocol):
    def hear(self, text: str, leg: str) -> None: ...
    def gather(self, prompt: str) -> Answer: ...
    def record(self) -> Describe | Silence | HangUp: ...
    def engineer(self, number: str) -> Pickup: ...
