"""The SMTP door's resource caps: sessions at once (in all and per client address) and the bytes
of DATA being received across all sessions, so that no crowd of idle or slow clients can take
the door's memory or every slot.

One instance per listener, used only from its event loop's thread (no locking needed).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

TOO_MANY_SESSIONS = "421 4.7.0 Too many connections just now; please try again later."
TOO_MANY_FROM_YOU = "421 4.7.0 Too many connections from your address; please try again later."
BUSY_RECEIVING = "452 4.3.1 Too much mail being received just now; please try again later."
OVER_IN_FLIGHT = "421 4.3.1 Too much mail being received just now; closing, try again later."


@dataclass
class SessionLimits:
    """Counts sessions and DATA bytes in flight against their caps."""

    max_sessions: int
    max_per_address: int
    max_data_in_flight: int
    sessions: int = 0
    per_address: Counter[str] = field(default_factory=Counter)
    data_in_flight: int = 0

    def admit(self, address: str) -> str:
        """Count a new session in; the 421 to answer instead when a cap is reached ("": in)."""
        if self.sessions >= self.max_sessions:
            return TOO_MANY_SESSIONS
        if self.per_address[address] >= self.max_per_address:
            return TOO_MANY_FROM_YOU
        self.sessions += 1
        self.per_address[address] += 1
        return ""

    def leave(self, address: str) -> None:
        """A session admitted by :meth:`admit` has ended."""
        self.sessions -= 1
        self.per_address[address] -= 1
        if self.per_address[address] <= 0:
            del self.per_address[address]

    def may_start_data(self, declared_size: int = 0) -> str:
        """The reply refusing a new DATA when the cap is reached, or when the size the client
        declared (MAIL's SIZE=) would not fit under it ("": it may start)."""
        if self.data_in_flight + declared_size >= self.max_data_in_flight:
            return BUSY_RECEIVING
        return ""

    def receive(self, count: int) -> bool:
        """Count ``count`` bytes of DATA in; False when that takes the total over the cap
        (they are counted all the same: the caller gives them back when the session ends)."""
        self.data_in_flight += count
        return self.data_in_flight <= self.max_data_in_flight

    def release(self, count: int) -> None:
        self.data_in_flight -= count
