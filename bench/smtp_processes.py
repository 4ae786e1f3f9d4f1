"""The SMTP door with one listener process and with N on the one port, against a bare sink.

    .venv/bin/python bench/smtp_processes.py [--processes 1,2] [--messages 3000] [--repeat 3]
                                             [--sessions 32]

Each measurement runs `intake smtp --processes N` as a user would (PostgreSQL, a fresh copy of
the seeded template each time, Redis db 11, sender checks off, no worker) and drives it with
bench/_load.py's closed loop (persistent sessions, so the kernel spreads the sessions, not the
messages, over the listeners). The reference is the bare aiosmtpd sink of bench/_server.py,
driven the same way in the same run. Runs are interleaved (every target once, then again) and
the table shows medians. On SQLite one listener is the default: a second only queues for the
database's one write lock.
"""

from __future__ import annotations

import argparse
import os
import smtplib
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH.parent))

import _summary  # noqa: E402
from _server import free_port  # noqa: E402
from smtp_intake import (  # noqa: E402
    CONFIG,
    PYTHON,
    REDIS_URL,
    ROOT,
    PostgresDatabases,
    flush_redis,
    run_client,
    server_process,
    stop_process,
)

from intake.ops.liveness import read_report  # noqa: E402

TARGET_MACHINE = 1.2  # the door on all of the machine's cores against one sink


def client_spec(port: int, args: argparse.Namespace, tag: str) -> dict[str, Any]:
    return {
        "mode": "closed",
        "host": "127.0.0.1",
        "port": port,
        "server_pid": None,
        "sessions": args.sessions,
        "messages": args.messages,
        "run": f"{tag}-{uuid.uuid4().hex[:8]}",
    }


def measure_bare(args: argparse.Namespace, workdir: Path) -> float:
    with server_process("bare", workdir / "bare.log") as server:
        result = run_client(client_spec(server.port, args, "bare"), args.timeout)
    return float(result["ok"] / result["elapsed"])


def measure_door(
    processes: int, args: argparse.Namespace, databases: PostgresDatabases, workdir: Path
) -> float:
    url = databases.fresh()
    flush_redis()
    port = free_port()
    var = workdir / f"var-{uuid.uuid4().hex[:6]}"
    env = dict(os.environ) | {
        "INTAKE_CONFIG": str(CONFIG),
        "INTAKE_DATABASE_URL": url,
        "INTAKE_REDIS_URL": REDIS_URL,
        "INTAKE_VAR_DIR": str(var),
        "INTAKE_SECRET_KEY": "benchmark-secret-key-of-at-least-32-bytes",
        "INTAKE_SENDER_AUTH": "off",
        "INTAKE_SMTP_PORT": str(port),
        "INTAKE_SMTP_MAX_SESSIONS_PER_IP": "200",  # every session comes from 127.0.0.1
    }
    command = [PYTHON, "-m", "intake", "smtp", "--processes", str(processes)]
    with (workdir / f"door-{processes}.log").open("ab") as log:
        door = subprocess.Popen(command, cwd=ROOT, env=env, stdout=log, stderr=log)
    try:
        wait_until_listening(var, processes, door, port)
        result = run_client(client_spec(port, args, f"door{processes}"), args.timeout)
        return float(result["ok"] / result["elapsed"])
    finally:
        stop_process(door)
        flush_redis()
        databases.discard(url)


def wait_until_listening(
    var: Path, processes: int, door: subprocess.Popen[bytes], port: int
) -> None:
    """The port answers, and with several listeners each has written its first liveness
    report."""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if door.poll() is not None:
            raise RuntimeError(f"intake smtp exited with {door.returncode}; see its log")
        reports = list((var / "run").glob("*.liveness"))
        started = processes == 1 or sum(read_report(r) is not None for r in reports) >= processes
        if started and answers(port):
            return
        time.sleep(0.2)
    raise RuntimeError("the listeners did not start within 60 s")


def answers(port: int) -> bool:
    try:
        with smtplib.SMTP("127.0.0.1", port, timeout=5) as client:
            return client.noop()[0] == 250
    except OSError:
        return False


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--processes", default="1,2", help="listener counts to measure")
    parser.add_argument("--messages", type=int, default=3000, help="per measured run")
    parser.add_argument("--repeat", type=int, default=3, help="runs per target (medians)")
    parser.add_argument("--sessions", type=int, default=32, help="persistent client sessions")
    parser.add_argument("--timeout", type=float, default=600.0, help="seconds per run")
    _summary.add_option(parser)
    args = parser.parse_args()
    counts = [int(n) for n in args.processes.split(",")]
    databases = PostgresDatabases()
    rates: dict[str, list[float]] = {}
    with tempfile.TemporaryDirectory(prefix="bench-smtp-processes-") as folder:
        workdir = Path(folder)
        try:
            databases.prepare()
            for _ in range(args.repeat):
                rates.setdefault("bare", []).append(measure_bare(args, workdir))
                for n in counts:
                    rate = measure_door(n, args, databases, workdir)
                    rates.setdefault(f"door x{n}", []).append(rate)
        finally:
            databases.close()
    bare = statistics.median(rates["bare"])
    runs = f"{args.messages} messages x {args.repeat}"
    print(f"{os.cpu_count()} cores, {args.sessions} sessions, {runs}")
    print(f"{'target':10} {'msgs/s':>8} {'ratio':>6}  runs")
    for target, values in rates.items():
        median = statistics.median(values)
        runs = ", ".join(f"{v:.0f}" for v in values)
        print(f"{target:10} {median:>8.0f} {median / bare:>6.2f}  {runs}")
    summarise(rates, max(counts), args.summary)


def summarise(rates: dict[str, list[float]], most: int, path: str | None) -> None:
    """The door with the most listeners against one sink: what the machine does for mail."""
    bare = statistics.median(rates["bare"])
    door = statistics.median(rates[f"door x{most}"])
    figure = _summary.Figure(
        name=f"SMTP door, {most} listeners, postgres",
        value=f"{door:,.0f} msgs/s = {door / bare:.2f}x",
        reference=f"bare aiosmtpd sink {bare:,.0f} msgs/s",
        target=f">= {TARGET_MACHINE}x the sink",
        met=door / bare >= TARGET_MACHINE,
    )
    _summary.record(path, figure)


if __name__ == "__main__":
    main()
