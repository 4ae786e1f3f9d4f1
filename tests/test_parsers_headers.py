"""read_headers and content_digest on hand-made messages: decoding, authors, ids, caps, speed."""

from __future__ import annotations

import base64
import time

import pytest

from parsers import HeaderSummary, content_digest, read_headers


def message(*headers: str, body: str = "Hello.\r\n") -> bytes:
    """A raw message from header lines (CRLF line endings) and a body."""
    return ("\r\n".join(headers) + "\r\n\r\n" + body).encode("utf-8")


def b_word(text: str, charset: str) -> str:
    return f"=?{charset}?B?{base64.b64encode(text.encode(charset)).decode('ascii')}?="


# --- subjects ---------------------------------------------------------------------------------


def test_plain_subject_is_unfolded_and_whitespace_collapsed() -> None:
    raw = b"From: a@example.com\r\nSubject: Disk  full\r\n\ton the\r\n  primary\tnode\r\n\r\nx"
    assert read_headers(raw).subject == "Disk full on the primary node"


def test_rfc2047_iso_8859_1_quoted_printable() -> None:
    raw = message("Subject: =?iso-8859-1?q?Caf=E9_cr=E8me_br=FBl=E9e?=")
    assert read_headers(raw).subject == "Café crème brûlée"


def test_rfc2047_utf8_base64() -> None:
    raw = message(f"Subject: {b_word('Störung – dringend', 'utf-8')}")
    assert read_headers(raw).subject == "Störung – dringend"


def test_rfc2047_shift_jis() -> None:
    raw = message(f"Subject: {b_word('障害が発生しました', 'shift_jis')}")
    assert read_headers(raw).subject == "障害が発生しました"


def test_rfc2047_words_joined_across_a_split_multibyte_character() -> None:
    data = "Ünïcödé".encode()
    halves = (data[:1], data[1:])  # the first word ends in the middle of "Ü"
    words = [base64.b64encode(half).decode("ascii") for half in halves]
    raw = message(f"Subject: =?utf-8?B?{words[0]}?=\r\n =?utf-8?B?{words[1]}?=")
    assert read_headers(raw).subject == "Ünïcödé"


def test_rfc2047_mixed_with_plain_text_keeps_the_spaces_around_words() -> None:
    raw = message("Subject: Re: =?utf-8?q?caf=C3=A9?= is =?utf-8?q?ferm=C3=A9?= today")
    assert read_headers(raw).subject == "Re: café is fermé today"


def test_rfc2047_unknown_charset_is_decoded_with_replacement() -> None:
    raw = message("Subject: =?x-bogus?q?hello_w=FFrld?= again")
    assert read_headers(raw).subject == "hello w\ufffdrld again"


def test_rfc2047_bad_base64_is_kept_as_written() -> None:
    raw = message("Subject: =?utf-8?B?abcde?=")
    assert read_headers(raw).subject == "=?utf-8?B?abcde?="


def test_raw_8bit_utf8_subject() -> None:
    raw = "From: a@example.com\r\nSubject: Grüße aus Köln 🚀\r\n\r\nx".encode()
    assert read_headers(raw).subject == "Grüße aus Köln 🚀"


def test_raw_8bit_latin1_subject_uses_the_declared_charset() -> None:
    raw = b"Subject: Caf\xe9\r\nContent-Type: text/plain; charset=iso-8859-1\r\n\r\nx"
    assert read_headers(raw).subject == "Café"


def test_raw_iso_2022_jp_subject() -> None:
    raw = "Subject: 配信できません\r\n\r\nx".encode("iso-2022-jp")
    assert read_headers(raw).subject == "配信できません"


def test_subject_with_line_breaks_in_an_encoded_word_stays_on_one_line() -> None:
    raw = message("Subject: =?utf-8?q?one=0D=0Atwo=0Athree?=")
    assert read_headers(raw).subject == "one two three"


def test_huge_subject_is_capped_and_fast() -> None:
    raw = message("From: a@example.com", "Subject: " + "x" * 130_000)
    started = time.perf_counter()
    subject = read_headers(raw).subject
    assert time.perf_counter() - started < 0.1
    assert subject == "x" * 998


def test_huge_encoded_subject_is_capped_and_fast() -> None:
    raw = message("Subject: " + " ".join(["=?utf-8?q?=C3=A9t=C3=A9?="] * 20_000))
    started = time.perf_counter()
    subject = read_headers(raw).subject
    assert time.perf_counter() - started < 0.2
    assert len(subject) == 998
    assert set(subject) == {"é", "t"}


