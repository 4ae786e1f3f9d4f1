"""Everything the worker keeps of a message: its text, its HTML sanitised, its attachments;
or a typed error when no part tree could be built for it (the caller quarantines it)."""

from __future__ import annotations

import re
from dataclasses import dataclass

from parsers.body import UNPARSED, AttachmentInfo, parse_body
from parsers.html_clean import sanitise_html

# NUL and lone surrogates (which a hostile charset such as UTF-7 can produce): neither
# PostgreSQL's text nor SQLite's driver will store them.
_SURROGATE = re.compile("[\ud800-\udfff]")


class UnparseableMessage(ValueError):
    """No part tree could be built for a message; the argument says why."""


@dataclass(frozen=True)
class MessageContent:
    text: str  # the readable text (HTML turned into text), storable
    html: str  # the HTML it was made from, sanitised; "" for a plain-text message
    attachments: tuple[AttachmentInfo, ...]
    defects: tuple[str, ...]


def read_message(raw: bytes, *, strict: bool = True) -> MessageContent:
    """The content of ``raw``. With ``strict``, a message the parser could not build a tree
    for raises :class:`UnparseableMessage`; without, its first body's raw text is the text."""
    body = parse_body(raw)
    failure = next((d for d in body.defects if d.startswith(UNPARSED)), None)
    if strict and failure is not None:
        raise UnparseableMessage(failure)
    html = sanitise_html(body.markup) if body.html else ""
    return MessageContent(clean_text(body.text), clean_text(html), body.attachments, body.defects)


def clean_text(text: str) -> str:
    """``text`` without NUL characters, lone surrogates replaced: storable in any database."""
    if "\x00" in text:
        text = text.replace("\x00", "")
    return _SURROGATE.sub("\ufffd", text)
