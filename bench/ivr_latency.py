"""IVR latency: p50 and p99 of every TwiML step with 32 simulated calls at once.

    .venv/bin/python bench/ivr_latency.py [--db sqlite|postgres|both] [--callers 32]
        [--rounds 3] [--calls 6] [--think 0.25] [--threads 8] [--processes 4]

The server is `intake web` (waitress, --threads), in a process of its own, on a fresh migrated
database per round (a SQLite file, or a new PostgreSQL database on the test server) holding 50
callers with phone numbers and PINs, with Redis db 13 (flushed around each round; no worker
runs, so acknowledgments only queue) and a rota of two engineers.

The callers are `voice.player` (the stand-in for Twilio that the tests and `intake call
simulate` use): signed form posts following the TwiML, over kept-alive connections. --callers
calls run at once, spread over --processes client processes (so the client's GIL does not time
the server); each caller makes --calls calls in a row, the first one a warm-up that is not
counted. Between the caller's answers it waits --think seconds (a real caller takes seconds to
listen to a prompt: 0 turns the run into a stress test with every caller always waiting on the
server); each wait is drawn from half to one and a half times --think, and the callers start at
random moments within the first four thinks, so that they do not move in lockstep. The calls
rotate through four scenarios:

  known: caller ID of a contact, severity 2 by key, a description;
  pin: withheld number, registered number and PIN, severity 3 by unsure speech and confirm;
  status: severity menu 9, a request number, then hang up;
  sev1: severity 1 confirmed, a description, put through to the engineer, who presses 1.

After each call Twilio's callbacks (recording, transcription, status) are sent too. A step's
latency is from writing the request to reading the whole answer. Each round prints p50/p99 per
step; the summary gives the median over the rounds. Everything started here is stopped in
`finally` blocks, and the temporary databases and files are removed.
"""

from __future__ import annotations

import argparse
import contextlib
import multiprocessing
import os
import random
import resource
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import redis
from sqlalchemy import create_engine, text

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
sys.path.insert(0, str(ROOT))

import _summary  # noqa: E402

POSTGRES_ADMIN_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
REDIS_URL = "redis://127.0.0.1:6379/13"  # 11 and 12 are the SMTP and web benchmarks'
PUBLIC_URL = "https://ivr.bench.test"
ACCOUNT_SID = "AC" + "b" * 32
AUTH_TOKEN = "bench-auth-token"  # a stand-in's token, not a secret
TWILIO_NUMBER = "+14155550100"
CONTACTS = 50
PIN = "4321"
TARGET_P99_MS = 50.0
ROTA = """
[rota]
ring_seconds = 20
engineers = [
  { name = "Linus", phone = "+14155550190" },
  { name = "Margaret", phone = "+14155550191" },
]
"""


def contact_phone(i: int) -> str:
    return f"+1415555{1000 + i:04d}"


# ---------------------------------------------------------------------------------------------
# The server side: a database per round, `intake web` in a process of its own.


def seed(url: str) -> None:
    from intake.accounts.credentials import hash_pin
    from intake.store.db import Database
    from intake.store.models import Contact
    from tests.helpers import add_contact

    db = Database(url)
    try:
        for i in range(CONTACTS):
            contact_id = add_contact(
                db, f"caller{i}@bench.example", customer=f"Customer {i % 5}",
                name=f"Caller {i:02d}", phone=contact_phone(i),
            )  # fmt: skip
            with db.transaction() as session:
                session.get_one(Contact, contact_id).pin_hash = hash_pin(PIN)
    finally:
        db.dispose()


