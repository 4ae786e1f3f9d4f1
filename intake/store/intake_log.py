"""The intake log's words: its outcomes, each decision's reason in words, and a readable view
of a message.

Staff look at the log to learn why a message did or did not become a request; a reason code
such as ``outside_support_period`` is exact but terse, so the pages show these sentences.
"""

from __future__ import annotations

from parsers import parse_body

OUTCOMES = ("accepted", "appended", "rejected", "quarantined", "suppressed", "duplicate")
# Outcomes that still need a worker to finish them (open the request, append the message).
PENDING_OUTCOMES = ("accepted", "appended")

PREVIEW_LIMIT = 20_000  # characters of a message's text shown on its page

OUTCOME_WORDS = {
    "accepted": "became a new request",
    "appended": "was added to an existing request",
    "rejected": "was refused",
    "quarantined": "is held in quarantine",
    "suppressed": "was kept but not answered",
    "duplicate": "repeated an earlier delivery",
}

REASON_WORDS = {
    "new_request": "A registered contact opened a new request.",
    "follow_up": "It replies to one of the customer's requests.",
    "released": "A staff member released it from the quarantine.",
    "unknown_sender": "The sender is not a registered contact of any customer.",
    "inactive_contact": "The sender is a contact whose registration is no longer active.",
    "outside_support_period": "The customer's support period does not cover the day it came.",
    "category_not_allowed": "End users may only report platform or recording problems.",
    "sender_not_authenticated": "The sender's domain did not authenticate it (DMARC).",
    "unparseable": "The message could not be read; its raw copy is kept.",
    "auto_submitted": "An automatic reply (out-of-office and the like); never answered.",
    "bounce": "A delivery failure report; never answered.",
    "list_mail": "Mail from a mailing list; never answered.",
    "rate_limited": "Too many acknowledgments to this sender lately; this one was held back.",
    "too_large": "The message is over the size limit.",
    "loop": "Our own mail came back to us (our loop marker or our own address); never answered.",
    "parse_error": "The message could not be parsed; it is kept raw in the quarantine.",
    "ambiguous_sender": "It names more than one sender, so who sent it is unclear.",
    "reopened": "It replies to a resolved or closed request, which it opened again.",
    "unsendable": "The request opened, but its acknowledgment could not be composed or sent.",
    "status_inquiry": "A caller asked for the status of a request by phone.",
    "call_abandoned": "The caller hung up before a request could be opened.",
    "pin_lockout": "Wrong PINs spent an hourly budget, so PIN entry was locked for the caller.",
    "imap_failure": "It could not be read from its mailbox, time after time; it was moved to "
    "the mailbox's quarantine folder.",
}


def reason_in_words(outcome: str, reason: str) -> str:
    """A sentence for a decision: the reason's own sentence, or what the outcome means."""
    if reason in REASON_WORDS:
        return REASON_WORDS[reason]
    words = OUTCOME_WORDS.get(outcome, outcome)
    return f"It {words}" + (f" ({reason.replace('_', ' ')})." if reason else ".")


def body_preview(raw: bytes | None, size: int | None = None) -> str:
    """The message's readable text (HTML turned to text), cut to PREVIEW_LIMIT characters;
    ``size`` is the whole message's (a refused one keeps only its start)."""
    if not raw:
        return ""
    text = parse_body(raw).text
    if size is not None and len(raw) < size:
        return text[:PREVIEW_LIMIT] + "\n[… the rest of this refused message was not kept]"
    if len(text) > PREVIEW_LIMIT:
        return text[:PREVIEW_LIMIT] + "\n[… cut here; the raw message is kept in full]"
    return text
