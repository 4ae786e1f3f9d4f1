"""IMAP door benchmark: how fast a full mailbox drains, and how long a message waits under IDLE.

    .venv/bin/python bench/imap_drain.py [--db sqlite|postgres] [--messages 5000] [--repeat 1]
                                         [--latency-messages 200] [--rate 5]

A real Dovecot (the tests' fixture: TLS, a private CA, maildir on local disk) and a fresh
migrated database with 50 registered contacts.

(a) drain: --messages messages (~4 KB, from the registered contacts) are APPENDed, then one
    poller (the `intake imap` code, in this process) reads the mailbox to empty: fetch in
    batches, decide and commit, MOVE to Processed. Rate = messages / wall time of the drain.
(b) latency under IDLE: `intake imap` and `intake worker` run as processes (Redis db 11 at
    127.0.0.1:6379, flushed); --latency-messages messages are APPENDed at --rate a second, and
    for each the time from the APPEND's tagged OK to (1) its intake row being committed and
    (2) its acknowledgment written by the worker (the outbox maildir; the file's mtime) is
    taken. Median and p99 of each.

Everything started here is stopped in `finally` blocks; the temporary files are removed.
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from email.parser import BytesHeaderParser
from pathlib import Path

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
sys.path.insert(0, str(ROOT))

import redis  # noqa: E402
from sqlalchemy import create_engine, select, text  # noqa: E402

from intake.mail.imap_config import mailboxes  # noqa: E402
from intake.mail.imap_poller import MailboxPoller  # noqa: E402
from intake.settings import load_settings  # noqa: E402
from intake.store.db import Database, upgrade  # noqa: E402
from intake.store.models import IntakeRecord  # noqa: E402
from tests.dovecot import Dovecot  # noqa: E402
from tests.helpers import add_contact, make_mail  # noqa: E402

POSTGRES_ADMIN_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
REDIS_URL = "redis://127.0.0.1:6379/11"
CONFIG = ROOT / "config" / "intake.toml"
CONTACTS = 50
BODY = "The export job fails with code 17 at step 4; the log follows.\n" * 60  # ~4 KB


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


class Store:
    """A fresh migrated database (a SQLite file, or a new PostgreSQL database) with contacts."""

    def __init__(self, kind: str, workdir: Path) -> None:
        self.kind = kind
        self.name = f"imap_bench_{uuid.uuid4().hex[:8]}"
        if kind == "sqlite":
            self.url = f"sqlite:///{workdir / 'intake.db'}"
        else:
            admin = create_engine(POSTGRES_ADMIN_URL, isolation_level="AUTOCOMMIT")
            with admin.connect() as conn:
                conn.execute(text(f'CREATE DATABASE "{self.name}"'))
            admin.dispose()
            self.url = POSTGRES_ADMIN_URL.rsplit("/", 1)[0] + "/" + self.name
        upgrade(self.url)
        self.db = Database(self.url)
        for n in range(CONTACTS):
            add_contact(self.db, f"user{n}@customer{n % 5}.example", customer=f"Customer {n % 5}")

    def drop(self) -> None:
        self.db.dispose()
        if self.kind == "postgres":
            admin = create_engine(POSTGRES_ADMIN_URL, isolation_level="AUTOCOMMIT")
            with admin.connect() as conn:
                conn.execute(text(f'DROP DATABASE IF EXISTS "{self.name}" WITH (FORCE)'))
            admin.dispose()


def message(n: int) -> bytes:
    sender = f"User {n % CONTACTS} <user{n % CONTACTS}@customer{n % CONTACTS % 5}.example>"
    return make_mail(
        sender, f"[Sev3] Export fails, case {n} {uuid.uuid4().hex[:6]}", BODY
    ).as_bytes()


def append_all(dovecot: Dovecot, count: int) -> None:
    with dovecot.client() as client:
        for n in range(count):
            client.append("INBOX", message(n))


def drain(kind: str, count: int, workdir: Path) -> float:
    """Messages a second for one poller emptying a mailbox of ``count`` messages."""
    workdir.mkdir(parents=True)
    dovecot = Dovecot().start()
    store = Store(kind, workdir)
    try:
        started = time.monotonic()
        append_all(dovecot, count)
        print(f"  appended {count} in {time.monotonic() - started:.1f} s", flush=True)
        settings = load_settings(
            env={"INTAKE_CONFIG": str(CONFIG)},
            overrides={
                "database_url": store.url,
                "var_dir": str(workdir / "var"),
                "imap_url": dovecot.imaps_url(),
                "imap_ca_file": dovecot.ca_file,
            },
        )
        poller = MailboxPoller(
            store.db,
            settings,
            mailboxes(settings)[0],
            holder="bench:1",
            stop=threading.Event(),
        )
        started = time.monotonic()
        poller.poll_once()
        seconds = time.monotonic() - started
        assert dovecot.count("INBOX") == 0, "the mailbox was not emptied"
        assert poller.recorder.count == count, f"{poller.recorder.count} of {count} recorded"
        return count / seconds
    finally:
        store.drop()
        dovecot.stop()


def latency(kind: str, count: int, rate: float, workdir: Path) -> tuple[list[float], list[float]]:
    """Seconds from APPEND to the committed row, and to the acknowledgment, per message."""
    workdir.mkdir(parents=True)
    dovecot = Dovecot().start()
    store = Store(kind, workdir)
    client = redis.Redis.from_url(REDIS_URL)
    client.flushdb()
    var = workdir / "var"
    env = dict(os.environ) | {
        "INTAKE_CONFIG": str(CONFIG),
        "INTAKE_DATABASE_URL": store.url,
        "INTAKE_REDIS_URL": REDIS_URL,
        "INTAKE_VAR_DIR": str(var),
        "INTAKE_SECRET_KEY": "bench-" + "k" * 26,
        "INTAKE_IMAP_URL": dovecot.imaps_url(),
        "INTAKE_IMAP_CA_FILE": dovecot.ca_file,
        "INTAKE_LOG_LEVEL": "WARNING",
    }
    logs = (workdir / "imap.log").open("wb"), (workdir / "worker.log").open("wb")
    processes = [
        subprocess.Popen([sys.executable, "-m", "intake", "imap"], env=env, stderr=logs[0]),
        subprocess.Popen([sys.executable, "-m", "intake", "worker"], env=env, stderr=logs[1]),
    ]
    appended: dict[str, float] = {}
    committed: dict[str, float] = {}
    stop = threading.Event()

    def watch_rows() -> None:
        while not stop.is_set():
            with store.db.sessions() as session:
                for message_id in session.scalars(select(IntakeRecord.message_id)).all():
                    committed.setdefault(message_id, time.time())
            time.sleep(0.005)

    watcher = threading.Thread(target=watch_rows, daemon=True)
    try:
        time.sleep(3)  # the poller logs in, selects and starts IDLE
        watcher.start()
        with dovecot.client() as imap:
            for n in range(count):
                raw = message(n)
                message_id = str(BytesHeaderParser().parsebytes(raw)["Message-ID"])
                imap.append("INBOX", raw)
                appended[message_id] = time.time()
                time.sleep(1 / rate)
        deadline = time.monotonic() + 60
        outbox = var / "outbox" / "new"
        while time.monotonic() < deadline:
            if outbox.exists() and len(list(outbox.glob("*.eml"))) >= count:
                break
            time.sleep(0.2)
        acked = _acknowledged(outbox)
    finally:
        stop.set()
        for process in processes:
            process.send_signal(signal.SIGTERM)
        for process in processes:
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
        client.flushdb()
        client.close()
        store.drop()
        dovecot.stop()
    to_row = [committed[m] - t for m, t in appended.items() if m in committed]
    to_ack = [acked[m] - t for m, t in appended.items() if m in acked]
    missing = count - len(to_ack)
    if missing:
        print(f"  {missing} of {count} messages got no acknowledgment within the wait")
    return to_row, to_ack


def _acknowledged(outbox: Path) -> dict[str, float]:
    """Message-ID of the message acknowledged -> when the acknowledgment was written."""
    found: dict[str, float] = {}
    for path in outbox.glob("*.eml") if outbox.exists() else []:
        headers = BytesHeaderParser().parsebytes(path.read_bytes())
        found[str(headers["In-Reply-To"])] = path.stat().st_mtime
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db", choices=("sqlite", "postgres"), default="sqlite")
    parser.add_argument("--messages", type=int, default=5000)
    parser.add_argument("--repeat", type=int, default=1)
    parser.add_argument("--latency-messages", type=int, default=200)
    parser.add_argument("--rate", type=float, default=5.0)
    parser.add_argument("--skip-drain", action="store_true")
    parser.add_argument("--skip-latency", action="store_true")
    args = parser.parse_args()
    workdir = Path(tempfile.mkdtemp(prefix="imap-bench-"))
    try:
        if not args.skip_drain:
            rates = []
            for run in range(args.repeat):
                print(f"drain run {run + 1}: {args.messages} messages, {args.db}", flush=True)
                rates.append(drain(args.db, args.messages, workdir / f"drain{run}"))
                print(f"  {rates[-1]:.0f} messages/s", flush=True)
            print(f"drain: median {statistics.median(rates):.0f} messages/s ({args.db})")
        if not args.skip_latency:
            print(
                f"latency: {args.latency_messages} messages at {args.rate:g}/s under IDLE",
                flush=True,
            )
            to_row, to_ack = latency(args.db, args.latency_messages, args.rate, workdir / "latency")
            for name, values in (
                ("APPEND -> intake row", to_row),
                ("APPEND -> acknowledgment", to_ack),
            ):
                if values:
                    print(
                        f"{name}: median {statistics.median(values) * 1000:.0f} ms, "
                        f"p99 {percentile(values, 0.99) * 1000:.0f} ms (n={len(values)})"
                    )
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
