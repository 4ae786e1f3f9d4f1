"""The `intake` command as a user meets it: help, clear errors, and `intake run --demo`."""

from __future__ import annotations

import json
import shutil
import smtplib
import sqlite3
from collections.abc import Iterator
from functools import partial
from pathlib import Path

import pytest
from alembic.script import ScriptDirectory
from click.testing import CliRunner

from intake.cli import cli
from intake.store.db import alembic_config
from tests.conftest import ROOT
from tests.dns_server import LocalDns, Zone
from tests.helpers import make_mail, start_demo, wait_for, web_health
from tests.senderauth_support import publish_dmarc

COMMANDS = [
    [],
    ["run"],
    ["smtp"],
    ["imap"],
    ["worker"],
    ["web"],
    ["db"],
    ["db", "upgrade"],
    ["import"],
    ["staff", "add"],
    ["token", "create"],
]


@pytest.fixture
def env(tmp_path: Path, local_dns: LocalDns, dns_zone: Zone) -> dict[str, str]:
    """An environment of its own: a config copy, var/ and a SQLite database under tmp_path;
    sender checks ask the tests' DNS server, which publishes nothing (no outside DNS)."""
    shutil.copytree(ROOT / "config", tmp_path / "config")
    return {
        "INTAKE_CONFIG": str(tmp_path / "config" / "intake.toml"),
        "INTAKE_VAR_DIR": str(tmp_path / "var"),
        "INTAKE_DATABASE_URL": f"sqlite:///{tmp_path / 'var' / 'intake.db'}",
        "INTAKE_DNS_RESOLVER": local_dns.address,
    }


def invoke(args: list[str], env: dict[str, str], stdin: str | None = None):  # type: ignore[no-untyped-def]
    return CliRunner().invoke(cli, args, env=env, input=stdin, catch_exceptions=False)


@pytest.mark.parametrize("command", COMMANDS, ids=lambda c: " ".join(c) or "intake")
def test_every_level_has_help(command: list[str], env: dict[str, str]) -> None:
    result = invoke([*command, "--help"], env)
    assert result.exit_code == 0
    assert "Usage: " in result.output and len(result.output.splitlines()) > 4


def test_a_bad_setting_stops_with_one_sentence_naming_it(env: dict[str, str]) -> None:
    result = invoke(["db", "current"], env | {"INTAKE_SMTP_PORT": "70000"})
    assert result.exit_code == 1
    assert "smtp_port" in result.output and "Traceback" not in result.output


def test_commands_before_the_schema_say_what_to_do(env: dict[str, str]) -> None:
    result = invoke(["token", "create", "ci"], env)
    assert result.exit_code == 1 and "intake db upgrade" in result.output


def test_upgrade_import_staff_and_token(env: dict[str, str], tmp_path: Path) -> None:
    assert invoke(["db", "upgrade"], env).exit_code == 0
    head = ScriptDirectory.from_config(alembic_config("sqlite://")).get_current_head()
    assert invoke(["db", "current"], env).output.strip() == head
    first = invoke(["import", "--no-progress", env["INTAKE_CONFIG"].replace("intake", "demo")], env)
    assert first.exit_code == 0 and "created" in first.output
    again = invoke(["import", "--no-progress", env["INTAKE_CONFIG"].replace("intake", "demo")], env)
    assert again.exit_code == 0 and "0 created" in again.output
    assert invoke(["staff", "add", "grace"], env, stdin="a long enough password\n").exit_code == 0
    token = invoke(["token", "create", "ci"], env).output.strip()
    assert token.startswith("itk_") and len(token) > 30


def test_a_bad_import_file_lists_every_problem_and_writes_nothing(
    env: dict[str, str], tmp_path: Path
) -> None:
    assert invoke(["db", "upgrade"], env).exit_code == 0
    bad = tmp_path / "bad.toml"
    bad.write_text(
        '[[customers]]\nname = "X"\noffering = "Nope"\nsupport_start = 2026-01-01\n'
        'support_end = 2025-01-01\n\n  [[customers.contacts]]\n  name = "A"\n'
        '  email = "a@x.example"\n  role = "boss"\n',
        encoding="utf-8",
    )
    result = invoke(["import", str(bad)], env)
    assert result.exit_code == 1
    assert "offering" in result.output and "role" in result.output and "line " in result.output
    assert "nothing was imported" in result.output


@pytest.fixture
def demo(tmp_path: Path, local_dns: LocalDns, dns_zone: Zone) -> Iterator[tuple[int, int, Path]]:
    """`intake run --demo` as a new user starts it, in a directory of its own (its sender
    checks ask the tests' DNS server, which publishes nothing)."""
    demo = start_demo(
        tmp_path, ROOT / "config", extra_env={"INTAKE_DNS_RESOLVER": local_dns.address}
    )
    try:
        yield demo.smtp_port, demo.web_port, tmp_path
    finally:
        errors = demo.stop(timeout=30)
        assert demo.process.returncode == 0, errors
        assert "stopped" in errors


def test_the_demo_takes_a_mail_and_acknowledges_it(demo: tuple[int, int, Path]) -> None:
    smtp_port, web_port, home = demo
    health = wait_for(partial(web_health, web_port), timeout=60)
    assert health["status"] == "ok"
    wait_for((home / "var" / "redis.sock").exists, timeout=30)

    def send() -> bool:
        try:
            with smtplib.SMTP("127.0.0.1", smtp_port, timeout=10) as client:
                client.send_message(make_mail("ada@acme.example", "[Sev1] Nothing loads"))
        except OSError:
            return False
        return True

    wait_for(send, timeout=60, interval=0.5)
    outbox = home / "var" / "outbox" / "new"
    (ack,) = wait_for(lambda: list(outbox.glob("*.eml")) if outbox.exists() else [], timeout=60)
    text = ack.read_text(encoding="utf-8")
    assert "Subject: [SR-000001] Received: [Sev1] Nothing loads" in text
    assert "Response goal:  1 hour around the clock" in text


def test_the_demo_only_records_sender_checks(demo: tuple[int, int, Path], dns_zone: Zone) -> None:
    """acme.example publishes p=reject and the mail carries no signature: enforce would hold
    it, the demo's monitor records the failure and opens the request."""
    publish_dmarc(dns_zone, "acme.example", "v=DMARC1; p=reject")
    smtp_port, web_port, home = demo
    wait_for(partial(web_health, web_port), timeout=60)

    def send() -> bool:
        try:
            with smtplib.SMTP("127.0.0.1", smtp_port, timeout=10) as client:
                client.send_message(make_mail("ada@acme.example", "Unsigned"))
        except OSError:
            return False
        return True

    wait_for(send, timeout=60, interval=0.5)
    with sqlite3.connect(home / "var" / "intake.db") as connection:
        ((outcome, auth),) = connection.execute("SELECT outcome, auth FROM intake_log").fetchall()
    assert outcome == "accepted"
    assert json.loads(auth)["dmarc"] == "fail"
