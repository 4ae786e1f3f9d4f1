"""Helpers for the IMAP door's tests: settings pointing at the test Dovecot, a poller run in a
thread, the intake rows, and a TCP proxy that cuts a connection in the middle of a reply."""

from __future__ import annotations

import contextlib
import itertools
import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import select

from intake.mail.imap_config import MailboxConfig, mailboxes
from intake.mail.imap_poller import Backoff, MailboxPoller
from intake.settings import Settings
from intake.store.db import Database
from intake.store.models import IntakeRecord
from tests.dovecot import Dovecot
from tests.helpers import make_mail

FAST = Backoff(base=0.05, cap=0.5)
_numbers = itertools.count(1)


def imap_settings(settings: Settings, dovecot: Dovecot, url: str | None = None) -> Settings:
    return settings.replace(
        imap_url=url or dovecot.imaps_url(),
        imap_ca_file=dovecot.ca_file,
        support_addresses=("support@intake.localhost",),
    )


def mail(sender: str = "Ada Lovelace <ada@acme.example>", subject: str = "") -> bytes:
    """A distinct message (its own subject and Message-ID)."""
    number = next(_numbers)
    return make_mail(sender, subject or f"[Sev3] Export fails, case {number}").as_bytes()


def poller(
    settings: Settings,
    db: Database,
    *,
    holder: str = "test-host:1",
    stop: threading.Event | None = None,
    mailbox: MailboxConfig | None = None,
    **options: Any,
) -> MailboxPoller:
    return MailboxPoller(
        db,
        settings,
        mailbox or mailboxes(settings)[0],
        holder=holder,
        stop=stop or threading.Event(),
        backoff=options.pop("backoff", FAST),
        **options,
    )


@contextmanager
def polling(settings: Settings, db: Database, **options: Any) -> Iterator[MailboxPoller]:
    """A poller running in a thread for the duration of the block."""
    stop = threading.Event()
    running = poller(settings, db, stop=stop, **options)
    thread = threading.Thread(target=running.run, daemon=True)
    thread.start()
    try:
        yield running
    finally:
        stop.set()
        thread.join(timeout=30)
        assert not thread.is_alive(), "the poller did not stop"


def rows(db: Database) -> list[IntakeRecord]:
    with db.sessions() as session:
        return list(session.scalars(select(IntakeRecord).order_by(IntakeRecord.id)).all())


def message_ids(db: Database, *, repeats: bool = False) -> list[str]:
    """The Message-IDs of the intake rows (without the rows of repeated deliveries)."""
    return [r.message_id for r in rows(db) if repeats or r.outcome != "duplicate"]


class CuttingProxy:
    """A TCP proxy to the IMAP server that cuts its next ``cuts`` connections once the server
    has sent ``after`` bytes on them: a connection dropped in the middle of a reply."""

    def __init__(self, target_port: int, after: int, cuts: int = 1) -> None:
        self.target_port = target_port
        self.after = after
        self.cuts = cuts
        self.cut = 0
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port: int = self.listener.getsockname()[1]
        self.lock = threading.Lock()
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            server = socket.create_connection(("127.0.0.1", self.target_port))
            with self.lock:
                cut_this = self.cut < self.cuts
            limit = self.after if cut_this else None
            threading.Thread(target=self._pipe, args=(client, server, None), daemon=True).start()
            threading.Thread(target=self._pipe, args=(server, client, limit), daemon=True).start()

    def _pipe(self, source: socket.socket, sink: socket.socket, limit: int | None) -> None:
        sent = 0
        try:
            while data := source.recv(65536):
                if limit is not None and sent + len(data) > limit:
                    with self.lock:
                        self.cut += 1
                    break
                sink.sendall(data)
                sent += len(data)
        except OSError:
            pass
        for sock in (source, sink):
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            sock.close()

    def close(self) -> None:
        self.listener.close()
