"""The one thing every door produces: an inbound item, frozen and typed, ready for the pipeline."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

from intake.senderauth.verdict import Verdict
from intake.store.models import utcnow

CHANNELS = ("email", "phone", "web")
# The contacts' portal writes a request as a MIME message; this header carries the severity
# the contact chose (the worker reads it instead of looking for [Sev2] in the subject).
SEVERITY_HEADER = "X-Intake-Severity"


@dataclass(frozen=True)
class InboundMessage:
    """An inbound mail, call or portal submission, as the door saw it.

    ``dedupe_key`` identifies the item across redeliveries (a content digest for mail, the
    CallSid for a call); ``automatic`` names why it was machine-sent (auto-reply, bounce, list
    mail) or is None; ``category`` is the problem area an end user named (platform, recording);
    ``contact_id`` is the contact the door already identified (a caller, by caller ID or by
    registered number and PIN), or None to look the sender up by its address.
    ``sender_auth`` is the verdict on a mail's sender (None when not checked) and
    ``sender_auth_mode`` the INTAKE_SENDER_AUTH it was checked under; ``client_ip`` and
    ``envelope_sender`` are what the SMTP session said (the connecting IP, MAIL FROM).

    ``signed_request_numbers`` are the request numbers named by a token of our own mail whose
    HMAC tag verified (Message-IDs, reply addresses); ``request_numbers`` holds them and those
    of the subject. ``sender_verified`` says the sender is who it claims (a mail's From passed
    DMARC, a caller gave the PIN or a fully attested caller ID): only then does a bare
    ``[SR-n]`` in the subject reach a request.
    """

    channel: str
    sender: str
    dedupe_key: str
    raw: bytes
    subject: str = ""
    message_id: str = ""
    recipients: tuple[str, ...] = ()
    in_reply_to: tuple[str, ...] = ()
    references: tuple[str, ...] = ()
    request_numbers: tuple[str, ...] = ()
    signed_request_numbers: tuple[str, ...] = ()
    automatic: str | None = None
    category: str | None = None
    sender_count: int = 1
    contact_id: int | None = None
    sender_auth: Verdict | None = None
    sender_auth_mode: str = "off"
    client_ip: str = ""
    envelope_sender: str = ""
    sender_verified: bool = False
    received_at: dt.datetime = field(default_factory=utcnow)
