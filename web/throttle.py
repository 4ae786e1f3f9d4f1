"""Throttling of failed staff sign-ins per client address, in the web process's memory.

The per-login lockout (intake.accounts.sign_in) stops guessing at one login; this stops one address
from guessing across many logins, and from locking every login in turn. Each web process keeps
its own count: with several processes an address gets that many times the allowance, which is
still far too few guesses to matter.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict, deque

FAILURES_PER_ADDRESS = 20
WINDOW_SECONDS = 15 * 60
MAX_ADDRESSES = 10_000  # memory stays bounded under a flood from many addresses


class FailureThrottle:
    """Counts failures per address within a sliding window."""

    def __init__(
        self,
        limit: int = FAILURES_PER_ADDRESS,
        window: float = WINDOW_SECONDS,
        max_addresses: int = MAX_ADDRESSES,
    ) -> None:
        self.limit, self.window, self.max_addresses = limit, window, max_addresses
        self._failures: OrderedDict[str, deque[float]] = OrderedDict()
        self._lock = threading.Lock()

    def seconds_to_wait(self, address: str, now: float | None = None) -> float:
        """0 when ``address`` may try again now, else how long until it may."""
        now = time.monotonic() if now is None else now
        with self._lock:
            failures = self._recent(address, now)
            if len(failures) < self.limit:
                return 0.0
            return failures[0] + self.window - now

    def note_failure(self, address: str, now: float | None = None) -> None:
        now = time.monotonic() if now is None else now
        with self._lock:
            self._recent(address, now).append(now)
            self._failures.move_to_end(address)
            while len(self._failures) > self.max_addresses:
                self._failures.popitem(last=False)

    def _recent(self, address: str, now: float) -> deque[float]:
        failures = self._failures.setdefault(address, deque())
        while failures and failures[0] <= now - self.window:
            failures.popleft()
        return failures
