"""Group commit for the SMTP door: one writer thread decides and commits, in one transaction,
every message that arrived while the previous commit was running.

A commit (an fsync on SQLite, a round trip on PostgreSQL) then serves many messages, and no
reply waits for more than the commit it is part of: each message's future is completed only
after the transaction holding its row has committed, and only then does the door answer 250.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import Future

from sqlalchemy.exc import DBAPIError, IntegrityError

from intake.errors import StorageUnavailable
from intake.pipeline.inbound import InboundMessage
from intake.pipeline.steps import Decision, record, record_many_in
from intake.store.db import Database
from intake.store.lookups import BatchLookups, ContactDirectory

log = logging.getLogger(__name__)

Recorded = tuple[Decision, int]
Work = tuple[Callable[[], InboundMessage], "Future[Recorded]"]
OnCommitted = Callable[[list[int]], object]
Pair = tuple[InboundMessage, "Future[Recorded]"]
MAX_BATCH = 100


class BatchRecorder:
    """Takes messages from any thread; decides and commits them in batches in its own thread."""

    def __init__(
        self,
        db: Database,
        on_committed: OnCommitted | None = None,
        directory: ContactDirectory | None = None,
    ) -> None:
        self.db = db
        self.on_committed = on_committed
        self.directory = directory or ContactDirectory()
        self._queue: queue.SimpleQueue[Work | None] = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._run, name="intake-recorder", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._queue.put(None)
        self._thread.join(timeout=30)

    def submit(self, make_message: Callable[[], InboundMessage]) -> Future[Recorded]:
        """Queue a message (built in the writer thread, off the event loop); the future gives
        its decision and intake row id once committed, or raises StorageUnavailable."""
        future: Future[Recorded] = Future()
        self._queue.put((make_message, future))
        return future

    def _run(self) -> None:
        while (first := self._queue.get()) is not None:
            batch = [first, *self._waiting(MAX_BATCH - 1)]
            stop = None in batch
            self._handle([w for w in batch if w is not None])
            if stop:
                return

    def _waiting(self, most: int) -> list[Work | None]:
        taken: list[Work | None] = []
        while len(taken) < most:
            try:
                taken.append(self._queue.get_nowait())
            except queue.Empty:
                break
        return taken

    def _handle(self, batch: list[Work]) -> None:
        messages, futures = self._build(batch)
        unique, repeats = _split_repeats(messages, futures)
        if unique:
            self._record_batch(*zip(*unique, strict=True))
        if repeats:  # a copy of a message in this very batch: decided once the first is stored
            self._record_batch(*zip(*repeats, strict=True))

    def _build(self, batch: list[Work]) -> tuple[list[InboundMessage], list[Future[Recorded]]]:
        messages, futures = [], []
        for make_message, future in batch:
            try:
                messages.append(make_message())
                futures.append(future)
            except Exception as exc:
                future.set_exception(exc)
        return messages, futures

    def _record_batch(
        self, messages: Sequence[InboundMessage], futures: Sequence[Future[Recorded]]
    ) -> None:
        try:
            results: list[Recorded | BaseException] = list(self._store(messages))
        except IntegrityError:
            # Another process stored one of these meanwhile: decide each on its own.
            results = [self._store_alone(m) for m in messages]
        except DBAPIError as exc:
            results = [StorageUnavailable(str(exc.orig or exc))] * len(messages)
        except Exception:  # a message the steps cannot decide must not fail its neighbours
            log.exception("a batch failed; deciding its messages one by one")
            results = [self._store_alone(m) for m in messages]
        self._complete(futures, results)

    def _store(self, messages: Sequence[InboundMessage]) -> list[Recorded]:
        with self.db.transaction() as session:
            lookups = BatchLookups(session, self.directory, [m.dedupe_key for m in messages])
            return record_many_in(session, messages, lookups)

    def _store_alone(self, message: InboundMessage) -> Recorded | BaseException:
        try:
            return record(self.db, message)
        except Exception as exc:
            return exc

    def _complete(
        self, futures: Sequence[Future[Recorded]], results: Sequence[Recorded | BaseException]
    ) -> None:
        # The work is handed to the queue before anyone is answered, so a 250 means the
        # job is queued too (when Redis is up; the sweep covers the rest).
        pending = [r[1] for r in results if not isinstance(r, BaseException) and r[0].needs_worker]
        if pending and self.on_committed is not None:
            self._notify(pending)
        for future, result in zip(futures, results, strict=True):
            if isinstance(result, BaseException):
                future.set_exception(result)
            else:
                future.set_result(result)

    def _notify(self, intake_ids: list[int]) -> None:
        assert self.on_committed is not None
        try:
            self.on_committed(intake_ids)
        except Exception:  # the sweep will pick the rows up
            log.exception("could not hand intake rows %s to the workers", intake_ids)


def _split_repeats(
    messages: list[InboundMessage], futures: list[Future[Recorded]]
) -> tuple[list[Pair], list[Pair]]:
    seen: set[str] = set()
    unique: list[Pair] = []
    repeats: list[Pair] = []
    for pair in zip(messages, futures, strict=True):
        (repeats if pair[0].dedupe_key in seen else unique).append(pair)
        seen.add(pair[0].dedupe_key)
    return unique, repeats