def test_one_megabyte_header_block_returns_within_a_second() -> None:
    filler = [f"X-Filler-{i}: {'y' * 60}" for i in range(16_000)]  # about 1.1 MB of fields
    raw = message("From: first@example.com", "Subject: early", *filler, "From: late@example.com")
    started = time.perf_counter()
    summary = read_headers(raw)
    assert time.perf_counter() - started < 1.0
    assert summary.subject == "early"
    assert summary.from_count == 1  # the From beyond the 256 KiB cap is not read


def test_one_megabyte_single_header_returns_within_a_second() -> None:
    raw = message("Subject: " + "=?" * 500_000, "From: a@example.com")
    started = time.perf_counter()
    summary = read_headers(raw)
    assert time.perf_counter() - started < 1.0
    assert len(summary.subject) == 998


@pytest.mark.parametrize("pattern", ["(", "((a)", "<", "@", "a<b>,", '"', "\\", "[", " ", ")"])
def test_hostile_from_headers_are_cheap(pattern: str) -> None:
    raw = message(*[f"From: {pattern * 5000}"] * 10, f"Subject: {pattern * 20_000}")
    started = time.perf_counter()
    summary = read_headers(raw)
    assert time.perf_counter() - started < 0.5
    assert summary.from_count >= 10


def test_typical_message_is_read_well_under_half_a_millisecond() -> None:
    headers = [
        f"Received: from relay{i}.example.net by mx.example.com; Mon, 1 Jan 2024" for i in range(8)
    ]
    raw = message(
        *headers,
        "From: Ada <ada@acme.example>",
        "To: support@intake.localhost",
        "Subject: [Sev2] Recording playback fails",
        "Message-ID: <a1@acme.example>",
        "Date: Mon, 1 Jan 2024 10:00:00 +0000",
        body="x" * 3000,
    )
    read_headers(raw)
    rounds = 500
    started = time.perf_counter()
    for _ in range(rounds):
        read_headers(raw)
    assert (time.perf_counter() - started) / rounds < 0.0005


# --- authors ----------------------------------------------------------------------------------


def test_from_address_is_lower_cased_and_name_decoded() -> None:
    summary = read_headers(message("From: =?utf-8?q?J=C3=B6rg_M=C3=BCller?= <Joerg@Example.COM>"))
    assert (summary.from_address, summary.from_name, summary.from_count) == (
        "joerg@example.com",
        "Jörg Müller",
        1,
    )


def test_from_in_old_comment_form() -> None:
    summary = read_headers(message("From: jdoe@example.net (John Doe)"))
    assert (summary.from_address, summary.from_name) == ("jdoe@example.net", "John Doe")


def test_two_from_headers_are_counted() -> None:
    summary = read_headers(message("From: first@example.com", "From: second@example.com"))
    assert (summary.from_address, summary.from_count) == ("first@example.com", 2)


def test_two_addresses_in_one_from_are_counted() -> None:
    summary = read_headers(message("From: a@example.com, Bee <b@example.com>"))
    assert (summary.from_address, summary.from_count) == ("a@example.com", 2)


def test_missing_from() -> None:
    summary = read_headers(message("Subject: anonymous"))
    assert (summary.from_address, summary.from_name, summary.from_count) == ("", "", 0)


def test_unusable_from_gives_no_address() -> None:
    for value in ("<>", "****", "undisclosed", "MAILER-DAEMON"):
        summary = read_headers(message(f"From: {value}"))
        assert summary.from_address == "", value
        assert summary.from_count == 1, value


def test_address_as_display_name_does_not_become_the_sender() -> None:
    for value in ("alice@example.com <bob@example.com>", '"alice@example.com" <bob@example.com>'):
        summary = read_headers(message(f"From: {value}"))
        assert (summary.from_address, summary.from_name, summary.from_count) == (
            "bob@example.com",
            "alice@example.com",
            1,
        ), value


def test_mbox_envelope_line_is_not_a_from_header() -> None:
    raw = b"From MAILER-DAEMON  Mon Sep 20 19:29:27 2021\nFrom: <a@example.com>\n\nx"
    summary = read_headers(raw)
    assert (summary.from_address, summary.from_count) == ("a@example.com", 1)


# --- ids and dates ----------------------------------------------------------------------------


