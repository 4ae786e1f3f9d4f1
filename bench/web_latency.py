"""Web latency benchmark: the dashboard, the request list, its searches and ``GET /api/requests`` of
``intake web`` (waitress) on a PostgreSQL database holding a large history, under wrk.

    .venv/bin/python bench/web_latency.py [--requests 1000000] [--database-url URL]
        [--connections 1,4] [--duration 15] [--rounds 3] [--threads 8] [--keep]

Without --database-url a database of its own is created on the local PostgreSQL server,
loaded by bench/load_requests.py (1,000,000 requests by default, about two minutes) and
dropped at the end (--keep keeps it and prints its URL for a next run). The server is the real
`intake web` process; a staff user signs in through the sign-in form for the pages, an API
token is made for the API. Each target gets a short warm-up, then --rounds runs of wrk per
connection count; the table shows the median of the rounds' p50, p99 and requests/s.
Needs wrk (Debian: apt-get install wrk) and the Redis at 127.0.0.1:6379 (db 12, flushed).
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import http.cookiejar
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.parse
import urllib.request
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import psycopg  # noqa: E402

from bench import _summary  # noqa: E402
from bench.load_requests import Plan, load  # noqa: E402

ADMIN_URL = "postgresql://postgres@127.0.0.1:5432/test"
REDIS_URL = "redis://127.0.0.1:6379/12"
PASSWORD = "bench password, long enough"
TARGETS = (
    ("dashboard", "/", "session"),
    ("request list", "/requests", "session"),
    # Search: a word in one request of eight, a word in one request, part of a customer's
    # name, part of a contact's address.
    ("search: common word", "/requests?q=stutters", "session"),
    ("search: rare word", "/requests?q=123457", "session"),
    ("search: customer", "/requests?customer=customer%2001234", "session"),
    ("search: contact", "/requests?contact=contact7777%40", "session"),
)
API_TARGET = ("GET /api/requests", "/api/requests", "token")
UNITS = {"us": 0.001, "ms": 1.0, "s": 1000.0}
TARGET_P99_MS = 150.0


@dataclass(frozen=True)
class Run:
    p50_ms: float
    p99_ms: float
    rps: float


@contextlib.contextmanager
def database(args: argparse.Namespace) -> Iterator[str]:
    """The database to measure: the one given, or a fresh one loaded here (dropped after)."""
    if args.database_url:
        yield args.database_url
        return
    name = f"webbench_{os.getpid()}_{uuid.uuid4().hex[:6]}"
    with psycopg.connect(ADMIN_URL, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    url = f"postgresql+psycopg://postgres@127.0.0.1:5432/{name}"
    try:
        started = time.monotonic()
        counts = load(url, Plan(args.requests, 2000, 730, dt.datetime.now(dt.UTC)), seed=7)
        print(f"loaded {counts} in {time.monotonic() - started:.0f} s", flush=True)
        yield url
    finally:
        if args.keep:
            print(f"kept: {url}")
        else:
            with psycopg.connect(ADMIN_URL, autocommit=True) as conn:
                conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def intake(env: dict[str, str], *args: str, stdin: str = "") -> str:
    """Run an `intake` command (the console script of this venv) and return its output."""
    command = [sys.executable, "-m", "intake", *args]
    done = subprocess.run(command, env=env, input=stdin, capture_output=True, text=True, check=True)
    return done.stdout.strip()


def add_staff(env: dict[str, str]) -> None:
    """The benchmark's staff login (already there when a kept database is measured again)."""
    try:
        intake(env, "staff", "add", "bench", stdin=PASSWORD + "\n")
    except subprocess.CalledProcessError as exc:
        if "already exists" not in (exc.stderr or ""):
            raise


@contextlib.contextmanager
def web_server(url: str, threads: int) -> Iterator[tuple[str, dict[str, str]]]:
    """`intake web` on a free port; yields its base URL and the environment it runs with."""
    var = tempfile.mkdtemp(prefix="webbench-")
    port = _free_port()
    env = os.environ | {
        "INTAKE_DATABASE_URL": url,
        "INTAKE_REDIS_URL": REDIS_URL,
        "INTAKE_SECRET_KEY": "bench-secret-of-at-least-32-bytes-long",
        "INTAKE_VAR_DIR": var,
        "INTAKE_CONFIG": str(ROOT / "config" / "intake.toml"),
        "INTAKE_LOG_LEVEL": "WARNING",
    }
    _flush_redis()
    command = [
        sys.executable,
        "-m",
        "intake",
        "web",
        "--port",
        str(port),
        "--threads",
        str(threads),
    ]
    server = subprocess.Popen(command, env=env, stderr=subprocess.DEVNULL)
    try:
        base = f"http://127.0.0.1:{port}"
        _wait_until_up(base)
        yield base, env
    finally:
        server.terminate()
        server.wait(timeout=30)
        shutil.rmtree(var, ignore_errors=True)
        _flush_redis()


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _flush_redis() -> None:
    import redis

    redis.Redis.from_url(REDIS_URL).flushdb()


def _wait_until_up(base: str) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError):
            urllib.request.urlopen(f"{base}/api/health", timeout=2)
            return
        time.sleep(0.3)
    raise SystemExit("intake web did not answer within 60 s")