class Databases:
    """A migrated, seeded template per backend, and a fresh copy of it for each round."""

    def __init__(self, backend: str, workdir: Path) -> None:
        self.backend, self.workdir = backend, workdir
        self.prefix = f"intake_ivr_{os.getpid()}_{uuid.uuid4().hex[:6]}"
        self.admin = create_engine(POSTGRES_ADMIN_URL, isolation_level="AUTOCOMMIT")
        self.created: list[str] = []

    def _pg(self, name: str, template: str | None = None) -> str:
        clause = f' TEMPLATE "{template}"' if template else ""
        with self.admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"{clause}'))
        self.created.append(name)
        return POSTGRES_ADMIN_URL.rsplit("/", 1)[0] + "/" + name

    def prepare(self) -> None:
        from intake.store.db import upgrade

        if self.backend == "sqlite":
            url = f"sqlite:///{self.workdir / 'template.db'}"
        else:
            url = self._pg(self.prefix + "_template")
        upgrade(url)
        seed(url)

    def fresh(self, round_number: int) -> str:
        if self.backend == "sqlite":
            path = self.workdir / f"round{round_number}.db"
            shutil.copy(self.workdir / "template.db", path)
            return f"sqlite:///{path}"
        return self._pg(f"{self.prefix}_r{round_number}", template=self.prefix + "_template")

    def close(self) -> None:
        for name in reversed(self.created):
            with contextlib.suppress(Exception), self.admin.connect() as conn:
                conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        self.admin.dispose()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def server_env(workdir: Path, database_url: str) -> dict[str, str]:
    config = workdir / "intake.toml"
    if not config.exists():
        config.write_text((ROOT / "config" / "intake.toml").read_text() + ROTA)
    return dict(os.environ) | {
        "INTAKE_CONFIG": str(config),
        "INTAKE_DATABASE_URL": database_url,
        "INTAKE_REDIS_URL": REDIS_URL,
        "INTAKE_VAR_DIR": str(workdir / "var"),
        "INTAKE_SECRET_KEY": "bench-secret-of-at-least-32-bytes-long",
        "INTAKE_PUBLIC_URL": PUBLIC_URL,
        "INTAKE_LOG_LEVEL": "WARNING",
        "TWILIO_ACCOUNT_SID": ACCOUNT_SID,
        "TWILIO_AUTH_TOKEN": AUTH_TOKEN,
        "TWILIO_PHONE_NUMBER": TWILIO_NUMBER,
    }


@contextlib.contextmanager
def intake_web(env: dict[str, str], threads: int, log: Path) -> Iterator[tuple[str, int]]:
    """`intake web` on a free port; yields its URL and pid once it answers."""
    port = free_port()
    command = [sys.executable, "-m", "intake", "web", "--host", "127.0.0.1"]
    command += ["--port", str(port), "--threads", str(threads)]
    with open(log, "ab") as out:
        process = subprocess.Popen(command, env=env, cwd=ROOT, stdout=out, stderr=out)
    try:
        wait_until_listening(port, process)
        yield f"http://127.0.0.1:{port}", process.pid
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def wait_until_listening(port: int, process: subprocess.Popen[bytes], timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"intake web exited with {process.returncode}; see its log")
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.2):
            return
        time.sleep(0.1)
    raise RuntimeError("intake web did not start listening")


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def machine_ticks() -> tuple[int, int]:
    """(busy, total) CPU ticks of the whole machine, other tenants included."""
    values = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = values[3] + values[4]  # idle and iowait
    return sum(values) - idle, sum(values)


def children_cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def flush_redis() -> None:
    client = redis.Redis.from_url(REDIS_URL, socket_timeout=10)
    try:
        client.flushdb()
    finally:
        client.close()


# ---------------------------------------------------------------------------------------------
# The client side: callers in threads, in processes of their own.


@dataclass
class BenchCaller:
    """A caller acting out a script, pausing about ``think`` seconds before each answer (from
    half to one and a half times it, so that independent callers do not move in lockstep)."""

    script: list[Any]
    think: float
    rng: random.Random = field(default_factory=random.Random)

    def hear(self, text: str, leg: str) -> None:
        return None

    def _next(self) -> Any:
        if self.think:
            time.sleep(self.think * self.rng.uniform(0.5, 1.5))
        return self.script.pop(0)

    def gather(self, prompt: str) -> Any:
        return self._next()

    def record(self) -> Any:
        return self._next()

    def engineer(self, number: str) -> Any:
        return self._next()


def scenario(kind: str, i: int) -> tuple[str, list[Any]]:
    """The caller ID and the script of one call."""
    from voice.caller import Describe, HangUp, Keys, Pickup, Speech

    described = Describe("Exports fail since nine with error seventeen, nobody can work")
    phone = contact_phone(i % CONTACTS)
    if kind == "known":
        return phone, [Keys("2"), described]
    if kind == "pin":
        typed = Keys(phone.lstrip("+") + "#")
        return "anonymous", [
            typed,
            Keys(PIN + "#"),
            Speech("severity three", 0.4),
            Keys("1"),
            described,
        ]
    if kind == "status":
        return phone, [Keys("9"), Keys("1#"), HangUp()]
    return phone, [Keys("1"), Keys("1"), described, Keys("1"), Pickup("accept")]


