"""Decode ISO-2022-JP as Japanese mail clients write it: with the NEC and IBM extensions of
Windows (circled digits, "№", roman numerals), which Python's own codecs refuse.

As browsers do (WHATWG Encoding), the two-byte JIS X 0208 codes are read with Windows' table:
each is turned into its Shift_JIS bytes and decoded as CP932.
"""

from __future__ import annotations

import re

_ESCAPES = re.compile(rb"(\x1b\(B|\x1b\(J|\x1b\$@|\x1b\$B|\x1b\(I)")
_TWO_BYTE, _KATAKANA = (b"\x1b$@", b"\x1b$B"), b"\x1b(I"


def decode_iso2022_jp(data: bytes) -> str:
    """``data`` as text; Python's codec first, the CP932 reading when it refuses."""
    try:
        return data.decode("iso2022_jp")
    except UnicodeDecodeError:
        return _as_shift_jis(data).decode("cp932", "replace")


def _as_shift_jis(data: bytes) -> bytes:
    out = bytearray()
    mode = b""
    for chunk in _ESCAPES.split(data):
        if _ESCAPES.fullmatch(chunk):
            mode = chunk
        elif mode in _TWO_BYTE:
            out += _jis_pairs(chunk)
        elif mode == _KATAKANA:
            out += bytes(b + 0x80 if 0x21 <= b <= 0x5F else b for b in chunk)
        else:
            out += chunk
    return bytes(out)


def _jis_pairs(chunk: bytes) -> bytes:
    """JIS X 0208 pairs as Shift_JIS; anything else (a line end the sender left in the
    two-byte mode) as it is."""
    out = bytearray()
    at = 0
    while at < len(chunk):
        first, second = chunk[at], chunk[at + 1] if at + 1 < len(chunk) else 0
        if 0x21 <= first <= 0x7E and 0x21 <= second <= 0x7E:
            out += _shift_jis(first, second)
            at += 2
        else:
            out.append(first)
            at += 1
    return bytes(out)


def _shift_jis(first: int, second: int) -> bytes:
    """The Shift_JIS bytes of the JIS X 0208 code (first, second): JIS rows pair up in one
    Shift_JIS lead byte, odd rows in its lower trail bytes (which skip 0x7F), even in its upper."""
    lead = (first + 1) // 2 + (0x70 if first <= 0x5E else 0xB0)
    odd_row_trail = second + (0x1F if second <= 0x5F else 0x20)
    return bytes((lead, odd_row_trail if first % 2 else second + 0x7E))
