"""Support for the sender-verification tests and benchmark: RSA keys made here, messages
signed with dkimpy (DKIM and ARC sets), and the DNS records that publish keys and policies."""

from __future__ import annotations

import base64
import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass
from email.utils import format_datetime, make_msgid

import dkim
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from tests.dns_server import Zone

SELECTOR = "s1"
_DATE = dt.datetime(2026, 12, 3, 12, 0, tzinfo=dt.UTC)


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
        f"Date: {format_datetime(_DATE)}\r\nMessage-ID: {make_msgid(domain='acme.example')}\r\n"
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


# The verdict cases: one per situation the tests and the benchmark's table cover.

ALIGNED_IP = "192.0.2.10"  # the only address acme.example's SPF record allows
OTHER_IP = "203.0.113.5"
BORDER = "mx.border.example"  # a trusted authserv-id
FORWARDER = "lists.example"  # a trusted ARC sealer
STRANGER = "relay.example"  # seals ARC too, but nobody trusts it


@dataclass(frozen=True)
class Keys:
    acme: Key
    other: Key
    forwarder: Key
    stranger: Key

    @classmethod
    def generate(cls) -> Keys:
        return cls(Key.generate(), Key.generate(), Key.generate(), Key.generate())


def publish_world(zone: Zone, keys: Keys) -> None:
    """The domains of the cases: keys, SPF and DMARC records, a broken and a silent domain."""
    publish_key(zone, "acme.example", keys.acme)
    publish_dmarc(zone, "acme.example", "v=DMARC1; p=reject; rua=mailto:dmarc@acme.example")
    publish_spf(zone, "acme.example", f"v=spf1 ip4:{ALIGNED_IP} -all")
    publish_key(zone, "other.example", keys.other)
    publish_spf(zone, "other.example", f"v=spf1 ip4:{OTHER_IP} -all")
    publish_dmarc(zone, "globex.example", "v=DMARC1; p=quarantine")
    publish_spf(zone, "globex.example", "v=spf1 -all")
    publish_dmarc(zone, "initech.example", "v=DMARC1; p=none")
    publish_spf(zone, "initech.example", "v=spf1 -all")
    publish_dmarc(zone, "umbrella.example", "v=DMARC1; p=none; sp=reject")
    publish_key(zone, FORWARDER, keys.forwarder)
    publish_key(zone, STRANGER, keys.stranger)
    zone.servfail.add("broken.example")
    zone.silent.add("silent.example")


@dataclass(frozen=True)
class Expected:
    dmarc: str
    spf: str
    dkim: str
    arc: str
    held: bool  # enforce quarantines it


@dataclass(frozen=True)
class Case:
    name: str
    build: Callable[[Keys], bytes]
    client_ip: str
    mail_from: str
    expected: Expected


def _forwarded(keys: Keys, sealer: str, key: Key) -> bytes:
    """Ada's signed mail through a list that adds a footer (breaking DKIM) and seals it."""
    signed = dkim_signed(message(), "acme.example", keys.acme)
    footer = with_appended_part(signed, "-- \r\nThe users list\r\n")
    return arc_sealed(footer, sealer, key, "dmarc=pass header.from=acme.example")


_FORGED_RESULTS = f"Authentication-Results: {BORDER}; dmarc=pass header.from=acme.example\r\n"
_SENDERS_SERVER = f"Received: from [10.9.8.7] by mail.evil.example ([{OTHER_IP}])\r\n"
_BORDER_FAIL = (
    f"Authentication-Results: {BORDER}; spf=fail smtp.mailfrom=ada@acme.example;"
    " dmarc=fail header.from=acme.example\r\n"
    f"Received: from mail.evil.example ([{OTHER_IP}]) by {BORDER}\r\n"
)
_BORDER_PASS = (
    f"Authentication-Results: {BORDER}; spf=pass smtp.mailfrom=ada@acme.example;"
    " dmarc=pass header.from=acme.example\r\n"
    f"Received: from mx.acme.example ([{ALIGNED_IP}]) by {BORDER}\r\n"
)