SCENARIOS = ("known", "pin", "status", "sev1")


def one_caller(
    spec: dict[str, Any], index: int, out: list[tuple[str, float]], errors: list[str]
) -> None:
    from voice.player import TwilioPlayer

    rng = random.Random(index)
    time.sleep(rng.uniform(0, spec["think"] * 4))  # calls start at different moments
    for n in range(spec["calls"]):
        kind = SCENARIOS[(index + n) % len(SCENARIOS)]
        caller_id, script = scenario(kind, index * spec["calls"] + n)
        # Callers named by their caller ID call from a fully attested number.
        attested = None if caller_id == "anonymous" else "TN-Validation-Passed-A"
        player = TwilioPlayer(
            spec["url"], PUBLIC_URL, ACCOUNT_SID, AUTH_TOKEN, TWILIO_NUMBER, caller_id, attested
        )
        try:
            player.call(BenchCaller(script, spec["think"], rng))
            player.deliver()
        except Exception as exc:
            errors.append(f"{kind}: {type(exc).__name__}: {exc}"[:300])
        finally:
            player.close()
        if n:  # the first call warms the connection and the server's caches up
            out.extend(player.timings)


def run_callers(spec: dict[str, Any]) -> dict[str, Any]:
    """One client process: ``spec["callers"]`` callers in threads."""
    timings: list[tuple[str, float]] = []
    errors: list[str] = []
    threads = [
        threading.Thread(target=one_caller, args=(spec, spec["first"] + i, timings, errors))
        for i in range(spec["callers"])
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return {"timings": timings, "errors": errors}


def load(url: str, args: argparse.Namespace) -> tuple[list[tuple[str, float]], list[str], float]:
    per_process = [
        args.callers // args.processes + (i < args.callers % args.processes)
        for i in range(args.processes)
    ]
    firsts = [sum(per_process[:i]) for i in range(args.processes)]
    specs = [
        {"url": url, "callers": n, "first": first, "calls": args.calls, "think": args.think}
        for n, first in zip(per_process, firsts, strict=True)
    ]
    started = time.perf_counter()
    pool = multiprocessing.get_context("spawn").Pool(args.processes)
    try:
        results = pool.map(run_callers, specs)
        pool.close()
    except BaseException:
        pool.terminate()
        raise
    finally:
        pool.join()  # waited for: their CPU time shows in RUSAGE_CHILDREN
    elapsed = time.perf_counter() - started
    timings = [t for r in results for t in r["timings"]]
    return timings, [e for r in results for e in r["errors"]], elapsed


# ---------------------------------------------------------------------------------------------
# Figures.


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * len(ordered)) - 1))]


@dataclass
class Round:
    steps: dict[str, tuple[int, float, float]] = field(default_factory=dict)  # n, p50, p99 (ms)
    overall: tuple[int, float, float] = (0, 0.0, 0.0)
    rate: float = 0.0
    server_cpu: float = 0.0
    machine_busy: float = 0.0
    clients_cpu: float = 0.0
    errors: list[str] = field(default_factory=list)


def summarise(timings: list[tuple[str, float]]) -> Round:
    by_step: dict[str, list[float]] = defaultdict(list)
    for path, seconds in timings:
        by_step[path.removeprefix("/voice/")].append(seconds * 1000)
    figures = Round()
    for step, values in sorted(by_step.items()):
        figures.steps[step] = (len(values), percentile(values, 0.5), percentile(values, 0.99))
    everything = [s * 1000 for _, s in timings]
    figures.overall = (len(everything), percentile(everything, 0.5), percentile(everything, 0.99))
    return figures


def one_round(databases: Databases, number: int, args: argparse.Namespace, workdir: Path) -> Round:
    url = databases.fresh(number)
    flush_redis()
    try:
        with intake_web(server_env(workdir, url), args.threads, workdir / "web.log") as (app, pid):
            cpu_before, machine_before = cpu_seconds(pid), machine_ticks()
            clients_before = children_cpu_seconds()
            timings, errors, elapsed = load(app, args)
            cpu = (cpu_seconds(pid) - cpu_before) / elapsed
            clients = (children_cpu_seconds() - clients_before) / elapsed
            busy, total = (a - b for a, b in zip(machine_ticks(), machine_before, strict=True))
    finally:
        flush_redis()
    figures = summarise(timings)
    figures.rate, figures.server_cpu, figures.errors = len(timings) / elapsed, cpu, errors
    figures.machine_busy = busy / total if total else 0.0
    figures.clients_cpu = clients
    return figures


