"""The SMTP door's memory: its peak RSS with 32 large messages arriving at once, and while it
refuses a 200 MB message sent without SIZE.

    .venv/bin/python bench/smtp_memory.py [--sessions 32] [--message-mib 24] [--oversized-mb 200]

Runs the real `intake smtp` (SQLite in a temporary directory, the 50 benchmark senders
registered, Redis db 11, sender checks off, no worker) and samples its resident set every
20 ms from /proc. The reference is the same process's RSS after one small message, measured in
the same run. The message size stays under INTAKE_MAX_MESSAGE_SIZE (25 MiB by default), so
every one of them is accepted and stored.
"""

from __future__ import annotations

import argparse
import os
import smtplib
import socket
import subprocess
import sys
import tempfile
import threading
import time
from email.message import EmailMessage
from pathlib import Path

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH.parent))

import _summary  # noqa: E402
from _load import sender_addresses  # noqa: E402
from _server import free_port  # noqa: E402
from smtp_intake import CONFIG, PYTHON, REDIS_URL, ROOT, flush_redis, seed_contacts  # noqa: E402

from intake.store.db import upgrade  # noqa: E402

SUPPORT = "support@intake.localhost"
MIB = 1024 * 1024


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


class PeakSampler:
    """The highest RSS of ``pid`` seen while the block runs."""

    def __init__(self, pid: int) -> None:
        self.pid, self.peak, self.running = pid, 0.0, True
        self.thread = threading.Thread(target=self._sample, daemon=True)

    def _sample(self) -> None:
        while self.running:
            self.peak = max(self.peak, rss_mib(self.pid))
            time.sleep(0.02)

    def __enter__(self) -> PeakSampler:
        self.thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.running = False
        self.thread.join()


def large_message(sender: str, mib: int, number: int) -> EmailMessage:
    message = EmailMessage()
    message["From"], message["To"] = sender, SUPPORT
    message["Subject"] = f"Logs of the failed export, part {number}"
    message.set_content("The log files are attached.")
    message.add_attachment(os.urandom(mib * MIB * 3 // 4), "application", "octet-stream",
                           filename=f"export-{number}.log.gz")  # fmt: skip
    return message


def send_all_at_once(port: int, messages: list[EmailMessage]) -> list[str]:
    """Every message in a session of its own, all at once; the reply to each."""
    replies = ["?"] * len(messages)
    start = threading.Barrier(len(messages))

    def send(index: int) -> None:
        try:
            with smtplib.SMTP("127.0.0.1", port, timeout=300) as client:
                start.wait()
                client.send_message(messages[index])
            replies[index] = "250"
        except smtplib.SMTPResponseException as refused:
            replies[index] = str(refused.smtp_code)
        except OSError as exc:
            replies[index] = type(exc).__name__

    threads = [threading.Thread(target=send, args=(i,)) for i in range(len(messages))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return replies


def send_oversized(port: int, megabytes: int) -> tuple[str, float]:
    """DATA without SIZE, streamed until the door answers or closes: its reply, MB sent."""
    chunk = (b"x" * 998 + b"\r\n") * 1000  # 1 MB of lines
    sent = 0
    with socket.create_connection(("127.0.0.1", port), timeout=60) as sock:
        reader = sock.makefile("rb")
        reader.readline()
        for line in (b"EHLO bench.example", f"MAIL FROM:<{sender_addresses()[0]}>".encode(),
                     f"RCPT TO:<{SUPPORT}>".encode(), b"DATA"):  # fmt: skip
            sock.sendall(line + b"\r\n")
            while (answer := reader.readline())[3:4] == b"-":
                pass
        try:
            for _ in range(megabytes):
                sock.sendall(chunk)
                sent += len(chunk)
            sock.sendall(b"\r\n.\r\n")
        except OSError:
            pass  # the door closed the connection: its reply is waiting to be read
        answer = reader.readline()
    return answer.decode(errors="replace").strip()[:60] or "(closed)", sent / 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sessions", type=int, default=32)
    parser.add_argument("--message-mib", type=int, default=24)
    parser.add_argument("--oversized-mb", type=int, default=200)
    _summary.add_option(parser)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-smtp-memory-") as folder:
        url = f"sqlite:///{folder}/intake.db"
        upgrade(url)
        seed_contacts(url)
        flush_redis()
        port = free_port()
        env = dict(os.environ) | {
            "INTAKE_CONFIG": str(CONFIG),
            "INTAKE_DATABASE_URL": url,
            "INTAKE_REDIS_URL": REDIS_URL,
            "INTAKE_VAR_DIR": f"{folder}/var",
            "INTAKE_SECRET_KEY": "benchmark-secret-key-of-at-least-32-bytes",
            "INTAKE_SENDER_AUTH": "off",
            "INTAKE_SMTP_PORT": str(port),
            "INTAKE_SMTP_MAX_SESSIONS_PER_IP": str(args.sessions + 8),
        }
        with open(f"{folder}/smtp.log", "ab") as log:
            door = subprocess.Popen([PYTHON, "-m", "intake", "smtp"], cwd=ROOT, env=env,
                                    stdout=log, stderr=log)  # fmt: skip
        try:
            senders = sender_addresses()
            deadline = time.monotonic() + 60
            while True:
                try:
                    with smtplib.SMTP("127.0.0.1", port, timeout=10) as client:
                        client.send_message(large_message(senders[0], 0, 0))
                    break
                except OSError:
                    if time.monotonic() > deadline:
                        raise
                    time.sleep(0.3)
            baseline = rss_mib(door.pid)
            messages = [
                large_message(senders[i % len(senders)], args.message_mib, i + 1)
                for i in range(args.sessions)
            ]
            started = time.monotonic()
            with PeakSampler(door.pid) as large:
                replies = send_all_at_once(port, messages)
            took = time.monotonic() - started
            after_large = rss_mib(door.pid)
            with PeakSampler(door.pid) as oversized:
                answer, sent_mb = send_oversized(port, args.oversized_mb)
            print(f"intake smtp on SQLite; RSS after one small message: {baseline:.0f} MiB")
            accepted = replies.count("250")
            print(
                f"{args.sessions} x {args.message_mib} MiB at once: peak RSS {large.peak:.0f} MiB "
                f"(+{large.peak - baseline:.0f}), after {after_large:.0f} MiB; "
                f"{accepted}/{len(replies)} got 250 in {took:.1f} s"
                + ("" if accepted == len(replies) else f"; replies {sorted(set(replies))}")
            )
            print(
                f"{args.oversized_mb} MB without SIZE: peak RSS {oversized.peak:.0f} MiB "
                f"(+{oversized.peak - after_large:.0f} over before); {sent_mb:.0f} MB sent; "
                f"answer {answer!r}"
            )
            large_figure = _summary.Figure(
                name=f"SMTP process memory, {args.sessions} x {args.message_mib} MiB at once",
                value=f"peak {large.peak:,.0f} MiB; {accepted} got 250",
                reference=f"{baseline:,.0f} MiB after one small message",
            )
            _summary.record(args.summary, large_figure)
            oversized_figure = _summary.Figure(
                name=f"SMTP process memory, {args.oversized_mb} MB without SIZE",
                value=f"peak {oversized.peak:,.0f} MiB; answer {answer.split()[0]}",
                reference=f"{after_large:,.0f} MiB before it",
            )
            _summary.record(args.summary, oversized_figure)
        finally:
            door.terminate()
            door.wait(timeout=30)
            flush_redis()


if __name__ == "__main__":
    main()