def test_microsoft_style_message_id_is_kept_as_given() -> None:
    raw = message("Message-ID: <[abc-1234]@microsoft.com>")
    assert read_headers(raw).message_id == "<[abc-1234]@microsoft.com>"


def test_message_id_is_stripped_and_bare_ids_get_brackets() -> None:
    assert read_headers(message("Message-ID:   <x@y.example>  ")).message_id == "<x@y.example>"
    assert read_headers(message("Message-ID: x@y.example")).message_id == "<x@y.example>"
    assert read_headers(message("Subject: none")).message_id == ""


def test_in_reply_to_and_references() -> None:
    raw = message(
        "In-Reply-To: Your message of Monday <parent@example.com>",
        "References: <root@example.com>\r\n <parent@example.com> junk <root@example.com>",
    )
    summary = read_headers(raw)
    assert summary.in_reply_to == ("<parent@example.com>",)
    assert summary.references == ("<root@example.com>", "<parent@example.com>")


def test_date_is_the_raw_header() -> None:
    raw = message("Date: Mon, 1 Jan 2024\r\n 10:00:00 +0000")
    assert read_headers(raw).date == "Mon, 1 Jan 2024 10:00:00 +0000"
    assert read_headers(message("Subject: x")).date == ""


def test_lf_only_and_cr_only_messages() -> None:
    for sep in (b"\n", b"\r"):
        raw = sep.join([b"From: a@example.com", b"Subject: hi", b"", b"Subject: body"])
        summary = read_headers(raw)
        assert (summary.from_address, summary.subject) == ("a@example.com", "hi")


def test_a_byte_order_mark_and_leading_blank_lines_are_skipped() -> None:
    raw = b"\xef\xbb\xbfFrom: a@example.com\r\n\r\nx"
    assert read_headers(raw).from_address == "a@example.com"
    assert read_headers(b"\r\n   \r\nFrom: a@example.com\r\n\r\nx").from_address == "a@example.com"


def test_header_lines_that_lost_their_indentation_are_continuations() -> None:
    raw = b"Received: from a\nby b with SMTP; 1 Jan 2024 08:46:08\nSubject: still read\n\nx"
    assert read_headers(raw).subject == "still read"


def test_body_lines_without_the_blank_line_are_not_the_subject() -> None:
    raw = b"From: a@example.com\nSubject: short\nthe body, with no blank line before it\n"
    assert read_headers(raw).subject == "short"


@pytest.mark.parametrize(
    "raw",
    [
        b"",
        b"\x00",
        b"\xff\xfe",
        b":",
        b"From:",
        b"Subject:\r\n\r\n",
        b"\r\n" * 10_000,
        b"=?utf-8?q?",
        b"Subject: =?utf-8?B?=?=",
        b"From: <<<@>>>",
        b'From: "\\',
        b" x: y",
    ],
)
def test_never_raises(raw: bytes) -> None:
    assert isinstance(read_headers(raw), HeaderSummary)
    assert len(content_digest(raw)) == 64


# --- automatic mail ---------------------------------------------------------------------------


PERSON = ("From: Ada <ada@acme.example>", "Subject: Recording playback fails")


@pytest.mark.parametrize(
    ("extra", "reason"),
    [
        (("Auto-Submitted: auto-replied",), "auto_submitted"),
        (("Auto-Submitted: auto-generated; owner=x",), "auto_submitted"),
        (("Auto-Submitted: no",), None),
        (("X-Autoreply: yes",), "auto_submitted"),
        (("X-Autorespond: on",), "auto_submitted"),
        (("Precedence: bulk",), "auto_submitted"),
        (("Precedence: junk",), "auto_submitted"),
        (("Precedence: auto_reply",), "auto_submitted"),
        (("X-Auto-Response-Suppress: All",), "auto_submitted"),
        (("X-Auto-Response-Suppress: DR, OOF",), "auto_submitted"),
        (("X-Auto-Response-Suppress: DR, RN",), None),
        (("Precedence: list",), "list_mail"),
        (("List-Id: Users <users.lists.example.org>",), "list_mail"),
        (("List-Unsubscribe: <mailto:leave@lists.example.org>",), "list_mail"),
        (("Return-Path: <>",), "bounce"),
        (("Return-Path: < >",), "bounce"),
        (("Return-Path: <ada@acme.example>",), None),
        (("Content-Type: multipart/report; report-type=delivery-status; boundary=b",), "bounce"),
        (('Content-Type: multipart/report; report-type="disposition-notification"',), "bounce"),
        (("Content-Type: multipart/report;\r\n report-type=feedback-report",), "bounce"),
        (("Content-Type: multipart/report; report-type=tlsrpt",), "auto_submitted"),
        (("Content-Type: multipart/mixed; boundary=b",), None),
    ],
)
def test_automatic_from_headers(extra: tuple[str, ...], reason: str | None) -> None:
    assert read_headers(message(*PERSON, *extra)).automatic == reason


