"""parse_body on hand-made messages: which text wins, charsets, HTML, attachments, caps."""

from __future__ import annotations

import base64
import time
from email.message import EmailMessage

import pytest

from parsers import AttachmentInfo, ParsedBody, parse_body
from parsers.filenames import safe_filename
from parsers.html_text import html_to_text


def leaf(content_type: str, payload: bytes, *, encoding: str = "base64", **headers: str) -> str:
    """One MIME part as text, its payload base64-encoded (or sent as it is)."""
    body = (
        base64.encodebytes(payload).decode("ascii")
        if encoding == "base64"
        else payload.decode("latin-1")
    )
    extra = "".join(f"{name.replace('_', '-')}: {value}\r\n" for name, value in headers.items())
    return (
        f"Content-Type: {content_type}\r\nContent-Transfer-Encoding: {encoding}\r\n"
        f"{extra}\r\n{body}"
    )


def multipart(subtype: str, *parts: str, boundary: str = "b0undary") -> str:
    inner = "".join(f"--{boundary}\r\n{part}\r\n" for part in parts)
    return (
        f'Content-Type: multipart/{subtype}; boundary="{boundary}"\r\n\r\n{inner}--{boundary}--\r\n'
    )


def mail(body_part: str) -> bytes:
    return ("From: a@example.com\r\nSubject: t\r\nMIME-Version: 1.0\r\n" + body_part).encode(
        "latin-1"
    )


# --- choosing the text ------------------------------------------------------------------------


def test_simple_text_message() -> None:
    parsed = parse_body(
        b"From: a@example.com\r\nSubject: t\r\n\r\nHello,\r\nthe platform is down.\r\n"
    )
    assert parsed == ParsedBody(
        text="Hello,\nthe platform is down.", html=False, attachments=(), defects=()
    )


def test_text_plain_is_preferred_over_html() -> None:
    raw = mail(
        multipart(
            "alternative",
            leaf("text/plain; charset=utf-8", "plain café".encode()),
            leaf("text/html; charset=utf-8", b"<p>html version</p>"),
        )
    )
    parsed = parse_body(raw)
    assert (parsed.text, parsed.html, parsed.attachments) == ("plain café", False, ())


def test_a_blank_text_plain_part_gives_way_to_the_html() -> None:
    raw = mail(
        multipart(
            "alternative",
            leaf("text/plain; charset=utf-8", b"\r\n \r\n"),
            leaf("text/html; charset=utf-8", b"<body>Test</body>"),
        )
    )
    parsed = parse_body(raw)
    assert (parsed.text, parsed.html, parsed.attachments) == ("Test", True, ())


def test_html_only_becomes_text_without_scripts_or_styles() -> None:
    html = (
        b"<html><head><title>Title</title><style>p { color: red }</style>"
        b"<script>alert('owned')</script></head><body><p>Hello&nbsp;<b>world</b> &amp; co</p>"
        b"<p>See <a href='https://x.example/kb'>the knowledge base</a>.</p>"
        b"<SCRIPT type='text/javascript'>document.write('x')</SCRIPT><div>Bye</div>"
        b"<!-- a comment --></body></html>"
    )
    parsed = parse_body(mail(leaf("text/html; charset=utf-8", html)))
    assert parsed.html is True
    assert parsed.text == "Hello world & co\n\nSee the knowledge base.\n\nBye"
    for hidden in ("alert", "owned", "color", "document.write", "Title", "comment"):
        assert hidden not in parsed.text


def test_html_inside_related_inside_alternative_without_plain() -> None:
    raw = mail(
        multipart(
            "mixed",
            multipart(
                "related",
                leaf("text/html", b"<p>Inline <img src='cid:1'> picture</p>"),
                leaf("image/png", b"\x89PNG....", Content_ID="<1>"),
                boundary="inner",
            ),
            leaf(
                "application/pdf",
                b"%PDF-1.4",
                Content_Disposition='attachment; filename="report.pdf"',
            ),
        )
    )
    parsed = parse_body(raw)
    assert (parsed.text, parsed.html) == ("Inline picture", True)
    assert parsed.attachments == (
        AttachmentInfo("attachment", "image/png", 8),
        AttachmentInfo("report.pdf", "application/pdf", 8),
    )


def test_several_inline_text_parts_are_joined() -> None:
    raw = mail(
        multipart(
            "mixed",
            leaf("text/plain", b"first"),
            leaf("image/gif", b"GIF89a"),
            leaf("text/plain", b"second"),
        )
    )
    parsed = parse_body(raw)
    assert parsed.text == "first\nsecond"
    assert [a.content_type for a in parsed.attachments] == ["image/gif"]


