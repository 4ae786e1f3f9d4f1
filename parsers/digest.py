"""Fingerprint a message so that the same message relayed again gets the same fingerprint.

Trace fields that each hop puts on top (Received, Return-Path, Delivered-To, ...) are left out,
as are an mbox envelope line and the line-ending convention: CRLF, bare CR and LF hash alike,
and so do trailing blank lines.
"""

from __future__ import annotations

import hashlib
import re

# fmt: off
TRACE_FIELDS = frozenset({
    # the four every hop may add, then those the receiving side adds and the author never does
    "received", "return-path", "delivered-to", "x-original-to",
    "x-received", "received-spf", "authentication-results",
    "arc-seal", "arc-message-signature", "arc-authentication-results",
})
# fmt: on
_FIELD_START = re.compile(rb"([\x21-\x39\x3b-\x7e]+)[ \t]*:")


def content_digest(raw: bytes) -> str:
    """Hex SHA-256 of ``raw`` without leading trace fields, with line endings normalised."""
    text = raw.replace(b"\r\n", b"\n").replace(b"\r", b"\n")
    text = text[_end_of_trace(text) :].rstrip(b"\n") + b"\n"
    return hashlib.sha256(text).hexdigest()


def _end_of_trace(text: bytes) -> int:
    """Where the first field that is not a trace field starts."""
    pos = _line_end(text, 0) if text.startswith(b"From ") else 0
    while pos < len(text):
        match = _FIELD_START.match(text, pos)
        if not match or match.group(1).decode("ascii").lower() not in TRACE_FIELDS:
            return pos
        pos = _line_end(text, pos)
        while text[pos : pos + 1] in (b" ", b"\t"):  # continuation lines of the same field
            pos = _line_end(text, pos)
    return pos


def _line_end(text: bytes, pos: int) -> int:
    end = text.find(b"\n", pos)
    return len(text) if end < 0 else end + 1
