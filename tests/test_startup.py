"""Starting the gateway's processes as an operator does, with something wrong each time: every
failure is one sentence naming the setting or the port, and a missing Redis stops nothing that
does not need it."""

from __future__ import annotations

import json
import logging
import os
import shutil
import signal
import smtplib
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from intake.ops.startup import StartupError, check_secret_key, masked_url, wait_for_redis
from intake.settings import Settings
from intake.store.db import upgrade
from tests.conftest import ROOT
from tests.helpers import PrivateRedis, free_port, make_mail, wait_for

RUN_TIMEOUT = 60


@pytest.fixture
def home(tmp_path: Path) -> Path:
    shutil.copytree(ROOT / "config", tmp_path / "config")
    return tmp_path


def environment(home: Path, **settings: str) -> dict[str, str]:
    env = dict(os.environ)
    for name in ("INTAKE_REDIS_URL", "INTAKE_DATABASE_URL", "INTAKE_CONFIG", "INTAKE_SECRET_KEY"):
        env.pop(name, None)
    env |= {
        "INTAKE_CONFIG": str(home / "config" / "intake.toml"),
        "INTAKE_VAR_DIR": str(home / "var"),
        "INTAKE_DATABASE_URL": f"sqlite:///{home / 'var' / 'intake.db'}",
        "INTAKE_SMTP_PORT": str(free_port()),
        "INTAKE_WEB_PORT": str(free_port()),
    }
    return env | {f"INTAKE_{name.upper()}": value for name, value in settings.items()}


def run_intake(
    args: list[str], env: dict[str, str], home: Path
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "intake", *args],
        check=False,
        env=env,
        cwd=home,
        capture_output=True,
        text=True,
        timeout=RUN_TIMEOUT,
    )


def assert_one_sentence(result: subprocess.CompletedProcess[str], *words: str) -> str:
    output = (result.stdout + result.stderr).strip()
    assert result.returncode in (1, 2), output
    assert "Traceback" not in output, output
    assert len(output.splitlines()) == 1, output
    for word in words:
        assert word in output, output
    return output


