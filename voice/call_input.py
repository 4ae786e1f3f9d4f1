"""What a caller's keys and words mean: severities, problem areas, phone and request numbers.

Twilio hands us the keys pressed (``Digits``) and, for speech, its best guess at the words
(``SpeechResult``) with a ``Confidence`` from 0 to 1. A guess below
``SPEECH_CONFIDENCE_THRESHOLD`` is read back for a keypress to confirm.
"""

from __future__ import annotations

import re

from parsers.phones import normalise_phone

SPEECH_CONFIDENCE_THRESHOLD = 0.6
MAX_REQUEST_DIGITS = 18  # request ids are 64-bit keys

NUMBER_WORDS = {"one": 1, "two": 2, "three": 3, "four": 4, "1": 1, "2": 2, "3": 3, "4": 4}
# Recognisers hear "severity one" as "severity won", "severity two" as "severity to" ...: such
# homophones count only right after a word that announces a severity.
HOMOPHONES = {"won": 1, "to": 2, "too": 2, "tree": 3, "for": 4, "fore": 4}
ANNOUNCING = r"(?:severity|sev|level|priority|p)"
ANNOUNCED = re.compile(
    rf"\b{ANNOUNCING}\s*[-:]?\s*(one|two|three|four|won|to|too|tree|for|fore|[1-4])\b"
)
SEVERITY_WORDS = {
    1: ("critical", "urgent", "emergency", "down", "outage"),
    2: ("serious", "severe", "major", "high"),
    3: ("minor", "moderate", "medium", "normal"),
    4: ("information", "informational", "question", "enhancement", "documentation", "low"),
}
CATEGORY_KEYS = {"1": "platform", "2": "recording", "3": "other"}


def severity_from_keys(digits: str) -> int | None:
    """1 to 4 from the keypad, or None."""
    key = digits.strip().rstrip("#")
    return int(key) if key in ("1", "2", "3", "4") else None


def severity_from_speech(text: str) -> int | None:
    """The one severity the words name ("severity one", "critical", "sev 2"), or None when
    they name none or several."""
    words = text.lower().replace("-", " ")
    found = {_number(m.group(1)) for m in ANNOUNCED.finditer(words)}
    tokens = re.findall(r"[a-z0-9]+", words)
    found |= {NUMBER_WORDS[t] for t in tokens if t in NUMBER_WORDS}
    found |= {level for level, names in SEVERITY_WORDS.items() if any(t in names for t in tokens)}
    return found.pop() if len(found) == 1 else None


def _number(word: str) -> int:
    return NUMBER_WORDS.get(word) or HOMOPHONES[word]


def confident(confidence: str) -> bool:
    """Whether Twilio's Confidence is high enough to act on without reading it back."""
    try:
        return float(confidence) >= SPEECH_CONFIDENCE_THRESHOLD
    except ValueError:
        return False


def category_from_input(digits: str, speech: str) -> str | None:
    """An end user's problem area: "platform", "recording", "other", or None when unclear."""
    key = digits.strip().rstrip("#")
    if key:
        return CATEGORY_KEYS.get(key)
    words = speech.lower()
    named = {c for c in ("platform", "recording") if c[:6] in words}
    return named.pop() if len(named) == 1 else None


def phone_from_keys(digits: str) -> str | None:
    """The E.164 form of a number typed with its country code ("14155550101#", or with the
    international prefix 00), or None."""
    keys = digits.strip().rstrip("#")
    if not keys.isascii() or not keys.isdigit():
        return None
    return normalise_phone("+" + keys.removeprefix("00"))


def request_id_from_keys(digits: str) -> int | None:
    """The request id behind the digits of a request number ("000123#" or "123#")."""
    keys = digits.strip().rstrip("#")
    if not keys.isascii() or not keys.isdigit() or len(keys) > MAX_REQUEST_DIGITS:
        return None
    return int(keys) or None


def keys_only(digits: str) -> str:
    """What was typed, without the closing #."""
    return digits.strip().rstrip("#")
