"""The parsers this issue added, on their own: signed tokens, reply stripping, HTML
sanitising, delivery reports, read_message's typed error, storable text, the boundary cap
and ISO-2022-JP with the Windows extensions."""

from __future__ import annotations

import time
from pathlib import Path

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


# Replies as mail programs write them, each with the part a person wrote first.
REPLIES = {
    "github-web": (
        "Awesome! I haven't had another problem with it.\n\n"
        "On Aug 22, 2011, at 7:37 PM, defunkt<reply@reply.github.com> wrote:\n\n\n\n\n"
        "> Loader seems to be working well.\n",
        "Awesome! I haven't had another problem with it.",
    ),
    "iphone-signature": ("Here is another email\n\nSent from my iPhone\n", "Here is another email"),
    "outlook-header-block": (
        "Outlook with a reply directly above line\n\n"
        "From: CRM Comments [crm-comment@example.com]\nSent: Friday, 23 March 2012 5:08 p.m.\n"
        "To: John S. Greene\nSubject: [contact:106] John Greene\n\n"
        "> A new comment has been added to the Contact named 'John Greene':\n>\n"
        "> I am replying to a comment.\n",
        "Outlook with a reply directly above line",
    ),
    "outlook-danish": (
        "Hej Hanne,\n\nJeg har modtaget filerne.\n\nHilsen\nSøren\n\n"
        "Fra: Hanne Hansen <hanne@example.com>\nSendt: 24. november 2025 09:30\n"
        "Til: Søren Sørensen <soren@example.com>\nEmne: Filerne\n\n"
        "Hej Søren,\n\nHer er filerne du bad om.\n\nMvh\nHanne\n",
        "Hej Hanne,\n\nJeg har modtaget filerne.",
    ),
    "russian-wrapped-header": (
        'Yes.\n\n20 окт. 2016 г. 19:37 пользователь "Rafael dos Santos Silva" <\n'
        "meta@discoursemail.com> написал:\n\n> Are you using our official docker install?\n"
        ">\n> If you are, try a rebuild:\n>\n> ./launcher rebuild app\n",
        "Yes.",
    ),
    "german-header": (
        "Hey:)\n\n\nAm 03.02.2016 3:35 nachm. schrieb Max Mustermann "
        "<noreply@meta.discourse.org>:\n\n> Lorem ipsum dolor sit amet, consectetur "
        "adipiscing elit, sed do eiusmod tempor incididunt ut labore.\n",
        "Hey:)",
    ),
}


@pytest.mark.parametrize(("text", "reply"), REPLIES.values(), ids=REPLIES.keys())
def test_quoted_replies_and_signatures_are_stripped(text: str, reply: str) -> None:
    assert strip_reply(text) == reply


def test_a_quote_whose_header_the_library_does_not_know_is_stripped_too() -> None:
    text = 'Hello\n02.04.2012 14:20 пользователь "bob@x.example" <\nbob@x.example> написал:\n\n> Hi'
    assert strip_reply(text) == "Hello"
    assert strip_reply("Thanks.\n\nOn 4/4/12, bob@x.example wrote:") == "Thanks."


def test_text_without_a_quote_stays_whole() -> None:
    text = "Line one.\nThe list:\n- a\n- b"
    assert strip_reply(text) == text
    assert strip_reply("> only a quote") == "> only a quote"
    assert strip_reply("") == ""


def test_every_corpus_body_is_stripped_quickly_and_never_to_nothing(corpus: Path) -> None:
    for path in sorted((corpus / "replies" / "bodies").iterdir()):
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

# A DSN as a big provider's sendmail wrote one: prose, the delivery-status, the returned headers.
AOL_STYLE_DSN = (
    b"Return-Path: <MAILER-DAEMON@somehost.example.com>\r\n"
    b"Date: Tue, 6 Jun 2006 17:53:38 -0400 (EDT)\r\n"
    b"From: Mail Delivery Subsystem <MAILER-DAEMON@aol.com>\r\n"
    b"Message-Id: <200606062153.RAH23964@rly-yi03.mx.aol.com>\r\n"
    b"To: <sender@somehost.example.com>\r\nMIME-Version: 1.0\r\n"
    b"Content-Type: multipart/report; report-type=delivery-status;\r\n"
    b'\tboundary="RAH23964.1149630818/rly-yi03.mx.aol.com"\r\n'
    b"Content-Transfer-Encoding: binary\r\nSubject: Returned mail: User unknown\r\n"
    b"Auto-Submitted: auto-generated (failure)\r\n\r\n"
    b"This is a MIME-encapsulated message\r\n\r\n"
    b"--RAH23964.1149630818/rly-yi03.mx.aol.com\r\n\r\n"
    b"   ----- The following addresses had permanent fatal errors -----\r\n"
    b"<recipient@example.net>\r\n\r\n"
    b"--RAH23964.1149630818/rly-yi03.mx.aol.com\r\n"
    b"Content-Type: message/delivery-status\r\n\r\n"
    b"Reporting-MTA: dns; rly-yi03.mx.aol.com\r\n"
    b"Arrival-Date: Tue, 6 Jun 2006 17:53:01 -0400 (EDT)\r\n\r\n"
    b"Final-Recipient: RFC822; recipient@example.net\r\nAction: failed\r\n"
    b"Status: 5.1.1\r\nRemote-MTA: DNS; air-yi01.mail.aol.com\r\n"
    b"Diagnostic-Code: SMTP; 550 MAILBOX NOT FOUND\r\n\r\n"
    b"--RAH23964.1149630818/rly-yi03.mx.aol.com\r\n"
    b"Content-Type: text/rfc822-headers\r\nContent-Transfer-Encoding: binary\r\n\r\n"
    b"Received: from somehost.example.com (localhost [127.0.0.1])\r\n"
    b"\tby somehost.example.com with ESMTP id k56LpQ9h031020\r\n"
    b"Message-Id: <200606062115.k56LFe7d012436@somehost.example.com>\r\n"
    b"From: sender@somehost.example.com\r\nTo: recipient@example.net\r\n"
    b"Subject: test\r\n\r\n"
    b"--RAH23964.1149630818/rly-yi03.mx.aol.com--\r\n"
)


def test_a_dsn_names_its_recipients_and_the_returned_message() -> None:
    report = read_delivery_report(AOL_STYLE_DSN)
    assert report.report_type == "delivery-status"
    (recipient,) = report.recipients
    assert (recipient.address, recipient.action, recipient.status) == (
        "recipient@example.net",
        "failed",
        "5.1.1",
    )
    assert recipient.failed
    assert report.message_ids == ("<200606062115.k56LFe7d012436@somehost.example.com>",)


def test_most_corpus_bounces_name_a_recipient_or_the_returned_message(corpus: Path) -> None:
    bounces = sorted((corpus / "bounces").glob("*.eml"))
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
