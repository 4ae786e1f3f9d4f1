"""The client side of the SMTP benchmark: raw SMTP over asyncio, run in a process of its own.

`python bench/_load.py` reads one JSON spec on stdin, drives the server it names and writes one
JSON result on stdout. Two modes:

* "closed": `sessions` persistent connections send `messages` messages as fast as the server
  answers (each session takes the next message from one shared pool, so all finish together),
  after a short warm-up that is not counted.
* "paced": open loop; each session sends one message every `interval` seconds for `duration`
  seconds (late sends go out at once; none is skipped), and reports when each 250 arrived.

Latency is measured per message from writing MAIL FROM to reading the reply after DATA's final
dot. The result also carries the CPU time of this process, of the server process and of the
whole machine over the measured window, which shows whether the client was the bottleneck.
Times in "acked_at" are time.monotonic(), which on Linux is one clock for all processes.
"""

from __future__ import annotations

import asyncio
import contextlib
import email.utils
import json
import os
import sys
import time
import uuid
from dataclasses import dataclass, field

SUPPORT = "support@intake.localhost"
REPLY_TIMEOUT = 60.0
HELO = b"EHLO bench-client.example\r\n"
SENDER_COUNT = 50
MESSAGE_SIZE = 4000  # characters before CRLF conversion: about 4 KB on the wire
TICKS = os.sysconf("SC_CLK_TCK")

SUBJECTS = (
    "Export job fails on the reporting server",
    "Scheduled report not delivered this morning",
    "Users cannot upload recordings larger than 2 GB",
    "Dashboard slow since the last update",
    "Question about the retention settings of the archive",
)
PARAGRAPHS = (
    "Since this morning the nightly export job fails on our reporting server. It stops at "
    "step 4 with error code 17 and writes no file, so the downstream team has nothing to "
    "import. We did not change the configuration; the last successful run was yesterday "
    "at 02:00.",
    "What we tried so far: restarting the export service, running the job by hand from the "
    "admin console, and checking the disk space on the target share (plenty left). The job "
    "fails in the same place every time. Other scheduled jobs on the same server run fine.",
    "The log lines around the failure are below. We can send the full log file and a "
    "screenshot of the job settings if that helps; please tell us where to upload them, as "
    "our mail server refuses attachments over 10 MB.",
    "This blocks the monthly close for our finance department, who need the export by the "
    "end of the week. Please let us know if you need remote access to the server; our "
    "operations desk can open a session for you between 08:00 and 18:00 CET.",
)
LOG_LINE = "2026-11-27 02:00:{s:02d} ERROR export.step4 code=17 batch={b} rows=0 retry={r}\n"


def sender_addresses(count: int = SENDER_COUNT) -> list[str]:
    """The registered contacts the benchmark sends from (the orchestrator seeds the same list)."""
    return [f"contact{i:02d}@customer{i % 5}.example" for i in range(count)]


def make_message(index: int, run: str, sender: str) -> tuple[str, bytes]:
    """A realistic plain-text message of about 4 KB; returns (Message-ID, wire bytes with CRLF,
    dot-stuffed, ending with the terminating dot line)."""
    message_id = f"<{run}.{index}.{uuid.uuid4().hex[:12]}@client.example>"
    name = sender.split("@", 1)[0].replace("contact", "Contact ")
    headers = (
        f'From: "{name}" <{sender}>\n'
        f"To: Support Desk <{SUPPORT}>\n"
        f"Subject: {SUBJECTS[index % len(SUBJECTS)]} (ref {run}-{index})\n"
        f"Date: {email.utils.formatdate(localtime=False)}\n"
        f"Message-ID: {message_id}\n"
        "MIME-Version: 1.0\n"
        'Content-Type: text/plain; charset="utf-8"; format=flowed\n'
        "Content-Transfer-Encoding: 7bit\n"
        "User-Agent: Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Thunderbird/128.5.0\n"
        "Content-Language: en-GB\n"
    )
    intro = "Hello support team,\n\n" + "\n\n".join(_wrap(p) for p in PARAGRAPHS) + "\n\n"
    closing = f"\nBest regards,\n{name}\nOperations, customer {sender.split('@')[1]}\n"
    closing += "-- \nPlease consider the environment before printing this email.\n"
    text = headers + "\n" + intro
    log_lines = []
    while len(text) + sum(map(len, log_lines)) + len(closing) < MESSAGE_SIZE:
        n = len(log_lines)
        log_lines.append(LOG_LINE.format(s=n % 60, b=index, r=n % 3))
    text += "".join(log_lines) + closing
    lines = text.split("\n")
    stuffed = ("." + line if line.startswith(".") else line for line in lines)
    return message_id, ("\r\n".join(stuffed) + "\r\n.\r\n").encode()


