"""Staff sign-in: the password check with a lockout after repeated failures.

Five wrong passwords within 15 minutes lock the login for 15 minutes. Every guess is counted in
the database before its password is checked, with one conditional UPDATE ... RETURNING, so
guesses sent at once cannot slip past the limit; a right password gives its count back.

Every refusal costs the same scrypt work and gets the same answer, whether the username is
unknown, disabled, locked or its password wrong: neither the words nor the timing tell which
usernames exist, and the log alone says why.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from sqlalchemy import case, func, or_, select, update

from intake.accounts.credentials import hash_secret, verify_secret
from intake.store.db import Database
from intake.store.models import StaffUser, utcnow

MAX_FAILURES = 5
LOCKOUT = dt.timedelta(minutes=15)
FAILURE_WINDOW = LOCKOUT  # failures older than this no longer count
# Verified against when there is no password to check; made once, on first use.
_decoy: list[str] = []


@dataclass(frozen=True)
class SignIn:
    """The outcome: the staff member signed in, or why not (``reason``, for the log only)."""

    staff_id: int | None = None
    username: str = ""
    session_version: int = 0
    locked_until: dt.datetime | None = None
    reason: str = ""

    @property
    def ok(self) -> bool:
        return self.staff_id is not None


@dataclass(frozen=True)
class StaffSession:
    """What a session cookie is checked against on every request."""

    staff_id: int
    username: str
    session_version: int
    is_admin: bool


def sign_in(db: Database, username: str, password: str, now: dt.datetime | None = None) -> SignIn:
    """Check a username and password, counting the guess first and locking after too many.

    The slow hash is checked outside any transaction, so no lock is held while it runs.
    """
    now = now or utcnow()
    with db.sessions() as session:
        query = select(StaffUser).where(func.lower(StaffUser.username) == username.strip().lower())
        staff = session.scalars(query).first()
    if staff is None or staff.disabled:
        verify_secret(password, _decoy_hash())
        return SignIn(reason="no such login" if staff is None else "the login is disabled")
    guess = _count_guess(db, staff.id, now)
    if guess is None:
        verify_secret(password, _decoy_hash())
        return SignIn(locked_until=staff.locked_until, reason="the login is locked")
    if not verify_secret(password, staff.password_hash):
        locked_until = _lock_after_last_guess(db, staff.id, guess, now)
        return SignIn(
            locked_until=locked_until,
            reason=f"wrong password ({guess} of {MAX_FAILURES} within the window)",
        )
    _give_guess_back(db, staff.id)
    return SignIn(staff.id, staff.username, staff.session_version)


def _count_guess(db: Database, staff_id: int, now: dt.datetime) -> int | None:
    """Count one guess atomically; its number within the window, or None when none is left."""
    # A new window starts when the last one is old, or when the lock it ended in has run out.
    window_over = or_(
        StaffUser.failures_since.is_(None),
        StaffUser.failures_since <= now - FAILURE_WINDOW,
        StaffUser.locked_until <= now,
    )
    statement = (
        update(StaffUser)
        .where(
            StaffUser.id == staff_id,
            or_(StaffUser.locked_until.is_(None), StaffUser.locked_until <= now),
            or_(StaffUser.failed_logins < MAX_FAILURES, window_over),
        )
        .values(
            failed_logins=case((window_over, 1), else_=StaffUser.failed_logins + 1),
            failures_since=case((window_over, now), else_=StaffUser.failures_since),
            locked_until=None,
        )
        .returning(StaffUser.failed_logins)
    )
    with db.transaction() as session:
        return session.scalar(statement)


def _lock_after_last_guess(
    db: Database, staff_id: int, guess: int, now: dt.datetime
) -> dt.datetime | None:
    """The guess that used the last try locks the login; returns until when."""
    if guess < MAX_FAILURES:
        return None
    until = now + LOCKOUT
    with db.transaction() as session:
        session.execute(
            update(StaffUser).where(StaffUser.id == staff_id).values(locked_until=until)
        )
    return until


def _give_guess_back(db: Database, staff_id: int) -> None:
    """A right password was no failure: its counted guess is returned."""
    statement = (
        update(StaffUser)
        .where(StaffUser.id == staff_id, StaffUser.failed_logins > 0)
        .values(failed_logins=StaffUser.failed_logins - 1)
    )
    with db.transaction() as session:
        session.execute(statement)


def _decoy_hash() -> str:
    if not _decoy:
        _decoy.append(hash_secret("not a password of anyone"))
    return _decoy[0]


def staff_session(db: Database, staff_id: int) -> StaffSession | None:
    """The staff login a session names, or None when it is gone or disabled."""
    with db.sessions() as session:
        staff = session.get(StaffUser, staff_id)
        if staff is None or staff.disabled:
            return None
        return StaffSession(staff.id, staff.username, staff.session_version, staff.is_admin)


def end_sessions(db: Database, staff_id: int) -> None:
    """Sign a staff login out everywhere: every session cookie issued so far stops working."""
    statement = (
        update(StaffUser)
        .where(StaffUser.id == staff_id)
        .values(session_version=StaffUser.session_version + 1)
    )
    with db.transaction() as session:
        session.execute(statement)


def staff_names(db: Database) -> list[str]:
    """Every staff username, for the assignee list."""
    with db.sessions() as session:
        return list(session.scalars(select(StaffUser.username).order_by(StaffUser.username)))
