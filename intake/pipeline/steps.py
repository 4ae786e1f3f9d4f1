"""The intake pipeline: the decision every inbound item gets before the door answers.

One ordered table of small named steps (in the manner of Mailman's rules). Each step looks at
the item and either decides its outcome or passes it on; the first decision wins. The decision
and the raw item are committed as one intake-log row before the door replies, so a 250 or a
TwiML answer always stands on something durable. The rest (opening the request, the
acknowledgment) is done by a worker from the row, see :mod:`intake.pipeline.processing`.
"""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import insert
from sqlalchemy.exc import DBAPIError, IntegrityError
from sqlalchemy.orm import Session

from intake.errors import StorageUnavailable
from intake.pipeline.inbound import InboundMessage
from intake.store.contacts import UNVERIFIED_REFUSAL, ContactView, refusal_for
from intake.store.db import Database
from intake.store.intake_log import PENDING_OUTCOMES
from intake.store.lookups import Lookups
from intake.store.models import REOPENABLE, IntakeRecord, parse_request_number
from parsers import clean_text

# What the intake log keeps of a refused mail (the row records the whole size).
REFUSED_BODY_PREFIX = 64 * 1024
REFUSED_HEADER_LIMIT = 256 * 1024


@dataclass(frozen=True)
class Decision:
    outcome: str
    reason: str = ""
    sentence: str = ""  # for rejections: what the sender is told
    contact_id: int | None = None
    request_id: int | None = None
    duplicate_of: int | None = None
    detail: str = ""  # what staff read in the intake log, when it says more than ``sentence``
    sender_verified: bool = False  # as the steps left it (see Context); kept on the row

    @property
    def needs_worker(self) -> bool:
        """Work is left after the reply: a request to open or a follow-up to append, or a
        bounce to read (it may report one of our acknowledgments undeliverable)."""
        if self.duplicate_of is not None:
            return False
        return self.outcome in PENDING_OUTCOMES or (self.outcome, self.reason) == SUPPRESSED_BOUNCE


SUPPRESSED_BOUNCE = ("suppressed", "bounce")


@dataclass
class Context:
    """What the steps share while deciding one item.

    ``sender_verified`` starts as the door saw it (:class:`InboundMessage`); a step that
    verifies the sender (a mail's DMARC verdict) may set it before the steps that read it.
    """

    lookups: Lookups
    message: InboundMessage
    contact: ContactView | None = None
    sender_verified: bool = False


Step = Callable[[Context], Decision | None]


def find_duplicate(ctx: Context) -> Decision | None:
    """The same item delivered again (a lost 250, an IMAP replay, a Twilio retry)."""
    original = ctx.lookups.original(ctx.message.dedupe_key)
    if original is None:
        return None
    # A repeat of a refused item is refused again, with what its sender was told the first time.
    if original.outcome != "rejected":
        return Decision("duplicate", original.reason, duplicate_of=original.id)
    told = original.detail if original.sender_verified else UNVERIFIED_REFUSAL
    return Decision("rejected", original.reason, told, duplicate_of=original.id)


def suppress_automatic(ctx: Context) -> Decision | None:
    """Auto-replies, bounces and list mail are kept but never answered."""
    if ctx.message.automatic:
        return Decision("suppressed", ctx.message.automatic)
    return None


def authenticate_sender(ctx: Context) -> Decision | None:
    """Mail whose From domain fails DMARC under a quarantine or reject policy is held, with
    the verdict as its evidence, where sender checks are enforced: INTAKE_SENDER_AUTH, or the
    sender's customer's own mode (a customer whose mail cannot pass yet may be set to monitor).
    Whoever the From header names, a held message opens nothing and is answered by nothing."""
    msg, verdict = ctx.message, ctx.message.sender_auth
    if verdict is not None and verdict.dmarc == "pass":
        ctx.sender_verified = True  # the From domain is proven: its [SR-n] may reach a request
    if verdict is None or not verdict.fails_policy:
        return None
    contact = ctx.lookups.contact_by_email(msg.sender) if msg.sender else None
    mode = (contact.sender_auth if contact else "") or msg.sender_auth_mode
    if mode != "enforce":
        return None
    contact_id = contact.contact_id if contact else None
    return Decision(
        "quarantined", "sender_not_authenticated", verdict.explanation, contact_id=contact_id
    )


