"""Read what the SMTP handler needs from a raw message's header block, fast and never raising.

Only the header block is looked at (at most ``fields.HEADER_CAP`` bytes of it), without building
an ``email.message.Message``: a 4 KB message costs about a tenth of a millisecond.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from parsers.addresses import read_author
from parsers.automatic import classify, facts_for
from parsers.digest import content_digest
from parsers.encoded_words import decode_words
from parsers.fields import HeaderFields, collapse, read_fields
from parsers.tokens import LOOP_HEADER, SignedToken, reply_tokens_in

__all__ = ["HeaderSummary", "content_digest", "read_headers"]

SUBJECT_CAP = 998  # RFC 5322's line limit: enough for any real subject
_SUBJECT_RAW_CAP = 32 * SUBJECT_CAP  # encoded words need up to ~20 characters per character
_IDS_CAP = 200  # message ids kept from the In-Reply-To (or the References) headers
_VALUE_CAP = 64 * 1024
_MESSAGE_ID = re.compile(r"<[^<>\s]+>")
# Where a reply address of ours shows up: the author's To/Cc, and what the delivering MTA adds.
_RECIPIENT_FIELDS = ("to", "cc", "delivered-to", "x-original-to", "envelope-to")
_RECIPIENTS_CAP = 16 * 1024  # characters of each recipient field searched for reply tokens


@dataclass(frozen=True)
class HeaderSummary:
    """What the intake door needs to know about a message before it answers the sender."""

    from_address: str
    from_name: str
    from_count: int
    subject: str
    message_id: str
    in_reply_to: tuple[str, ...]
    references: tuple[str, ...]
    automatic: str | None
    date: str
    loop_marker: bool = False  # it carries our LOOP_HEADER: a gateway sent it
    reply_tokens: tuple[SignedToken, ...] = ()  # from reply addresses of ours it was sent to


def read_headers(raw: bytes) -> HeaderSummary:
    """The summary of ``raw``'s header block; any bytes give a summary, never an exception."""
    fields = read_fields(raw)
    author = read_author(fields.all("from"))
    subject = decode_subject(fields.first("subject"))
    return HeaderSummary(
        from_address=author.address,
        from_name=author.name,
        from_count=author.count,
        subject=subject,
        message_id=first_message_id(fields.first("message-id")),
        in_reply_to=message_ids(fields, "in-reply-to"),
        references=message_ids(fields, "references"),
        automatic=classify(facts_for(fields, subject, author.address)),
        date=collapse(fields.first("date")[:_VALUE_CAP])[:SUBJECT_CAP],
        loop_marker=fields.has(LOOP_HEADER.lower()),
        reply_tokens=reply_tokens_in(_recipient_text(fields)),
    )


def _recipient_text(fields: HeaderFields) -> str:
    return " ".join(
        value[:_RECIPIENTS_CAP] for name in _RECIPIENT_FIELDS for value in fields.all(name)[:4]
    )


def decode_subject(value: str) -> str:
    """A Subject value unfolded, RFC 2047 decoded, whitespace collapsed, at most 998 chars."""
    text = collapse(value)[:_SUBJECT_RAW_CAP]
    return collapse(decode_words(text))[:SUBJECT_CAP]


def first_message_id(value: str) -> str:
    """The first ``<id>`` in a Message-ID value, as written; a bare id gets its brackets."""
    found = _MESSAGE_ID.search(value[:_VALUE_CAP])
    if found:
        return found.group(0)
    token = value.split(maxsplit=1)[0] if value.strip() else ""
    return f"<{token}>"[:SUBJECT_CAP] if token and "<" not in token and ">" not in token else ""


def message_ids(fields: HeaderFields, name: str) -> tuple[str, ...]:
    """The ``<id>``s in every ``name`` header, in order, without repeats, at most 200."""
    seen: dict[str, None] = {}
    for value in fields.all(name):
        for found in _MESSAGE_ID.finditer(value[:_VALUE_CAP]):
            seen.setdefault(found.group(0), None)
            if len(seen) >= _IDS_CAP:
                return tuple(seen)
    return tuple(seen)