def print_round(backend: str, number: int, figures: Round) -> None:
    n, p50, p99 = figures.overall
    print(
        f"  {backend} round {number}: {n} steps, {figures.rate:.0f} steps/s, server CPU "
        f"{figures.server_cpu:.0%} of a core (clients {figures.clients_cpu:.0%}), machine "
        f"{figures.machine_busy:.0%} busy, "
        f"overall p50 {p50:.1f} ms p99 {p99:.1f} ms, errors {len(figures.errors)}"
    )
    for error in figures.errors[:5]:
        print(f"    error: {error}")


def print_summary(backend: str, rounds: list[Round], summary: str | None) -> None:
    print(f"\n{backend}: median over {len(rounds)} rounds (ms)")
    print(f"  {'step':<16}{'n/round':>9}{'p50':>9}{'p99':>9}")
    for step in rounds[0].steps:
        n = statistics.median(r.steps[step][0] for r in rounds if step in r.steps)
        p50 = statistics.median(r.steps[step][1] for r in rounds if step in r.steps)
        p99 = statistics.median(r.steps[step][2] for r in rounds if step in r.steps)
        print(f"  {step:<16}{n:>9.0f}{p50:>9.1f}{p99:>9.1f}")
    p50 = statistics.median(r.overall[1] for r in rounds)
    p99 = statistics.median(r.overall[2] for r in rounds)
    worst_step = max(rounds[0].steps, key=lambda step: step_p99(rounds, step))
    worst = step_p99(rounds, worst_step)
    verdict = "met" if worst < TARGET_P99_MS else "NOT met"
    print(f"  {'all steps':<16}{'':>9}{p50:>9.1f}{p99:>9.1f}")
    target = f"target p99 < {TARGET_P99_MS:.0f} ms for every step"
    print(f"  {target}: {verdict} (worst step p99 {worst:.1f} ms)")
    figure = _summary.Figure(
        name=f"IVR steps, {backend}",
        value=f"all steps p50 {_summary.ms(p50)}, p99 {_summary.ms(p99)}",
        reference=f"worst step {worst_step}: p99 {_summary.ms(worst)}",
        target=f"p99 < {TARGET_P99_MS:.0f} ms every step",
        met=worst < TARGET_P99_MS,
    )
    _summary.record(summary, figure)


def step_p99(rounds: list[Round], step: str) -> float:
    return statistics.median(r.steps[step][2] for r in rounds if step in r.steps)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--db", choices=["sqlite", "postgres", "both"], default="both")
    parser.add_argument("--callers", type=int, default=32, help="calls at once")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--calls", type=int, default=6, help="calls per caller (1 warm-up)")
    parser.add_argument("--think", type=float, default=0.25, help="seconds before each answer")
    parser.add_argument("--threads", type=int, default=8, help="`intake web --threads`")
    parser.add_argument("--processes", type=int, default=4, help="client processes")
    _summary.add_option(parser)
    return parser.parse_args(argv)


def stop_on_sigterm() -> None:
    """SIGTERM ends the run like Ctrl-C, through the finally blocks that stop what it started."""

    def interrupt(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, interrupt)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    stop_on_sigterm()
    backends = ["sqlite", "postgres"] if args.db == "both" else [args.db]
    print(
        f"IVR latency: {args.callers} calls at once ({args.processes} client processes), "
        f"{args.calls} calls per caller (1 warm-up), think {args.think} s, "
        f"`intake web --threads {args.threads}`, {args.rounds} rounds; {os.cpu_count()} cores"
    )
    workdir = Path(tempfile.mkdtemp(prefix="intake-ivr-bench-"))
    try:
        for backend in backends:
            databases = Databases(backend, workdir)
            try:
                databases.prepare()
                rounds = []
                for number in range(1, args.rounds + 1):
                    rounds.append(one_round(databases, number, args, workdir))
                    print_round(backend, number, rounds[-1])
                print_summary(backend, rounds, args.summary)
            finally:
                databases.close()
    finally:
        if not os.environ.get("BENCH_KEEP_LOGS"):
            shutil.rmtree(workdir, ignore_errors=True)
        else:
            print(f"logs kept in {workdir}")


if __name__ == "__main__":
    main()
