"""Who is calling: a caller ID the carrier vouches for, or a registered number and PIN.

A caller ID is easy to forge, so it names a contact on its own only when the configured trust
(``[voice] caller_id_trust``) allows: by default only under STIR/SHAKEN full attestation
(Twilio's ``StirVerstat`` ``TN-Validation-Passed-A``: the carrier vouches that the caller may use
the number). Partial or gateway attestation, a failed or missing check, an international call,
a withheld, unknown or shared number all need the keypad: the registered phone number, then the
contact's PIN. Whether a number is registered is never told to the caller.

Wrong PINs are limited three ways. Each counts against every contact registered with the number
typed: after ``PIN_FAILURES_TO_LOCK`` in a row that contact's PIN is locked, each lock in a row
twice as long as the one before. Each is also kept as a :class:`PinFailure`, and the hour's
failures are budgeted per calling number and for everyone together (``[voice]``
``pin_failures_per_number_per_hour`` and ``pin_failures_per_hour``): guesses spread over many
contacts, each of which would lock only after a few, meet the global budget. A spent budget
locks PIN entry (:class:`PinLockout`) for that number or for every caller, four times longer at
each lock of the same scope within a day. While locked, no PIN is checked at all.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass

from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from intake.accounts.credentials import hash_pin, pin_needs_rehash, verify_secret
from intake.policy import VoicePolicy
from intake.store.models import CallSession, Contact, PinFailure, PinLockout
from parsers.phones import normalise_phone

PIN_TRIES_PER_CALL = 3
PIN_FAILURES_TO_LOCK = 3
PIN_LOCK = dt.timedelta(minutes=15)  # a contact's first lock; each next one in a row doubles
LOCKOUT = dt.timedelta(minutes=15)  # a spent budget's first lock; each next one is 4 times longer
LONGEST_LOCK = dt.timedelta(hours=24)
BUDGET_WINDOW = dt.timedelta(hours=1)
LOCKOUT_MEMORY = dt.timedelta(hours=24)  # earlier lockouts of a scope within this escalate
EVERYONE = "*"  # the scope of the global lockout
FULL_ATTESTATION = "TN-Validation-Passed-A"
WITHHELD = "anonymous"  # the budget scope of callers who show no usable number


def caller_id_vouches(trust: str, attestation: str) -> bool:
    """Whether a caller ID may name the caller without a PIN, under ``trust``."""
    if trust == "always":
        return True
    return trust == "attested" and attestation == FULL_ATTESTATION


def strongly_identified(call: CallSession) -> bool:
    """Identified by PIN or by a fully attested caller ID: enough for status and Severity 1."""
    by_attested_id = call.identified_by == "caller_id" and call.attestation == FULL_ATTESTATION
    return call.identified_by == "pin" or by_attested_id


def contacts_with_phone(session: Session, e164: str, *, for_update: bool = False) -> list[Contact]:
    query = select(Contact).where(Contact.phone == e164).order_by(Contact.id)
    if for_update:
        query = query.with_for_update()
    return list(session.scalars(query))


def identify_by_caller_id(
    session: Session, caller: str, attestation: str, trust: str
) -> Contact | None:
    """The one contact registered with this caller ID when the trust vouches for it; None for
    an unattested, withheld, unknown or shared number."""
    e164 = normalise_phone(caller)
    if e164 is None or not caller_id_vouches(trust, attestation):
        return None
    found = contacts_with_phone(session, e164)
    return found[0] if len(found) == 1 else None


@dataclass(frozen=True)
class PinCheck:
    """What a PIN entry came to: the contact it identified, or the lockout that stops entry."""

    contact: Contact | None = None
    lockout: PinLockout | None = None  # PIN entry is locked for this caller (now or already)


def budget_scope(caller: str) -> str:
    """The calling number a failure counts against (one scope for all withheld numbers)."""
    return normalise_phone(caller) or WITHHELD


# Whether a PIN matched a contact's PIN hash, by (contact id, hash): worked out ahead.
PinVerdicts = Mapping[tuple[int, str], bool]


def verify_pin_ahead(
    session: Session, caller: str, phone: str, pin: str, *, now: dt.datetime
) -> PinVerdicts:
    """Whether ``pin`` matches each PIN registered with ``phone``, read without a lock before
    the step's writing transaction: the hash's deliberate work (tens of milliseconds each)
    then holds no lock that other calls wait on (on SQLite, the one writer). Nothing while PIN
    entry is locked for ``caller``, and nothing for a locked contact, as in check_pin, which
    checks again any PIN whose contact or hash changed in between."""
    if not pin or active_lockout(session, budget_scope(caller), now) is not None:
        return {}
    return {
        (c.id, c.pin_hash): verify_secret(pin, c.pin_hash)
        for c in _checked_contacts(session, phone, now)
        if c.pin_hash
    }


def check_pin(
    session: Session,
    caller: str,
    phone: str,
    pin: str,
    *,
    now: dt.datetime,
    voice: VoicePolicy,
    verdicts: PinVerdicts | None = None,
) -> PinCheck:
    """The contact registered with ``phone`` whose PIN is ``pin``; or a failure noted against
    the number's contacts and the budgets (which may lock PIN entry); or, while PIN entry is
    locked for ``caller``, the lockout, with nothing checked. ``verdicts`` (verify_pin_ahead)
    spare the hashing of the PINs they cover."""
    scope = budget_scope(caller)
    locked = active_lockout(session, scope, now)
    if locked is not None:
        return PinCheck(lockout=locked)
    unlocked = _checked_contacts(session, phone, now, for_update=True)
    matching = [c for c in unlocked if c.pin_hash and _pin_matches(c, pin, verdicts or {})]
    if len(matching) == 1:
        return PinCheck(contact=_accepted(matching[0], pin))
    for contact in unlocked:
        _note_failure(contact, now)
    return PinCheck(lockout=_count_failure(session, scope, phone, now, voice))


def _checked_contacts(
    session: Session, phone: str, now: dt.datetime, *, for_update: bool = False
) -> list[Contact]:
    """The contacts whose PINs a PIN typed for ``phone`` is checked against: those registered
    with it whose PIN is not locked."""
    candidates = contacts_with_phone(session, phone, for_update=for_update) if phone else []
    return [c for c in candidates if not pin_locked(c, now)]


def _pin_matches(contact: Contact, pin: str, verdicts: PinVerdicts) -> bool:
    known = verdicts.get((contact.id, contact.pin_hash or ""))
    return known if known is not None else verify_secret(pin, contact.pin_hash or "")


def _accepted(contact: Contact, pin: str) -> Contact:
    """A right PIN clears the contact's count of failures and locks, and upgrades an old hash."""
    contact.pin_failures = contact.pin_locks = 0
    if contact.pin_hash and pin_needs_rehash(contact.pin_hash):
        contact.pin_hash = hash_pin(pin)
    return contact


