"""Staff sign-in under attack: guesses sent at once, lists of usernames, redirects off site, a
cookie replayed after sign-out, one address guessing at every login, and the files at rest."""

from __future__ import annotations

import stat
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import redis
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select

from intake.accounts.credentials import add_staff
from intake.accounts.sign_in import MAX_FAILURES, SignIn, sign_in
from intake.settings import Settings
from intake.store.db import Database
from intake.store.models import StaffUser
from tests.web_support import PASSWORD, csrf_token
from tests.web_support import sign_in as post_sign_in
from web import create_app
from web.login import FAILED
from web.throttle import FAILURES_PER_ADDRESS


@pytest.fixture
def app(settings: Settings, db: Database, redis_client: redis.Redis) -> Flask:
    add_staff(db, "alice", PASSWORD)
    return create_app(settings.replace(secret_key="s" * 32), db=db, redis_client=redis_client)


def client_from(app: Flask, address: str) -> FlaskClient:
    client = app.test_client()
    client.environ_base["REMOTE_ADDR"] = address
    return client


def test_guesses_sent_at_once_are_each_counted_before_they_are_checked(db: Database) -> None:
    add_staff(db, "alice", PASSWORD)
    passwords = ["wrong password"] * 12 + [PASSWORD]
    with ThreadPoolExecutor(max_workers=len(passwords)) as pool:
        outcomes: list[SignIn] = list(pool.map(lambda p: sign_in(db, "alice", p), passwords))

    checked_wrong = [o for o in outcomes if o.reason.startswith("wrong password")]
    signed_in = [o for o in outcomes if o.ok]
    assert len(checked_wrong) + len(signed_in) <= MAX_FAILURES
    assert len(checked_wrong) <= MAX_FAILURES
    with db.sessions() as session:
        alice = session.scalars(select(StaffUser)).one()
    assert alice.failed_logins <= MAX_FAILURES


def test_an_unknown_a_disabled_and_a_locked_login_get_the_wrong_password_answer(
    app: Flask, db: Database
) -> None:
    add_staff(db, "bob", PASSWORD)
    with db.transaction() as session:
        bob = session.scalars(select(StaffUser).where(StaffUser.username == "bob")).one()
        bob.disabled = True
    client = client_from(app, "192.0.2.1")
    for _ in range(MAX_FAILURES):
        post_sign_in(client, "alice", "not the password")

    answers = {
        "unknown": post_sign_in(client, "mallory", PASSWORD),
        "disabled": post_sign_in(client, "bob", PASSWORD),
        "locked": post_sign_in(client, "alice", PASSWORD),
        "wrong": post_sign_in(client, "alice", "still not the password"),
    }

    assert {name: a.status_code for name, a in answers.items()} == dict.fromkeys(answers, 401)
    errors = {name: _alert(a.get_data(as_text=True)) for name, a in answers.items()}
    assert set(errors.values()) == {FAILED}


def _alert(page: str) -> str:
    start = page.index('role="alert">') + len('role="alert">')
    return page[start : page.index("</p>", start)]


@pytest.mark.parametrize(
    "target",
    ["/\t/evil:9181/pwned", "/\n/x", "/\r\n/x", "/\\evil.example", "//evil.example", "http:/x"],
    ids=["tab", "newline", "crlf", "backslash", "two-slashes", "scheme"],
)
def test_the_next_target_is_judged_as_a_browser_reads_it(app: Flask, target: str) -> None:
    client = app.test_client()
    token = csrf_token(client, "/login")
    answer = client.post(
        "/login",
        query_string={"next": target},
        data={"csrf_token": token, "username": "alice", "password": PASSWORD},
    )
    assert answer.status_code == 302
    assert answer.headers["Location"] == "/"


def test_a_path_on_this_site_is_still_followed(app: Flask) -> None:
    client = app.test_client()
    token = csrf_token(client, "/login")
    answer = client.post(
        "/login?next=/intake%3Foutcome%3Dquarantined",
        data={"csrf_token": token, "username": "alice", "password": PASSWORD},
    )
    assert answer.headers["Location"] == "/intake?outcome=quarantined"


def test_a_cookie_copied_before_sign_out_is_worthless_after_it(app: Flask) -> None:
    browser = app.test_client()
    assert post_sign_in(browser, "alice").status_code == 302
    stolen = browser.get_cookie("intake_session")
    assert stolen is not None
    token = csrf_token(browser, "/")
    assert browser.post("/logout", data={"csrf_token": token}).status_code == 302

    thief = app.test_client()
    thief.set_cookie("intake_session", stolen.value)
    answer = thief.get("/")
    assert answer.status_code == 302 and answer.headers["Location"].startswith("/login")


def test_one_address_is_throttled_across_logins_and_others_are_not(
    app: Flask, db: Database
) -> None:
    attacker = client_from(app, "198.51.100.7")
    for n in range(FAILURES_PER_ADDRESS):
        post_sign_in(attacker, f"user{n}", "guess")

    refused = post_sign_in(attacker, "alice", PASSWORD)
    colleague = post_sign_in(client_from(app, "198.51.100.8"), "alice")

    assert refused.status_code == 429
    assert "Too many failed sign-ins from your address" in refused.get_data(as_text=True)
    assert colleague.status_code == 302


@pytest.mark.parametrize(("public_url", "sent"), [("https://desk.example", True), ("", False)])
def test_strict_transport_security_only_behind_https(
    settings: Settings, db: Database, redis_client: redis.Redis, public_url: str, sent: bool
) -> None:
    changed = settings.replace(public_url=public_url) if public_url else settings
    client = create_app(changed, db=db, redis_client=redis_client).test_client()
    answer = client.get("/login")
    assert ("Strict-Transport-Security" in answer.headers) is sent
    if sent:
        assert answer.headers["Strict-Transport-Security"].startswith("max-age=")


def test_a_new_sqlite_database_and_its_folder_are_private(tmp_path: Path) -> None:
    db = Database(f"sqlite:///{tmp_path / 'var' / 'intake.db'}")
    try:
        with db.engine.connect():
            pass
    finally:
        db.dispose()
    assert stat.S_IMODE((tmp_path / "var").stat().st_mode) == 0o700
    assert stat.S_IMODE((tmp_path / "var" / "intake.db").stat().st_mode) == 0o600
