"""Who is calling: a caller ID that names exactly one contact, or a registered number and PIN.

A withheld, anonymous or placeholder caller ID, an unknown number and a number several contacts
share all need the keypad: the registered phone number, then the contact's PIN. Each wrong PIN
counts against every contact registered with the number typed; after ``PIN_FAILURES_TO_LOCK``
in a row (over any number of calls) that contact's PIN is locked for ``PIN_LOCK``, during which
even the right PIN is refused. Whether a number is registered is never told to the caller.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import select
from sqlalchemy.orm import Session

from intake.accounts.credentials import verify_secret
from intake.store.models import Contact
from parsers.phones import normalise_phone

PIN_TRIES_PER_CALL = 3
PIN_FAILURES_TO_LOCK = 3
PIN_LOCK = dt.timedelta(minutes=15)


def contacts_with_phone(session: Session, e164: str, *, for_update: bool = False) -> list[Contact]:
    query = select(Contact).where(Contact.phone == e164).order_by(Contact.id)
    if for_update:
        query = query.with_for_update()
    return list(session.scalars(query))


def identify_by_caller_id(session: Session, caller: str) -> Contact | None:
    """The one contact registered with this caller ID; None for withheld, unknown or shared."""
    e164 = normalise_phone(caller)
    if e164 is None:
        return None
    found = contacts_with_phone(session, e164)
    return found[0] if len(found) == 1 else None


def check_pin(session: Session, phone: str, pin: str, now: dt.datetime) -> Contact | None:
    """The contact registered with ``phone`` whose PIN is ``pin``, or None (and a failure noted
    against each unlocked contact of that number)."""
    candidates = contacts_with_phone(session, phone, for_update=True) if phone else []
    unlocked = [c for c in candidates if not pin_locked(c, now)]
    matching = [c for c in unlocked if c.pin_hash and verify_secret(pin, c.pin_hash)]
    if len(matching) == 1:
        matching[0].pin_failures = 0
        return matching[0]
    for contact in unlocked:
        _note_failure(contact, now)
    return None


def pin_locked(contact: Contact, now: dt.datetime) -> bool:
    return contact.pin_locked_until is not None and contact.pin_locked_until > now


def _note_failure(contact: Contact, now: dt.datetime) -> None:
    contact.pin_failures += 1
    if contact.pin_failures >= PIN_FAILURES_TO_LOCK:
        contact.pin_locked_until = now + PIN_LOCK
        contact.pin_failures = 0  # the lock is the penalty; afterwards a fresh count starts
