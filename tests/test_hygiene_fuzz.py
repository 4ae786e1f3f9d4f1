"""Property tests for what this issue added: on generated MIME structures, header values and
charsets (the strategies of test_parsers_fuzz), mangled bytes and random text, each function
returns a result or its own typed error, never another exception; the door's whole header path
(inbound_from_mail) too. ``bench/fuzz_parsers.py`` runs the same properties for longer."""

from __future__ import annotations

import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from intake.mail.message import OwnMail, inbound_from_mail
from intake.outbox.links import verified_numbers
from parsers import (
    MessageContent,
    UnparseableMessage,
    read_delivery_report,
    read_message,
    reply_tokens_in,
    sanitise_html,
    signed_ids_in,
    strip_reply,
)
from tests.test_parsers_fuzz import FUZZ, messages

pytestmark = pytest.mark.filterwarnings("ignore:invalid escape sequence:DeprecationWarning")

OWN = OwnMail("fuzz-key", frozenset({"support@intake.localhost"}))
_EVENT_HANDLER = re.compile(r"<[^>]*\son\w+\s*=", re.IGNORECASE)
_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")
_ACTIVE_URL = re.compile(
    r"""<[^>]*\s(href|src)\s*=\s*["']?\s*javascript:|<img[^>]*\ssrc=["']?https?:""", re.I
)
markup = st.one_of(
    st.text(max_size=400),
    st.lists(
        st.sampled_from(
            [
                "<script>x()</script>", "<img src=http://t.example/p onerror=x()>",
                '<a href="javascript:x()">a</a>', "<p onclick=x>", "</p>", "<b>", "<!--",
                "<style>", "<iframe src=x>", '<img src="cid:a">', "<svg onload=x>", "&lt;",
                "<a href=JaVaScRiPt:x>", "<math><mi xlink:href=javascript:x>", "text ",
            ]
        ),
        max_size=20,
    ).map("".join),
)  # fmt: skip
quoted_text = st.lists(
    st.sampled_from(
        ["Hello,", "> quoted", "On Mon, Ada <a@b.c> wrote:", "-- ", "Sent from my iPhone",
         "-----Original Message-----", "From: x", "- item", "", "Am 1.2.2026 schrieb X:", "text"]
    ),
    max_size=30,
).map("\n".join)  # fmt: skip


def check_read_message(raw: bytes) -> None:
    """A result or UnparseableMessage; the result storable, its HTML sanitised."""
    try:
        content = read_message(raw)
    except UnparseableMessage:
        content = read_message(raw, strict=False)  # what a release from the quarantine reads
    assert isinstance(content, MessageContent)
    assert not _UNSTORABLE.search(content.text + content.html)
    assert "<script" not in content.html.lower() and not _EVENT_HANDLER.search(content.html)
    assert all(a.size == len(a.data) for a in content.attachments)


def check_door(raw: bytes) -> None:
    """What the SMTP door computes for any bytes, with our key and addresses."""
    message = inbound_from_mail(raw, recipients=("support@intake.localhost",), own=OWN)
    assert message.automatic in (None, "auto_submitted", "list_mail", "bounce", "loop")
    assert all(n.startswith("SR-") for n in message.request_numbers)
    report = read_delivery_report(raw)
    assert all(r.address == r.address.lower() for r in report.recipients)


def check_sanitised(html: str) -> None:
    """No script, frame or handler; no javascript: URL and no remote image in any attribute
    (in the text, "javascript:" is just words)."""
    clean = sanitise_html(html)
    assert "<script" not in clean.lower() and "<iframe" not in clean.lower()
    assert not _EVENT_HANDLER.search(clean)
    assert not _ACTIVE_URL.search(clean)


def check_stripped(text: str) -> None:
    reply = strip_reply(text)
    assert len(reply) <= len(text.strip())
    assert reply or not text.strip()


@FUZZ
@given(messages)
def test_read_message_gives_content_or_its_typed_error(raw: bytes) -> None:
    check_read_message(raw)


@FUZZ
@given(messages)
def test_the_doors_header_path_never_raises(raw: bytes) -> None:
    check_door(raw)


@FUZZ
@given(markup)
def test_sanitised_html_has_no_active_content(html: str) -> None:
    check_sanitised(html)


@FUZZ
@given(st.one_of(quoted_text, st.text(max_size=500)))
def test_reply_stripping_never_grows_or_empties_the_text(text: str) -> None:
    check_stripped(text)


@FUZZ
@given(st.text(max_size=300))
def test_tokens_in_any_text_and_only_genuine_ones_verify(text: str) -> None:
    tokens = (*signed_ids_in(text.split()), *reply_tokens_in(text))
    assert verified_numbers("fuzz-key", tokens) == ()  # random text never carries our tag
