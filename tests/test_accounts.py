"""Secret hashing, staff logins and API tokens, on SQLite and PostgreSQL."""

from __future__ import annotations

import datetime as dt
import hashlib

import pytest
from sqlalchemy import select

from intake.accounts.credentials import (
    PIN_SCRYPT_N,
    StaffError,
    TokenError,
    add_staff,
    create_token,
    hash_pin,
    hash_secret,
    pin_needs_rehash,
    token_is_valid,
    verify_secret,
)
from intake.store.db import Database
from intake.store.models import ApiToken, StaffUser, utcnow


def test_hash_secret_is_salted_scrypt_and_verifies() -> None:
    first, second = hash_secret("correct horse"), hash_secret("correct horse")

    assert first != second
    scheme, n, r, p, salt, digest = first.split("$")
    assert (scheme, n, r, p) == ("scrypt", str(2**14), "8", "1")
    assert len(salt) == 24
    assert len(digest) == 44
    assert verify_secret("correct horse", first)
    assert verify_secret("correct horse", second)
    assert not verify_secret("correct horsE", first)


def test_pin_hashes_record_their_own_work_factor() -> None:
    stored = hash_pin("4321")

    assert stored.split("$")[1] == str(PIN_SCRYPT_N)
    assert verify_secret("4321", stored)
    assert not verify_secret("4322", stored)
    assert not pin_needs_rehash(stored)
    assert pin_needs_rehash(hash_secret("4321", n=2**8))  # the factor PINs had before
    assert pin_needs_rehash("garbage")


def test_pin_hashes_are_scrypt_with_current_parameters_and_a_salt_each() -> None:
    first, second = hash_pin("4321"), hash_pin("4321")
    scheme, n, r, p, salt, _digest = first.split("$")
    assert (scheme, int(n), int(r), int(p)) == ("scrypt", 2**14, 8, 1)
    assert salt != second.split("$")[4] and first != second


@pytest.mark.parametrize(
    "stored",
    [
        "",
        "4321",
        "bcrypt$16384$8$1$AAAA$AAAA",
        "scrypt$16384$8$1$not base64!$AAAA",
        "scrypt$1000$8$1$AAAAAAAAAAAAAAAAAAAAAA==$AAAA",  # n not a power of two
        "scrypt$x$8$1$AAAA$AAAA",
        "scrypt$16384$8$1$AAAA",
    ],
)
def test_verify_secret_refuses_malformed_hashes(stored: str) -> None:
    assert not verify_secret("4321", stored)


def test_add_staff_stores_a_verifiable_hash(db: Database) -> None:
    add_staff(db, "ada.l@example", "a long enough password")

    with db.transaction() as session:
        user = session.scalars(select(StaffUser)).one()
    assert user.username == "ada.l@example"
    assert "a long enough password" not in user.password_hash
    assert verify_secret("a long enough password", user.password_hash)


def test_add_staff_refuses_a_taken_username(db: Database) -> None:
    add_staff(db, "ada", "first password")

    with pytest.raises(StaffError, match="already exists"):
        add_staff(db, "ada", "second password")
    with pytest.raises(StaffError, match="already exists"):
        add_staff(db, "ADA", "second password")
    with db.transaction() as session:
        assert len(session.scalars(select(StaffUser)).all()) == 1


@pytest.mark.parametrize(
    ("username", "password", "message"),
    [
        ("ada", "too short", "at least 10 characters"),
        ("", "long enough password", "must be 1 to 100 characters"),
        ("ada lovelace", "long enough password", "must be 1 to 100 characters"),
        ("a" * 101, "long enough password", "must be 1 to 100 characters"),
        ("ada/../x", "long enough password", "must be 1 to 100 characters"),
    ],
)
def test_add_staff_refuses_bad_input(
    db: Database, username: str, password: str, message: str
) -> None:
    with pytest.raises(StaffError, match=message):
        add_staff(db, username, password)


def test_a_new_token_is_valid_and_stored_only_hashed(db: Database) -> None:
    token = create_token(db, "monitoring")

    assert token.startswith("itk_")
    assert len(token) > 40
    with db.transaction() as session:
        row = session.scalars(select(ApiToken)).one()
    assert row.name == "monitoring"
    assert row.token_hash == hashlib.sha256(token.encode()).hexdigest()
    assert token_is_valid(db, token)
    assert create_token(db, "monitoring") != token


def test_wrong_and_empty_tokens_are_invalid(db: Database) -> None:
    token = create_token(db, "ci")

    assert not token_is_valid(db, token + "x")
    assert not token_is_valid(db, "itk_" + "A" * 43)
    assert not token_is_valid(db, "")


def test_a_revoked_token_is_invalid(db: Database) -> None:
    token = create_token(db, "old integration")
    with db.transaction() as session:
        session.scalars(select(ApiToken)).one().revoked_at = utcnow()

    assert not token_is_valid(db, token)


def last_used(db: Database) -> dt.datetime | None:
    with db.transaction() as session:
        return session.scalars(select(ApiToken.last_used_at)).one()


def test_last_used_is_written_at_most_once_a_minute(db: Database) -> None:
    token = create_token(db, "dashboard")
    start = dt.datetime(2026, 3, 1, 9, 0, tzinfo=dt.UTC)
    assert last_used(db) is None

    assert token_is_valid(db, token, now=start)
    assert last_used(db) == start
    assert token_is_valid(db, token, now=start + dt.timedelta(seconds=59))
    assert last_used(db) == start
    assert token_is_valid(db, token, now=start + dt.timedelta(seconds=60))
    assert last_used(db) == start + dt.timedelta(seconds=60)


@pytest.mark.parametrize("name", ["", "   ", "x" * 101])
def test_create_token_refuses_bad_names(db: Database, name: str) -> None:
    with pytest.raises(TokenError):
        create_token(db, name)
