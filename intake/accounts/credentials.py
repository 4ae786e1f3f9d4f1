"""Secrets and accounts: salted scrypt hashes (staff passwords, contact PINs), staff logins,
and API tokens (only their SHA-256 is stored; the token itself is shown once)."""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac
import re
import secrets

from sqlalchemy import func, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from intake.errors import IntakeError
from intake.store.db import Database
from intake.store.models import ApiToken, StaffUser, utcnow

PASSWORD_SCRYPT_N = 2**14
# A PIN has few values, so its hash must be slow enough that a stolen database does not give
# the PINs away in seconds: scrypt with the parameters recommended for interactive logins
# (n=2**14, r=8, p=1: about 16 MiB and 50 to 90 ms a hash on one core, so 10**4 guesses of one
# salted PIN cost minutes, and every contact's PIN must be searched apart). The real defence
# stays the lockouts (see voice.callers). Hashes of the earlier, smaller factor (n=2**8) still
# verify, and are replaced by a hash of this factor at the next right PIN, or by the next import.
PIN_SCRYPT_N = 2**14
SCRYPT_R = 8
SCRYPT_P = 1
SCRYPT_MAXMEM = 64 * 1024 * 1024
SALT_BYTES = 16
HASH_BYTES = 32

USERNAME_PATTERN = re.compile(r"[A-Za-z0-9._@-]{1,100}")
MIN_PASSWORD_LENGTH = 10
TOKEN_PREFIX = "itk_"  # noqa: S105 - a prefix that makes leaked tokens easy to spot, no secret
TOKEN_NAME_LIMIT = 100
# last_used_at is a hint for staff, not an audit log: one write a minute per token is enough.
LAST_USED_RESOLUTION = dt.timedelta(minutes=1)


class StaffError(IntakeError):
    """A staff login could not be added; the message says why."""


class TokenError(IntakeError):
    """An API token could not be created; the message says why."""


def _scrypt(secret: str, salt: bytes, *, n: int, r: int, p: int, length: int) -> bytes:
    return hashlib.scrypt(
        secret.encode(), salt=salt, n=n, r=r, p=p, maxmem=SCRYPT_MAXMEM, dklen=length
    )


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def hash_secret(secret: str, *, n: int = PASSWORD_SCRYPT_N) -> str:
    """A salted scrypt hash of ``secret``: ``scrypt$n$r$p$salt_b64$hash_b64``."""
    salt = secrets.token_bytes(SALT_BYTES)
    digest = _scrypt(secret, salt, n=n, r=SCRYPT_R, p=SCRYPT_P, length=HASH_BYTES)
    return f"scrypt${n}${SCRYPT_R}${SCRYPT_P}${_b64(salt)}${_b64(digest)}"


def hash_pin(pin: str) -> str:
    """A salted hash of a contact's keypad PIN (see PIN_SCRYPT_N for its work factor)."""
    return hash_secret(pin, n=PIN_SCRYPT_N)


def verify_secret(secret: str, stored: str) -> bool:
    """Whether ``secret`` matches a hash made by :func:`hash_secret`; False for a malformed one."""
    try:
        scheme, n, r, p, salt_b64, hash_b64 = stored.split("$")
        if scheme != "scrypt":
            return False
        salt = base64.b64decode(salt_b64, validate=True)
        expected = base64.b64decode(hash_b64, validate=True)
        actual = _scrypt(secret, salt, n=int(n), r=int(r), p=int(p), length=len(expected))
    except ValueError:  # also binascii.Error, and scrypt's own refusals of bad parameters
        return False
    return hmac.compare_digest(actual, expected)


def pin_needs_rehash(stored: str) -> bool:
    """Whether a PIN hash was made with another work factor than PIN_SCRYPT_N."""
    parts = stored.split("$")
    return len(parts) != 6 or parts[:2] != ["scrypt", str(PIN_SCRYPT_N)]


def _check_staff(username: str, password: str) -> None:
    if not USERNAME_PATTERN.fullmatch(username):
        raise StaffError(
            f"the username {username!r} must be 1 to 100 characters: letters, digits, '.', '_', "
            "'@' or '-'"
        )
    check_password(password)


def check_password(password: str) -> None:
    """A new password must be long enough; the message says how long."""
    if len(password) < MIN_PASSWORD_LENGTH:
        raise StaffError(f"the password must be at least {MIN_PASSWORD_LENGTH} characters long")


def add_staff(db: Database, username: str, password: str, *, email: str = "") -> None:
    """Add a staff login for the status pages; usernames are unique regardless of case. The
    first login added is an administrator (the Settings page, other logins and tokens). The
    address (optional) is where the breach watch writes about the staff member's requests."""
    _check_staff(username, password)
    if email and "@" not in email:
        raise StaffError(f"the address {email!r} is not an email address")
    password_hash = hash_secret(password)  # before the transaction: no lock held while hashing
    exists = StaffError(f"a staff user named {username!r} already exists")
    try:
        with db.transaction() as session:
            taken = select(StaffUser.id).where(func.lower(StaffUser.username) == username.lower())
            if session.scalar(taken) is not None:
                raise exists
            first = session.scalar(select(StaffUser.id).limit(1)) is None
            session.add(
                StaffUser(
                    username=username,
                    password_hash=password_hash,
                    is_admin=first,
                    email=email or None,
                )
            )
    except IntegrityError:  # added by someone else between our check and our commit
        raise exists from None


def _token_digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def create_token(db: Database, name: str) -> str:
    """Create an API token named ``name`` and return it; only its SHA-256 is kept."""
    if not name.strip() or len(name) > TOKEN_NAME_LIMIT:
        raise TokenError(f"a token name must be 1 to {TOKEN_NAME_LIMIT} characters")
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    with db.transaction() as session:
        session.add(ApiToken(name=name, token_hash=_token_digest(token)))
    return token


def token_is_valid(db: Database, token: str, *, now: dt.datetime | None = None) -> bool:
    """Whether ``token`` is a known, unrevoked API token; notes its use at most once a minute."""
    if not token:
        return False
    now = now or utcnow()
    with db.transaction() as session:
        query = select(ApiToken.id, ApiToken.last_used_at).where(
            ApiToken.token_hash == _token_digest(token), ApiToken.revoked_at.is_(None)
        )
        found = session.execute(query).one_or_none()
        if found is None:
            return False
        if found.last_used_at is None or now - found.last_used_at >= LAST_USED_RESOLUTION:
            _touch(session, found.id, now)
    return True


def token_name(db: Database, token: str) -> str | None:
    """The name of a known, unrevoked API token (who acted, in events), or None."""
    with db.sessions() as session:
        query = select(ApiToken.name).where(
            ApiToken.token_hash == _token_digest(token), ApiToken.revoked_at.is_(None)
        )
        return session.scalar(query)


def _touch(session: Session, token_id: int, now: dt.datetime) -> None:
    """Set last_used_at unless another request already did within the minute."""
    stale = or_(
        ApiToken.last_used_at.is_(None), ApiToken.last_used_at <= now - LAST_USED_RESOLUTION
    )
    statement = update(ApiToken).where(ApiToken.id == token_id, stale).values(last_used_at=now)
    session.execute(statement)
