"""Raw mail bytes to an InboundMessage: the header facts the pipeline decides on.

Only the headers are read here (the body is parsed later by a worker). Two facts need the
gateway's own configuration, :class:`OwnMail`: whether the mail comes from the gateway itself
(a loop), and which request numbers its threading tokens name (tags are checked against our
key; a guessed number fails the check and counts for nothing).
"""

from __future__ import annotations

from dataclasses import dataclass

from intake.outbox.links import verified_numbers
from intake.pipeline.inbound import InboundMessage
from intake.senderauth import Verdict
from intake.settings import Settings
from parsers import (
    HeaderSummary,
    content_digest,
    end_user_category,
    read_headers,
    reply_tokens_in,
    request_numbers_in,
    signed_ids_in,
)

LOOP = "loop"


@dataclass(frozen=True)
class OwnMail:
    """What the door knows of the mail the gateway sends: the key that signs its tokens, and
    its own addresses (mail from them is our own coming back)."""

    secret_key: str = ""
    addresses: frozenset[str] = frozenset()

    @classmethod
    def from_settings(cls, settings: Settings) -> OwnMail:
        own = {settings.ack_from.lower(), *(a.lower() for a in settings.support_addresses)}
        return cls(settings.secret_key, frozenset(own))

    def sent(self, address: str) -> bool:
        """Whether ``address`` is one of ours, a plus-address (support+sr-...) included."""
        local, _, domain = address.rpartition("@")
        return f"{local.partition('+')[0]}@{domain}" in self.addresses


NOTHING_OWN = OwnMail()


def inbound_from_mail(
    raw: bytes,
    *,
    recipients: tuple[str, ...] = (),
    envelope_sender: str | None = None,
    own: OwnMail = NOTHING_OWN,
    sender_auth: Verdict | None = None,
    sender_auth_mode: str = "off",
    client_ip: str = "",
) -> InboundMessage:
    """The InboundMessage of ``raw``; a null envelope sender marks it as a bounce.

    ``sender_auth`` is the door's verdict on the sender, checked under ``sender_auth_mode``.
    """
    headers = read_headers(raw)
    signed = _signed_numbers(headers, recipients, own)
    return InboundMessage(
        channel="email",
        sender=headers.from_address,
        sender_count=headers.from_count,
        dedupe_key="email:" + content_digest(raw),
        raw=raw,
        subject=headers.subject,
        message_id=headers.message_id,
        recipients=recipients,
        in_reply_to=headers.in_reply_to,
        references=headers.references,
        request_numbers=tuple(dict.fromkeys((*signed, *request_numbers_in(headers.subject)))),
        signed_request_numbers=signed,
        automatic=_automatic(headers, envelope_sender, own),
        category=end_user_category(headers.subject),
        sender_auth=sender_auth,
        sender_auth_mode=sender_auth_mode,
        client_ip=client_ip,
        envelope_sender=envelope_sender or "",
    )


def _automatic(headers: HeaderSummary, envelope_sender: str | None, own: OwnMail) -> str | None:
    """Why the mail must not be answered: our own loop marker or address first (answering it
    would talk to ourselves), then what the headers say, then a null envelope sender."""
    if headers.loop_marker or (headers.from_address and own.sent(headers.from_address)):
        return LOOP
    if headers.automatic:
        return headers.automatic
    if envelope_sender is not None and envelope_sender.strip("<> ") == "":
        return "bounce"
    return None


def _signed_numbers(
    headers: HeaderSummary, recipients: tuple[str, ...], own: OwnMail
) -> tuple[str, ...]:
    """The numbers of the Message-IDs and reply addresses of our mail whose tags verify; the
    pipeline still checks that each belongs to the sender's customer."""
    if not own.secret_key:
        return ()
    tokens = (
        *signed_ids_in((*headers.in_reply_to, *headers.references)),
        *headers.reply_tokens,
        *reply_tokens_in(" ".join(recipients)),
    )
    return tuple(dict.fromkeys(verified_numbers(own.secret_key, tokens)))
