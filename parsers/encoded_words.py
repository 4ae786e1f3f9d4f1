"""Decode RFC 2047 encoded words (``=?charset?Q?...?=``) in header text, leniently.

Adjacent encoded words in one charset are joined before decoding, so a multi-byte character
split across two words still comes out whole; the white space between encoded words is dropped;
a word that does not decode is kept as it was written.
"""

from __future__ import annotations

import binascii
import re

from parsers.charsets import decode_bytes

# The encoded text may hold stray spaces (broken mailers) but never "?", which keeps this linear.
_WORD = re.compile(r"=\?([^?\s]{1,80})\?([QqBb])\?([^?]*)\?=")

_Piece = tuple[str | None, bytes | str]  # (charset, bytes) for a decoded word, (None, text)


def decode_words(value: str) -> str:
    """``value`` with its encoded words decoded; plain text passes through unchanged."""
    if "=?" not in value:
        return value
    pieces: list[_Piece] = []
    pos = 0
    for match in _WORD.finditer(value):
        _add_text(pieces, value[pos : match.start()], before_word=True)
        _add_word(pieces, match)
        pos = match.end()
    _add_text(pieces, value[pos:], before_word=False)
    return "".join(_render(piece) for piece in pieces)


def _add_text(pieces: list[_Piece], text: str, *, before_word: bool) -> None:
    between_words = before_word and bool(pieces) and pieces[-1][0] is not None
    if text and not (between_words and text.isspace()):
        pieces.append((None, text))


def _add_word(pieces: list[_Piece], match: re.Match[str]) -> None:
    data = _payload(match.group(2), match.group(3))
    if data is None:
        pieces.append((None, match.group(0)))
        return
    charset = match.group(1).lower()
    last = pieces[-1] if pieces else None
    if last is not None and last[0] == charset and isinstance(last[1], bytes):
        pieces[-1] = (charset, last[1] + data)
    else:
        pieces.append((charset, data))


def _payload(encoding: str, text: str) -> bytes | None:
    raw = text.encode("utf-8")
    try:
        if encoding in "Qq":
            return binascii.a2b_qp(raw, header=True)
        raw = b"".join(raw.split())
        return binascii.a2b_base64(raw + b"=" * (-len(raw) % 4))
    except (binascii.Error, ValueError):
        return None


def _render(piece: _Piece) -> str:
    charset, data = piece
    if isinstance(data, str):
        return data
    return decode_bytes(data, charset)
