"""SMTP intake benchmark: the gateway's SMTP door against a bare aiosmtpd sink, and the time
from a 250 to the acknowledgment arriving at the relay.

    .venv/bin/python bench/smtp_intake.py [--db sqlite|postgres|both] [--messages N] [--quick]

(a) bare: aiosmtpd whose handle_DATA only answers "250 OK" (the reference).
(b) gateway: the SmtpDoor with the whole pipeline, a fresh migrated database (SQLite file or a
    new PostgreSQL database), the real Redis (db 11, flushed) and 50 registered senders.
    (a) and (b) get the same closed-loop load: 8 and 32 persistent sessions sending ~4 KB
    messages; each figure is the median of --repeat runs; ratio = gateway / bare.
(c) acknowledgments: 100 messages/s open-loop for --ack-seconds with --workers `intake worker`
    processes sending to a relay run here; latency = relay's receipt of the acknowledgment
    (matched by In-Reply-To) minus the client's receipt of the 250.

The server under test and the client each run in their own process (bench/_server.py,
bench/_load.py); everything started here is stopped in `finally` blocks. See bench/README.md.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import re
import select
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
sys.path.insert(0, str(ROOT))

import _profile  # noqa: E402
import _summary  # noqa: E402
import redis  # noqa: E402
from _load import process_seconds, sender_addresses  # noqa: E402
from _server import free_port  # noqa: E402
from sqlalchemy import create_engine, text  # noqa: E402

PYTHON = sys.executable
POSTGRES_ADMIN_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
REDIS_URL = "redis://127.0.0.1:6379/11"
CONFIG = ROOT / "config" / "intake.toml"
QUEUE_NAME = "intake"
TARGET_RATIO = 0.6
TARGET_ACK_P99 = 1.0
TARGET_SOAK_GROWTH = 1.25  # the last slice's worker CPU an acknowledgment against the first's
CLIENT_LIMIT = 0.8  # a client process above this share of a core may be what limits a run


# ---------------------------------------------------------------------------------------------
# Databases: a migrated, seeded template per backend; each measurement gets a fresh copy.


def seed_contacts(url: str) -> None:
    from intake.store.db import Database
    from tests.helpers import add_contact

    db = Database(url)
    try:
        for i, address in enumerate(sender_addresses()):
            add_contact(db, address, customer=f"Customer {i % 5}", name=f"Contact {i:02d}")
    finally:
        db.dispose()


class SqliteDatabases:
    name = "sqlite"

    def __init__(self, workdir: Path) -> None:
        self.dir = workdir / "sqlite"
        self.template = self.dir / "template.db"
        self.count = 0

    def prepare(self) -> None:
        from intake.store.db import upgrade

        self.dir.mkdir(parents=True, exist_ok=True)
        upgrade(f"sqlite:///{self.template}")
        seed_contacts(f"sqlite:///{self.template}")

    def fresh(self) -> str:
        self.count += 1
        path = self.dir / f"run{self.count}.db"
        shutil.copy(self.template, path)
        return f"sqlite:///{path}"

    def discard(self, url: str) -> None:
        path = Path(url.removeprefix("sqlite:///"))
        for suffix in ("", "-wal", "-shm"):
            Path(f"{path}{suffix}").unlink(missing_ok=True)

    def close(self) -> None:
        shutil.rmtree(self.dir, ignore_errors=True)


class PostgresDatabases:
    """New databases on the test server: a template, and a copy of it per measurement."""

    name = "postgres"

    def __init__(self, admin_url: str = POSTGRES_ADMIN_URL) -> None:
        self.admin_url = admin_url
        self.admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
        self.prefix = f"intake_bench_{os.getpid()}_{uuid.uuid4().hex[:6]}"
        self.template = f"{self.prefix}_template"
        self.created: list[str] = []
        self.count = 0

    def _url(self, name: str) -> str:
        return self.admin_url.rsplit("/", 1)[0] + "/" + name

    def _create(self, name: str, template: str | None = None) -> str:
        clause = f' TEMPLATE "{template}"' if template else ""
        with self.admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"{clause}'))
        self.created.append(name)
        return self._url(name)

    def _drop(self, name: str) -> None:
        with self.admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        if name in self.created:
            self.created.remove(name)

    def prepare(self) -> None:
        from intake.store.db import upgrade

        url = self._create(self.template)
        upgrade(url)
        seed_contacts(url)

    def fresh(self) -> str:
        self.count += 1
        return self._create(f"{self.prefix}_run{self.count}", template=self.template)

    def discard(self, url: str) -> None:
        self._drop(url.rsplit("/", 1)[1])

    def close(self) -> None:
        for name in list(reversed(self.created)):
            with contextlib.suppress(Exception):
                self._drop(name)
        self.admin.dispose()


def flush_redis() -> None:
    client = redis.Redis.from_url(REDIS_URL, socket_timeout=10)
    try:
        client.flushdb()
    finally:
        client.close()


def queued_jobs() -> int:
    client = redis.Redis.from_url(REDIS_URL, socket_timeout=10)
    try:
        return int(client.llen(f"rq:queue:{QUEUE_NAME}"))
    finally:
        client.close()


# ---------------------------------------------------------------------------------------------
# Processes: the server under test, the client, the workers.


def stop_process(process: subprocess.Popen, grace: float = 10.0) -> None:
    """Ask nicely (stdin closed, then SIGTERM), then kill; never leaves the process running."""
    if process.poll() is None and process.stdin:
        with contextlib.suppress(OSError):
            process.stdin.close()
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(timeout=grace)
    if process.poll() is None:
        process.terminate()
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(timeout=grace)
    if process.poll() is None:
        process.kill()
        process.wait(timeout=grace)


def read_port(process: subprocess.Popen, timeout: float = 60.0) -> int:
    """The port from the server's first stdout line, `PORT <n>`."""
    assert process.stdout is not None
    ready, _, _ = select.select([process.stdout], [], [], timeout)
    line = process.stdout.readline().decode() if ready else ""
    match = re.fullmatch(r"PORT (\d+)\s*", line)
    if not match:
        raise RuntimeError(f"server did not report its port (got {line!r}); see its log")
    return int(match.group(1))