def check_entitlement(ctx: Context) -> Decision | None:
    """Only an active registered contact of a supported customer may open a request."""
    msg = ctx.message
    if msg.contact_id is not None:  # the door identified the sender (a caller, by phone and PIN)
        ctx.contact = ctx.lookups.contact_by_id(msg.contact_id)
    else:
        ctx.contact = ctx.lookups.contact_by_email(msg.sender) if msg.sender else None
    refusal = refusal_for(ctx.contact, msg.sender, msg.received_at.date(), msg.category)
    if refusal is None:
        return None
    contact_id = ctx.contact.contact_id if ctx.contact else None
    told = refusal.told(ctx.sender_verified)
    return Decision(
        "rejected", refusal.reason, told, contact_id=contact_id, detail=refusal.sentence
    )


def hold_ambiguous_author(ctx: Context) -> Decision | None:
    """Two From headers (or addresses) are how a forger shows a mail client one author and a
    sender check another: such mail waits in the quarantine for a person to look at it."""
    msg = ctx.message
    if msg.channel != "email" or msg.sender_count <= 1:
        return None
    contact_id = ctx.contact.contact_id if ctx.contact else None
    sentence = f"The message names {msg.sender_count} authors in its From headers."
    return Decision("quarantined", "ambiguous_sender", sentence, contact_id=contact_id)


def find_request_replied_to(ctx: Context) -> Decision | None:
    """A follow-up names one of the customer's requests, and only the sender's customer's: by a
    signed token of our mail (the door verified its tag), or, from a verified sender, by the
    subject's [SR-000123]. Request numbers are sequential: from an unverified sender a bare
    number in the subject could be anyone's guess, so such mail opens a request of its own."""
    assert ctx.contact is not None  # check_entitlement ran before
    msg = ctx.message
    numbers = msg.request_numbers if ctx.sender_verified else msg.signed_request_numbers
    for request_id in _candidate_requests(numbers):
        replied = ctx.lookups.replied_request(request_id)
        if replied is not None and replied.customer_id == ctx.contact.customer_id:
            # Said at the door already, so that its log line and the intake log agree.
            reason = "reopened" if replied.status in REOPENABLE else "follow_up"
            return Decision(
                "appended", reason, contact_id=ctx.contact.contact_id, request_id=request_id
            )
    return None


def accept_new_request(ctx: Context) -> Decision:
    assert ctx.contact is not None
    return Decision(
        "accepted", "new_request", contact_id=ctx.contact.contact_id, detail=_unfollowed(ctx)
    )


def _unfollowed(ctx: Context) -> str:
    """For staff: the subject named a request that an unverified sender cannot reach."""
    ignored = [
        n for n in ctx.message.request_numbers if n not in ctx.message.signed_request_numbers
    ]
    if ctx.sender_verified or not ignored:
        return ""
    return (
        f"The subject names {', '.join(ignored)}, but the sender is not verified and the mail "
        "carries no reply token of ours: it was taken as a new request."
    )


def _candidate_requests(numbers: Sequence[str]) -> list[int]:
    ids = [i for n in numbers if (i := parse_request_number(n)) is not None]
    return list(dict.fromkeys(ids))


# The order matters: a duplicate is recognised before anything else, machine mail is never
# refused (a refusal would answer a robot), a forged sender is held before the contact the
# From header names counts for anything (a refusal would tell a forger who is registered), an
# unknown sender is refused before anything of his is kept in the quarantine for another
# reason, and only an entitled sender can reach a request.
STEPS: tuple[tuple[str, Step], ...] = (
    ("dedupe", find_duplicate),
    ("classify", suppress_automatic),
    ("authenticate", authenticate_sender),
    ("entitle", check_entitlement),
    ("single_author", hold_ambiguous_author),
    ("correlate", find_request_replied_to),
    ("open", accept_new_request),
)


def decide(session: Session, message: InboundMessage, lookups: Lookups | None = None) -> Decision:
    ctx = Context(lookups or Lookups(session), message, sender_verified=message.sender_verified)
    for _name, step in STEPS:
        decision = step(ctx)
        if decision is not None:
            return dataclasses.replace(decision, sender_verified=ctx.sender_verified)
    raise AssertionError("the last step always decides")


