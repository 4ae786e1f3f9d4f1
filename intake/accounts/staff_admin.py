"""Looking after staff logins and API tokens: list, disable, enable, reset a password, unlock;
list and revoke tokens. The same functions serve `intake staff ...`, `intake token ...` and the
administrators' Settings page.

Disabling a login or resetting its password also ends its sessions (its session version is
raised). The last enabled administrator cannot be disabled, so the Settings page always has
someone who may open it. A token's secret is never shown again: only its name and dates.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from intake.accounts.credentials import StaffError, TokenError, check_password, hash_secret
from intake.store.db import Database
from intake.store.models import ApiToken, StaffUser, utcnow


@dataclass(frozen=True)
class StaffRow:
    """A staff login as the lists show it."""

    username: str
    is_admin: bool
    disabled: bool
    locked_until: dt.datetime | None
    failed_logins: int
    created_at: dt.datetime

    def state(self, now: dt.datetime) -> str:
        if self.disabled:
            return "disabled"
        if self.locked_until is not None and self.locked_until > now:
            return f"locked until {self.locked_until:%Y-%m-%d %H:%M} UTC"
        return "active"


@dataclass(frozen=True)
class TokenRow:
    """An API token as the lists show it: never its secret."""

    id: int
    name: str
    created_at: dt.datetime
    last_used_at: dt.datetime | None
    revoked_at: dt.datetime | None


def list_staff(db: Database) -> list[StaffRow]:
    with db.sessions() as session:
        rows = session.scalars(select(StaffUser).order_by(func.lower(StaffUser.username)))
        return [
            StaffRow(
                s.username, s.is_admin, s.disabled, s.locked_until, s.failed_logins, s.created_at
            )
            for s in rows
        ]


def _staff(session: Session, username: str) -> StaffUser:
    found = session.scalars(
        select(StaffUser).where(func.lower(StaffUser.username) == username.strip().lower())
    ).first()
    if found is None:
        raise StaffError(f"there is no staff login named {username!r}")
    return found


def set_disabled(db: Database, username: str, disabled: bool) -> str:
    """Disable (ending its sessions) or enable a login; returns its exact username."""
    with db.transaction() as session:
        staff = _staff(session, username)
        if disabled and staff.is_admin and not staff.disabled and _enabled_admins(session) == 1:
            raise StaffError(
                f"{staff.username} is the last enabled administrator: make another one first"
            )
        staff.disabled = disabled
        if disabled:
            staff.session_version += 1
        return staff.username


def _enabled_admins(session: Session) -> int:
    query = select(func.count()).where(StaffUser.is_admin.is_(True), StaffUser.disabled.is_(False))
    return int(session.scalar(query) or 0)


def reset_password(db: Database, username: str, password: str) -> str:
    """Give a login a new password, unlock it and end its sessions; returns its username."""
    check_password(password)
    password_hash = hash_secret(password)  # before the transaction: no lock held while hashing
    with db.transaction() as session:
        staff = _staff(session, username)
        staff.password_hash = password_hash
        staff.session_version += 1
        _clear_failures(staff)
        return staff.username


def unlock(db: Database, username: str) -> str:
    """Forget a login's failed sign-ins and lift its lock; returns its username."""
    with db.transaction() as session:
        staff = _staff(session, username)
        _clear_failures(staff)
        return staff.username


def _clear_failures(staff: StaffUser) -> None:
    staff.failed_logins, staff.failures_since, staff.locked_until = 0, None, None


def list_tokens(db: Database) -> list[TokenRow]:
    with db.sessions() as session:
        rows = session.scalars(select(ApiToken).order_by(ApiToken.created_at, ApiToken.id))
        return [TokenRow(t.id, t.name, t.created_at, t.last_used_at, t.revoked_at) for t in rows]


def revoke_tokens(db: Database, name: str) -> int:
    """Revoke every live token named ``name``; how many were revoked (at least one)."""
    with db.transaction() as session:
        statement = (
            update(ApiToken)
            .where(ApiToken.name == name, ApiToken.revoked_at.is_(None))
            .values(revoked_at=utcnow())
            .returning(ApiToken.id)
        )
        count = len(session.scalars(statement).all())
    if not count:
        raise TokenError(f"there is no live API token named {name!r}")
    return count


def revoke_token(db: Database, token_id: int) -> str:
    """Revoke one token by its id (the Settings page's button); returns its name."""
    with db.transaction() as session:
        token = session.get(ApiToken, token_id)
        if token is None:
            raise TokenError(f"there is no API token #{token_id}")
        if token.revoked_at is None:
            token.revoked_at = utcnow()
        return token.name
