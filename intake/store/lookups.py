"""What the pipeline's steps look up: earlier intake rows, contacts, the customer and status of
a request.

:class:`Lookups` asks the database once per question. :class:`BatchLookups` serves a batch of
messages decided in one transaction: it finds every earlier copy with one query and answers
contact questions from a :class:`ContactDirectory`, a short-lived cache, because the SMTP door
asks the same few questions for every message and each round trip costs a core.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from intake.store.contacts import ContactView, find_contact_by_email, find_contact_by_id
from intake.store.models import IntakeRecord, ServiceRequest


@dataclass(frozen=True)
class RepliedRequest:
    """Whose a request is and where it stands, for a follow-up that names it."""

    customer_id: int
    status: str


@dataclass(frozen=True)
class Original:
    """The first intake row of an item that arrives again."""

    id: int
    outcome: str
    reason: str
    detail: str
    sender_verified: bool


class Lookups:
    def __init__(self, session: Session) -> None:
        self.session = session

    def original(self, dedupe_key: str) -> Original | None:
        return next(iter(self._originals([dedupe_key]).values()), None)

    def contact_by_email(self, address: str) -> ContactView | None:
        return find_contact_by_email(self.session, address)

    def contact_by_id(self, contact_id: int) -> ContactView | None:
        return find_contact_by_id(self.session, contact_id)

    def replied_request(self, request_id: int) -> RepliedRequest | None:
        row = self.session.execute(
            select(ServiceRequest.customer_id, ServiceRequest.status).where(
                ServiceRequest.id == request_id
            )
        ).one_or_none()
        return RepliedRequest(row.customer_id, row.status) if row is not None else None

    def _originals(self, keys: Iterable[str]) -> dict[str, Original]:
        rows = self.session.execute(
            select(
                IntakeRecord.dedupe_key,
                IntakeRecord.id,
                IntakeRecord.outcome,
                IntakeRecord.reason,
                IntakeRecord.detail,
                IntakeRecord.sender_verified,
            ).where(IntakeRecord.dedupe_key.in_(list(keys)))
        )
        return {
            r.dedupe_key: Original(r.id, r.outcome, r.reason, r.detail, r.sender_verified)
            for r in rows
        }


class ContactDirectory:
    """Contacts by address, cached for a few seconds: a change made by `intake import` is seen
    within ``ttl`` seconds by every door process."""

    def __init__(self, ttl: float = 5.0) -> None:
        self.ttl = ttl
        self._entries: dict[str, tuple[float, ContactView | None]] = {}
        self._lock = threading.Lock()

    def get(self, session: Session, address: str) -> ContactView | None:
        now = time.monotonic()
        entry = self._entries.get(address)
        if entry is not None and entry[0] > now:
            return entry[1]
        view = find_contact_by_email(session, address)
        with self._lock:
            self._entries[address] = (now + self.ttl, view)
        return view


class BatchLookups(Lookups):
    """Lookups for several messages decided in one transaction."""

    def __init__(self, session: Session, directory: ContactDirectory, keys: Iterable[str]) -> None:
        super().__init__(session)
        self.directory = directory
        self.originals = self._originals(keys)

    def original(self, dedupe_key: str) -> Original | None:
        return self.originals.get(dedupe_key)

    def contact_by_email(self, address: str) -> ContactView | None:
        return self.directory.get(self.session, address)