def session_cookie(base: str) -> str:
    """Sign in through the form, as a browser does; returns the Cookie header's value."""
    jar = http.cookiejar.CookieJar()
    opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar))
    page = opener.open(f"{base}/login").read().decode()
    token = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', page)
    assert token is not None, "no CSRF token on the sign-in page"
    form = {"csrf_token": token.group(1), "username": "bench", "password": PASSWORD}
    opener.open(f"{base}/login", data=urllib.parse.urlencode(form).encode())
    cookies = {c.name: c.value for c in jar}
    assert "intake_session" in cookies, "sign-in failed"
    return f"intake_session={cookies['intake_session']}"


def wrk(url: str, header: str, connections: int, seconds: int) -> Run:
    threads = min(2, connections)
    # wrk leaves answers slower than its timeout (2 s by default) out of the latencies: 30 s
    # keeps a slow page in the figures instead of showing it as 0 ms.
    command = [
        "wrk", f"-t{threads}", f"-c{connections}", f"-d{seconds}s", "--timeout", "30s", "--latency"
    ]  # fmt: skip
    output = subprocess.run(
        [*command, "-H", header, url], capture_output=True, text=True, check=True
    ).stdout
    if "Non-2xx" in output:
        raise SystemExit(f"{url} answered errors under load:\n{output}")
    return Run(_percentile(output, "50%"), _percentile(output, "99%"), _rps(output))


def _percentile(output: str, label: str) -> float:
    found = re.search(rf"^\s*{re.escape(label)}\s+([\d.]+)(us|ms|s)\s*$", output, re.M)
    if found is None:
        raise SystemExit(f"no {label} latency in wrk's output:\n{output}")
    return float(found.group(1)) * UNITS[found.group(2)]


def _rps(output: str) -> float:
    found = re.search(r"Requests/sec:\s+([\d.]+)", output)
    return float(found.group(1)) if found else 0.0


def measure(base: str, headers: dict[str, str], args: argparse.Namespace) -> list[tuple]:
    rows = []
    for name, path, auth in (*TARGETS, API_TARGET):
        header = headers[auth]
        wrk(base + path, header, 2, 3)  # warm-up: pools, caches, the planner's statistics
        for connections in args.connections:
            runs = [
                wrk(base + path, header, connections, args.duration) for _ in range(args.rounds)
            ]
            rows.append((name, connections, *_medians(runs)))
            print(_format_row(rows[-1]), flush=True)
    return rows


def _medians(runs: list[Run]) -> tuple[float, float, float]:
    return (
        statistics.median(r.p50_ms for r in runs),
        statistics.median(r.p99_ms for r in runs),
        statistics.median(r.rps for r in runs),
    )


def _format_row(row: tuple) -> str:
    name, connections, p50, p99, rps = row
    verdict = "ok" if p99 < TARGET_P99_MS else "OVER"
    return f"{name:<20} {connections:>3}  {p50:>8.1f}  {p99:>8.1f}  {rps:>8.0f}  {verdict}"


def _load() -> str:
    """The machine's load averages: anything else running makes the figures worse."""
    return " ".join(f"{value:.2f}" for value in os.getloadavg())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=1_000_000)
    parser.add_argument("--database-url", help="an already loaded database (not dropped)")
    parser.add_argument(
        "--connections", default="1,4", type=lambda s: [int(c) for c in s.split(",")]
    )
    parser.add_argument("--duration", type=int, default=15, help="seconds per wrk run")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--threads", type=int, default=8, help="waitress threads")
    parser.add_argument("--keep", action="store_true", help="keep the database it loaded")
    _summary.add_option(parser)
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        raise SystemExit("wrk is missing: apt-get install wrk")
    with database(args) as url, web_server(url, args.threads) as (base, env):
        add_staff(env)
        headers = {
            "session": f"Cookie: {session_cookie(base)}",
            "token": f"Authorization: Bearer {intake(env, 'token', 'create', 'bench')}",
        }
        print(f"load average before: {_load()}")
        print(f"\n{'target':<20} {'c':>3}  {'p50 ms':>8}  {'p99 ms':>8}  {'req/s':>8}")
        rows = measure(base, headers, args)
        print(
            f"\nload average after: {_load()} (2 cores: wrk, intake web and PostgreSQL share them)"
        )
        summarise(rows, args)


def summarise(rows: list[tuple], args: argparse.Namespace) -> None:
    """Each page at the most connections measured."""
    most = max(args.connections)
    size = "the given database" if args.database_url else f"{args.requests:,} requests"
    for name, connections, p50, p99, rps in rows:
        if connections != most:
            continue
        figure = _summary.Figure(
            name=f"{name}, {connections} connections",
            value=f"p50 {_summary.ms(p50)}, p99 {_summary.ms(p99)}",
            reference=f"{size} in PostgreSQL; {rps:,.0f} req/s",
            target=f"p99 < {TARGET_P99_MS:.0f} ms",
            met=p99 < TARGET_P99_MS,
        )
        _summary.record(args.summary, figure)


if __name__ == "__main__":
    main()