def test_text_of_an_attached_message_is_used_only_when_there_is_no_other() -> None:
    inner = "From: b@example.com\r\nSubject: inner\r\n\r\ninner text\r\n"
    forwarded = "Content-Type: message/rfc822\r\n\r\n" + inner
    with_own = parse_body(mail(multipart("mixed", leaf("text/plain", b"own text"), forwarded)))
    assert with_own.text == "own text"
    size = len(inner.replace("\r\n", "\n"))  # as written out again, with LF line endings
    assert with_own.attachments == (AttachmentInfo("attachment", "message/rfc822", size),)
    only_forwarded = parse_body(mail(multipart("mixed", forwarded)))
    assert only_forwarded.text == "inner text"


def test_no_text_at_all() -> None:
    parsed = parse_body(mail(leaf("application/octet-stream", b"\x00\x01")))
    assert (parsed.text, parsed.html) == ("", False)
    assert parsed.attachments == (AttachmentInfo("attachment", "application/octet-stream", 2),)


# --- charsets and transfer encodings ----------------------------------------------------------


@pytest.mark.parametrize(
    ("charset", "payload", "text"),
    [
        ("iso-8859-1", "Grüße".encode("latin-1"), "Grüße"),
        ("windows-1252", b"\x93quoted\x94", "\u201cquoted\u201d"),
        ("koi8-r", "привет".encode("koi8-r"), "привет"),
        ("shift_jis", "障害".encode("shift_jis"), "障害"),
        ("utf-8", "naïve ✓".encode(), "naïve ✓"),
        ("x-bogus", b"abc \xff\xfe def", "abc \ufffd\ufffd def"),
        ("base64", b"abc \xff def", "abc \ufffd def"),  # a codec, but not a text encoding
        ('"UTF-8"', "quoted label ✓".encode(), "quoted label ✓"),
    ],
)
def test_part_charsets(charset: str, payload: bytes, text: str) -> None:
    assert parse_body(mail(leaf(f"text/plain; charset={charset}", payload))).text == text


def test_undeclared_8bit_body_is_read_as_utf8() -> None:
    raw = "From: a@example.com\r\n\r\nÄrger mit der Plattform\r\n".encode()
    assert parse_body(raw).text == "Ärger mit der Plattform"


def test_quoted_printable_and_broken_base64() -> None:
    qp = parse_body(
        mail(
            leaf(
                "text/plain; charset=utf-8",
                b"caf=C3=A9 =\r\nlong line",
                encoding="quoted-printable",
            )
        )
    )
    assert qp.text == "café long line"
    broken = parse_body(
        mail(
            "Content-Type: text/plain\r\nContent-Transfer-Encoding: base64\r\n"
            "\r\naGVsbG8gd29ybGQ=!!!====\r\n"
        )
    )
    assert isinstance(broken.text, str)


def test_text_is_capped_at_a_million_characters() -> None:
    raw = b"From: a@example.com\r\n\r\n" + b"0123456789" * 150_000
    assert len(parse_body(raw).text) == 1_000_000


# --- attachments ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("declared", "safe"),
    [
        ("report.pdf", "report.pdf"),
        ("../../etc/passwd", "passwd"),
        ("C:\\Users\\evil\\run.exe", "run.exe"),
        ("invoice\u202egpj.exe", "invoicegpj.exe"),
        ("a\u2066b\u2069c\u200f.txt", "abc.txt"),
        ("bell\x07tab\tnul\x00.txt", "belltabnul.txt"),
        ("   ", "attachment"),
        ("..", "attachment"),
        ("dir/", "attachment"),
        ("", "attachment"),
        (None, "attachment"),
        ("x" * 300 + ".docx", "x" * 195 + ".docx"),
        ("y" * 300, "y" * 200),
        ("Überweisung März.xlsx", "Überweisung März.xlsx"),
    ],
)
def test_safe_filename(declared: str | None, safe: str) -> None:
    assert safe_filename(declared) == safe


