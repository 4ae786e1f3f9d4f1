"""Turn bytes in a declared charset into text without ever raising.

Mail declares charsets that Python does not know (``x-bogus``, ``unknown-8bit``), ones that are
lies (``us-ascii`` over UTF-8) and codec names that are not text encodings at all (``base64``).
Each falls back to UTF-8 with replacement characters.
"""

from __future__ import annotations

import codecs
from functools import lru_cache

from parsers.iso2022jp import decode_iso2022_jp

FALLBACK = "utf-8"
_NOT_FOR_MAIL = frozenset(
    {"idna", "punycode", "unicode_escape", "raw_unicode_escape", "undefined", "mbcs", "oem"}
)
_ASCII = frozenset({"ascii", "us-ascii", "us_ascii", "ansi_x3.4-1968", "646"})
# Labels that say nothing about the bytes: "" (none given), US-ASCII (often a lie), raw 8-bit.
_UNDECLARED = _ASCII | {"", "unknown-8bit", "x-unknown", "unknown", "8bit", "x-user-defined"}
# Labels mail uses that Python does not know, by what they mean.
_ALIASES = {"windows-874": "cp874", "x-sjis": "cp932", "x-euc-jp": "euc_jp", "x-gbk": "gbk"}
# As in browsers (WHATWG Encoding): decode a label with the superset its senders really use.
_SUPERSETS = {
    "iso8859-1": "cp1252",
    "iso8859-9": "cp1254",
    "iso8859-11": "cp874",
    "tis-620": "cp874",
    "euc_kr": "cp949",
    "gb2312": "gb18030",
    "gbk": "gb18030",
    "shift_jis": "cp932",
}


@lru_cache(maxsize=256)
def codec_name(charset: str | None) -> str:
    """The Python codec for a MIME charset label; ``FALLBACK`` when there is no usable one."""
    label = _label(charset)
    if not label or len(label) > 64 or label in _ASCII:
        return FALLBACK
    try:
        info = codecs.lookup(label)
    except (LookupError, ValueError):
        return FALLBACK
    if not info._is_text_encoding or info.name in _NOT_FOR_MAIL:
        return FALLBACK
    return _SUPERSETS.get(info.name, info.name)


def _label(charset: str | None) -> str:
    """A charset label cleaned up: no quotes or RFC 2231 language, known aliases resolved."""
    label = (charset or "").strip().strip("\"'").split("*", 1)[0].strip().lower()
    label = _ALIASES.get(label, label)
    if label.startswith("iso-8859-") and label[-2:] in ("-i", "-e"):  # bidi ordering variants
        label = label[:-2]
    if label.startswith("x-mac-"):
        label = "mac-" + label[len("x-mac-") :]
    return label


def decode_bytes(data: bytes, charset: str | None) -> str:
    """``data`` decoded as ``charset``; undecodable bytes become U+FFFD, never an exception.

    Without a charset (or with "us-ascii" over 8-bit bytes, or "unknown-8bit") the bytes are
    taken as UTF-8 when they are valid UTF-8, else as Windows-1252; an unknown charset is
    decoded as UTF-8 with replacement characters.
    """
    if _label(charset) in _UNDECLARED:
        return data.decode("ascii") if data.isascii() else _utf8_or_cp1252(data)
    codec = codec_name(charset)
    if codec == "iso2022_jp":  # with the Windows extensions Japanese mail uses
        return decode_iso2022_jp(data)
    try:
        return data.decode(codec, "replace")
    except (LookupError, UnicodeError, ValueError, TypeError):
        return data.decode(FALLBACK, "replace")


def _utf8_or_cp1252(data: bytes) -> str:
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return data.decode("cp1252", "replace")