def pin_locked(contact: Contact, now: dt.datetime) -> bool:
    return contact.pin_locked_until is not None and contact.pin_locked_until > now


def _note_failure(contact: Contact, now: dt.datetime) -> None:
    contact.pin_failures += 1
    if contact.pin_failures >= PIN_FAILURES_TO_LOCK:
        contact.pin_locked_until = now + min(PIN_LOCK * 2**contact.pin_locks, LONGEST_LOCK)
        contact.pin_locks += 1
        contact.pin_failures = 0  # the lock is the penalty; afterwards a fresh count starts


def active_lockout(session: Session, scope: str, now: dt.datetime) -> PinLockout | None:
    """The lockout that holds PIN entry for callers of ``scope`` now (the longest of them)."""
    query = (
        select(PinLockout)
        .where(PinLockout.scope.in_((EVERYONE, scope)), PinLockout.until > now)
        .order_by(PinLockout.until.desc(), PinLockout.id)
        .limit(1)
    )
    return session.scalar(query)


def _count_failure(
    session: Session, scope: str, phone: str, now: dt.datetime, voice: VoicePolicy
) -> PinLockout | None:
    """Keep the failure; lock PIN entry for the scope, or for everyone, when a budget is spent.
    Failures older than any budget's window are dropped, so the table stays small."""
    session.execute(delete(PinFailure).where(PinFailure.at < now - BUDGET_WINDOW))
    session.add(PinFailure(at=now, caller=scope, entered_phone=phone[:20]))
    session.flush()
    since = now - BUDGET_WINDOW
    from_scope = _failures(session, since, scope)
    if from_scope >= voice.pin_failures_per_number_per_hour:
        return _lock(session, scope, from_scope, now)
    everywhere = _failures(session, since, None)
    if everywhere >= voice.pin_failures_per_hour:
        return _lock(session, EVERYONE, everywhere, now)
    return None


def _failures(session: Session, since: dt.datetime, scope: str | None) -> int:
    query = select(func.count()).select_from(PinFailure).where(PinFailure.at > since)
    if scope is not None:
        query = query.where(PinFailure.caller == scope)
    return session.scalar(query) or 0


def _lock(session: Session, scope: str, failures: int, now: dt.datetime) -> PinLockout:
    """A lockout of ``scope``, four times as long as the one before it within a day."""
    earlier = session.scalar(
        select(func.count())
        .select_from(PinLockout)
        .where(PinLockout.scope == scope, PinLockout.started_at > now - LOCKOUT_MEMORY)
    )
    level = (earlier or 0) + 1
    until = now + min(LOCKOUT * 4 ** (level - 1), LONGEST_LOCK)
    lockout = PinLockout(scope=scope, level=level, failures=failures, started_at=now, until=until)
    session.add(lockout)
    session.flush()
    return lockout


def describe_lockout(lockout: PinLockout) -> str:
    """What staff read in the intake log about a lockout."""
    who = "every caller" if lockout.scope == EVERYONE else f"calls from {lockout.scope}"
    budget = "from everywhere" if lockout.scope == EVERYONE else "from this number"
    return (
        f"PIN entry locked for {who} until {lockout.until:%Y-%m-%d %H:%M} UTC (lock "
        f"{lockout.level} in a row): {lockout.failures} wrong PINs {budget} within an hour."
    )