def _wrap(paragraph: str, width: int = 76) -> str:
    lines, current = [], ""
    for word in paragraph.split():
        if current and len(current) + 1 + len(word) > width:
            lines.append(current)
            current = word
        else:
            current = f"{current} {word}" if current else word
    lines.append(current)
    return "\n".join(lines)


def build_messages(count: int, run: str) -> list[tuple[str, str, bytes]]:
    """(sender, Message-ID, wire bytes) for `count` messages, senders round-robin."""
    senders = sender_addresses()
    out = []
    for i in range(count):
        sender = senders[i % len(senders)]
        message_id, wire = make_message(i, run, sender)
        out.append((sender, message_id, wire))
    return out


class SmtpError(Exception):
    def __init__(self, code: int, line: bytes) -> None:
        super().__init__(f"{code} {line[:200]!r}")
        self.code = code


class Session:
    """One persistent SMTP connection, speaking the protocol by hand (no smtplib overhead)."""

    def __init__(self, host: str, port: int) -> None:
        self.host, self.port = host, port
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def open(self) -> None:
        self.reader, self.writer = await asyncio.wait_for(
            asyncio.open_connection(self.host, self.port), REPLY_TIMEOUT
        )
        await self._expect(220)
        self.writer.write(HELO)
        await self._expect(250)

    async def _reply(self) -> tuple[int, bytes]:
        assert self.reader is not None
        while True:
            line = await asyncio.wait_for(self.reader.readline(), REPLY_TIMEOUT)
            if not line:
                raise ConnectionError("server closed the connection")
            if line[3:4] != b"-":
                return int(line[:3]), line

    async def _expect(self, code: int) -> None:
        got, line = await self._reply()
        if got != code:
            raise SmtpError(got, line)

    async def _command(self, data: bytes, code: int) -> None:
        assert self.writer is not None
        self.writer.write(data)
        await self._expect(code)

    async def send(self, sender: str, wire: bytes) -> None:
        """One transaction; raises SmtpError (after RSET) when a reply is not the expected one."""
        try:
            await self._command(b"MAIL FROM:<%s>\r\n" % sender.encode(), 250)
            await self._command(b"RCPT TO:<%s>\r\n" % SUPPORT.encode(), 250)
            await self._command(b"DATA\r\n", 354)
            await self._command(wire, 250)
        except SmtpError:
            await self._command(b"RSET\r\n", 250)
            raise

    async def close(self) -> None:
        if self.writer is None:
            return
        with contextlib.suppress(OSError, TimeoutError, ConnectionError, ValueError):
            self.writer.write(b"QUIT\r\n")
            await asyncio.wait_for(self._reply(), 5)
        self.writer.close()
        with contextlib.suppress(OSError, TimeoutError):
            await asyncio.wait_for(self.writer.wait_closed(), 5)


@dataclass
class Tally:
    latencies: list[float] = field(default_factory=list)
    acked: list[tuple[str, float]] = field(default_factory=list)  # (Message-ID, monotonic)
    errors: dict[str, int] = field(default_factory=dict)
    late: int = 0

    def error(self, what: str) -> None:
        self.errors[what] = self.errors.get(what, 0) + 1


async def _send_counted(session: Session, item: tuple[str, str, bytes], tally: Tally) -> bool:
    """Send one message and record it; False when the connection is gone."""
    sender, message_id, wire = item
    start = time.perf_counter()
    try:
        await session.send(sender, wire)
    except SmtpError as exc:
        tally.error(str(exc.code))
        return True
    except (OSError, TimeoutError, ConnectionError, ValueError) as exc:
        tally.error(type(exc).__name__)
        return False
    done = time.perf_counter()
    tally.latencies.append(done - start)
    tally.acked.append((message_id, time.monotonic()))
    return True


class Pool:
    """The messages still to send, shared by all sessions of the one event loop."""

    def __init__(self, items: list[tuple[str, str, bytes]]) -> None:
        self.items, self.next = items, 0

    def take(self) -> tuple[str, str, bytes] | None:
        if self.next >= len(self.items):
            return None
        self.next += 1
        return self.items[self.next - 1]


async def _drain(session: Session, pool: Pool, tally: Tally) -> None:
    while (item := pool.take()) is not None:
        if not await _send_counted(session, item, tally):
            return


