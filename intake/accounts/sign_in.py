"""Staff sign-in: the password check with a lockout after repeated failures.

Five wrong passwords in a row lock the login for 15 minutes; a right one resets the count. An
unknown username costs the same scrypt work as a known one, so the answer's timing does not
tell which usernames exist.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from sqlalchemy import func, select, update

from intake.accounts.credentials import hash_secret, verify_secret
from intake.store.db import Database
from intake.store.models import StaffUser, utcnow

MAX_FAILURES = 5
LOCKOUT = dt.timedelta(minutes=15)
# Verified against when the username is unknown; made once, on first use.
_decoy: list[str] = []


@dataclass(frozen=True)
class SignIn:
    """The outcome: the staff user's id and name, or why not."""

    staff_id: int | None = None
    username: str = ""
    locked_until: dt.datetime | None = None

    @property
    def ok(self) -> bool:
        return self.staff_id is not None


def sign_in(db: Database, username: str, password: str, now: dt.datetime | None = None) -> SignIn:
    """Check a username and password, counting failures and locking after too many.

    The slow hash is checked outside any transaction, so no lock is held while it runs; the
    failure count is then raised with one atomic UPDATE (parallel guesses all count).
    """
    now = now or utcnow()
    with db.sessions() as session:
        query = select(StaffUser).where(func.lower(StaffUser.username) == username.strip().lower())
        staff = session.scalars(query).first()
    if staff is None:
        verify_secret(password, _decoy_hash())
        return SignIn()
    if staff.locked_until is not None and staff.locked_until > now:
        return SignIn(locked_until=staff.locked_until)
    if verify_secret(password, staff.password_hash):
        _record_success(db, staff.id)
        return SignIn(staff.id, staff.username)
    return SignIn(locked_until=_record_failure(db, staff.id, now))


def _record_success(db: Database, staff_id: int) -> None:
    with db.transaction() as session:
        reset = update(StaffUser).where(StaffUser.id == staff_id)
        session.execute(reset.values(failed_logins=0, locked_until=None))


def _record_failure(db: Database, staff_id: int, now: dt.datetime) -> dt.datetime | None:
    """Count one failure; returns when the login is locked until, if this one locked it."""
    with db.transaction() as session:
        count = update(StaffUser).where(StaffUser.id == staff_id)
        session.execute(count.values(failed_logins=StaffUser.failed_logins + 1))
        staff = session.get_one(StaffUser, staff_id)
        if staff.failed_logins < MAX_FAILURES:
            return None
        staff.failed_logins, staff.locked_until = 0, now + LOCKOUT
        return staff.locked_until


def _decoy_hash() -> str:
    if not _decoy:
        _decoy.append(hash_secret("not a password of anyone"))
    return _decoy[0]


def staff_name(db: Database, staff_id: int) -> str | None:
    """The username of a staff id (for the session's user loader), or None when gone."""
    with db.sessions() as session:
        return session.scalar(select(StaffUser.username).where(StaffUser.id == staff_id))


def staff_names(db: Database) -> list[str]:
    """Every staff username, for the assignee list."""
    with db.sessions() as session:
        return list(session.scalars(select(StaffUser.username).order_by(StaffUser.username)))
