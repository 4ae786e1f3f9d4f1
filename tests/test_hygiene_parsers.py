"""The parsers this issue added, on their own: signed tokens, reply stripping, HTML
sanitising, delivery reports, read_message's typed error, storable text, the boundary cap
and ISO-2022-JP with the Windows extensions."""

from __future__ import annotations

import time

import pytest

from intake.outbox.links import message_tag, reply_address, verified_numbers
from parsers import (
    SignedToken,
    UnparseableMessage,
    clean_text,
    parse_body,
    read_delivery_report,
    read_headers,
    read_message,
    reply_tokens_in,
    sanitise_html,
    signed_ids_in,
    strip_reply,
)
from parsers.body import BOUNDARY_LINES_CAP
from parsers.charsets import decode_bytes
from tests.conftest import CORPUS

BODIES = CORPUS / "replies" / "bodies"

# --- signed tokens ----------------------------------------------------------------------------


def test_signed_message_ids_and_reply_addresses_are_found() -> None:
    ids = ("<x@y>", "<SR-000123.ACK.0123456789ABCDEF@intake.localhost>", "<sr-1.ack.00@x>")
    assert signed_ids_in(ids) == (SignedToken("SR-000123", "0123456789abcdef"),)
    text = "Support <support+sr-000042.fedcba9876543210@intake.localhost>, x+sr-1.00@y"
    assert reply_tokens_in(text) == (SignedToken("SR-000042", "fedcba9876543210"),)


def test_only_tags_made_with_our_key_verify() -> None:
    good = SignedToken("SR-000007", message_tag("key", "SR-000007"))
    guessed = SignedToken("SR-000008", good.tag)  # a tag moved to another number
    other_key = SignedToken("SR-000007", message_tag("other", "SR-000007"))
    assert verified_numbers("key", [good, guessed, other_key]) == ("SR-000007",)


def test_the_reply_address_round_trips() -> None:
    address = reply_address("key", "SR-000007", "support@intake.localhost")
    assert address.startswith("support+sr-000007.") and address.endswith("@intake.localhost")
    assert verified_numbers("key", reply_tokens_in(address)) == ("SR-000007",)
    assert reply_address("key", "SR-000007", "help+x@a.example").startswith("help+sr-000007.")


def test_read_headers_sees_our_loop_marker_and_reply_addresses() -> None:
    raw = (
        b"From: a@b.example\r\nTo: Support <support+sr-000001.0123456789abcdef@x.example>\r\n"
        b"X-Intake-Loop: support@x.example\r\nSubject: hi\r\n\r\nbody"
    )
    summary = read_headers(raw)
    assert summary.loop_marker
    assert summary.reply_tokens == (SignedToken("SR-000001", "0123456789abcdef"),)
    assert not read_headers(b"From: a@b.example\r\n\r\nx").loop_marker


# --- reply stripping --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "reply"),
    [
        ("erp-github-email_1_4.txt", "Awesome! I haven't had another problem with it."),
        ("erp-github-email_iPhone.txt", "Here is another email"),
        ("erp-github-email_2_3.txt", "Outlook with a reply directly above line"),
        ("mpr-alfonsrv-email_danish_2.txt", "Hej Hanne,\n\nJeg har modtaget filerne."),
        ("trimmer-embedded_email_russian_2.txt", "Yes."),
        ("trimmer-embedded_email_german_2.txt", "Hey:)"),
    ],
)
def test_quoted_replies_and_signatures_are_stripped(name: str, reply: str) -> None:
    assert strip_reply((BODIES / name).read_text(encoding="utf-8", errors="replace")) == reply


def test_a_quote_whose_header_the_library_does_not_know_is_stripped_too() -> None:
    text = 'Hello\n02.04.2012 14:20 пользователь "bob@x.example" <\nbob@x.example> написал:\n\n> Hi'
    assert strip_reply(text) == "Hello"
    assert strip_reply("Thanks.\n\nOn 4/4/12, bob@x.example wrote:") == "Thanks."


def test_text_without_a_quote_stays_whole() -> None:
    text = "Line one.\nThe list:\n- a\n- b"
    assert strip_reply(text) == text
    assert strip_reply("> only a quote") == "> only a quote"
    assert strip_reply("") == ""


def test_every_corpus_body_is_stripped_quickly_and_never_to_nothing() -> None:
    for path in sorted(BODIES.iterdir()):
        text = path.read_bytes().decode("utf-8", "replace")
        started = time.monotonic()
        reply = strip_reply(text)
        assert time.monotonic() - started < 1, path.name
        assert reply or not text.strip(), path.name
        assert len(reply) <= len(text.strip()), path.name


def test_stripping_a_huge_text_is_bounded() -> None:
    started = time.monotonic()
    strip_reply("> quoted line\nOn Mon wrote:\n" * 200_000)
    assert time.monotonic() - started < 3


