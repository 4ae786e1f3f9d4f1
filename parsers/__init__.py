"""Parsers: raw bytes in, typed results out; pure functions with no I/O and no database.

Nothing here imports the rest of the gateway (``intake``, ``web``, ``voice``) or any web or
database library; every function accepts any input and never raises on it, except
:func:`read_message`, which raises its own typed :class:`UnparseableMessage`.
"""

from parsers.body import AttachmentInfo, ParsedBody, parse_body
from parsers.category import end_user_category
from parsers.headers import HeaderSummary, content_digest, read_headers
from parsers.html_clean import sanitise_html
from parsers.message import MessageContent, UnparseableMessage, clean_text, read_message
from parsers.replies import strip_reply
from parsers.reports import DeliveryReport, RecipientStatus, read_delivery_report
from parsers.severity import severity_from_body, severity_from_subject
from parsers.tokens import (
    LOOP_HEADER,
    SignedToken,
    reply_tokens_in,
    request_numbers_in,
    signed_ids_in,
)

__all__ = [
    "LOOP_HEADER",
    "AttachmentInfo",
    "DeliveryReport",
    "HeaderSummary",
    "MessageContent",
    "ParsedBody",
    "RecipientStatus",
    "SignedToken",
    "UnparseableMessage",
    "clean_text",
    "content_digest",
    "end_user_category",
    "parse_body",
    "read_delivery_report",
    "read_headers",
    "read_message",
    "reply_tokens_in",
    "request_numbers_in",
    "sanitise_html",
    "severity_from_body",
    "severity_from_subject",
    "signed_ids_in",
    "strip_reply",
]
