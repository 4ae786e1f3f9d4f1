"""Liveness reports of a long-running process, for whoever restarts it when it is stuck.

A door reports every second, from its main thread, whether it is getting through its work:
to a file that ``intake run``'s supervisor watches (a report saying "stalled", or no report
for a while, and the supervisor restarts the process), and to systemd's watchdog when the
process runs under a unit with ``WatchdogSec=`` (a ``WATCHDOG=1`` only while not stalled).
"""

from __future__ import annotations

import json
import logging
import os
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger(__name__)

HEARTBEAT_EVERY_TICKS = 2  # a Redis heartbeat every 2 s (the liveness file: every second)
HEARTBEAT_TTL = 10  # seconds: a door that stops reporting drops out of /api/health

Detail = dict[str, object]


@dataclass(frozen=True)
class Report:
    """One liveness report: which process, when, and why it is stalled (empty: it is not)."""

    pid: int
    at: float  # seconds since the epoch
    stalled: str

    def age(self, now: float | None = None) -> float:
        return (time.time() if now is None else now) - self.at


def write_report(path: Path, stalled: str) -> None:
    """Replace the report at ``path`` in one step, so a reader never sees half of it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(path.name + ".tmp")
    body = {"pid": os.getpid(), "at": time.time(), "stalled": stalled}
    partial.write_text(json.dumps(body), encoding="utf-8")
    os.replace(partial, path)


def read_report(path: Path) -> Report | None:
    """The report at ``path``, or None when there is none (yet) or it cannot be read."""
    try:
        body = json.loads(path.read_text(encoding="utf-8"))
        return Report(int(body["pid"]), float(body["at"]), str(body.get("stalled") or ""))
    except (OSError, ValueError, KeyError, TypeError):
        return None


def notify_systemd(message: str) -> bool:
    """Send ``message`` (``READY=1``, ``WATCHDOG=1``) to systemd when it supervises this
    process (NOTIFY_SOCKET is set); False otherwise or when it cannot be sent."""
    address = os.environ.get("NOTIFY_SOCKET", "")
    if not address:
        return False
    if address.startswith("@"):  # an abstract socket
        address = "\0" + address[1:]
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
            sock.sendto(message.encode("ascii"), address)
    except OSError as exc:
        log.warning("could not notify systemd: %s", exc)
        return False
    return True


class LivenessReporter:
    """Called every second from a door's main thread: the liveness file and systemd's
    watchdog each time, the Redis heartbeat that /api/health reads every few. Nothing here
    may raise: a reporting failure must never stop the door it reports on."""

    def __init__(
        self,
        liveness: Callable[[], Detail],
        heartbeat: Callable[[Detail], object],
        liveness_file: Path | None,
    ) -> None:
        self.liveness = liveness
        self.heartbeat = heartbeat  # records the detail where /api/health reads it (Redis)
        self.liveness_file = liveness_file
        self.ticks = 0
        self.stalled = ""
        self.heartbeat_failing = False

    def tick(self) -> None:
        try:
            detail = self.liveness()
            stalled = str(detail.get("stalled") or "")
            # A change is told to /api/health at once, before the supervisor may act on it.
            if self.ticks % HEARTBEAT_EVERY_TICKS == 0 or stalled != self.stalled:
                self._heartbeat(detail)
            self.stalled = stalled
            self._report(stalled)
        except Exception:
            log.exception("liveness not reported")
        self.ticks += 1

    def _report(self, stalled: str) -> None:
        if self.liveness_file is not None:
            write_report(self.liveness_file, stalled)
        if self.ticks == 0:
            notify_systemd("READY=1")
        if not stalled:
            notify_systemd("WATCHDOG=1")

    def _heartbeat(self, detail: Detail) -> None:
        try:
            self.heartbeat(detail)
        except Exception as exc:  # Redis being down must not stop the door; said once
            if not self.heartbeat_failing:
                log.warning("heartbeat not recorded (Redis): %s", exc)
            self.heartbeat_failing = True
        else:
            self.heartbeat_failing = False
