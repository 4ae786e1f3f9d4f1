"""Support for the sender-verification tests and benchmark: RSA keys made here, messages
signed with dkimpy (DKIM and ARC sets), and the DNS records that publish keys and policies."""

from __future__ import annotations

import base64
from dataclasses import dataclass
from email.utils import format_datetime, make_msgid

import dkim
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from tests.dns_server import Zone

SELECTOR = "s1"


@dataclass(frozen=True)
class Key:
    private_pem: bytes
    public_record: str  # the TXT record of selector._domainkey.<domain>

    @classmethod
    def generate(cls) -> Key:
        private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        pem = private.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.TraditionalOpenSSL,
            serialization.NoEncryption(),
        )
        der = private.public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        return cls(pem, "v=DKIM1; k=rsa; p=" + base64.b64encode(der).decode())


def publish_key(zone: Zone, domain: str, key: Key, selector: str = SELECTOR) -> None:
    zone.txt(f"{selector}._domainkey.{domain}", key.public_record)


def publish_dmarc(zone: Zone, domain: str, record: str) -> None:
    zone.txt(f"_dmarc.{domain}", record)


def publish_spf(zone: Zone, domain: str, record: str) -> None:
    zone.txt(domain, record)


def message(
    sender: str = "Ada Lovelace <ada@acme.example>",
    subject: str = "Export fails",
    body: str = "The nightly export stopped at 02:00.\r\n",
    *,
    top: str = "",
) -> bytes:
    """A plain mail with CRLF line ends; ``top`` is put above its headers (trace lines)."""
    return (
        f"{top}From: {sender}\r\nTo: support@intake.localhost\r\nSubject: {subject}\r\n"
        f"Date: {format_datetime(_NOW)}\r\nMessage-ID: {make_msgid(domain='acme.example')}\r\n"
        f"MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n{body}"
    ).encode()


def dkim_signed(raw: bytes, domain: str, key: Key, *, length: bool = False) -> bytes:
    """``raw`` with a DKIM-Signature of ``domain`` on top (``l=`` when ``length``)."""
    signature = dkim.sign(
        raw,
        SELECTOR.encode(),
        domain.encode(),
        key.private_pem,
        include_headers=[b"from", b"to", b"subject", b"date", b"message-id"],
        length=length,
    )
    return bytes(signature) + raw


def arc_sealed(raw: bytes, forwarder: str, key: Key, results: str) -> bytes:
    """``raw`` as the forwarder ``forwarder`` passes it on: its Authentication-Results
    (``results``, e.g. ``dmarc=pass header.from=acme.example``) and an ARC set over them."""
    with_results = f"Authentication-Results: {forwarder}; {results}\r\n".encode() + raw
    headers = dkim.arc_sign(
        with_results,
        SELECTOR.encode(),
        forwarder.encode(),
        key.private_pem,
        forwarder.encode(),
        include_headers=[b"from", b"to", b"subject", b"date", b"message-id"],
    )
    return b"".join(headers) + with_results


def with_appended_part(raw: bytes, text: str) -> bytes:
    """The message with ``text`` added to the end of its body (as a list footer or a forger)."""
    return raw + text.encode()


_NOW = __import__("datetime").datetime(2026, 12, 3, 12, 0, tzinfo=__import__("datetime").UTC)
