"""Split the raw header block of a message into unfolded fields, cheaply and within a size cap.

This is the hot path of the SMTP handler, so it does not build an ``email.message.Message``:
it finds the end of the header block with ``bytes.find``, the start of each field with one
regular expression, and decodes only the values that are asked for.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from parsers.charsets import decode_bytes

HEADER_CAP = 256 * 1024  # header bytes looked at; anything beyond is ignored
BOM = b"\xef\xbb\xbf"
_LEADING_CAP = 4096  # blank bytes skipped before the first header
_FIELD_START = re.compile(rb"^([\x21-\x39\x3b-\x7e]+)[ \t]*:", re.MULTILINE)
_BODY_LINE = re.compile(rb"\n(?=[^ \t\n])")
_CHARSET = re.compile(rb"charset\s*=\s*[\"']?([A-Za-z0-9_.:-]{1,40})", re.IGNORECASE)


def header_block(raw: bytes) -> bytes:
    """The bytes before the first blank line, at most ``HEADER_CAP``, with LF line endings."""
    block = _before_blank_line(raw[:HEADER_CAP])
    if b"\r" in block:
        block = _before_blank_line(block.replace(b"\r\n", b"\n").replace(b"\r", b"\n"))
    return block


def _before_blank_line(head: bytes) -> bytes:
    ends = [i for i in (head.find(b"\n\n"), head.find(b"\n\r\n")) if i >= 0]
    return head[: min(ends) + 1] if ends else head


def value_text(value: bytes, charset: str | None = None) -> str:
    """A raw header value as text: ASCII or UTF-8 as such, other 8-bit bytes in ``charset``.

    Old Japanese mail puts unencoded ISO-2022-JP (7-bit, with escape sequences) in headers.
    """
    if value.isascii():
        return decode_bytes(value, "iso-2022-jp") if b"\x1b" in value else value.decode("ascii")
    try:
        return value.decode("utf-8")
    except UnicodeDecodeError:
        return decode_bytes(value, charset)


def collapse(text: str) -> str:
    """Unfolded text with every run of whitespace turned into one space."""
    return " ".join(text.split())


@dataclass(frozen=True)
class HeaderFields:
    """The fields of one header block, by lower-case name, values unfolded but undecoded."""

    values: dict[str, list[bytes]]
    charset: str | None = None  # for raw 8-bit bytes that are not UTF-8

    def all(self, name: str) -> list[str]:
        return [value_text(v, self.charset) for v in self.values.get(name, ())]

    def first(self, name: str) -> str:
        found = self.values.get(name)
        return value_text(found[0], self.charset).strip() if found else ""

    def has(self, name: str) -> bool:
        return name in self.values

    def count(self, name: str) -> int:
        return len(self.values.get(name, ()))


def split_fields(block: bytes) -> HeaderFields:
    """Fields of a header block with LF line endings, unfolded, values still bytes.

    A line that is neither a field nor indented, with more fields after it, is taken as a
    continuation whose indentation a broken relay lost; after the last field such a line
    starts the body (a message without the blank line), as in compat32.
    """
    starts = list(_FIELD_START.finditer(block))
    ends = [following.start() for following in starts[1:]]
    if starts:
        body = _BODY_LINE.search(block, starts[-1].end())
        ends.append(body.start() if body else len(block))
    values: dict[str, list[bytes]] = {}
    for match, end in zip(starts, ends, strict=True):
        value = block[match.end() : end]
        key = match.group(1).decode("ascii").lower()
        values.setdefault(key, []).append(_unfold(value))
    return HeaderFields(values, _declared_charset(values))


def _unfold(value: bytes) -> bytes:
    value = value.rstrip(b"\n")
    return value.replace(b"\n", b" ") if b"\n" in value else value


def _declared_charset(values: dict[str, list[bytes]]) -> str | None:
    """The charset of the top-level Content-Type: the best guess for raw 8-bit header bytes."""
    found = _CHARSET.search(b"".join(values.get("content-type", [])[:1]))
    return found.group(1).decode("ascii") if found else None


def read_fields(raw: bytes) -> HeaderFields:
    """The header fields of a raw message (a UTF-8 byte order mark before them is ignored)."""
    return split_fields(header_block(skip_leading_blank_lines(raw.removeprefix(BOM))))


def skip_leading_blank_lines(raw: bytes) -> bytes:
    """``raw`` without blank lines before its first header (seen in mail saved by hand)."""
    start = 0
    while start < _LEADING_CAP:
        end = raw.find(b"\n", start, _LEADING_CAP)
        if end < 0 or raw[start:end].strip():
            break
        start = end + 1
    return raw[start:]
