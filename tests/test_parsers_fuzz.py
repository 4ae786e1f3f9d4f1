"""Property tests: generated MIME structures and random bytes never make the parsers raise.

Messages are built with ``email.message.EmailMessage`` from strategies (nested multiparts and
attached messages, charsets from a list that includes bogus and dangerous labels, header values
with non-ASCII text and encoded words), serialised, and optionally mangled byte by byte.
"""

from __future__ import annotations

import base64
import os
import quopri
from email.message import EmailMessage, Message
from email.policy import compat32

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from parsers import (
    content_digest,
    end_user_category,
    parse_body,
    read_headers,
    request_numbers_in,
    severity_from_body,
    severity_from_subject,
)
from parsers.body import INTERNAL_ERROR

# The email package (serialising the generated messages) warns when a header names the
# unicode_escape codec; that is the strategies' doing, not the parsers'.
pytestmark = pytest.mark.filterwarnings("ignore:invalid escape sequence:DeprecationWarning")

CHARSETS = [
    "utf-8",
    "us-ascii",
    "iso-8859-1",
    "windows-1252",
    "koi8-r",
    "shift_jis",
    "iso-2022-jp",
    "euc-kr",
    "gb2312",
    "utf-16",
    "utf-7",
    "x-bogus",
    "unknown-8bit",
    "",
    "base64",
    "rot13",
    "zlib",
    "idna",
    "unicode_escape",
    "utf-8*en",
    '"utf-8"',
    "\u00e9",
    "iso-8859-8-i",
]
SUBTYPES = ["plain", "html", "enriched", "rfc822-headers"]
REASONS = (None, "auto_submitted", "list_mail", "bounce")

# PARSERS_FUZZ_EXAMPLES=5000 for a long run; the default keeps the suite quick.
EXAMPLES = int(os.environ.get("PARSERS_FUZZ_EXAMPLES", "150"))
FUZZ = settings(
    max_examples=EXAMPLES,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)

header_text = st.text(
    alphabet=st.characters(exclude_categories=["Cs"], exclude_characters="\r\n"),
    max_size=120,
)


@st.composite
def encoded_word(draw: st.DrawFn) -> str:
    charset = draw(st.sampled_from(CHARSETS)) or "utf-8"
    data = draw(st.binary(max_size=40))
    if draw(st.booleans()):
        return f"=?{charset}?B?{base64.b64encode(data).decode('ascii')}?="
    return f"=?{charset}?Q?{quopri.encodestring(data, header=True).decode('ascii')}?="


header_value = st.one_of(
    header_text,
    st.lists(st.one_of(header_text, encoded_word()), max_size=5).map(" ".join),
    st.sampled_from(["<>", "MAILER-DAEMON", "<[abc]@microsoft.com>", "a@b, c@d", '"x" <y@z>']),
)
header_name = st.sampled_from(
    [
        "Subject",
        "From",
        "Message-ID",
        "In-Reply-To",
        "References",
        "Date",
        "Return-Path",
        "Auto-Submitted",
        "Precedence",
        "List-Id",
        "X-Auto-Response-Suppress",
        "Content-Type",
        "Content-Disposition",
        "X-Custom",
    ]
)


def set_header(message: Message, name: str, value: str) -> None:
    """Set a header raw, as a parsed message would hold it, so that any value is accepted."""
    message.set_raw(name, value)


@st.composite
def leaf_part(draw: st.DrawFn) -> EmailMessage:
    part = EmailMessage()
    charset = draw(st.sampled_from(CHARSETS))
    subtype = draw(st.sampled_from(SUBTYPES))
    maintype = draw(st.sampled_from(["text", "text", "application", "image"]))
    params = f"; charset={charset}" if charset else ""
    set_header(part, "Content-Type", f"{maintype}/{subtype}{params}")
    if draw(st.booleans()):
        name = draw(header_text)
        set_header(part, "Content-Disposition", f'attachment; filename="{name}"')
    payload = draw(st.one_of(st.binary(max_size=300), header_text.map(str.encode)))
    encoding = draw(st.sampled_from(["base64", "quoted-printable", "7bit", "x-bogus"]))
    set_header(part, "Content-Transfer-Encoding", encoding)
    if encoding == "base64":
        part.set_payload(base64.encodebytes(payload).decode("ascii"))
    elif encoding == "quoted-printable":
        part.set_payload(quopri.encodestring(payload).decode("ascii"))
    else:  # raw 8-bit bytes, kept as surrogates the way a parsed message holds them
        part.set_payload(payload.decode("ascii", "surrogateescape"))
    return part


def container(children: list[Message], kind: str, boundary: str) -> Message:
    part = EmailMessage()
    if kind == "rfc822":
        set_header(part, "Content-Type", "message/rfc822")
        children = children[:1]
    else:
        set_header(part, "Content-Type", f'multipart/{kind}; boundary="{boundary}"')
    part.set_payload(list[Message | str](children))
    return part


