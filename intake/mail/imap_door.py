"""``intake imap``: a poller thread for every configured mailbox, and what the door reports
about them (each mailbox's last poll, last success and last error, from the database)."""

from __future__ import annotations

import os
import socket
import threading
import uuid
from typing import Any

from intake.mail.imap_config import MailboxConfig, mailboxes
from intake.mail.imap_poller import MailboxPoller
from intake.mail.imap_record import OnCommitted
from intake.settings import Settings
from intake.store.db import Database
from intake.store.imap_state import mailbox_states

STOP_SECONDS = 30


def holder_name() -> str:
    """This process among all pollers on all hosts (the lease names it)."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


class ImapDoor:
    """Runs one MailboxPoller per mailbox, each in its own thread, until stopped."""

    def __init__(
        self,
        settings: Settings,
        db: Database,
        on_committed: OnCommitted | None = None,
        configured: list[MailboxConfig] | None = None,
    ) -> None:
        self.db = db
        self.stop_event = threading.Event()
        self.holder = holder_name()
        self.pollers = [
            MailboxPoller(
                db,
                settings,
                mailbox,
                holder=self.holder,
                stop=self.stop_event,
                on_committed=on_committed,
            )
            for mailbox in (mailboxes(settings) if configured is None else configured)
        ]
        self.threads = [
            threading.Thread(target=p.run, name=f"imap-{p.key}", daemon=True) for p in self.pollers
        ]

    def start(self) -> None:
        for thread in self.threads:
            thread.start()

    def stop(self) -> None:
        self.stop_event.set()
        for thread in self.threads:
            thread.join(timeout=STOP_SECONDS)

    def report(self) -> dict[str, Any]:
        """The heartbeat's detail: the latest poll, success and error over our mailboxes."""
        keys = {p.key for p in self.pollers}
        with self.db.sessions() as session:
            states = [s for s in mailbox_states(session) if s["mailbox"] in keys]
        return summary(states)


def summary(states: list[dict[str, Any]]) -> dict[str, Any]:
    def latest(name: str) -> str | None:
        return max((s[name] for s in states if s[name]), default=None)

    errors = sorted((s for s in states if s["last_error_at"]), key=lambda s: s["last_error_at"])
    return {
        "last_poll": latest("last_poll"),
        "last_success": latest("last_success"),
        "last_error_at": errors[-1]["last_error_at"] if errors else None,
        "last_error": errors[-1]["last_error"] if errors else "",
        "mailboxes": states,
    }
