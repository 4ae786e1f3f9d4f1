"""Messages fetched from a mailbox into the intake log: the same pipeline as the SMTP door
(dedupe by content digest and Message-ID, the sender's entitlement, threading), decided and
inserted in one transaction that also moves the mailbox's position past them.

So a message is either recorded with the position past it, or neither: a poller that dies
between the commit and the MOVE finds the message below its position when it comes back and
only moves it, and one that dies before the commit fetches it again. A message the steps
cannot decide fails alone: the others of its batch are recorded one by one.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from email.parser import BytesHeaderParser
from email.utils import getaddresses

from sqlalchemy.exc import DBAPIError, IntegrityError
from sqlalchemy.orm import Session

from intake.errors import StorageUnavailable
from intake.mail.message import OwnMail, inbound_from_mail
from intake.mail.registration_note import note_unknown_sender_in, wants_note
from intake.pipeline.inbound import InboundMessage
from intake.pipeline.steps import Decision, record_many_in
from intake.senderauth import verifier_from_settings
from intake.settings import Settings
from intake.store.db import Database
from intake.store.imap_state import LeaseLost, Position, advance_in, clear_failures_in
from intake.store.lookups import BatchLookups, ContactDirectory
from intake.store.models import IntakeRecord
from parsers import clean_text, read_headers

log = logging.getLogger(__name__)

RECIPIENT_HEADERS = ("delivered-to", "x-original-to", "to", "cc")
OnCommitted = Callable[[list[int]], object]


@dataclass(frozen=True)
class Fetched:
    """One message as the server gave it: its UID, its bytes and INTERNALDATE (the moment the
    mailbox received it, the start of its response goal)."""

    uid: int
    raw: bytes
    received_at: dt.datetime
    too_large: int = 0  # the size of a message over the limit (``raw`` is its header only)


@dataclass(frozen=True)
class Recorded:
    uid: int
    intake_id: int
    decision: Decision


@dataclass(frozen=True)
class Failed:
    uid: int
    error: str


class MailboxRecorder:
    """Records the messages of one mailbox for the poller that holds its lease."""

    def __init__(
        self,
        db: Database,
        settings: Settings,
        mailbox: str,
        holder: str,
        on_committed: OnCommitted | None = None,
    ) -> None:
        self.db = db
        self.settings = settings
        self.mailbox = mailbox
        self.holder = holder
        self.on_committed = on_committed
        self.own = OwnMail.from_settings(settings)
        # A mailbox has no SMTP session: the verdict rests on DKIM and the receiving server's
        # Authentication-Results, trusted by its authserv-id (INTAKE_TRUSTED_AUTHSERV_IDS).
        checking = settings.sender_auth != "off"
        self.verifier = verifier_from_settings(settings) if checking else None
        self.directory = ContactDirectory()
        self.count = 0  # messages recorded by this poller

    def record(
        self, fetched: Sequence[Fetched], at: Position
    ) -> tuple[list[Recorded], list[Failed], Position]:
        """Record ``fetched`` (in UID order) and move the position past them from ``at``.

        Returns what was recorded, what failed (the caller counts the attempt) and the new
        position. Raises LeaseLost, or StorageUnavailable when the database is down.
        """
        if not fetched:
            return [], [], at
        to = Position(at.uidvalidity, max(at.last_uid, *(f.uid for f in fetched)))
        try:
            recorded = self._commit(fetched, at, to)
        except (LeaseLost, StorageUnavailable):
            raise
        except Exception:
            log.exception("a batch of %s failed; recording its messages one by one", self.mailbox)
            return self._one_by_one(fetched, at)
        self._notify(recorded)
        return recorded, [], to

    def _commit(self, fetched: Sequence[Fetched], at: Position, to: Position) -> list[Recorded]:
        for attempt in (1, 2):
            try:
                with self.db.transaction() as session:
                    recorded = self._record_in(session, fetched, at.uidvalidity)
                    clear_failures_in(
                        session, self.mailbox, at.uidvalidity, [f.uid for f in fetched]
                    )
                    advance_in(session, self.mailbox, self.holder, to, recorded=len(recorded))
                    return recorded
            except IntegrityError:
                if attempt == 2:  # the same item stored concurrently: deciding again finds it
                    raise
            except DBAPIError as exc:
                raise StorageUnavailable(str(exc.orig or exc)) from exc
        raise AssertionError("unreachable")

    def _record_in(
        self, session: Session, fetched: Sequence[Fetched], uidvalidity: int
    ) -> list[Recorded]:
        large = [self._too_large_in(session, f, uidvalidity) for f in fetched if f.too_large]
        return large + self._decide_in(session, [f for f in fetched if not f.too_large])

    def _too_large_in(self, session: Session, item: Fetched, uidvalidity: int) -> Recorded:
        """A message over the size limit: refused as the SMTP door refuses one (its bytes
        are not kept; it stays in the processed folder)."""
        headers = read_headers(item.raw)
        row = IntakeRecord(
            channel="email",
            received_at=item.received_at,
            sender=clean_text(headers.from_address[:320]),
            subject=clean_text(headers.subject),
            message_id=clean_text(headers.message_id[:998]),
            dedupe_key=f"imap-too-large:{self.mailbox}:{uidvalidity}:{item.uid}"[-128:],
            outcome="rejected",
            reason="too_large",
            detail=f"{item.too_large} bytes, over the limit of "
            f"{self.settings.max_message_size} bytes",
            state="done",
            size=item.too_large,
        )
        session.add(row)
        session.flush()
        return Recorded(item.uid, row.id, Decision("rejected", "too_large"))

    def _decide_in(self, session: Session, fetched: Sequence[Fetched]) -> list[Recorded]:
        if not fetched:
            return []
        messages = [self.inbound(f) for f in fetched]
        results: dict[int, tuple[Decision, int]] = {}
        for round_ in _rounds_of_distinct_keys(messages):
            lookups = BatchLookups(
                session, self.directory, [messages[i].dedupe_key for i in round_]
            )
            decided = record_many_in(session, [messages[i] for i in round_], lookups)
            results |= dict(zip(round_, decided, strict=True))
        recorded = []
        for index, item in enumerate(fetched):
            decision, intake_id = results[index]
            if wants_note(messages[index], decision):
                note_unknown_sender_in(session, self.settings, messages[index], intake_id)
            recorded.append(Recorded(item.uid, intake_id, decision))
        return recorded

    def _one_by_one(
        self, fetched: Sequence[Fetched], at: Position
    ) -> tuple[list[Recorded], list[Failed], Position]:
        recorded: list[Recorded] = []
        failed: list[Failed] = []
        for item in fetched:
            to = Position(at.uidvalidity, max(at.last_uid, item.uid))
            try:
                recorded += self._commit([item], at, to)
            except (LeaseLost, StorageUnavailable):
                raise
            except Exception as exc:
                failed.append(Failed(item.uid, f"{type(exc).__name__}: {exc}"))
            at = to
        self._notify(recorded)
        return recorded, failed, at

    def advance(self, to: Position) -> None:
        """Move the position without recording anything (past quarantined messages)."""
        with self.db.transaction() as session:
            advance_in(session, self.mailbox, self.holder, to)

    def quarantine(self, uid: int, at: Position, error: str, raw: bytes | None) -> int:
        """The intake log's row for a message that failed too often (made once); it goes to
        the quarantine folder next, and its failure row is cleared once it is there."""
        key = f"imap-failed:{self.mailbox}:{at.uidvalidity}:{uid}"[-128:]
        with self.db.transaction() as session:
            row = session.query(IntakeRecord).filter_by(dedupe_key=key).one_or_none()
            if row is None:
                row = IntakeRecord(
                    channel="email",
                    dedupe_key=key,
                    outcome="quarantined",
                    reason="imap_failure",
                    detail=f"{self.mailbox} UID {uid} failed: {error}"[:2000],
                    state="done",
                    size=len(raw or b""),
                    raw=raw,
                )
                session.add(row)
            to = Position(at.uidvalidity, max(at.last_uid, uid))
            advance_in(session, self.mailbox, self.holder, to)
            session.flush()
            return row.id

    def inbound(self, item: Fetched) -> InboundMessage:
        """The InboundMessage of a fetched message, received when the mailbox received it."""
        verdict = self.verifier.verify(item.raw) if self.verifier else None
        message = inbound_from_mail(
            item.raw,
            recipients=recipients_of(item.raw),
            own=self.own,
            sender_auth=verdict,
            sender_auth_mode=self.settings.sender_auth,
        )
        return dataclasses.replace(message, received_at=item.received_at)

    def _notify(self, recorded: list[Recorded]) -> None:
        self.count += len(recorded)
        pending = [r.intake_id for r in recorded if r.decision.needs_worker]
        if pending and self.on_committed is not None:
            try:
                self.on_committed(pending)
            except Exception:  # the sweep picks the rows up
                log.exception("could not hand intake rows %s to the workers", pending)


def recipients_of(raw: bytes) -> tuple[str, ...]:
    """Where the message was addressed (the envelope is gone by the time it sits in a
    mailbox): Delivered-To and X-Original-To, then To and Cc. Our signed reply addresses
    (support+sr-...) among them thread a reply to its request."""
    headers = BytesHeaderParser().parsebytes(raw)
    try:
        values = [str(v) for name in RECIPIENT_HEADERS for v in headers.get_all(name) or []]
        addresses = [a.lower() for _, a in getaddresses(values) if "@" in a]
    except (ValueError, TypeError, IndexError):  # a mangled header: no recipients to go on
        return ()
    return tuple(dict.fromkeys(addresses))[:50]


def _rounds_of_distinct_keys(messages: Sequence[InboundMessage]) -> list[list[int]]:
    """Indexes of the messages in rounds without a repeated dedupe key: a copy of a message of
    the same batch is decided after the first copy is inserted (and so finds it)."""
    rounds: list[list[int]] = []
    seen_in: list[set[str]] = []
    for index, message in enumerate(messages):
        for round_, keys in zip(rounds, seen_in, strict=True):
            if message.dedupe_key not in keys:
                round_.append(index)
                keys.add(message.dedupe_key)
                break
        else:
            rounds.append([index])
            seen_in.append({message.dedupe_key})
    return rounds