def test_attachment_filenames_from_mime_parameters() -> None:
    raw = mail(
        multipart(
            "mixed",
            leaf("text/plain", b"see attached"),
            leaf(
                "application/pdf",
                b"12345",
                Content_Disposition="attachment; filename*=UTF-8''R%C3%A9sum%C3%A9.pdf",
            ),
            leaf(
                'application/octet-stream; name="=?utf-8?B?'
                + base64.b64encode("Überweisung.xlsx".encode()).decode()
                + '?="',
                b"xy",
            ),
            leaf(
                "image/png", b"png", Content_Disposition='attachment; filename="../../x/evil.png"'
            ),
            leaf(
                "text/plain", b"a text file", Content_Disposition='attachment; filename="notes.txt"'
            ),
        )
    )
    raw = raw.replace(b'filename="notes.txt"', 'filename="n\u00f6tes.txt"'.encode())
    parsed = parse_body(raw)
    assert parsed.text == "see attached"
    assert parsed.attachments == (
        AttachmentInfo("Résumé.pdf", "application/pdf", 5),
        AttachmentInfo("Überweisung.xlsx", "application/octet-stream", 2),
        AttachmentInfo("evil.png", "image/png", 3),
        AttachmentInfo("nötes.txt", "text/plain", 11),
    )


def test_attachments_are_built_by_the_email_package_too() -> None:
    message = EmailMessage()
    message["From"] = "a@example.com"
    message.set_content("body text")
    message.add_attachment(
        b"\x00" * 1000, maintype="application", subtype="zip", filename="logs.zip"
    )
    parsed = parse_body(message.as_bytes())
    assert parsed.text == "body text"
    assert parsed.attachments == (AttachmentInfo("logs.zip", "application/zip", 1000),)


# --- hostile structure ------------------------------------------------------------------------


def nested_messages(levels: int) -> bytes:
    raw = b"From: z@example.com\r\nSubject: innermost\r\n\r\ninnermost text\r\n"
    for _ in range(levels):
        raw = b"From: a@example.com\r\nContent-Type: message/rfc822\r\n\r\n" + raw
    return raw


@pytest.mark.parametrize("levels", [5, 30, 200, 2000, 20_000])
def test_deeply_nested_messages_do_not_crash(levels: int) -> None:
    started = time.perf_counter()
    parsed = parse_body(nested_messages(levels))
    assert time.perf_counter() - started < 5
    assert isinstance(parsed, ParsedBody)
    if levels < 20:
        assert parsed.text == "innermost text"
    else:
        assert parsed.defects


def test_deeply_nested_multiparts_do_not_crash() -> None:
    part = leaf("text/plain", b"deep")
    for level in range(1500):
        part = multipart("mixed", part, boundary=f"b{level}")
    parsed = parse_body(mail(part))
    assert isinstance(parsed, ParsedBody)
    assert parsed.defects


def test_too_many_parts_are_capped_with_a_defect() -> None:
    parts = [leaf("text/plain", b"first")] + [leaf("image/gif", b"G")] * 1000
    parsed = parse_body(mail(multipart("mixed", *parts)))
    assert parsed.text == "first"
    assert len(parsed.attachments) < 500
    assert any("parts" in defect for defect in parsed.defects)


def test_parse_defects_are_reported() -> None:
    raw = mail('Content-Type: multipart/mixed; boundary="never"\r\n\r\nno boundary here\r\n')
    parsed = parse_body(raw)
    assert parsed.defects
    assert all(isinstance(defect, str) and defect for defect in parsed.defects)


@pytest.mark.parametrize(
    "raw",
    [
        b"",
        b"\x00\xff" * 100,
        b"Content-Type: multipart/mixed\r\n\r\n--\r\n--\r\n",
        b"Content-Type: message/rfc822\r\n\r\n",
        b"Content-Type: text/plain; charset*=x''y\r\n\r\nz",
        b"Content-Type: text/html\r\n\r\n<" + b"a " * 5000,
        b"Content-Transfer-Encoding: x-uue\r\n\r\nbegin 644 x\r\n#86)C\r\nend\r\n",
    ],
)
def test_never_raises(raw: bytes) -> None:
    assert isinstance(parse_body(raw), ParsedBody)


# --- HTML to text -----------------------------------------------------------------------------


def test_html_to_text_keeps_link_text_and_block_breaks() -> None:
    html = "<ul><li>one</li><li><a href='u'>two</a></li></ul><table><tr><td>a</td><td>b</td></tr>"
    assert html_to_text(html) == "one\n\ntwo\n\na\n\nb"


def test_html_to_text_unclosed_script_hides_the_rest() -> None:
    assert html_to_text("visible<script>var secret = 1;") == "visible"


@pytest.mark.parametrize(
    "markup",
    [
        "<!--" * 250_000,
        "<a " * 300_000,
        "<" * 1_000_000,
        "</" * 500_000,
        "<!" * 500_000,
        "<div>" * 200_000,
        "&#" * 500_000 + ";",
        "<p " + "a=b " * 250_000 + ">",
    ],
)
def test_html_to_text_is_linear_on_hostile_markup(markup: str) -> None:
    started = time.perf_counter()
    html_to_text(markup)
    assert time.perf_counter() - started < 5
