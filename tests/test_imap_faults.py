"""The IMAP door when things go wrong: a crash between the commit and the MOVE, a connection
dropped in the middle of a fetch, a message that cannot be read, a password that stops
working, two pollers after the same mailbox. Nothing is lost, nothing is recorded twice, and
the rest of the mailbox keeps flowing."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import redis
from sqlalchemy import func, select

from intake.mail.imap_config import mailboxes
from intake.ops.health import component_status
from intake.settings import Settings
from intake.store.db import Database
from intake.store.imap_state import (
    failures,
    mailbox_states,
    position,
    release_lease,
    take_lease,
)
from intake.store.models import ImapFailure, ImapMailboxState
from tests.conftest import ROOT
from tests.dovecot import Dovecot
from tests.helpers import add_contact, wait_for
from tests.imap_support import (
    FAST,
    CuttingProxy,
    imap_settings,
    mail,
    message_ids,
    poller,
    polling,
    rows,
)


class Crash(BaseException):
    """Stands for the process dying: nothing after it runs (not even `except Exception`)."""


def test_a_crash_between_commit_and_move_records_nothing_twice(
    settings: Settings, db: Database, dovecot: Dovecot
) -> None:
    settings = imap_settings(settings, dovecot)
    dovecot.deliver(mail(), mail(), mail())

    def die() -> None:
        raise Crash

    crashing = poller(settings, db, between_commit_and_move=die)
    with pytest.raises(Crash):
        crashing.poll_once()
    # Committed, position moved, but still in the INBOX.
    assert len(rows(db)) == 3
    assert dovecot.count("INBOX") == 3
    poller(settings, db, holder="restarted:2").poll_once()
    assert len(rows(db)) == 3  # not even a "duplicate" row: they were only moved
    assert (dovecot.count("INBOX"), dovecot.count("Processed")) == (0, 3)


def test_sigkill_of_intake_imap_loses_and_repeats_nothing(
    settings: Settings, db: Database, dovecot: Dovecot, redis_url: str, tmp_path: Path
) -> None:
    add_contact(db, "ada@acme.example")
    count = 400
    sent = [mail() for _ in range(count)]
    dovecot.deliver(*sent)
    env = dict(os.environ) | {
        "INTAKE_CONFIG": str(ROOT / "config" / "intake.toml"),
        "INTAKE_DATABASE_URL": settings.database_url,
        "INTAKE_REDIS_URL": redis_url,
        "INTAKE_VAR_DIR": str(tmp_path / "var"),
        "INTAKE_SECRET_KEY": "k" * 32,
        "INTAKE_IMAP_URL": dovecot.imaps_url(),
        "INTAKE_IMAP_CA_FILE": dovecot.ca_file,
    }
    process = subprocess.Popen([sys.executable, "-m", "intake", "imap"], env=env)
    try:
        wait_for(lambda: len(rows(db)) > 0, timeout=60, interval=0.005)
        process.send_signal(signal.SIGKILL)  # in the middle of the first batches
        process.wait()
    finally:
        if process.poll() is None:
            process.kill()
    assert len(rows(db)) < count or dovecot.count("INBOX") > 0, "killed too late to tell"
    # Its lease outlives it (the takeover once it expires has a test of its own): here it is
    # let go as expiry would, without waiting 90 seconds for it.
    key = mailboxes(imap_settings(settings, dovecot))[0].key
    release_lease(db, key, _holder(db, key))
    restarted = subprocess.Popen(
        [sys.executable, "-m", "intake", "imap"], env=env | {"INTAKE_LOG_LEVEL": "WARNING"}
    )
    try:
        wait_for(lambda: dovecot.count("Processed") == count, timeout=120, interval=0.2)
    finally:
        restarted.send_signal(signal.SIGTERM)
        restarted.wait(timeout=60)
    ids = message_ids(db, repeats=True)
    assert len(ids) == len(set(ids)) == count
    assert dovecot.count("INBOX") == 0


def _holder(db: Database, key: str) -> str:
    with db.sessions() as session:
        return session.scalars(
            select(ImapMailboxState.holder).where(ImapMailboxState.mailbox == key)
        ).one()


def test_a_connection_dropped_in_the_middle_of_a_fetch_loses_and_repeats_nothing(
    settings: Settings, db: Database, dovecot: Dovecot
) -> None:
    sent = [mail(subject=f"[Sev3] Large log {n} " + "x" * 2000) for n in range(60)]
    dovecot.deliver(*sent)
    proxy = CuttingProxy(dovecot.imaps_port, after=60_000)  # mid-way through the one FETCH
    try:
        url = dovecot.imaps_url().replace(str(dovecot.imaps_port), str(proxy.port))
        settings = imap_settings(settings, dovecot, url)
        with polling(settings, db):
            wait_for(lambda: dovecot.count("Processed") == 60, timeout=60, interval=0.2)
        assert proxy.cut == 1
    finally:
        proxy.close()
    ids = message_ids(db, repeats=True)
    assert len(ids) == len(set(ids)) == 60
    with db.sessions() as session:  # the attempts counted while reading one by one are cleared
        assert session.scalar(select(func.count()).select_from(ImapFailure)) == 0


def test_a_poison_message_goes_to_quarantine_after_three_failures_and_the_rest_flow(
    settings: Settings, db: Database, dovecot: Dovecot
) -> None:
    add_contact(db, "ada@acme.example")
    settings = imap_settings(settings, dovecot)
    uids = dovecot.deliver(mail(), mail(), mail())
    # The server cannot read the second message: every FETCH of it fails and Dovecot drops
    # the connection (as with a corrupt file or a broken storage backend).
    dovecot.file_of(uids[1]).chmod(0)
    with polling(settings, db):
        wait_for(lambda: dovecot.count("Quarantine") == 1, timeout=60, interval=0.2)
        dovecot.deliver(mail())  # the mailbox is not stalled
        wait_for(lambda: dovecot.count("Processed") == 3, timeout=30, interval=0.2)
    found = rows(db)
    assert sorted(r.outcome for r in found) == ["accepted"] * 3 + ["quarantined"]
    (held,) = [r for r in found if r.outcome == "quarantined"]
    assert held.reason == "imap_failure"
    assert "UID 2" in held.detail and "FETCH" in held.detail
    assert dovecot.count("INBOX") == 0
    key = mailboxes(settings)[0].key
    assert failures(db, key, position(db, key).uidvalidity) == {}
    log = dovecot.log_file.read_text()
    assert log.count("Permission denied (euid") >= 3  # three tries, each failed by the server


def test_a_password_that_stops_working_shows_on_health_and_the_poller_backs_off(
    settings: Settings, db: Database, dovecot: Dovecot, redis_client: redis.Redis
) -> None:
    settings = imap_settings(settings, dovecot)
    with polling(settings, db) as running:
        dovecot.deliver(mail())
        wait_for(lambda: len(rows(db)) == 1, timeout=20)
        dovecot.set_password("changed-by-the-mail-admin")
        time.sleep(1.5)  # Dovecot looks at its password file at most once a second
        dovecot.kick()  # the session ends; the next login fails
        wait_for(lambda: running.failures_in_row >= 5, timeout=60)
        (state,) = _states(db)
        assert state["status"] == "error"
        assert str(state["last_error"]).startswith("LoginError")
        _, components = component_status(db, redis_client)
        assert components["imap"]["mailboxes"][0]["last_error"] == state["last_error"]
        # Backing off: after five failures in a row the delay has grown to the cap's range.
        assert FAST.cap / 2 <= running.last_delay <= FAST.cap
        failed_logins = dovecot.log_file.read_text().count("auth failed")
        assert 3 <= failed_logins <= running.failures_in_row + 1  # no retry storm
        # The mail admin puts the password back: the poller recovers by itself.
        dovecot.set_password("s3cret-imap")
        dovecot.deliver(mail())
        wait_for(lambda: len(rows(db)) == 2, timeout=30)
        wait_for(lambda: _states(db)[0]["status"] == "ok", timeout=10)


def _states(db: Database) -> list[dict[str, object]]:
    with db.sessions() as session:
        return mailbox_states(session)


def test_two_pollers_racing_for_one_mailbox_record_each_message_once(
    settings: Settings, db: Database, dovecot: Dovecot
) -> None:
    settings = imap_settings(settings, dovecot)
    dovecot.deliver(*[mail() for _ in range(150)])
    with (
        polling(settings, db, holder="host-1:1") as one,
        polling(settings, db, holder="host-2:1") as two,
    ):
        wait_for(lambda: dovecot.count("Processed") == 150, timeout=60, interval=0.2)
        # One holds the lease and does the work; the other waits for it.
        assert sorted((one.recorder.count, two.recorder.count)) == [0, 150]
    ids = message_ids(db, repeats=True)
    assert len(ids) == len(set(ids)) == 150


def test_a_dead_pollers_lease_expires_and_another_takes_over(
    settings: Settings, db: Database, dovecot: Dovecot
) -> None:
    settings = imap_settings(settings, dovecot)
    key = mailboxes(settings)[0].key
    dovecot.deliver(mail(), mail())
    polling_first = poller(settings, db, holder="dead-host:1")
    polling_first.poll_once()
    assert take_lease(db, key, "dead-host:1", seconds=2)  # it took the lease, then died
    dovecot.deliver(mail())
    with polling(settings, db, holder="live-host:2", lease_seconds=3) as survivor:
        assert not take_lease(db, key, "third-host:3")  # held, by one of them
        wait_for(lambda: len(rows(db)) == 3, timeout=30, interval=0.1)
        assert _holder(db, key) == survivor.holder
    assert dovecot.count("Processed") == 3