# --- HTML -------------------------------------------------------------------------------------


def test_html_is_sanitised_with_an_allow_list() -> None:
    dirty = (
        '<p onclick="x()">Hi <b>there</b><script>alert(1)</script></p>'
        '<img src="https://tracker.example/p.gif"><img src="cid:logo@x" alt="logo">'
        '<a href="javascript:alert(1)">bad</a><a href="https://ok.example/">ok</a>'
        "<style>p{}</style><iframe src=x></iframe><form><input name=p></form>"
        '<bdo dir="rtl">gnp.exe</bdo>'
    )
    clean = sanitise_html(dirty)
    assert "<p>Hi <b>there</b></p>" in clean
    assert '<img src="cid:logo@x" alt="logo">' in clean
    assert '<a href="https://ok.example/" rel="noopener noreferrer nofollow">ok</a>' in clean
    for danger in ("script", "onclick", "tracker", "javascript", "iframe", "<form", "<input"):
        assert danger not in clean
    assert "<bdo" not in clean and "gnp.exe" in clean


def test_read_message_gives_the_sanitised_html_of_an_html_body() -> None:
    raw = b"From: a@b\r\nContent-Type: text/html\r\n\r\n<p onmouseover=x>Hi</p><script>s()</script>"
    content = read_message(raw)
    assert (content.text, content.html) == ("Hi", "<p>Hi</p>")
    assert read_message(b"From: a@b\r\n\r\nplain").html == ""


# --- delivery reports -------------------------------------------------------------------------


def test_a_dsn_names_its_recipients_and_the_returned_message() -> None:
    report = read_delivery_report((CORPUS / "bounces/bounceparser-aol.unknown.eml").read_bytes())
    assert report.report_type == "delivery-status"
    (recipient,) = report.recipients
    assert (recipient.address, recipient.action, recipient.status) == (
        "recipient@example.net",
        "failed",
        "5.1.1",
    )
    assert recipient.failed
    assert report.message_ids == ("<200606062115.k56LFe7d012436@somehost.example.com>",)


def test_most_corpus_bounces_name_a_recipient_or_the_returned_message() -> None:
    bounces = sorted((CORPUS / "bounces").glob("*.eml"))
    read = [read_delivery_report(path.read_bytes()) for path in bounces]
    assert sum(bool(r.recipients or r.message_ids) for r in read) >= 0.9 * len(bounces)


def test_a_report_of_anything_gives_an_empty_report_not_an_error() -> None:
    assert read_delivery_report(b"").recipients == ()
    assert read_delivery_report(b"\xff\xfe garbage").report_type == ""


# --- typed parse errors, storable text, caps --------------------------------------------------


def test_read_message_raises_its_typed_error_when_no_tree_can_be_built() -> None:
    nested = b"Content-Type: message/rfc822\r\n\r\n" * 3000 + b"Subject: x\r\n\r\ninner"
    with pytest.raises(UnparseableMessage, match="nesting too deep to parse"):
        read_message(nested)
    lenient = read_message(nested, strict=False)
    assert "Content-Type: message/rfc822" in lenient.text


def test_clean_text_drops_nul_and_replaces_lone_surrogates() -> None:
    assert clean_text("a\x00b\ud800c") == "ab\ufffdc"
    assert clean_text("plain") == "plain"


def test_a_message_of_countless_parts_is_cut_before_parsing() -> None:
    parts = b"--b\r\nContent-Type: text/plain\r\n\r\nx\r\n" * 300_000
    raw = b"From: a@b\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n" + parts
    started = time.monotonic()
    body = parse_body(raw)
    assert time.monotonic() - started < 2
    assert f"more than {BOUNDARY_LINES_CAP} boundary lines; the rest were not read" in body.defects


def test_attachments_come_with_their_bytes() -> None:
    raw = (
        b"From: a@b\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\n\r\ntext\r\n"
        b"--b\r\nContent-Type: application/pdf\r\nContent-Disposition: attachment; "
        b"filename=a.pdf\r\nContent-Transfer-Encoding: base64\r\n\r\nJVBERi0=\r\n--b--\r\n"
    )
    (pdf,) = parse_body(raw).attachments
    assert (pdf.filename, pdf.size, pdf.data) == ("a.pdf", 5, b"%PDF-")


@pytest.mark.parametrize(
    ("data", "text"),
    [
        (b"\x1b$B-!\x1b(B", "①"),  # NEC row 13: a circled digit
        (b"\x1b$B-b\x1b(B41", "№41"),
        (b"\x1b$BF|K\\8l\x1b(B", "日本語"),  # plain JIS X 0208 still goes through Python's codec
        (b"\x1b(I12\x1b(B", "ｱｲ"),  # half-width katakana
    ],
)
def test_iso_2022_jp_with_the_windows_extensions(data: bytes, text: str) -> None:
    assert decode_bytes(data, "iso-2022-jp") == text