@pytest.fixture
def listener() -> Iterator[int]:
    """A port some other program listens on."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        yield sock.getsockname()[1]


@pytest.fixture
def migrated(home: Path) -> Path:
    upgrade(f"sqlite:///{home / 'var' / 'intake.db'}")
    return home


@pytest.mark.parametrize(
    ("command", "setting"),
    [(["smtp"], "SMTP_PORT"), (["web"], "WEB_PORT"), (["run"], "SMTP_PORT"), (["run"], "WEB_PORT")],
    ids=["smtp", "web", "run-smtp", "run-web"],
)
def test_a_port_in_use_is_one_sentence_naming_it_and_its_setting(
    migrated: Path, listener: int, command: list[str], setting: str
) -> None:
    env = environment(migrated, redis_url="redis://127.0.0.1:1") | {
        f"INTAKE_{setting}": str(listener)
    }
    result = run_intake(command, env, migrated)
    assert_one_sentence(result, f"127.0.0.1:{listener}", f"INTAKE_{setting}", "in use")


@pytest.mark.parametrize("command", [["web"], ["worker"], ["run"], ["db", "upgrade"]])
def test_an_unreachable_database_is_named_with_its_password_masked(
    home: Path, command: list[str]
) -> None:
    url = f"postgresql://intake:hunter2secret@127.0.0.1:{free_port()}/intake"
    result = run_intake(command, environment(home, database_url=url), home)
    sentence = assert_one_sentence(result, "INTAKE_DATABASE_URL", "intake:***@127.0.0.1")
    assert "hunter2secret" not in sentence


def test_a_bad_log_level_in_the_environment_names_the_variable(home: Path) -> None:
    result = run_intake(["db", "current"], environment(home, log_level="LOUD"), home)
    assert_one_sentence(result, "INTAKE_LOG_LEVEL", "LOUD")


def test_a_port_out_of_range_in_the_environment_names_the_variable(home: Path) -> None:
    result = run_intake(["db", "current"], environment(home, smtp_port="70000"), home)
    assert_one_sentence(result, "INTAKE_SMTP_PORT", "70000")


@pytest.mark.parametrize("command", [["web"], ["smtp"], ["worker"], ["run"]])
def test_a_short_secret_key_is_refused_outside_the_demo(migrated: Path, command: list[str]) -> None:
    result = run_intake(command, environment(migrated, secret_key="x"), migrated)
    assert_one_sentence(result, "INTAKE_SECRET_KEY", "32")


def test_the_demo_allows_a_short_secret_key(settings: Settings) -> None:
    short = settings.replace(secret_key="x")
    check_secret_key(short, demo=True)
    check_secret_key(settings.replace(secret_key="x" * 32), demo=False)
    with pytest.raises(StartupError):
        check_secret_key(short, demo=False)


def test_urls_are_shown_with_the_password_masked() -> None:
    assert masked_url("redis://:pw@db.example:6379/0") == "redis://:***@db.example:6379/0"
    assert masked_url("postgresql://u:pw@h/d") == "postgresql://u:***@h/d"
    assert masked_url("unix:///var/redis.sock") == "unix:///var/redis.sock"


def _health(port: int) -> tuple[int, dict[str, object]] | None:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/health", timeout=2) as r:
            return int(r.status), json.load(r)
    except urllib.error.HTTPError as error:
        return error.code, json.load(error)
    except OSError:
        return None


def _send(port: int) -> bool:
    try:
        with smtplib.SMTP("127.0.0.1", port, timeout=10) as client:
            client.send_message(make_mail("ada@acme.example", "Exports fail"))
    except OSError:
        return False
    return True


def _stop(process: subprocess.Popen[str]) -> str:
    process.send_signal(signal.SIGINT)
    _, errors = process.communicate(timeout=30)
    return errors


def test_without_redis_the_doors_answer_and_the_worker_waits_saying_so_once(home: Path) -> None:
    env = environment(home, redis_url=f"redis://:hunter2@127.0.0.1:{free_port()}/0")
    process = subprocess.Popen(
        [sys.executable, "-m", "intake", "run", "--demo"],
        env=env,
        cwd=home,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        status, health = wait_for(lambda: _health(int(env["INTAKE_WEB_PORT"])), timeout=60)
        assert wait_for(lambda: _send(int(env["INTAKE_SMTP_PORT"])), timeout=30, interval=0.5)
        time.sleep(4)  # the worker tries Redis again meanwhile
        assert process.poll() is None
    finally:
        errors = _stop(process)
    assert status == 503 and health["components"]["redis"]["status"] == "down"  # type: ignore[index]
    assert errors.count("(INTAKE_REDIS_URL) cannot be reached") == 1, errors
    assert "hunter2" not in errors
    assert "Traceback" not in errors, errors


def test_a_second_run_on_the_same_var_refuses_before_touching_anything(home: Path) -> None:
    env = environment(home)
    first = subprocess.Popen(
        [sys.executable, "-m", "intake", "run", "--demo"],
        env=env,
        cwd=home,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        wait_for(lambda: _health(int(env["INTAKE_WEB_PORT"])), timeout=60)
        second_env = env | {"INTAKE_SMTP_PORT": str(free_port()), "INTAKE_WEB_PORT": "1"}
        second = run_intake(["run", "--demo"], second_env, home)
    finally:
        _stop(first)
    sentence = assert_one_sentence(second, "Another `intake run`", str(first.pid), "INTAKE_VAR_DIR")
    assert "demo" not in sentence


def test_the_worker_says_once_that_redis_is_missing_and_goes_on_when_it_answers(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    server = PrivateRedis(tmp_path)
    client = redis.Redis.from_url(server.url, socket_connect_timeout=1)
    waits: list[float] = []

    def wait(seconds: float) -> None:  # the third wait is when Redis comes up
        waits.append(seconds)
        if len(waits) == 3:
            server.start()

    try:
        with caplog.at_level(logging.WARNING):
            wait_for_redis(client, server.url, logging.getLogger("test"), sleep=wait)
    finally:
        server.kill()
    assert waits == [1.0, 2.0, 4.0]
    said = [r.getMessage() for r in caplog.records]
    assert len(said) == 2 and "cannot be reached" in said[0] and "answers again" in said[1]
