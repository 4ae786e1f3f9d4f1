"""The web server against idle and oversized clients: how long a new client waits beside N idle
connections, and what an oversized request body does to the process's memory.

    .venv/bin/python bench/web_limits.py [--idle 500] [--body-mb 400]

Starts a real `intake web` (SQLite in a temporary directory, Redis db 11 at 127.0.0.1:6379),
opens the idle connections from 10 per loopback address, times GET /api/health, then posts an
oversized form body to /login and to /voice/incoming and prints the answer and the RSS of the
server before and after. Everything it starts is stopped in `finally`.
"""

from __future__ import annotations

import argparse
import os
import select
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from contextlib import ExitStack
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
MiB = 1024 * 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--idle", type=int, default=500, help="idle connections to open")
    parser.add_argument("--body-mb", type=int, default=400, help="size of the oversized body")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as home:
        port, server = start_web(Path(home))
        try:
            idle_figure(port, args.idle)
            for path in ("/login", "/voice/incoming"):
                body_figure(port, server, path, args.body_mb * MiB)
        finally:
            server.terminate()
            server.wait(timeout=10)


def start_web(home: Path) -> tuple[int, subprocess.Popen[bytes]]:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    env = dict(os.environ) | {
        "INTAKE_CONFIG": str(ROOT / "config" / "intake.toml"),
        "INTAKE_VAR_DIR": str(home / "var"),
        "INTAKE_DATABASE_URL": f"sqlite:///{home / 'var' / 'intake.db'}",
        "INTAKE_REDIS_URL": "redis://127.0.0.1:6379/11",
        "INTAKE_SECRET_KEY": "bench-secret-key-of-forty-bytes-or-so-ok",
        "INTAKE_WEB_PORT": str(port),
    }
    intake = [sys.executable, "-m", "intake"]
    subprocess.run([*intake, "db", "upgrade"], env=env, check=True, capture_output=True)
    server = subprocess.Popen([*intake, "web"], env=env, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            health_seconds(port)
            return port, server
        except OSError:
            time.sleep(0.2)
    server.terminate()
    raise SystemExit("intake web did not start within 30 s")


def health_seconds(port: int) -> float:
    started = time.monotonic()
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/health", timeout=10) as answer:
            answer.read()
    except urllib.error.HTTPError as answer:  # 503 when a part is down: still an answer
        answer.read()
    return time.monotonic() - started


def idle_figure(port: int, count: int) -> None:
    with ExitStack() as stack:
        for n in range(count):
            source = (f"127.0.{n // 2500 + 1}.{n // 10 % 250 + 1}", 0)
            stack.enter_context(socket.create_connection(("127.0.0.1", port), 5, source))
        time.sleep(0.5)
        print(f"{count} idle connections: GET /api/health in {health_seconds(port) * 1000:.0f} ms")


def rss_mib(server: subprocess.Popen[bytes]) -> float:
    for line in Path(f"/proc/{server.pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def body_figure(port: int, server: subprocess.Popen[bytes], path: str, size: int) -> None:
    before = rss_mib(server)
    piece, sent = b"a" * (256 * 1024), 0
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        head = (
            f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            "Content-Type: application/x-www-form-urlencoded\r\n"
            f"Content-Length: {size}\r\n\r\n"
        )
        sock.sendall(head.encode())
        while sent < size and not select.select([sock], [], [], 0)[0]:
            try:
                sock.sendall(piece)
            except OSError:
                break
            sent += len(piece)
        status = sock.recv(200).split(b"\r\n", 1)[0].decode(errors="replace")
    print(
        f"{size // MiB} MB to {path}: {status!r} after {sent // 1024} KiB sent; "
        f"RSS {before:.0f} -> {rss_mib(server):.0f} MiB"
    )


if __name__ == "__main__":
    main()
