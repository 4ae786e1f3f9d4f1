"""The IMAP door's poller: one mailbox, worked by whichever poller holds its lease.

A session: log in, select the folder, compare UIDVALIDITY with the stored position (a new one
starts the mailbox over; dedupe keeps the rescan from repeating anything), finish what a
previous session left (messages recorded but not yet moved), then catch up: search the UIDs
above the position (``UID n:*`` always answers the last message, so the UIDs are filtered
here; mail announced while an empty search ran is searched for again), fetch them in batches
with BODY.PEEK[] and INTERNALDATE (\\Seen is neither needed nor changed), record each batch
(:mod:`intake.mail.imap_record`), and only after the commit move them to the processed folder
(MOVE, or COPY + \\Deleted + UID EXPUNGE) or flag them. Then wait for news: IDLE where the
server has it, re-issued every IDLE_REISSUE seconds (well under the 29 minutes servers allow),
else a poll every ``poll_interval`` seconds; the lease is renewed all the while. Errors end the
session; the next one starts after a backoff with jitter.

A message that cannot be fetched or recorded is counted (before the attempt, so one that
kills the connection or the process counts too) and tried again alone; after ``max_attempts``
it goes to the quarantine folder and into the intake log with its error, while the rest of
the mailbox keeps flowing.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import random
import socket
import ssl
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

from imapclient import IMAPClient
from imapclient.exceptions import IMAPClientAbortError, IMAPClientError

from intake.errors import IntakeError
from intake.mail.imap_config import MailboxConfig
from intake.mail.imap_connect import open_session
from intake.mail.imap_record import Fetched, MailboxRecorder, OnCommitted
from intake.settings import Settings
from intake.store.db import Database
from intake.store.imap_state import (
    LEASE_SECONDS,
    LeaseLost,
    Position,
    clear_failures,
    count_attempt,
    ensure_mailbox,
    failure_error,
    failures,
    forget_other_generations,
    note_poll,
    position,
    release_lease,
    take_lease,
)
from intake.store.models import utcnow

log = logging.getLogger(__name__)

BATCH = 100
IDLE_REISSUE = 9 * 60  # seconds; RFC 9051 lets a server end an IDLE after 29 minutes
IDLE_CHECK = 2.0  # seconds between looks at the stop signal while idling
PROCESSED_KEYWORD = b"$IntakeProcessed"
DELETED = b"\\Deleted"
FETCH_ITEMS = [b"BODY.PEEK[]", b"INTERNALDATE"]
HEADER_ITEMS = [b"BODY.PEEK[HEADER]", b"INTERNALDATE"]
SIZE = b"RFC822.SIZE"
NEWS = (b"EXISTS", b"RECENT")
MAX_LOOKS_AGAIN = 5  # a server that announces EXISTS after every search costs a few searches
# What ends a session and is tried again after a backoff: the network, TLS, the server, the
# login, the token command, the database.
SESSION_ERRORS = (IMAPClientError, OSError, ssl.SSLError, socket.timeout, IntakeError)


@dataclass(frozen=True)
class Backoff:
    """Exponential backoff with jitter: ``base * 2**n`` up to ``cap``, each delay drawn between
    half and all of it, so pollers that failed together do not return together."""

    base: float = 1.0
    cap: float = 300.0

    def delay(self, failures_in_row: int) -> float:
        ceiling = min(self.cap, self.base * 2 ** min(failures_in_row, 30))
        return random.uniform(ceiling / 2, ceiling)  # noqa: S311 (not for secrets)


class MailboxPoller:
    """Polls one mailbox until ``stop`` is set."""

    def __init__(
        self,
        db: Database,
        settings: Settings,
        mailbox: MailboxConfig,
        *,
        holder: str,
        stop: threading.Event,
        on_committed: OnCommitted | None = None,
        backoff: Backoff = Backoff(),
        lease_seconds: float = LEASE_SECONDS,
        between_commit_and_move: Callable[[], object] | None = None,
    ) -> None:
        self.db = db
        self.mailbox = mailbox
        self.key = mailbox.key
        self.holder = holder
        self.stop = stop
        self.backoff = backoff
        self.lease_seconds = lease_seconds
        self.recorder = MailboxRecorder(db, settings, self.key, holder, on_committed)
        self.size_limit = settings.max_message_size
        self.between_commit_and_move = between_commit_and_move
        self.failures_in_row = 0
        self.last_delay = 0.0
        self.suspects: set[int] = set()  # UIDs of a batch whose fetch broke the connection
        self.capabilities: frozenset[bytes] = frozenset()
        self._folders: set[str] = set()
        self._lease_renewed = 0.0

    # -- the outer loop: lease, session, backoff --------------------------------------------

    def run(self) -> None:
        ensure_mailbox(self.db, self.key)
        try:
            while not self.stop.is_set():
                if not self._renew_lease():
                    self.stop.wait(self.lease_seconds / 3 * random.uniform(0.8, 1.2))  # noqa: S311
                    continue
                self._one_session()
        finally:
            release_lease(self.db, self.key, self.holder)

    def _one_session(self) -> None:
        try:
            self.session()
        except LeaseLost as exc:
            log.warning("%s: %s; waiting for it", self.key, exc)
        except SESSION_ERRORS as exc:
            self._failed(exc)

    def _failed(self, exc: BaseException) -> None:
        error = describe(exc)
        log.warning("%s: %s", self.key, error)
        try:
            note_poll(self.db, self.key, error=error)
        except Exception:
            log.exception("%s: could not note the error", self.key)
        self.last_delay = self.backoff.delay(self.failures_in_row)
        self.failures_in_row += 1
        self.stop.wait(self.last_delay)

    def _renew_lease(self) -> bool:
        held = take_lease(self.db, self.key, self.holder, self.lease_seconds)
        if held:
            self._lease_renewed = time.monotonic()
        return held

    def _keep_lease(self) -> None:
        """Renew the lease when a third of it has passed; raise LeaseLost when it is gone."""
        if time.monotonic() - self._lease_renewed < self.lease_seconds / 3:
            return
        if not self._renew_lease():
            raise LeaseLost(f"the lease on {self.key} passed to another poller")

    # -- one session ------------------------------------------------------------------------

    def poll_once(self) -> None:
        """One catch-up in a session of its own, without waiting for news (a cron job's
        run, or a test's)."""
        ensure_mailbox(self.db, self.key)
        if not self._renew_lease():
            raise LeaseLost(f"another poller holds the lease on {self.key}")
        try:
            client = self._connect()
            try:
                self.poll(client)
            finally:
                _close(client)
        finally:
            release_lease(self.db, self.key, self.holder)

    def _connect(self) -> IMAPClient:
        client = open_session(self.mailbox)
        self.capabilities = frozenset(client.capabilities())
        self._folders = set()
        return client

    def session(self) -> None:
        client = self._connect()
        try:
            while not self.stop.is_set():
                self.poll(client)
                self.failures_in_row = 0
                self._wait_for_news(client)
        finally:
            _close(client)

    def poll(self, client: IMAPClient) -> None:
        """Select the folder, finish what is left, and catch up with everything new."""
        selected = client.select_folder(self.mailbox.folder)
        at = self._position(int(selected[b"UIDVALIDITY"]))
        at = self._finish_leftovers(client, at)
        self._catch_up(client, at)
        note_poll(self.db, self.key)

    def _position(self, uidvalidity: int) -> Position:
        at = position(self.db, self.key)
        if at.uidvalidity == uidvalidity:
            return at
        if at.uidvalidity:
            log.warning(
                "%s: UIDVALIDITY changed from %s to %s; reading the mailbox again from the "
                "start (dedupe keeps what was recorded from being recorded twice)",
                self.key,
                at.uidvalidity,
                uidvalidity,
            )
        forget_other_generations(self.db, self.key, uidvalidity)
        fresh = Position(uidvalidity, 0)
        self.recorder.advance(fresh)
        return fresh

    def _finish_leftovers(self, client: IMAPClient, at: Position) -> Position:
        """Messages at or below the position still in the folder: recorded but not moved
        (a crash between commit and move), to quarantine, or to try again."""
        if at.last_uid == 0:
            return at
        left = _uids_up_to(client, at.last_uid, self.mailbox.after == "flag")
        failed = failures(self.db, self.key, at.uidvalidity)
        self._to_quarantine(
            client, [u for u in left if failed.get(u, 0) >= self.mailbox.max_attempts], at
        )
        self._done(client, [u for u in left if u not in failed])
        retry = [u for u in left if 0 < failed.get(u, 0) < self.mailbox.max_attempts]
        for uid in retry:
            at = self._careful(client, uid, at)
        return at

    def _catch_up(self, client: IMAPClient, at: Position) -> Position:
        looks_again = 0
        while not self.stop.is_set():
            _forget_announcements(client)
            new = [u for u in client.search(["UID", f"{at.last_uid + 1}:*"]) if u > at.last_uid]
            if not new:
                # Mail that arrived while the search ran is announced in its answer but not
                # found by it, and IDLE would not announce it again: look once more.
                if looks_again >= MAX_LOOKS_AGAIN or not _mail_announced(client):
                    return at
                looks_again += 1
                continue
            looks_again = 0
            for batch in _chunks(sorted(new), BATCH):
                self._keep_lease()
                at = self._batch(client, batch, at)
        return at

    def _batch(self, client: IMAPClient, uids: list[int], at: Position) -> Position:
        failed_before = failures(self.db, self.key, at.uidvalidity)
        if self.suspects.intersection(uids) or failed_before.keys() & set(uids):
            for uid in uids:
                at = self._careful(client, uid, at)
            self.suspects -= set(uids)
            return at
        self.suspects = set(uids)  # until the fetch returns: a dropped connection names them
        try:
            fetched = _fetch(client, uids, self.size_limit)
        except IMAPClientAbortError:
            raise
        except IMAPClientError as exc:  # the server refused the batch: find the one it minds
            log.warning("%s: fetching UIDs %s failed (%s); one by one", self.key, uids, exc)
            for uid in uids:
                at = self._careful(client, uid, at)
            return at
        self.suspects = set()
        return self._record(client, fetched, at)

    def _careful(self, client: IMAPClient, uid: int, at: Position) -> Position:
        """One message on its own, its attempt counted before it is tried."""
        failed = failures(self.db, self.key, at.uidvalidity).get(uid, 0)
        if failed >= self.mailbox.max_attempts:
            self._to_quarantine(client, [uid], at)
            return Position(at.uidvalidity, max(at.last_uid, uid))
        count_attempt(self.db, self.key, at.uidvalidity, uid, error="interrupted while being read")
        try:
            fetched = _fetch(client, [uid], self.size_limit)
        except IMAPClientAbortError as exc:  # the server (or the network) dropped us on it
            count_attempt(self.db, self.key, at.uidvalidity, uid, error=describe(exc), by=0)
            raise
        except IMAPClientError as exc:
            return self._failed_message(
                client, uid, at, error=describe(exc), raw=None, counted=True
            )
        if not fetched:  # expunged by someone else meanwhile
            clear_failures(self.db, self.key, at.uidvalidity, [uid])
            return at
        return self._record(client, fetched, at, counted=True)

    def _record(
        self, client: IMAPClient, fetched: list[Fetched], at: Position, counted: bool = False
    ) -> Position:
        recorded, failed, to = self.recorder.record(fetched, at)
        if self.between_commit_and_move is not None:
            self.between_commit_and_move()
        self._done(client, [r.uid for r in recorded])
        raw_of = {f.uid: f.raw for f in fetched}
        for failure in failed:
            to = self._failed_message(
                client,
                failure.uid,
                to,
                error=failure.error,
                raw=raw_of[failure.uid],
                counted=counted,
            )
        return to

    def _failed_message(
        self,
        client: IMAPClient,
        uid: int,
        at: Position,
        *,
        error: str,
        raw: bytes | None,
        counted: bool,
    ) -> Position:
        log.warning("%s: UID %s failed: %s", self.key, uid, error)
        attempts = count_attempt(
            self.db, self.key, at.uidvalidity, uid, error=error, by=0 if counted else 1
        )
        to = Position(at.uidvalidity, max(at.last_uid, uid))
        if attempts >= self.mailbox.max_attempts:
            self.recorder.quarantine(uid, at, error, raw)
            self._to_quarantine(client, [uid], to)
        else:
            self.recorder.advance(to)  # the failure row keeps it for another try
        return to

    # -- after the commit: move or flag -----------------------------------------------------

    def _done(self, client: IMAPClient, uids: list[int]) -> None:
        if not uids:
            return
        if self.mailbox.after == "flag":
            client.add_flags(uids, [PROCESSED_KEYWORD], silent=True)
        else:
            self._move(client, uids, self.mailbox.processed_folder)

    def _to_quarantine(self, client: IMAPClient, uids: list[int], at: Position) -> None:
        for uid in uids:
            error = failure_error(self.db, self.key, at.uidvalidity, uid)
            intake_id = self.recorder.quarantine(uid, at, error, None)
            log.error(
                "%s: UID %s failed %s times; moved to %s (intake #%s): %s",
                self.key,
                uid,
                self.mailbox.max_attempts,
                self.mailbox.quarantine_folder,
                intake_id,
                error,
            )
        if uids:
            self._move(client, uids, self.mailbox.quarantine_folder)
            clear_failures(self.db, self.key, at.uidvalidity, uids)

    def _move(self, client: IMAPClient, uids: list[int], folder: str) -> None:
        self._ensure_folder(client, folder)
        if b"MOVE" in self.capabilities:
            client.move(uids, folder)
            return
        client.copy(uids, folder)
        client.add_flags(uids, [DELETED], silent=True)
        if b"UIDPLUS" in self.capabilities:
            client.expunge(uids)  # UID EXPUNGE: only these, never another client's deletions

    def _ensure_folder(self, client: IMAPClient, folder: str) -> None:
        if folder in self._folders:
            return
        if not client.folder_exists(folder):
            try:
                client.create_folder(folder)
            except IMAPClientError:
                if not client.folder_exists(folder):  # not made by another poller meanwhile
                    raise
        self._folders.add(folder)

    # -- waiting for news -------------------------------------------------------------------

    def _wait_for_news(self, client: IMAPClient) -> None:
        if b"IDLE" in self.capabilities:
            self._idle(client)
            return
        deadline = time.monotonic() + self.mailbox.poll_interval
        while not self.stop.is_set() and time.monotonic() < deadline:
            self._keep_lease()
            self.stop.wait(min(IDLE_CHECK, max(0.0, deadline - time.monotonic())))
        client.noop()

    def _idle(self, client: IMAPClient) -> None:
        """IDLE until the server reports new mail, the stop signal, or IDLE_REISSUE passes."""
        client.idle()
        started = time.monotonic()
        try:
            while not self.stop.is_set() and time.monotonic() - started < IDLE_REISSUE:
                asked = time.monotonic()
                responses = client.idle_check(timeout=IDLE_CHECK)
                _check_alive(client, responses, time.monotonic() - asked)
                if any(_is_news(r) for r in responses):
                    return
                self._keep_lease()
        finally:
            client.idle_done()


def _fetch(client: IMAPClient, uids: Sequence[int], limit: int) -> list[Fetched]:
    """The messages still there, in UID order (one expunged meanwhile is simply absent); of a
    message over ``limit`` bytes only the header is fetched (it is recorded as too large)."""
    sizes = client.fetch(list(uids), [SIZE])
    small = [u for u in sorted(sizes) if int(sizes[u].get(SIZE, 0)) <= limit]
    large = [u for u in sorted(sizes) if u not in small]
    found = [
        Fetched(uid, bytes(data[b"BODY[]"]), _received_at(data.get(b"INTERNALDATE")))
        for uid, data in (client.fetch(small, FETCH_ITEMS) if small else {}).items()
        if b"BODY[]" in data
    ]
    found += [
        Fetched(
            uid,
            bytes(data[b"BODY[HEADER]"]),
            _received_at(data.get(b"INTERNALDATE")),
            too_large=int(sizes[uid][SIZE]),
        )
        for uid, data in (client.fetch(large, HEADER_ITEMS) if large else {}).items()
        if b"BODY[HEADER]" in data
    ]
    return sorted(found, key=lambda f: f.uid)


def _received_at(value: object) -> dt.datetime:
    """INTERNALDATE as an aware UTC moment (imapclient gives it in local time, naive)."""
    if not isinstance(value, dt.datetime):
        return utcnow()
    if value.tzinfo is None:
        value = value.astimezone()  # naive local time
    return value.astimezone(dt.UTC)


def _uids_up_to(client: IMAPClient, last_uid: int, flagging: bool) -> list[int]:
    criteria: list[object] = ["UID", f"1:{last_uid}", "NOT", "DELETED"]
    if flagging:
        criteria += ["UNKEYWORD", PROCESSED_KEYWORD.decode()]
    return sorted(u for u in client.search(criteria) if u <= last_uid)


def _check_alive(client: IMAPClient, responses: list[object], waited: float) -> None:
    """imapclient's idle_check swallows the end of the connection and answers nothing at
    once; so nothing, well before the timeout, with the peer's end of the TCP connection
    closed, means the server is gone (as does a BYE). (Nothing early can also be a TLS record
    without data, such as a session ticket: the connection is then still open.)"""
    if any(isinstance(r, tuple) and r and r[0] == b"BYE" for r in responses):
        raise IMAPClientAbortError("the server said BYE during IDLE")
    if not responses and waited < IDLE_CHECK / 2 and _peer_closed(client.socket()):
        raise IMAPClientAbortError("the server closed the connection during IDLE")


def _peer_closed(sock: socket.socket) -> bool:
    """Whether the TCP connection under ``sock`` has ended (a peek at the raw bytes; TLS
    sockets allow no peek of their own)."""
    raw = socket.socket(fileno=os.dup(sock.fileno()))
    try:
        return raw.recv(1, socket.MSG_PEEK | socket.MSG_DONTWAIT) == b""
    except BlockingIOError:
        return False
    except OSError:
        return True
    finally:
        raw.close()


def _forget_announcements(client: IMAPClient) -> None:
    _announcements(client).pop("EXISTS", None)


def _mail_announced(client: IMAPClient) -> bool:
    """Whether the server said EXISTS since _forget_announcements. imapclient drops the
    untagged answers of most commands; imaplib under it keeps them in ``untagged_responses``
    (what its public ``response()`` reads), which is the only place they can be seen."""
    return bool(_announcements(client).pop("EXISTS", None))


def _announcements(client: IMAPClient) -> dict[str, list[bytes]]:
    untagged: dict[str, list[bytes]] = client._imap.untagged_responses
    return untagged


def _is_news(response: object) -> bool:
    return isinstance(response, tuple) and len(response) >= 2 and response[1] in NEWS


def _chunks(items: list[int], size: int) -> Iterable[list[int]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def _close(client: IMAPClient) -> None:
    try:
        client.logout()
    except Exception:  # the connection is gone already
        try:
            client.shutdown()
        except Exception:
            log.debug("closing a broken IMAP connection failed", exc_info=True)


def describe(exc: BaseException) -> str:
    """One line for the health page and the log."""
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__