parts = st.recursive(
    leaf_part(),
    lambda inner: st.builds(
        container,
        st.lists(inner, min_size=1, max_size=4),
        st.sampled_from(["mixed", "alternative", "related", "report", "rfc822"]),
        st.text(
            alphabet="abcdefghijklmnopqrstuvwxyz0123456789'()+_,-./:=?", min_size=1, max_size=30
        ),
    ),
    max_leaves=12,
)


@st.composite
def generated_message(draw: st.DrawFn) -> bytes:
    message = draw(parts)
    for name, value in draw(st.lists(st.tuples(header_name, header_value), max_size=8)):
        set_header(message, name, value)
    if draw(st.booleans()):
        return by_hand(message)  # header values as they are: raw UTF-8, stray encoded words
    return serialise(message)


def serialise(message: Message) -> bytes:
    """The message as the email package writes it (policy.default, else compat32), or by hand
    when the generator refuses what the strategies built."""
    for policy in (message.policy, compat32):
        try:
            return message.as_bytes(policy=policy)
        except (UnicodeError, ValueError, LookupError, TypeError, AttributeError):
            continue
    return by_hand(message)


def by_hand(message: Message) -> bytes:
    head = "".join(f"{name}: {value}\r\n" for name, value in message.raw_items())
    # get_payload() would decode 8-bit text with the declared charset, which may raise
    payload = vars(message).get("_payload", "")
    if isinstance(payload, list):
        children = [part for part in payload if isinstance(part, Message)]
        if message.get_content_type() == "message/rfc822":
            body = by_hand(children[0])
        else:
            marker = f"--{message.get_boundary() or 'b'}".encode()
            body = b"".join(marker + b"\r\n" + by_hand(part) + b"\r\n" for part in children)
            body += marker + b"--\r\n"
    else:
        body = str(payload).encode("utf-8", "surrogateescape")
    return head.encode("utf-8", "surrogateescape") + b"\r\n" + body


@st.composite
def mangled(draw: st.DrawFn, raw: bytes) -> bytes:
    """``raw`` with a few random cuts, insertions and byte flips."""
    data = bytearray(raw)
    for _ in range(draw(st.integers(0, 5))):
        if not data:
            break
        at = draw(st.integers(0, len(data) - 1))
        action = draw(st.sampled_from(["flip", "insert", "cut"]))
        if action == "flip":
            data[at] = draw(st.integers(0, 255))
        elif action == "insert":
            data[at:at] = draw(st.binary(min_size=1, max_size=20))
        else:
            del data[at : at + draw(st.integers(1, 50))]
    return bytes(data)


messages = st.one_of(
    generated_message(),
    generated_message().flatmap(mangled),
    st.binary(max_size=2000),
    st.lists(st.tuples(header_name, st.binary(max_size=80)), max_size=10).map(
        lambda fields: (
            b"".join(name.encode() + b": " + value + b"\r\n" for name, value in fields)
            + b"\r\nbody"
        )
    ),
)


def check_everything(raw: bytes) -> None:
    summary = read_headers(raw)
    assert len(summary.subject) <= 998
    assert "\n" not in summary.subject
    assert "\r" not in summary.subject
    assert summary.automatic in REASONS
    assert summary.from_address == summary.from_address.lower()
    assert summary.from_count >= (1 if summary.from_address else 0)
    assert all(i.startswith("<") and i.endswith(">") for i in summary.references)
    assert len(content_digest(raw)) == 64
    body = parse_body(raw)
    assert not [d for d in body.defects if d.startswith(INTERNAL_ERROR)]  # no caught bug either
    assert len(body.text) <= 1_000_000
    for attachment in body.attachments:
        assert attachment.filename
        assert len(attachment.filename) <= 200
        assert not set("/\\\x00\u202e") & set(attachment.filename)
        assert attachment.size >= 0


@FUZZ
@given(messages)
def test_parsers_never_raise(raw: bytes) -> None:
    check_everything(raw)


@FUZZ
@given(generated_message())
def test_digest_ignores_line_endings_and_relay_trace(raw: bytes) -> None:
    lf = raw.replace(b"\r\n", b"\n")
    if b"\r" in lf:
        return
    relayed = b"Received: from relay.example.net\r\n\tby mx.example.com; today\r\n" + raw
    assert content_digest(lf) == content_digest(lf.replace(b"\n", b"\r\n"))
    assert content_digest(relayed) == content_digest(raw)


@settings(max_examples=200, deadline=None, database=None)
@given(st.text(max_size=300))
def test_marker_functions_accept_any_text(text: str) -> None:
    assert severity_from_subject(text) in (None, 1, 2, 3, 4)
    assert severity_from_body(text) in (None, 1, 2, 3, 4)
    assert end_user_category(text) in (None, "platform", "recording")
    assert all(n.startswith("SR-") and n[3:].isdigit() for n in request_numbers_in(text))
