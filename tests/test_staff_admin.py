"""Looking after staff logins and API tokens: the `intake staff` and `intake token` commands and
the administrators' Settings page."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import redis
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import create_engine, text

from intake.accounts.credentials import StaffError, add_staff, create_token, token_is_valid
from intake.accounts.sign_in import MAX_FAILURES, sign_in
from intake.accounts.staff_admin import list_staff, set_disabled
from intake.settings import Settings
from intake.store.db import Database, upgrade
from tests import test_cli
from tests.web_support import PASSWORD, csrf_token
from tests.web_support import sign_in as post_sign_in
from web import create_app

NEW_PASSWORD = "a brand new passphrase"
env = test_cli.env  # the command tests' fixture: a config copy, var/ and a database of its own
invoke = test_cli.invoke


# The commands.


@pytest.fixture
def cli_db(env: dict[str, str]) -> Database:
    assert invoke(["db", "upgrade"], env).exit_code == 0
    assert invoke(["staff", "add", "alice"], env, PASSWORD + "\n").exit_code == 0
    assert invoke(["staff", "add", "bob"], env, PASSWORD + "\n").exit_code == 0
    return Database(env["INTAKE_DATABASE_URL"])


def test_staff_list_shows_roles_and_states(env: dict[str, str], cli_db: Database) -> None:
    for _ in range(MAX_FAILURES):
        sign_in(cli_db, "bob", "wrong password")
    lines = invoke(["staff", "list"], env).output.splitlines()
    assert lines[0].startswith("alice\tadmin\tactive")
    assert lines[1].startswith("bob\tstaff\tlocked until ")


def test_disable_enable_unlock_and_reset_password(env: dict[str, str], cli_db: Database) -> None:
    assert invoke(["staff", "disable", "BOB"], env).output == "staff user bob disabled\n"
    assert not sign_in(cli_db, "bob", PASSWORD).ok
    assert invoke(["staff", "enable", "bob"], env).exit_code == 0
    assert sign_in(cli_db, "bob", PASSWORD).ok

    for _ in range(MAX_FAILURES):
        sign_in(cli_db, "bob", "wrong password")
    assert not sign_in(cli_db, "bob", PASSWORD).ok
    assert invoke(["staff", "unlock", "bob"], env).output == "staff user bob unlocked\n"
    assert sign_in(cli_db, "bob", PASSWORD).ok

    reset = invoke(["staff", "reset-password", "bob"], env, NEW_PASSWORD + "\n")
    assert reset.exit_code == 0, reset.output
    assert not sign_in(cli_db, "bob", PASSWORD).ok
    assert sign_in(cli_db, "bob", NEW_PASSWORD).ok


def test_staff_commands_name_what_is_wrong(env: dict[str, str], cli_db: Database) -> None:
    unknown = invoke(["staff", "disable", "carol"], env)
    assert unknown.exit_code == 1 and "no staff login named 'carol'" in unknown.output
    short = invoke(["staff", "reset-password", "bob"], env, "short\n")
    assert short.exit_code == 1 and "at least 10 characters" in short.output
    last_admin = invoke(["staff", "disable", "alice"], env)
    assert last_admin.exit_code == 1 and "last enabled administrator" in last_admin.output


def test_tokens_are_listed_without_their_secret_and_revoked_by_name(
    env: dict[str, str], cli_db: Database
) -> None:
    secret = invoke(["token", "create", "ci"], env).output.strip()
    assert token_is_valid(cli_db, secret)

    listed = invoke(["token", "list"], env).output
    assert listed.startswith("ci\tcreated ") and "used " in listed and "\tlive" in listed
    assert secret not in listed and secret[4:12] not in listed

    assert invoke(["token", "revoke", "ci"], env).output == "1 token(s) named ci revoked\n"
    assert not token_is_valid(cli_db, secret)
    assert "revoked" in invoke(["token", "list"], env).output
    again = invoke(["token", "revoke", "ci"], env)
    assert again.exit_code == 1 and "no live API token named 'ci'" in again.output


@pytest.mark.parametrize(
    "command",
    [
        ["staff", "list"],
        ["staff", "disable"],
        ["staff", "enable"],
        ["staff", "reset-password"],
        ["staff", "unlock"],
        ["token", "list"],
        ["token", "revoke"],
    ],
)
def test_every_management_command_has_help(command: list[str], env: dict[str, str]) -> None:
    result = invoke([*command, "--help"], env)
    assert result.exit_code == 0 and "Usage: " in result.output


# The Settings page.


@pytest.fixture
def app(settings: Settings, db: Database, redis_client: redis.Redis) -> Flask:
    add_staff(db, "alice", PASSWORD)  # the first login: an administrator
    add_staff(db, "bob", PASSWORD)
    return create_app(settings.replace(secret_key="s" * 32), db=db, redis_client=redis_client)


def signed_in(app: Flask, username: str) -> FlaskClient:
    client = app.test_client()
    assert post_sign_in(client, username).status_code == 302
    return client


def test_only_an_administrator_sees_the_settings_page(app: Flask) -> None:
    admin, staff = signed_in(app, "alice"), signed_in(app, "bob")
    page = admin.get("/settings")
    assert page.status_code == 200
    assert 'href="/settings"' in admin.get("/").get_data(as_text=True)
    assert staff.get("/settings").status_code == 403
    assert 'href="/settings"' not in staff.get("/").get_data(as_text=True)
    assert app.test_client().get("/settings").status_code == 302  # to the sign-in page


def test_the_page_has_no_inline_script_and_no_token_secret(app: Flask, db: Database) -> None:
    secret = create_token(db, "ci")
    page = signed_in(app, "alice").get("/settings")
    html = page.get_data(as_text=True)
    assert all("src=" in tag for tag in re.findall(r"<script[^>]*>", html))
    assert "script-src 'self'" in page.headers["Content-Security-Policy"]
    assert "ci" in html and secret not in html


def test_disabling_on_the_page_ends_the_sessions_of_that_login(app: Flask) -> None:
    admin, bob = signed_in(app, "alice"), signed_in(app, "bob")
    token = csrf_token(admin, "/settings")
    done = admin.post("/settings/staff/bob/disable", data={"csrf_token": token})
    assert done.status_code == 302
    assert "bob is disabled" in admin.get("/settings").get_data(as_text=True)
    assert bob.get("/").status_code == 302  # signed out everywhere


def test_a_change_without_its_csrf_token_changes_nothing(app: Flask, db: Database) -> None:
    admin = signed_in(app, "alice")
    answer = admin.post("/settings/staff/bob/disable")
    assert answer.status_code in (302, 400)
    assert not next(row for row in list_staff(db) if row.username == "bob").disabled


def test_unlock_reset_and_revoke_on_the_page(app: Flask, db: Database) -> None:
    for _ in range(MAX_FAILURES):
        sign_in(db, "bob", "wrong password")
    secret = create_token(db, "ci")
    admin = signed_in(app, "alice")
    token = csrf_token(admin, "/settings")

    admin.post("/settings/staff/bob/unlock", data={"csrf_token": token})
    assert sign_in(db, "bob", PASSWORD).ok
    admin.post(
        "/settings/staff/bob/password",
        data={"csrf_token": token, "password": NEW_PASSWORD, "confirm": NEW_PASSWORD},
    )
    assert sign_in(db, "bob", NEW_PASSWORD).ok
    token_id = re.search(r"/settings/tokens/(\d+)/revoke", admin.get("/settings").text)
    assert token_id is not None
    admin.post(f"/settings/tokens/{token_id.group(1)}/revoke", data={"csrf_token": token})
    assert not token_is_valid(db, secret)


def test_a_mismatched_new_password_is_refused_with_its_reason(app: Flask, db: Database) -> None:
    admin = signed_in(app, "alice")
    token = csrf_token(admin, "/settings")
    admin.post(
        "/settings/staff/bob/password",
        data={"csrf_token": token, "password": NEW_PASSWORD, "confirm": "something else"},
    )
    assert "The two passwords differ." in admin.get("/settings").get_data(as_text=True)
    assert sign_in(db, "bob", PASSWORD).ok


def test_the_last_administrator_cannot_be_disabled(app: Flask, db: Database) -> None:
    with pytest.raises(StaffError, match="last enabled administrator"):
        set_disabled(db, "alice", True)
    admin = signed_in(app, "alice")
    admin.post("/settings/staff/alice/disable", data={"csrf_token": csrf_token(admin, "/settings")})
    assert "last enabled administrator" in admin.get("/settings").get_data(as_text=True)


def test_the_migration_makes_the_oldest_existing_login_the_administrator(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'old.db'}"
    upgrade(url, "0004")
    engine = create_engine(url)
    with engine.begin() as conn:
        for name in ("alice", "bob"):
            conn.execute(
                text(
                    "INSERT INTO staff_users (username, password_hash, failed_logins, created_at)"
                    " VALUES (:name, 'x', 0, '2026-01-01 00:00:00')"
                ),
                {"name": name},
            )
    upgrade(url)
    with engine.connect() as conn:
        rows = conn.execute(
            text("SELECT username, is_admin, disabled, session_version FROM staff_users")
        ).all()
    engine.dispose()
    assert sorted(tuple(r) for r in rows) == [("alice", 1, 0, 1), ("bob", 0, 0, 1)]
