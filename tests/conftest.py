"""Fixtures shared by the suite: real databases (SQLite and PostgreSQL), real Redis, settings."""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
from sqlalchemy import create_engine, text

from intake.settings import Settings, load_settings
from intake.store.db import Database, upgrade
from intake.store.models import Base
from tests.dns_server import LocalDns, Zone
from tests.dovecot import Dovecot
from tests.helpers import PrivateRedis, Relay
from tests.senderauth_support import Keys, publish_world

ROOT = Path(__file__).resolve().parent.parent
# The real-world mail corpus the breadth tests read: about a thousand messages kept
# outside the repository (next to the project's checkout), or wherever INTAKE_TEST_CORPUS says.
CORPUS_VARIABLE = "INTAKE_TEST_CORPUS"
CORPUS_REQUIRED_VARIABLE = "INTAKE_TEST_CORPUS_REQUIRED"
CORPUS = (
    ROOT / (os.environ.get(CORPUS_VARIABLE) or ROOT.parent / "shared" / "corpus" / "email")
).resolve()
POSTGRES_ADMIN_URL = os.environ.get(
    "INTAKE_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)
REDIS_URL = os.environ.get("INTAKE_TEST_REDIS_URL", "")


def corpus_missing_reason() -> str:
    """Why the corpus cannot be read, or "" when its MANIFEST.tsv is there."""
    if (CORPUS / "MANIFEST.tsv").is_file():
        return ""
    return (
        f"the real-world mail corpus is not at {CORPUS} (no MANIFEST.tsv there); "
        f"set {CORPUS_VARIABLE}=/path/to/corpus/email to use another folder"
    )


@pytest.fixture(scope="session")
def corpus() -> Path:
    """The mail corpus folder. Without it, the tests that read it do not run, all for the one
    reason the summary gives, unless INTAKE_TEST_CORPUS_REQUIRED=1 (set by the CI run): then a
    missing corpus is an error, so a run never passes by leaving the corpus out."""
    reason = corpus_missing_reason()
    if reason and os.environ.get(CORPUS_REQUIRED_VARIABLE, "") not in ("", "0"):
        pytest.fail(f"{CORPUS_REQUIRED_VARIABLE} is set but {reason}", pytrace=False)
    if reason:
        raise pytest.skip.Exception(reason)
    return CORPUS


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """One line saying how many tests the missing corpus left out, and why."""
    reason = corpus_missing_reason()
    left_out = [
        report
        for report in terminalreporter.stats.get("skipped", [])
        if isinstance(report.longrepr, tuple) and report.longrepr[2].endswith(reason)
    ]
    if reason and left_out:
        terminalreporter.write_line(f"{len(left_out)} tests not run: {reason}.", yellow=True)


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A SQLite file migrated to head once; each test gets a copy."""
    path = tmp_path_factory.mktemp("sqlite-template") / "template.db"
    upgrade(f"sqlite:///{path}")
    return path


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """A fresh PostgreSQL database for this run, migrated to head, dropped at the end."""
    name = f"intake_test_{os.getpid()}_{uuid.uuid4().hex[:8]}"
    admin = create_engine(POSTGRES_ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    url = POSTGRES_ADMIN_URL.rsplit("/", 1)[0] + "/" + name
    upgrade(url)
    yield url
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


def empty_postgres(url: str) -> None:
    """Every table of the database emptied, the id sequences restarted."""
    engine = create_engine(url)
    tables = ", ".join(t.name for t in Base.metadata.sorted_tables)
    with engine.begin() as conn:
        conn.execute(text(f"TRUNCATE {tables} RESTART IDENTITY CASCADE"))
    engine.dispose()


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """The URL of an empty, migrated database: once on SQLite, once on PostgreSQL."""
    if request.param == "sqlite":
        path = tmp_path / "intake.db"
        shutil.copy(request.getfixturevalue("sqlite_template"), path)
        return f"sqlite:///{path}"
    url: str = request.getfixturevalue("postgres_url")
    empty_postgres(url)
    return url


@pytest.fixture
def db(database_url: str) -> Iterator[Database]:
    database = Database(database_url)
    yield database
    database.dispose()


@pytest.fixture(scope="session")
def redis_server_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """INTAKE_TEST_REDIS_URL, or a redis-server of this run's own, so that test runs side by
    side (and benchmarks) never empty each other's queues."""
    if REDIS_URL:
        yield REDIS_URL
        return
    server = PrivateRedis(tmp_path_factory.mktemp("redis"))
    server.start()
    yield server.url
    server.kill()


@pytest.fixture
def redis_url(redis_server_url: str) -> Iterator[str]:
    """A real Redis database, emptied before and after the test."""
    client = redis.Redis.from_url(redis_server_url)
    client.flushdb()
    yield redis_server_url
    client.flushdb()
    client.close()


@pytest.fixture
def redis_client(redis_url: str) -> Iterator[redis.Redis]:
    """A client of the test Redis database."""
    connection = redis.Redis.from_url(redis_url)
    yield connection
    connection.close()


@pytest.fixture
def relay() -> Iterator[Relay]:
    """A real SMTP relay on a free port, recording the mail it accepts."""
    server = Relay().start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def local_dns() -> Iterator[LocalDns]:
    """The run's authoritative DNS server on 127.0.0.1 (UDP and TCP)."""
    server = LocalDns().start()
    yield server
    server.stop()


@pytest.fixture
def dns_zone(local_dns: LocalDns) -> Iterator[Zone]:
    """The DNS server's records, empty at the start of the test (every name: NXDOMAIN)."""
    local_dns.zone.clear()
    yield local_dns.zone
    local_dns.zone.clear()


@pytest.fixture(scope="session")
def keys() -> Keys:
    """RSA keys made for this run: Acme's, another domain's, a trusted forwarder's and a
    stranger's (see tests/senderauth_support.py)."""
    return Keys.generate()


@pytest.fixture
def world(dns_zone: Zone, keys: Keys) -> Zone:
    """The local DNS server publishing the sender-verification cases' keys and policies."""
    publish_world(dns_zone, keys)
    return dns_zone


@pytest.fixture
def settings(tmp_path: Path, database_url: str, local_dns: LocalDns, dns_zone: Zone) -> Settings:
    """Settings for a test: its own var/ directory and database, no config file. Sender
    checks are enforced (the default) against the local DNS server, which publishes nothing
    unless the test says so: mail then gets the verdict none and is accepted."""
    return load_settings(
        env={"INTAKE_CONFIG": str(ROOT / "config" / "intake.toml")},
        overrides={
            "var_dir": str(tmp_path / "var"),
            "database_url": database_url,
            "dns_resolver": local_dns.address,
        },
    )


@pytest.fixture
def dovecot() -> Iterator[Dovecot]:
    """A real Dovecot IMAP server (TLS only, a private CA) with one empty mailbox."""
    server = Dovecot().start()
    yield server
    server.stop()