async def _drain_reconnecting(session: Session, pool: Pool, tally: Tally) -> None:
    """One connection per message: connect, EHLO, the transaction, QUIT (latency counts all)."""
    while (item := pool.take()) is not None:
        fresh = Session(session.host, session.port)
        start = time.perf_counter()
        try:
            await fresh.open()
        except (OSError, TimeoutError, ConnectionError, SmtpError) as exc:
            tally.error(type(exc).__name__)
            continue
        sent = await _send_counted(fresh, item, tally)
        await fresh.close()
        if sent and tally.latencies:
            tally.latencies[-1] = time.perf_counter() - start


async def closed_loop(spec: dict) -> dict:
    count, conc = spec["messages"], spec["sessions"]
    warm = max(100, 4 * conc) if spec.get("warmup", True) else 0
    items = build_messages(count + warm, spec["run"])
    sessions = [Session(spec["host"], spec["port"]) for _ in range(conc)]
    drain = _drain_reconnecting if spec.get("reconnect") else _drain
    if not spec.get("reconnect"):
        await asyncio.gather(*(s.open() for s in sessions))
    try:
        warm_tally = Tally()
        warm_pool = Pool(items[:warm])
        await asyncio.gather(*(drain(s, warm_pool, warm_tally) for s in sessions))
        tally, pool = Tally(), Pool(items[warm:])
        cpu = CpuWindow(spec.get("server_pid"))
        start = time.perf_counter()
        await asyncio.gather(*(drain(s, pool, tally) for s in sessions))
        elapsed = time.perf_counter() - start
        usage = cpu.finish(elapsed)
    finally:
        await asyncio.gather(*(s.close() for s in sessions))
    return {
        "sent": count,
        "ok": len(tally.latencies),
        "elapsed": elapsed,
        "latencies": tally.latencies,
        "errors": tally.errors,
        "warmup_errors": warm_tally.errors,
        **usage,
    }


async def _paced_session(
    session: Session, items: list, start: float, offset: float, interval: float, tally: Tally
) -> None:
    for k, item in enumerate(items):
        due = start + offset + k * interval
        delay = due - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        elif delay < -interval:
            tally.late += 1
        if not await _send_counted(session, item, tally):
            return


async def paced(spec: dict) -> dict:
    conc, interval, duration = spec["sessions"], spec["interval"], spec["duration"]
    per_session = int(duration / interval)
    items = build_messages(conc * per_session, spec["run"])
    sessions = [Session(spec["host"], spec["port"]) for _ in range(conc)]
    await asyncio.gather(*(s.open() for s in sessions))
    tally = Tally()
    try:
        cpu = CpuWindow(spec.get("server_pid"))
        start = time.perf_counter()
        await asyncio.gather(
            *(
                _paced_session(s, items[i::conc], start, i * interval / conc, interval, tally)
                for i, s in enumerate(sessions)
            )
        )
        elapsed = time.perf_counter() - start
        usage = cpu.finish(elapsed)
    finally:
        await asyncio.gather(*(s.close() for s in sessions))
    return {
        "sent": len(items),
        "ok": len(tally.latencies),
        "elapsed": elapsed,
        "latencies": tally.latencies,
        "acked": tally.acked,
        "errors": tally.errors,
        "late": tally.late,
        **usage,
    }


def process_seconds(pid: int) -> float | None:
    """utime + stime of a process (all its threads), in seconds; None when it is gone."""
    try:
        with open(f"/proc/{pid}/stat") as handle:
            fields = handle.read().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / TICKS


def _machine_ticks() -> tuple[int, int]:
    """(busy, total) jiffies of all CPUs since boot."""
    with open("/proc/stat") as handle:
        values = [int(v) for v in handle.readline().split()[1:]]
    idle = values[3] + values[4]  # idle + iowait
    total = sum(values[:8])
    return total - idle, total


class CpuWindow:
    """CPU used by this process, the server process and the machine between start and finish."""

    def __init__(self, server_pid: int | None) -> None:
        self.server_pid = server_pid
        self.client = time.process_time()
        self.server = process_seconds(server_pid) if server_pid else None
        self.machine = _machine_ticks()

    def finish(self, elapsed: float) -> dict:
        client = (time.process_time() - self.client) / elapsed
        server = None
        if self.server is not None and self.server_pid:
            now = process_seconds(self.server_pid)
            server = None if now is None else (now - self.server) / elapsed
        busy, total = _machine_ticks()
        machine = (busy - self.machine[0]) / max(1, total - self.machine[1])
        return {
            "client_cpu": client,
            "server_cpu": server,
            "machine_busy": machine,
            "cores": os.cpu_count(),
        }


def main() -> None:
    spec = json.loads(sys.stdin.read())
    runner = closed_loop if spec["mode"] == "closed" else paced
    result = asyncio.run(runner(spec))
    json.dump(result, sys.stdout)


if __name__ == "__main__":
    main()
