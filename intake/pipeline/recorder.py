"""Group commit for the SMTP door: one writer thread decides and commits, in one transaction,
every message that arrived while the previous commit was running.

A commit (an fsync on SQLite, a round trip on PostgreSQL) then serves many messages, and no
reply waits for more than the commit it is part of: each message's future is completed only
after the transaction holding its row has committed, and only then does the door answer 250.

The thread must outlive anything a client or the database does: a future whose client has
gone is skipped or left alone, and no exception in a batch, a callback or a completion ends
its loop. It reports its progress (:meth:`BatchRecorder.progress`) so that a stall is seen.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from sqlalchemy.exc import DBAPIError, IntegrityError

from intake.errors import StorageUnavailable
from intake.pipeline.inbound import InboundMessage
from intake.pipeline.steps import Decision, record, record_many_in
from intake.store.db import Database
from intake.store.lookups import BatchLookups, ContactDirectory

log = logging.getLogger(__name__)

Recorded = tuple[Decision, int]
Result = Recorded | BaseException
OnCommitted = Callable[[list[int]], object]
MAX_BATCH = 100


@dataclass(frozen=True)
class Work:
    """One message to store, and where its answer goes (a future of the door's event loop)."""

    make_message: Callable[[], InboundMessage]
    future: asyncio.Future[Recorded]
    loop: asyncio.AbstractEventLoop
    submitted_at: float = field(default_factory=time.monotonic)


@dataclass(frozen=True)
class Progress:
    """What the recorder is doing: whether its thread runs, how much work waits and for how
    long, and when it last finished a batch (stored or answered 'try later')."""

    alive: bool
    waiting: int
    oldest_wait: float  # seconds the oldest message in hand or queued has waited; 0 when none
    since_last_batch: float | None  # seconds since the last finished batch; None: none yet
    last_batch_at: dt.datetime | None
    last_error: str

    def stalled_reason(self, after: float) -> str:
        """Why the recorder counts as stuck (work waiting over ``after`` seconds with no
        batch finished meanwhile), or an empty string."""
        if not self.alive:
            return "the recorder thread has stopped"
        idle = self.since_last_batch is None or self.since_last_batch > after
        if self.waiting and self.oldest_wait > after and idle:
            return (
                f"{self.waiting} message(s) waiting for {self.oldest_wait:.0f} s "
                f"with no batch stored for over {after:g} s"
            )
        return ""


class BatchRecorder:
    """Takes messages from the door's event loop; decides and commits them in batches in its
    own thread, each transaction waiting at most ``lock_timeout`` seconds for a lock."""

    def __init__(
        self,
        db: Database,
        on_committed: OnCommitted | None = None,
        directory: ContactDirectory | None = None,
        lock_timeout: float | None = None,
    ) -> None:
        self.db = db
        self.on_committed = on_committed
        self.directory = directory or ContactDirectory()
        self.lock_timeout = lock_timeout
        self._items: deque[Work | None] = deque()
        self._ready = threading.Condition()
        self._in_hand: list[Work] = []
        self._last_batch: tuple[float, dt.datetime] | None = None
        self._last_error = ""
        self._thread = threading.Thread(target=self._run, name="intake-recorder", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self, timeout: float = 10) -> None:
        self._put(None)
        self._thread.join(timeout=timeout)

    def submit(self, make_message: Callable[[], InboundMessage]) -> asyncio.Future[Recorded]:
        """Queue a message (built in the writer thread, off the event loop). Called from the
        event loop; the future gives its decision and intake row id once committed, or raises
        StorageUnavailable. Cancelling it (the client left) is safe at any moment."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Recorded] = loop.create_future()
        self._put(Work(make_message, future, loop))
        return future

    def progress(self) -> Progress:
        """Work in hand or queued counts as waiting even when its client has gone or been
        answered 451: it shows the thread is not getting through it."""
        now = time.monotonic()
        with self._ready:
            waiting = [w for w in (*self._in_hand, *self._items) if w is not None]
            last = self._last_batch
            error = self._last_error
        return Progress(
            alive=self._thread.is_alive(),
            waiting=len(waiting),
            oldest_wait=max((now - w.submitted_at for w in waiting), default=0.0),
            since_last_batch=None if last is None else now - last[0],
            last_batch_at=None if last is None else last[1],
            last_error=error,
        )

    def _put(self, work: Work | None) -> None:
        with self._ready:
            self._items.append(work)
            self._ready.notify()

    def _take(self) -> tuple[list[Work], bool]:
        """The next batch (waiting for one), and whether a stop was asked for."""
        with self._ready:
            while not self._items:
                self._ready.wait()
            taken: list[Work | None] = []
            while self._items and len(taken) < MAX_BATCH:
                taken.append(self._items.popleft())
            self._in_hand = [w for w in taken if w is not None]
            return self._in_hand, None in taken

    def _run(self) -> None:
        stop = False
        while not stop:
            batch, stop = self._take()
            try:
                self._handle([w for w in batch if not w.future.done()])
            except Exception as exc:  # never let one batch end the door's only writer
                log.exception("a batch failed unexpectedly; its messages are answered 451")
                self._finish(batch, [StorageUnavailable(str(exc))] * len(batch))
            self._batch_done()

    def _batch_done(self) -> None:
        with self._ready:
            self._in_hand = []
            self._last_batch = (time.monotonic(), dt.datetime.now(dt.UTC))

    def _handle(self, batch: list[Work]) -> None:
        built, failed = self._build(batch)
        self._finish([w for w, _ in failed], [exc for _, exc in failed])
        unique, repeats = _split_repeats(built)
        if unique:
            self._record_batch(unique)
        if repeats:  # a copy of a message in this very batch: decided once the first is stored
            self._record_batch(repeats)

    def _build(
        self, batch: list[Work]
    ) -> tuple[list[tuple[Work, InboundMessage]], list[tuple[Work, BaseException]]]:
        built: list[tuple[Work, InboundMessage]] = []
        failed: list[tuple[Work, BaseException]] = []
        for work in batch:
            try:
                built.append((work, work.make_message()))
            except Exception as exc:
                failed.append((work, exc))
        return built, failed

    def _record_batch(self, pairs: Sequence[tuple[Work, InboundMessage]]) -> None:
        messages = [m for _, m in pairs]
        try:
            results: list[Result] = list(self._store(messages))
        except IntegrityError:
            # Another process stored one of these meanwhile: decide each on its own.
            results = [self._store_alone(m) for m in messages]
        except DBAPIError as exc:
            results = [StorageUnavailable(str(exc.orig or exc))] * len(messages)
        except Exception:  # a message the steps cannot decide must not fail its neighbours
            log.exception("a batch failed; deciding its messages one by one")
            results = [self._store_alone(m) for m in messages]
        self._note_errors(results)
        self._notify(results)
        self._finish([w for w, _ in pairs], results)

    def _store(self, messages: Sequence[InboundMessage]) -> list[Recorded]:
        with self.db.transaction(self.lock_timeout) as session:
            lookups = BatchLookups(session, self.directory, [m.dedupe_key for m in messages])
            return record_many_in(session, messages, lookups)

    def _store_alone(self, message: InboundMessage) -> Result:
        try:
            return record(self.db, message, self.lock_timeout)
        except Exception as exc:
            return exc

    def _note_errors(self, results: Sequence[Result]) -> None:
        errors = [r for r in results if isinstance(r, BaseException)]
        with self._ready:
            self._last_error = str(errors[-1]) if errors else ""

    def _notify(self, results: Sequence[Result]) -> None:
        # The work is handed to the queue before anyone is answered, so a 250 means the
        # job is queued too (when Redis is up; the sweep covers the rest).
        pending = [r[1] for r in results if not isinstance(r, BaseException) and r[0].needs_worker]
        if not pending or self.on_committed is None:
            return
        try:
            self.on_committed(pending)
        except Exception:  # the sweep will pick the rows up
            log.exception("could not hand intake rows %s to the workers", pending)

    def _finish(self, batch: Sequence[Work], results: Sequence[Result]) -> None:
        for work, result in zip(batch, results, strict=True):
            try:
                work.loop.call_soon_threadsafe(_settle, work.future, result)
            except Exception as exc:  # the door's loop has closed: nobody is waiting any more
                log.warning("an answer could not be handed to the SMTP door (%s); dropped", exc)


def _settle(future: asyncio.Future[Recorded], result: Result) -> None:
    """Complete the future, unless its client has gone (it was cancelled) or it timed out."""
    if future.done():
        return
    if isinstance(result, BaseException):
        future.set_exception(result)
    else:
        future.set_result(result)


def _split_repeats(
    pairs: list[tuple[Work, InboundMessage]],
) -> tuple[list[tuple[Work, InboundMessage]], list[tuple[Work, InboundMessage]]]:
    seen: set[str] = set()
    unique: list[tuple[Work, InboundMessage]] = []
    repeats: list[tuple[Work, InboundMessage]] = []
    for pair in pairs:
        (repeats if pair[1].dedupe_key in seen else unique).append(pair)
        seen.add(pair[1].dedupe_key)
    return unique, repeats
