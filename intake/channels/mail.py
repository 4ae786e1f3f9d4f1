"""Raw mail bytes to an InboundMessage: the header facts the pipeline decides on."""

from __future__ import annotations

from intake.inbound import InboundMessage
from parsers import content_digest, end_user_category, read_headers, request_numbers_in


def inbound_from_mail(
    raw: bytes, *, recipients: tuple[str, ...] = (), envelope_sender: str | None = None
) -> InboundMessage:
    """Only the headers are read here (the body is parsed later by a worker); a null envelope
    sender marks the message as a bounce, whatever its headers say."""
    headers = read_headers(raw)
    automatic = headers.automatic
    if envelope_sender is not None and envelope_sender.strip("<> ") == "" and not automatic:
        automatic = "bounce"
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
        request_numbers=request_numbers_in(headers.subject),
        automatic=automatic,
        category=end_user_category(headers.subject),
    )
