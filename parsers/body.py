"""Parse a whole message for its readable text and a list of its attachments, never raising.

The compat32 parser builds the tree (it tolerates anything); the walk over it is iterative and
capped in parts and depth, each payload is decoded with its own charset, and the text/plain
part is preferred over text/html. A message too deeply nested for the parser still yields
the text of its first body, with a defect saying why.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from email.message import Message
from email.parser import BytesParser
from email.policy import Compat32

from parsers.charsets import decode_bytes
from parsers.encoded_words import decode_words
from parsers.fields import BOM
from parsers.filenames import safe_filename
from parsers.html_text import HTML_CAP, html_to_text

TEXT_CAP = 1_000_000
PARTS_CAP = 500
DEPTH_CAP = 20
DEFECTS_CAP = 50
BOUNDARY_LINES_CAP = 4 * PARTS_CAP  # lines starting "--" the tree builder gets to see
INTERNAL_ERROR = "internal parser error"  # the start of the defect when a bug was caught
TOO_DEEP = "nesting too deep to parse"
# Defects that say no part tree could be built: only the first body's raw text is known.
UNPARSED = (INTERNAL_ERROR, TOO_DEEP)


class _RawHeaderPolicy(Compat32):
    """compat32, but header values come back as parsed, raw 8-bit bytes kept as surrogates.

    compat32 would wrap such a value in a Header and turn its bytes into U+FFFD; kept, they
    can be decoded as UTF-8 (what a raw 8-bit filename almost always is).
    """

    def header_fetch_parse(self, name: str, value: str) -> str:
        return value


_RAW_HEADERS = _RawHeaderPolicy()
_MIME_TYPE = re.compile(r"[a-z0-9!#$&^_.+-]+/[a-z0-9!#$&^_.+-]+")


@dataclass(frozen=True)
class AttachmentInfo:
    """One attached file: its safe filename, its declared content type, its decoded size and
    its decoded bytes (an attached message: as written out again)."""

    filename: str
    content_type: str
    size: int
    data: bytes = field(default=b"", repr=False, compare=False)


@dataclass(frozen=True)
class ParsedBody:
    """The readable text of a message, where it came from, its attachments and parse defects;
    ``markup`` is the HTML the text was made from (capped, unsanitised), "" for plain text."""

    text: str
    html: bool
    attachments: tuple[AttachmentInfo, ...]
    defects: tuple[str, ...]
    markup: str = field(default="", repr=False, compare=False)


@dataclass(frozen=True)
class _Leaf:
    """A part met on the walk: a single part, or (``message``) an attached message as a whole.

    ``nested`` marks what lies inside an attached message: its text is a fallback for the body,
    and its parts are not attachments of their own (the message is one).
    """

    part: Message
    nested: bool
    message: bool = False


def parse_body(raw: bytes) -> ParsedBody:
    """The text, attachments and defects of ``raw``; any bytes give a result."""
    source, cut = _within_boundary_cap(raw.removeprefix(BOM))
    try:
        parsed = _read_tree(BytesParser(policy=_RAW_HEADERS).parsebytes(source))
    except RecursionError:  # the email parser recurses once per level of nesting
        return _unparsed(raw, TOO_DEEP)
    except Exception as error:  # a bug must not lose the message; the tests look for this
        return _unparsed(raw, f"{INTERNAL_ERROR}: {type(error).__name__}")
    if not cut:
        return parsed
    note = f"more than {BOUNDARY_LINES_CAP} boundary lines; the rest were not read"
    return replace(parsed, defects=_capped([*parsed.defects, note]))


def _within_boundary_cap(raw: bytes) -> tuple[bytes, bool]:
    """``raw`` cut before its ``BOUNDARY_LINES_CAP``-th line starting with "--", so that a
    message of a million tiny parts costs no more to parse than one of a few thousand."""
    if raw.count(b"\n--") <= BOUNDARY_LINES_CAP:
        return raw, False
    at = -1
    for _ in range(BOUNDARY_LINES_CAP):
        at = raw.find(b"\n--", at + 1)
    return raw[: at + 1], True


def _read_tree(message: Message) -> ParsedBody:
    defects: list[str] = []
    leaves = list(_walk(message, defects))
    text, html, used = _choose_text(leaves)
    attachments = tuple(_attachment(leaf) for leaf in leaves if _is_attachment(leaf, used))
    markup = _part_text(used[0])[:HTML_CAP] if html else ""
    return ParsedBody(text, html, attachments, _capped(defects), markup)


def _walk(message: Message, defects: list[str]) -> Iterator[_Leaf]:
    """Every part, depth first, within the part and depth caps."""
    stack: list[tuple[Message, int, bool]] = [(message, 0, False)]
    seen = 0
    while stack:
        part, depth, nested = stack.pop()
        seen += 1
        if seen > PARTS_CAP:
            defects.append(f"more than {PARTS_CAP} parts; the rest were not read")
            return
        defects.extend(type(defect).__name__ for defect in part.defects)
        children = _children(part)
        if children is None:
            yield _Leaf(part, nested)
            continue
        attached = part.get_content_maintype() == "message"
        if attached and depth > 0:
            yield _Leaf(part, nested, message=True)
        if depth >= DEPTH_CAP:
            defects.append(f"nested deeper than {DEPTH_CAP} levels; the rest were not read")
            continue
        stack.extend((child, depth + 1, nested or attached) for child in reversed(children))


def _children(part: Message) -> list[Message] | None:
    """The parts inside ``part``; None for a single part (a DSN's fields count as one)."""
    if part.get_content_type() == "message/delivery-status" or not part.is_multipart():
        return None
    payload = part.get_payload()  # a list, returned as it is, never decoded
    return [child for child in payload if isinstance(child, Message)]


def _choose_text(leaves: list[_Leaf]) -> tuple[str, bool, list[Message]]:
    """The body text: the author's own text/plain, else HTML, else what attached mail holds.

    A blank text/plain part (mailers send one beside the real HTML) does not count.
    """
    blank: list[Message] = []
    for nested in (False, True):
        for subtype in ("plain", "html"):
            parts = [leaf.part for leaf in leaves if _is_body(leaf, nested, subtype)]
            html = subtype == "html"
            used = parts[:1] if html else parts
            text = _join(parts, html) if parts else ""
            if text.strip():
                return text, html, used + blank
            blank += used
    return "", False, blank


def _is_body(leaf: _Leaf, nested: bool, subtype: str) -> bool:
    part = leaf.part
    if leaf.nested != nested or part.get_content_type() != f"text/{subtype}":
        return False
    return not _declared_attachment(part)


def _join(parts: list[Message], html: bool) -> str:
    if html:
        return html_to_text(_part_text(parts[0]))[:TEXT_CAP]
    return "\n".join(_part_text(part).strip("\n") for part in parts)[:TEXT_CAP]


def _part_text(part: Message) -> str:
    """The decoded text of a part, with LF line endings."""
    text = decode_bytes(_payload_bytes(part), _charset(part))
    return text.replace("\r\n", "\n").replace("\r", "\n") if "\r" in text else text


def _payload_bytes(part: Message) -> bytes:
    try:
        data = part.get_payload(decode=True)
    except Exception:  # a broken transfer encoding is read as it stands
        data = None
    if isinstance(data, bytes):
        return data
    try:
        payload = part.get_payload()
    except Exception:  # it decodes 8-bit text with the declared charset, which may fail
        return b""
    return payload.encode("utf-8", "surrogateescape") if isinstance(payload, str) else b""


def _charset(part: Message) -> str | None:
    try:
        return part.get_content_charset()
    except Exception:  # odd RFC 2231 parameters mean "unknown charset"
        return None


def _declared_attachment(part: Message) -> bool:
    disposition = str(part.get("content-disposition", "")).split(";", 1)[0].strip().lower()
    return disposition == "attachment" or _raw_filename(part) is not None


def _is_attachment(leaf: _Leaf, used: list[Message]) -> bool:
    part = leaf.part
    if leaf.message:
        return not leaf.nested
    if leaf.nested or any(part is chosen for chosen in used):
        return False
    if part.get_content_maintype() == "text" and not _declared_attachment(part):
        return part.get_content_subtype() not in ("plain", "html")
    return True


def _attachment(leaf: _Leaf) -> AttachmentInfo:
    part = leaf.part
    name = _raw_filename(part)
    data = _message_bytes(part) if leaf.message else _payload_bytes(part)
    return AttachmentInfo(
        filename=safe_filename(decode_words(name) if name else None),
        content_type=_content_type(part),
        size=len(data),
        data=data,
    )


def _content_type(part: Message) -> str:
    """The part's type/subtype, lower-case, one token (a broken header is octet-stream)."""
    found = _MIME_TYPE.match(part.get_content_type())
    return found.group(0) if found else "application/octet-stream"


def _message_bytes(part: Message) -> bytes:
    """An attached message as written out again (with LF line endings)."""
    try:
        return b"".join(child.as_bytes() for child in _children(part) or ())
    except Exception:  # a message that cannot be written out has no bytes
        return b""


def _raw_filename(part: Message) -> str | None:
    try:
        name = part.get_filename()
    except Exception:  # an unreadable name is no name
        return None
    return _unescape(name) if isinstance(name, str) and name.strip() else None


def _unescape(text: str) -> str:
    """Header text whose raw 8-bit bytes compat32 kept as surrogates, decoded (UTF-8 first)."""
    if text.isascii() or not any("\udc80" <= ch <= "\udcff" for ch in text):
        return text
    return decode_bytes(text.encode("utf-8", "surrogateescape"), None)


def _unparsed(raw: bytes, why: str) -> ParsedBody:
    """The first body, as text, of a message the parser could not build a tree for."""
    _, _, rest = raw.replace(b"\r\n", b"\n").partition(b"\n\n")
    text = decode_bytes(rest[: TEXT_CAP * 4], None)[:TEXT_CAP]
    return ParsedBody(text=text, html=False, attachments=(), defects=(why,))


def _capped(defects: list[str]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(defects))[:DEFECTS_CAP]
