"""Find the request numbers a reply refers to: "[SR-000123]" in its subject, and the signed
tokens of the mail we send (``<sr-000123.ack.<tag>@domain>`` Message-IDs, and reply addresses
``support+sr-000123.<tag>@domain``). Whether a tag is genuine is for the caller to check: the
parsers know no secret."""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

# The header every message the gateway sends carries: mail that has it came from a gateway.
LOOP_HEADER = "X-Intake-Loop"
TOKENS_CAP = 20  # signed tokens kept from one message; a real reply carries one or two

_NUMBER = re.compile(r"\[\s*(SR-[0-9]{6,})\s*\]", re.IGNORECASE)
_SIGNED_ID = re.compile(r"<sr-([0-9]{6,18})\.ack\.([0-9a-f]{16})@", re.IGNORECASE)
_REPLY_ADDRESS = re.compile(r"\+sr-([0-9]{6,18})\.([0-9a-f]{16})@", re.IGNORECASE)


@dataclass(frozen=True)
class SignedToken:
    """A request number as our mail carries it, with the HMAC tag that came with it."""

    number: str  # "SR-000123"
    tag: str  # 16 lower-case hex digits


def request_numbers_in(subject: str) -> tuple[str, ...]:
    """The bracketed request numbers in ``subject``, upper-cased, in order, without repeats."""
    found = (match.group(1).upper() for match in _NUMBER.finditer(subject))
    return tuple(dict.fromkeys(found))


def signed_ids_in(message_ids: Iterable[str]) -> tuple[SignedToken, ...]:
    """The tokens of our acknowledgments' Message-IDs among ``message_ids`` (In-Reply-To,
    References), in order, without repeats."""
    return _tokens(_SIGNED_ID.match(value) for value in message_ids)


def reply_tokens_in(addresses: str) -> tuple[SignedToken, ...]:
    """The tokens of our reply addresses (``local+sr-000123.<tag>@``) in a text of addresses."""
    return _tokens(_REPLY_ADDRESS.finditer(addresses))


def _tokens(matches: Iterable[re.Match[str] | None]) -> tuple[SignedToken, ...]:
    found: dict[SignedToken, None] = {}
    for match in matches:
        if match is not None:
            found.setdefault(SignedToken(f"SR-{match.group(1)}", match.group(2).lower()), None)
            if len(found) >= TOKENS_CAP:
                break
    return tuple(found)
