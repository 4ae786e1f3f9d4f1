"""Parsers: raw bytes in, typed results out; pure functions with no I/O and no database.

Nothing here imports the rest of the gateway (``intake``, ``web``, ``voice``) or any web or
database library; every function accepts any input and never raises on it.
"""

from parsers.body import AttachmentInfo, ParsedBody, parse_body
from parsers.category import end_user_category
from parsers.headers import HeaderSummary, content_digest, read_headers
from parsers.severity import severity_from_body, severity_from_subject
from parsers.tokens import request_numbers_in

__all__ = [
    "AttachmentInfo",
    "HeaderSummary",
    "ParsedBody",
    "content_digest",
    "end_user_category",
    "parse_body",
    "read_headers",
    "request_numbers_in",
    "severity_from_body",
    "severity_from_subject",
]