def record(
    db: Database, message: InboundMessage, lock_timeout: float | None = None
) -> tuple[Decision, int]:
    """Decide the item's outcome and commit it with the raw bytes; returns the intake row's id.

    Raises StorageUnavailable when the database cannot store it (the door answers 'try later'),
    also when a lock is not had within ``lock_timeout`` seconds.
    """
    try:
        try:
            return _decide_and_store(db, message, lock_timeout)
        except IntegrityError:
            # A concurrent delivery of the same item won the race; deciding again finds it.
            return _decide_and_store(db, message, lock_timeout)
    except DBAPIError as exc:
        raise StorageUnavailable(str(exc.orig or exc)) from exc


def _decide_and_store(
    db: Database, message: InboundMessage, lock_timeout: float | None
) -> tuple[Decision, int]:
    with db.transaction(lock_timeout) as session:
        return record_in(session, message)


def record_in(session: Session, message: InboundMessage) -> tuple[Decision, int]:
    """As :func:`record`, inside the caller's transaction, which the caller commits.

    For a door that must commit state of its own with the decision: the phone door locks its
    call row, records the call once, and notes the row's id on the call, all in one commit.
    """
    return record_many_in(session, [message], Lookups(session))[0]


def record_many_in(
    session: Session, messages: Sequence[InboundMessage], lookups: Lookups
) -> list[tuple[Decision, int]]:
    """Decide several items (with distinct dedupe keys) and insert their rows in one statement.

    A Core insert rather than ORM objects: on the SMTP door this runs for every message, and
    the unit of work's bookkeeping would cost more than the insert itself.
    """
    decisions = [decide(session, m, lookups) for m in messages]
    rows = [_intake_values(m, d) for m, d in zip(messages, decisions, strict=True)]
    statement = insert(IntakeRecord).returning(IntakeRecord.id, sort_by_parameter_order=True)
    ids = session.scalars(statement, rows).all()
    return list(zip(decisions, ids, strict=True))


def _intake_values(msg: InboundMessage, decision: Decision) -> dict[str, Any]:
    repeat = decision.duplicate_of is not None
    detail = decision.detail or decision.sentence
    if repeat:
        detail = f"same as intake #{decision.duplicate_of}"
    return {
        "channel": msg.channel,
        "received_at": msg.received_at,
        # Header text can hold NUL or lone surrogates (UTF-7 words), which no database stores.
        "sender": clean_text(msg.sender[:320]),
        "recipients": clean_text(",".join(msg.recipients)),
        "subject": clean_text(msg.subject),
        "message_id": clean_text(msg.message_id[:998]),
        # A repeat gets its own row, keyed apart from the original, and no second raw copy.
        "dedupe_key": f"{msg.dedupe_key}:repeat:{uuid.uuid4().hex}" if repeat else msg.dedupe_key,
        "outcome": "duplicate" if repeat else decision.outcome,
        "reason": decision.reason,
        "detail": clean_text(detail),
        "state": "pending" if decision.needs_worker else "done",
        "attempts": 0,
        "last_error": "",
        "contact_id": decision.contact_id,
        "request_id": decision.request_id,
        "size": len(msg.raw),
        "raw": None if repeat else _kept_copy(msg, decision),
        "auth": msg.sender_auth.as_json() if msg.sender_auth else None,
        "sender_verified": decision.sender_verified,
    }


def _kept_copy(msg: InboundMessage, decision: Decision) -> bytes:
    """A refused mail costs bounded storage: its headers and the start of its body; anything
    else is kept whole (it becomes a request, or staff may release it)."""
    if decision.outcome != "rejected" or msg.channel != "email":
        return msg.raw
    return refused_copy(msg.raw)


def refused_copy(raw: bytes) -> bytes:
    """The headers (up to ``REFUSED_HEADER_LIMIT``) and at most ``REFUSED_BODY_PREFIX`` bytes
    of the body."""
    split = _end_of_headers(raw)
    headers, body = raw[:split], raw[split:]
    return headers[:REFUSED_HEADER_LIMIT] + body[:REFUSED_BODY_PREFIX]


def _end_of_headers(raw: bytes) -> int:
    """Where the body starts: after the first empty line (or the end, when there is none)."""
    ends = [i + len(sep) for sep in (b"\r\n\r\n", b"\n\n") if (i := raw.find(sep)) >= 0]
    return min(ends) if ends else len(raw)