CASES = (
    Case(
        "dkim aligned pass",
        lambda k: dkim_signed(message(), "acme.example", k.acme),
        OTHER_IP, "bounces@mailer.example",
        Expected("pass", "none", "pass", "none", held=False),
    ),
    Case(
        "dkim of another domain only",
        lambda k: dkim_signed(message(), "other.example", k.other),
        OTHER_IP, "ada@other.example",
        Expected("fail", "pass", "pass", "none", held=True),
    ),
    Case(
        "spf aligned pass",
        lambda k: message(),
        ALIGNED_IP, "ada@acme.example",
        Expected("pass", "pass", "none", "none", held=False),
    ),
    Case(
        "both fail under p=reject",
        lambda k: message(),
        OTHER_IP, "ada@acme.example",
        Expected("fail", "fail", "none", "none", held=True),
    ),
    Case(
        "both fail under p=quarantine",
        lambda k: message("Hedy Lamarr <hedy@globex.example>"),
        OTHER_IP, "hedy@globex.example",
        Expected("fail", "fail", "none", "none", held=True),
    ),
    Case(
        "p=none",
        lambda k: message("Peter <peter@initech.example>"),
        OTHER_IP, "peter@initech.example",
        Expected("none", "fail", "none", "none", held=False),
    ),
    Case(
        "no DMARC record",
        lambda k: message("Nobody <someone@norecord.example>"),
        OTHER_IP, "someone@norecord.example",
        Expected("none", "none", "none", "none", held=False),
    ),
    Case(
        "subdomain under sp=reject",
        lambda k: message("Ops <ops@eu.umbrella.example>"),
        OTHER_IP, "ops@eu.umbrella.example",
        Expected("fail", "none", "none", "none", held=True),
    ),
    Case(
        "l= signature, body intact",
        lambda k: dkim_signed(message(), "acme.example", k.acme, length=True),
        OTHER_IP, "ada@acme.example",
        Expected("pass", "fail", "pass", "none", held=False),
    ),
    Case(
        "l= signature with an appended part",
        lambda k: with_appended_part(
            dkim_signed(message(), "acme.example", k.acme, length=True),
            "\r\nPS: wire the payment to the new account today.\r\n",
        ),
        OTHER_IP, "ada@acme.example",
        Expected("fail", "fail", "policy", "none", held=True),
    ),
    Case(
        "forged Authentication-Results from the sender",
        lambda k: _SENDERS_SERVER.encode() + message(top=_FORGED_RESULTS),
        OTHER_IP, "ada@acme.example",
        Expected("fail", "fail", "none", "none", held=True),
    ),
    Case(
        "forged Authentication-Results below the border's",
        lambda k: _BORDER_FAIL.encode() + message(top=_FORGED_RESULTS),
        OTHER_IP, "ada@acme.example",
        Expected("fail", "fail", "none", "none", held=True),
    ),
    Case(
        "trusted Authentication-Results from the border",
        lambda k: _BORDER_PASS.encode() + message(),
        "10.0.0.25", "ada@acme.example",
        Expected("pass", "pass", "none", "none", held=False),
    ),
    Case(
        "ARC chain from a trusted forwarder",
        lambda k: _forwarded(k, FORWARDER, k.forwarder),
        "198.51.100.7", f"users-bounces@{FORWARDER}",
        Expected("fail", "none", "fail", "pass", held=False),
    ),
    Case(
        "ARC chain from an untrusted sealer",
        lambda k: _forwarded(k, STRANGER, k.stranger),
        "198.51.100.8", f"users-bounces@{STRANGER}",
        Expected("fail", "none", "fail", "pass", held=True),
    ),
    Case(
        "SERVFAIL",
        lambda k: message("Ada <ada@broken.example>"),
        OTHER_IP, "ada@broken.example",
        Expected("temperror", "temperror", "temperror", "none", held=False),
    ),
    Case(
        "timeout",
        lambda k: message("Ada <ada@silent.example>"),
        OTHER_IP, "ada@silent.example",
        Expected("temperror", "temperror", "temperror", "none", held=False),
    ),
)  # fmt: skip