@dataclass
class Server:
    pid: int
    port: int


@contextlib.contextmanager
def server_process(mode: str, log: Path, *extra: str) -> Iterator[Server]:
    """bench/_server.py in its own process; yields its pid and port; stops it afterwards."""
    with log.open("ab") as log_file:
        process = subprocess.Popen(
            [PYTHON, str(BENCH / "_server.py"), mode, *extra],
            cwd=ROOT,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=log_file,
        )
    try:
        yield Server(process.pid, read_port(process))
    finally:
        stop_process(process)


def run_client(spec: dict[str, Any], timeout: float) -> dict[str, Any]:
    """bench/_load.py in its own process: the spec in on stdin, the result out on stdout."""
    done = subprocess.run(
        [PYTHON, str(BENCH / "_load.py")],
        input=json.dumps(spec).encode(),
        capture_output=True,
        timeout=timeout,
        cwd=ROOT,
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(f"client failed: {done.stderr.decode()[-2000:]}")
    result: dict[str, Any] = json.loads(done.stdout)
    return result


@contextlib.contextmanager
def workers(count: int, env: dict[str, str], log: Path) -> Iterator[list[subprocess.Popen]]:
    """`python -m intake worker` processes; stopped (SIGTERM, then SIGKILL) afterwards."""
    started: list[subprocess.Popen] = []
    try:
        with log.open("ab") as log_file:
            for _ in range(count):
                started.append(
                    subprocess.Popen(
                        [PYTHON, "-m", "intake", "worker"],
                        cwd=ROOT,
                        env=env,
                        stdin=subprocess.DEVNULL,
                        stdout=log_file,
                        stderr=log_file,
                    )
                )
        yield started
    finally:
        for process in started:
            stop_process(process)


def wait_for_workers(count: int, timeout: float = 60.0) -> None:
    from rq import Worker

    client = redis.Redis.from_url(REDIS_URL, socket_timeout=10)
    try:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if Worker.count(connection=client) >= count:
                return
            time.sleep(0.2)
    finally:
        client.close()
    raise RuntimeError(f"{count} workers did not register within {timeout} s; see workers.log")


# ---------------------------------------------------------------------------------------------
# The relay that receives acknowledgments, noting when each arrived.

IN_REPLY_TO = re.compile(rb"^In-Reply-To:[ \t]*(<[^>\r\n]+>)", re.IGNORECASE | re.MULTILINE)


@dataclass
class AckRecorder:
    arrivals: list[tuple[str, float]] = field(default_factory=list)  # (In-Reply-To, monotonic)
    lock: threading.Lock = field(default_factory=threading.Lock)

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        now = time.monotonic()
        raw = envelope.original_content or b""
        head = raw.split(b"\r\n\r\n", 1)[0]
        match = IN_REPLY_TO.search(head)
        with self.lock:
            self.arrivals.append((match.group(1).decode() if match else "", now))
        return "250 2.0.0 queued"

    def count(self) -> int:
        with self.lock:
            return len(self.arrivals)


@contextlib.contextmanager
def relay() -> Iterator[tuple[AckRecorder, int]]:
    from aiosmtpd.controller import Controller

    recorder, port = AckRecorder(), free_port()
    controller = Controller(recorder, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield recorder, port
    finally:
        controller.stop()


# ---------------------------------------------------------------------------------------------
# Measurements.


def percentile(values: list[float], q: float) -> float:
    """The q-th percentile (0..100) by nearest rank; inf counts as a value."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    rank = max(0, min(len(ordered) - 1, math.ceil(q / 100 * len(ordered)) - 1))
    return ordered[rank]


@dataclass
class Run:
    rate: float
    p50: float
    p99: float
    errors: int
    client_cpu: float
    server_cpu: float
    machine_busy: float
    queued: int | None = None


def summarise(result: dict[str, Any], queued: int | None = None) -> Run:
    lat = result["latencies"]
    return Run(
        rate=result["ok"] / result["elapsed"],
        p50=percentile(lat, 50),
        p99=percentile(lat, 99),
        errors=sum(result["errors"].values()),
        client_cpu=result["client_cpu"],
        server_cpu=result["server_cpu"] or 0.0,
        machine_busy=result["machine_busy"],
        queued=queued,
    )


@dataclass
class Bench:
    args: argparse.Namespace
    workdir: Path
    databases: dict[str, Any]

    def log(self, name: str) -> Path:
        return self.workdir / f"{name}.log"

    def client_spec(self, server: Server, sessions: int, tag: str) -> dict[str, Any]:
        return {
            "mode": "closed",
            "host": "127.0.0.1",
            "port": server.port,
            "server_pid": server.pid,
            "sessions": sessions,
            "reconnect": self.args.reconnect,
            "messages": self.args.messages,
            "run": f"{tag}-{uuid.uuid4().hex[:8]}",
        }

    def measure_bare(self, sessions: int) -> Run:
        with server_process("bare", self.log("bare")) as server:
            return summarise(
                run_client(self.client_spec(server, sessions, "bare"), self.args.timeout)
            )

    def gateway_args(self, url: str) -> list[str]:
        return [
            "--database-url",
            url,
            "--redis-url",
            REDIS_URL,
            "--var-dir",
            str(self.workdir / "var"),
            "--sender-auth",
            self.args.sender_auth,
        ]

    def measure_gateway(self, db_name: str, sessions: int) -> Run:
        databases = self.databases[db_name]
        url = databases.fresh()
        flush_redis()
        try:
            with server_process(
                "gateway", self.log(f"gateway-{db_name}"), *self.gateway_args(url)
            ) as server:
                result = run_client(self.client_spec(server, sessions, db_name), self.args.timeout)
            return summarise(result, queued=queued_jobs())
        finally:
            flush_redis()
            databases.discard(url)

    def profile_gateway(self, db_name: str, sessions: int, view: str) -> str:
        """One extra, uncounted run with py-spy on the door; returns the summary."""
        databases = self.databases[db_name]
        url = databases.fresh()
        flush_redis()
        output = self.workdir / f"py-spy-{db_name}-{view}.txt"
        try:
            with (
                server_process(
                    "gateway", self.log(f"profile-{db_name}"), *self.gateway_args(url)
                ) as server,
                _profile.spying(server.pid, output, view),
            ):
                run = summarise(
                    run_client(self.client_spec(server, sessions, "profile"), self.args.timeout)
                )
        finally:
            flush_redis()
            databases.discard(url)
        where = "threads intake-recorder" if view == "wall" else None
        return (
            f"gateway-{db_name}@{sessions} under py-spy ({view} view): {run.rate:.0f} msgs/s"
            f"\n" + _profile.summarise(output, top=18, thread_prefix=where and "intake-recorder")
        )

    def measure(self, target: str, sessions: int) -> Run:
        if target == "bare":
            return self.measure_bare(sessions)
        return self.measure_gateway(target, sessions)


def worker_env(bench: Bench, url: str, relay_port: int) -> dict[str, str]:
    return dict(os.environ) | {
        "INTAKE_CONFIG": str(CONFIG),
        "INTAKE_VAR_DIR": str(bench.workdir / "var"),
        "INTAKE_DATABASE_URL": url,
        "INTAKE_REDIS_URL": REDIS_URL,
        "INTAKE_OUTBOUND_SMTP_URL": f"smtp://127.0.0.1:{relay_port}",
        "INTAKE_SECRET_KEY": "bench-secret-of-at-least-32-bytes-long",
        "INTAKE_ACK_LIMIT": "1000000/hour",
        "INTAKE_SENDER_AUTH": bench.args.sender_auth,
    }


@dataclass
class AckResult:
    sent: int
    accepted: int
    send_rate: float
    acks: int
    matched: int
    ack_rate: float
    p50: float
    p99: float
    worst: float
    smtp_p50: float
    smtp_p99: float
    late_sends: int
    worker_cpu: float
    errors: dict[str, int]
    slices: list[Slice] = field(default_factory=list)


@dataclass
class Slice:
    """One equal part of the run, by the time of the 250: its acknowledgments' latency and
    the workers' CPU per acknowledgment while it ran (the soak's slope)."""

    p50: float
    p99: float
    cpu_ms_per_ack: float


def wait_for_acks(recorder: AckRecorder, expected: int, timeout: float) -> None:
    """Until every acknowledgment arrived, or no new one came for `timeout` seconds."""
    last_count, last_change = -1, time.monotonic()
    while recorder.count() < expected and time.monotonic() - last_change < timeout:
        if recorder.count() != last_count:
            last_count, last_change = recorder.count(), time.monotonic()
        time.sleep(0.2)


def ack_latencies(acked: list[list[Any]], recorder: AckRecorder) -> tuple[list[float], int]:
    """Per accepted message: first ack arrival - 250 receipt (inf when none came)."""
    with recorder.lock:
        arrivals: dict[str, float] = {}
        for reply_to, at in recorder.arrivals:
            arrivals.setdefault(reply_to, at)
    latencies = [arrivals.get(mid, float("inf")) - at for mid, at in acked]
    return latencies, sum(1 for mid, _ in acked if mid in arrivals)


def ack_rate(recorder: AckRecorder) -> float:
    """Acknowledgments per second from the first to the last: what the workers kept up."""
    with recorder.lock:
        times = [at for _, at in recorder.arrivals]
    if len(times) < 2:
        return float("nan")
    return (len(times) - 1) / (max(times) - min(times))


def cpu_of(processes: list[subprocess.Popen]) -> float:
    return sum(process_seconds(p.pid) or 0.0 for p in processes)


class CpuSampler:
    """The workers' CPU seconds, read every second while a run goes on."""

    def __init__(self, processes: list[subprocess.Popen]) -> None:
        self.processes, self.samples = processes, [(time.monotonic(), cpu_of(processes))]
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()

    def _sample(self) -> None:
        while not self._stop.wait(1.0):
            self.samples.append((time.monotonic(), cpu_of(self.processes)))

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()
        self.samples.append((time.monotonic(), cpu_of(self.processes)))

    def between(self, start: float, end: float) -> float:
        """CPU seconds spent from ``start`` to ``end`` (to the nearest samples)."""
        before = max((s for s in self.samples if s[0] <= start), default=self.samples[0])
        after = min((s for s in self.samples if s[0] >= end), default=self.samples[-1])
        return after[1] - before[1]


def slices_of(
    acked: list[list[Any]], latencies: list[float], count: int, cpu: CpuSampler
) -> list[Slice]:
    """``count`` equal slices of the run by the time of the 250."""
    if count < 2 or not acked:
        return []
    first, last = acked[0][1], acked[-1][1]
    width = (last - first) / count or 1.0
    out = []
    for k in range(count):
        start, end = first + k * width, first + (k + 1) * width
        part = [lat for (_, at), lat in zip(acked, latencies, strict=True) if start <= at < end]
        if k == count - 1:
            part += [lat for (_, at), lat in zip(acked, latencies, strict=True) if at == last]
        seconds = cpu.between(start, end)
        per_ack = seconds / len(part) * 1000 if part else float("nan")
        out.append(Slice(percentile(part, 50), percentile(part, 99), per_ack))
    return out


def measure_acks(bench: Bench, db_name: str) -> AckResult:
    databases = bench.databases[db_name]
    url = databases.fresh()
    flush_redis()
    try:
        with (
            relay() as (recorder, relay_port),
            workers(
                bench.args.workers,
                worker_env(bench, url, relay_port),
                bench.log(f"workers-{db_name}"),
            ) as started,
            server_process(
                "gateway", bench.log(f"ack-gateway-{db_name}"), *bench.gateway_args(url)
            ) as server,
        ):
            wait_for_workers(bench.args.workers)
            spec = {
                "mode": "paced",
                "host": "127.0.0.1",
                "port": server.port,
                "server_pid": server.pid,
                # 8 sessions every 80 ms: 100/s, and a 60 s run stays under the door's
                # 1,000 messages a session (past them it closes the session with 421).
                "sessions": 8,
                "interval": 8 / bench.args.rate,
                "duration": bench.args.ack_seconds,
                "run": f"ack-{uuid.uuid4().hex[:8]}",
            }
            cpu_before, wall_before = cpu_of(started), time.monotonic()
            sampler = CpuSampler(started)
            result = run_client(spec, bench.args.timeout)
            wait_for_acks(recorder, len(result["acked"]), timeout=30)
            sampler.stop()
            worker_cpu = (cpu_of(started) - cpu_before) / (time.monotonic() - wall_before)
            latencies, matched = ack_latencies(result["acked"], recorder)
            acked = sorted(result["acked"], key=lambda pair: pair[1])
            ordered = ack_latencies(acked, recorder)[0]
            slices = slices_of(acked, ordered, bench.args.slices, sampler)
    finally:
        flush_redis()
        databases.discard(url)
    return AckResult(
        sent=result["sent"],
        accepted=result["ok"],
        send_rate=result["ok"] / result["elapsed"],
        acks=recorder.count(),
        matched=matched,
        ack_rate=ack_rate(recorder),
        p50=percentile(latencies, 50),
        p99=percentile(latencies, 99),
        worst=max(latencies, default=float("nan")),
        smtp_p50=percentile(result["latencies"], 50),
        smtp_p99=percentile(result["latencies"], 99),
        late_sends=result["late"],
        worker_cpu=worker_cpu,
        errors=result["errors"],
        slices=slices,
    )


# ---------------------------------------------------------------------------------------------
# Reporting.


def ms(seconds: float) -> str:
    return "inf" if seconds == float("inf") else f"{seconds * 1000:.1f}"


def median_run(runs: list[Run]) -> Run:
    def med(attr: str) -> float:
        return statistics.median(getattr(r, attr) for r in runs)

    return Run(
        rate=med("rate"),
        p50=med("p50"),
        p99=med("p99"),
        errors=sum(r.errors for r in runs),
        client_cpu=med("client_cpu"),
        server_cpu=med("server_cpu"),
        machine_busy=med("machine_busy"),
        queued=runs[-1].queued,
    )


def print_throughput(results: dict[tuple[str, int], list[Run]], sessions: list[int]) -> None:
    print("\nThroughput (closed loop; medians of the runs; CPU = share of one core)")
    header = (
        f"{'scenario':<22}{'msgs/s':>8}{'p50 ms':>9}{'p99 ms':>9}{'errors':>8}"
        f"{'client':>8}{'server':>8}{'machine':>9}  runs msgs/s"
    )
    print(header)
    print("-" * len(header))
    for (target, conc), runs in results.items():
        m = median_run(runs)
        name = f"{'bare' if target == 'bare' else 'gateway-' + target}@{conc}"
        each = " ".join(f"{r.rate:.0f}" for r in runs)
        print(
            f"{name:<22}{m.rate:>8.0f}{ms(m.p50):>9}{ms(m.p99):>9}{m.errors:>8}"
            f"{m.client_cpu:>8.0%}{m.server_cpu:>8.0%}{m.machine_busy:>9.0%}  {each}"
        )
    print(
        "\nmachine = busy share of all cores; queued = RQ jobs the door enqueued "
        "(last run): "
        + ", ".join(f"{t}@{c}={runs[-1].queued}" for (t, c), runs in results.items() if t != "bare")
    )
    busiest = max(r.client_cpu for runs in results.values() for r in runs)
    print(
        f"client check: the load generator used at most {busiest:.0%} of one core in any run"
        + (
            " -- it may have limited the figures"
            if busiest > CLIENT_LIMIT
            else " (not the bottleneck: it had CPU to spare)"
        )
    )
    targets = sorted({t for t, _ in results if t != "bare"})
    for target in targets:
        for conc in sessions:
            if ("bare", conc) not in results or (target, conc) not in results:
                continue
            ratio = (
                median_run(results[(target, conc)]).rate / median_run(results[("bare", conc)]).rate
            )
            verdict = "meets" if ratio >= TARGET_RATIO else "BELOW"
            print(
                f"ratio gateway-{target}/bare @{conc}: {ratio:.2f}  "
                f"({verdict} the target of {TARGET_RATIO})"
            )


def summarise_throughput(results: dict[tuple[str, int], list[Run]], path: str | None) -> None:
    """One figure per database and concurrency: the door's rate beside the sink's."""
    for (target, conc), runs in results.items():
        if target == "bare" or ("bare", conc) not in results:
            continue
        door, bare = median_run(runs).rate, median_run(results[("bare", conc)]).rate
        ratio = door / bare
        _summary.record(
            path,
            _summary.Figure(
                name=f"SMTP door, 1 listener, {target}, {conc} sessions",
                value=f"{door:,.0f} msgs/s = {ratio:.2f}x",
                reference=f"bare aiosmtpd sink {bare:,.0f} msgs/s",
                target=f">= {TARGET_RATIO}x the sink",
                met=ratio >= TARGET_RATIO,
            ),
        )


def summarise_acks(
    results: dict[str, AckResult], path: str | None, rate: float, seconds: float
) -> None:
    for name, r in results.items():
        if r.slices:
            _summarise_soak(name, r, path, rate, seconds)
            continue
        _summary.record(
            path,
            _summary.Figure(
                name=f"250 to acknowledgment at 100 msgs/s, {name}",
                value=f"p50 {_summary.ms(r.p50 * 1000)}, p99 {_summary.ms(r.p99 * 1000)}",
                reference=f"250s at {r.send_rate:.0f}/s of 100 offered; acks at {r.ack_rate:.0f}/s",
                target=f"p99 < {TARGET_ACK_P99:g} s",
                met=r.p99 < TARGET_ACK_P99,
            ),
        )


def _summarise_soak(name: str, r: AckResult, path: str | None, rate: float, seconds: float) -> None:
    first, last = r.slices[0], r.slices[-1]
    growth = last.cpu_ms_per_ack / first.cpu_ms_per_ack
    last_p99, first_p99 = _summary.ms(last.p99 * 1000), _summary.ms(first.p99 * 1000)
    _summary.record(
        path,
        _summary.Figure(
            name=f"soak, {rate:g} msgs/s for {seconds:g} s, {name}: last of {len(r.slices)} slices",
            value=f"{last.cpu_ms_per_ack:.1f} ms worker CPU an ack, p99 {last_p99}",
            reference=f"first slice {first.cpu_ms_per_ack:.1f} ms, p99 {first_p99}",
            target=f"the same in the last slice as in the first (<= {TARGET_SOAK_GROWTH:g}x)",
            met=growth <= TARGET_SOAK_GROWTH,
        ),
    )


def print_acks(results: dict[str, AckResult], seconds: float, workers: int, rate: float) -> None:
    print(
        f"\nAcknowledgment latency (offered {rate:g} msgs/s open loop, 8 sessions, "
        f"for {seconds:g} s; {workers} RQ workers; 250 received -> acknowledgment at the relay)"
    )
    header = (
        f"{'database':<10}{'sent':>6}{'250s':>6}{'/s':>6}{'acks':>6}{'matched':>8}"
        f"{'acks/s':>7}{'p50 ms':>9}{'p99 ms':>9}{'max ms':>9}{'smtp p50':>9}"
        f"{'smtp p99':>9}{'late':>6}{'workers':>8}  target p99 < {TARGET_ACK_P99:g} s"
    )
    print(header)
    print("-" * len(header))
    for name, r in results.items():
        verdict = "meets" if r.p99 < TARGET_ACK_P99 else "MISSES"
        print(
            f"{name:<10}{r.sent:>6}{r.accepted:>6}{r.send_rate:>6.0f}{r.acks:>6}{r.matched:>8}"
            f"{r.ack_rate:>7.0f}{ms(r.p50):>9}{ms(r.p99):>9}{ms(r.worst):>9}"
            f"{ms(r.smtp_p50):>9}{ms(r.smtp_p99):>9}{r.late_sends:>6}{r.worker_cpu:>8.0%}"
            f"  {verdict}" + (f"  errors {r.errors}" if r.errors else "")
        )
    for name, r in results.items():
        for k, part in enumerate(r.slices, 1):
            print(
                f"  {name} slice {k}/{len(r.slices)}: p50 {ms(part.p50)} ms, p99 {ms(part.p99)} ms,"
                f" workers {part.cpu_ms_per_ack:.1f} ms CPU an acknowledgment"
            )
    print(
        "/s = 250s per second achieved; acks/s = acknowledgments per second, first to last; "
        "late = sends more than one interval behind schedule (a slow 250 held the session); "
        "workers = CPU of the workers together, share of one core"
    )


# ---------------------------------------------------------------------------------------------
# Main.


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--db", choices=["sqlite", "postgres", "both"], default="both")
    parser.add_argument(
        "--messages", type=int, help="messages per measured run (default 3000, --quick 300)"
    )
    parser.add_argument("--repeat", type=int, help="runs per scenario (default 3, --quick 1)")
    parser.add_argument("--sessions", default="8,32", help="concurrencies (default 8,32)")
    parser.add_argument(
        "--ack-seconds", type=float, help="length of the acknowledgment run (default 20, --quick 5)"
    )
    parser.add_argument(
        "--rate", type=float, default=100.0, help="messages/s offered in part (c) (default 100)"
    )
    parser.add_argument(
        "--slices",
        type=int,
        default=1,
        help="split part (c) into this many equal slices and print each one's p99 and the "
        "workers' CPU an acknowledgment: a soak's slope (default 1: none)",
    )
    parser.add_argument(
        "--reconnect",
        action="store_true",
        help="each message on a connection of its own (connect, EHLO, one transaction, QUIT), "
        "as many MTAs deliver; default: persistent sessions sending one message after another",
    )
    parser.add_argument(
        "--workers",
        type=int,
        default=4,
        help="`intake worker` processes for part (c) (default 4: a worker mostly waits on the "
        "database and the relay, so two cores serve more than two)",
    )
    parser.add_argument(
        "--sender-auth",
        default="off",
        choices=["off", "monitor", "enforce"],
        help="the gateway's sender_auth setting (default off: the benchmark "
        "mail carries no DKIM/SPF)",
    )
    parser.add_argument("--skip-acks", action="store_true", help="skip part (c)")
    parser.add_argument("--skip-throughput", action="store_true", help="skip parts (a), (b)")
    parser.add_argument(
        "--timeout", type=float, default=600, help="seconds any one client run may take"
    )
    parser.add_argument(
        "--profile",
        action="store_true",
        help="after (b), profile the door with py-spy (one extra run per "
        "database and view) and print its hot functions",
    )
    parser.add_argument("--quick", action="store_true", help="a short smoke run")
    _summary.add_option(parser)
    args = parser.parse_args(argv)
    args.messages = args.messages or (300 if args.quick else 3000)
    args.repeat = args.repeat or (1 if args.quick else 3)
    args.ack_seconds = args.ack_seconds or (5.0 if args.quick else 20.0)
    args.session_counts = [int(s) for s in args.sessions.split(",")]
    return args


def print_header(args: argparse.Namespace) -> None:
    print("SMTP intake benchmark")
    print("command:  " + " ".join([Path(PYTHON).name, *sys.argv]))
    load = os.getloadavg()
    print(
        f"machine:  {os.cpu_count()} cores, load average {load[0]:.2f} {load[1]:.2f} "
        f"{load[2]:.2f} at start; Python {sys.version.split()[0]}"
    )
    print(
        f"load:     {args.messages} messages/run (~4 KB, 50 senders round-robin), "
        f"sessions {args.session_counts}, {args.repeat} run(s) each, plus an uncounted "
        f"warm-up; sender_auth={args.sender_auth}"
    )
    print(f"services: Redis {REDIS_URL}; PostgreSQL server of {POSTGRES_ADMIN_URL}")


def throughput(bench: Bench, targets: list[str]) -> dict[tuple[str, int], list[Run]]:
    """Every scenario `repeat` times, interleaved so that drift on the machine hits all alike."""
    results: dict[tuple[str, int], list[Run]] = {
        (t, c): [] for t in targets for c in bench.args.session_counts
    }
    for rep in range(bench.args.repeat):
        for target in targets:
            for conc in bench.args.session_counts:
                run = bench.measure(target, conc)
                results[(target, conc)].append(run)
                print(
                    f"  run {rep + 1}/{bench.args.repeat} {target}@{conc}: "
                    f"{run.rate:.0f} msgs/s p50 {ms(run.p50)} ms p99 {ms(run.p99)} ms "
                    f"errors {run.errors} client {run.client_cpu:.0%} "
                    f"server {run.server_cpu:.0%} machine {run.machine_busy:.0%}",
                    flush=True,
                )
    return results


def print_profiles(bench: Bench, db_names: list[str]) -> None:
    if not _profile.available():
        print("\n--profile: py-spy is not installed (.venv/bin/pip install py-spy)")
        return
    sessions = max(bench.args.session_counts)
    for name in db_names:
        for view in ("gil", "wall"):
            print("\n" + bench.profile_gateway(name, sessions, view), flush=True)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    db_names = ["sqlite", "postgres"] if args.db == "both" else [args.db]
    print_header(args)
    workdir = Path(tempfile.mkdtemp(prefix="intake-bench-"))
    databases: dict[str, Any] = {}
    keep = bool(os.environ.get("BENCH_KEEP_LOGS"))
    try:
        for name in db_names:
            databases[name] = SqliteDatabases(workdir) if name == "sqlite" else PostgresDatabases()
            databases[name].prepare()
        bench = Bench(args, workdir, databases)
        keep = True  # until the end: a failure leaves the servers' logs to read
        if not args.skip_throughput:
            results = throughput(bench, ["bare", *db_names])
            print_throughput(results, args.session_counts)
            summarise_throughput(results, args.summary)
        if args.profile:
            print_profiles(bench, db_names)
        if not args.skip_acks:
            results = {name: measure_acks(bench, name) for name in db_names}
            print_acks(results, args.ack_seconds, args.workers, args.rate)
            summarise_acks(results, args.summary, args.rate, args.ack_seconds)
        keep = bool(os.environ.get("BENCH_KEEP_LOGS"))
    finally:
        for databases_of_one in databases.values():
            databases_of_one.close()
        flush_redis()
        if keep:
            print(f"logs kept in {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