@pytest.mark.parametrize(
    ("sender", "subject", "reason"),
    [
        ("Mail Delivery System <MAILER-DAEMON@mx.example.net>", "Hello", "bounce"),
        ("postmaster@example.net", "Undeliverable: Recording playback", "bounce"),
        ("System Administrator <postmaster@example.net>", "Delivery Status Notification", "bounce"),
        ("<>", "Mail delivery failed", "bounce"),
        ("ada@acme.example", "Automatic reply: Recording playback fails", "auto_submitted"),
        ("ada@acme.example", "Auto reply: Recording playback fails", "auto_submitted"),
        ("ada@acme.example", "Out of Office: back Monday", "auto_submitted"),
        ("john@b.example", "AUTO: John is out of the office (returning 05/01)", "auto_submitted"),
        ("dmarc@google.com", "Report domain: acme.example Submitter: google.com", "auto_submitted"),
        ("staff@hotmail.com", "complaint about message from 192.0.2.1", "bounce"),
        # people writing about delivery problems are people
        ("ada@acme.example", "Mail delivery failed on the platform", None),
        ("ada@acme.example", "Undeliverable recordings since Monday", None),
        ("ada@acme.example", "Re: Automatic reply settings on the platform", None),
        ("postmaster@acme.example", "Please add our new relay", None),
    ],
)
def test_automatic_from_sender_and_subject(sender: str, subject: str, reason: str | None) -> None:
    assert read_headers(message(f"From: {sender}", f"Subject: {subject}")).automatic == reason


def test_an_exim_bounce_marked_auto_replied_is_a_bounce() -> None:
    raw = message(
        "From: Mail Delivery System <Mailer-Daemon@mx.example.net>",
        "Subject: Mail delivery failed: returning message to sender",
        "Auto-Submitted: auto-replied",
        "X-Failed-Recipients: ada@acme.example",
    )
    assert read_headers(raw).automatic == "bounce"


def test_a_list_post_with_precedence_bulk_is_list_mail() -> None:
    raw = message(*PERSON, "Precedence: bulk", "List-Id: <users.lists.example.org>")
    assert read_headers(raw).automatic == "list_mail"


# --- content digest ---------------------------------------------------------------------------

BASE = message(
    "From: a@example.com",
    "Subject: hi",
    "Message-ID: <1@example.com>",
    body="line one\r\nline two\r\n",
)


def test_digest_is_sha256_hex() -> None:
    digest = content_digest(BASE)
    assert len(digest) == 64
    assert int(digest, 16) >= 0


def test_crlf_and_lf_give_the_same_digest() -> None:
    assert content_digest(BASE) == content_digest(BASE.replace(b"\r\n", b"\n"))


def test_trace_headers_added_on_top_give_the_same_digest() -> None:
    relayed = (
        b"Received: from relay.example.net (relay [192.0.2.1])\r\n"
        b"\tby mx.example.com with ESMTP id 123; Mon, 1 Jan 2024 10:00:00 +0000\r\n"
        b"Return-Path: <a@example.com>\r\nDelivered-To: support@example.com\r\n"
        b"X-Original-To: support@example.com\r\n"
    )
    assert content_digest(relayed + BASE) == content_digest(BASE)
    assert content_digest(b"Received: by x\n" + relayed + BASE) == content_digest(BASE)


def test_mbox_line_and_trailing_newlines_do_not_change_the_digest() -> None:
    assert content_digest(b"From a@example.com Mon Jan 1\n" + BASE) == content_digest(BASE)
    assert content_digest(BASE + b"\r\n\r\n") == content_digest(BASE)


def test_a_different_message_has_a_different_digest() -> None:
    assert content_digest(BASE.replace(b"line two", b"line 2")) != content_digest(BASE)
    assert content_digest(BASE.replace(b"<1@", b"<2@")) != content_digest(BASE)


def test_trace_headers_below_the_first_other_field_count() -> None:
    later = message("From: a@example.com", "Received: by x", "Subject: hi")
    assert content_digest(later) != content_digest(message("From: a@example.com", "Subject: hi"))
