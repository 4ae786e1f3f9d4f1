"""Every benchmark at a size that fits in about a quarter of an hour on 2 cores, in one table.

    .venv/bin/python -m bench                    # all of them
    .venv/bin/python -m bench --only door,ivr    # some of them (--list names them)
    .venv/bin/python -m bench --quick            # a smoke run of the same, in a few minutes

Each benchmark runs as its own script, with its output kept in a log file; its headline figures
come back through `--summary` (bench/_summary.py), each beside its reference measured in the
same run and its target. The table is Markdown, so that it can be pasted as printed.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import platform
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
sys.path.insert(0, str(BENCH))

import _summary  # noqa: E402


@dataclass(frozen=True)
class Stage:
    name: str
    script: str
    full: str  # the script's options for the table
    quick: str  # and for a smoke run
    what: str


STAGES = (
    Stage(
        "door",
        "smtp_intake.py",
        "--db both --messages 1500 --repeat 3 --sessions 32 --ack-seconds 60",
        "--db both --messages 300 --repeat 1 --sessions 32 --ack-seconds 5",
        "one listener against a bare aiosmtpd sink; acknowledgments at 100 msgs/s",
    ),
    Stage(
        "listeners",
        "smtp_processes.py",
        "--processes 1,2 --messages 2000 --repeat 3",
        "--processes 2 --messages 300 --repeat 1",
        "intake smtp --processes 2 against one bare sink",
    ),
    Stage(
        "ivr",
        "ivr_latency.py",
        "--rounds 3",
        "--rounds 1 --calls 2 --callers 8",
        "the phone door's steps at 32 calls at once",
    ),
    Stage(
        "web",
        "web_latency.py",
        "--requests 1000000 --rounds 1 --duration 5 --connections 4",
        "--requests 20000 --rounds 1 --duration 1 --connections 4",
        "staff pages, API and search at a million requests in PostgreSQL",
    ),
    Stage(
        "peers",
        "peers.py",
        "--messages 500 --repeat 3",
        "--messages 50 --repeat 1",
        "the same messages through django-helpdesk, django-mailbox and intake run",
    ),
    Stage(
        "soak",
        "smtp_intake.py",
        "--db sqlite --skip-throughput --workers 1 --rate 40 --ack-seconds 60 --slices 4",
        "--db sqlite --skip-throughput --workers 1 --rate 40 --ack-seconds 20 --slices 2",
        "a steady 40 msgs/s on SQLite with one worker: the last slice against the first",
    ),
    Stage(
        "memory",
        "smtp_memory.py",
        "",
        "--sessions 4 --message-mib 4 --oversized-mb 20",
        "the SMTP process's memory under large messages",
    ),
    Stage(
        "ratelimit",
        "ack_ratelimit.py",
        "--sizes 0,24000 --calls 300",
        "--sizes 0,2000 --calls 50",
        "the acknowledgment limit's check at any history",
    ),
)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench",
        description=__doc__.split("\n\n")[0],
        epilog="The PostgreSQL and Redis of 127.0.0.1 are used as bench/README.md says.",
    )
    names = ", ".join(stage.name for stage in STAGES)
    parser.add_argument("--only", help=f"comma-separated stages to run ({names})")
    parser.add_argument("--skip", help="comma-separated stages to leave out")
    parser.add_argument("--quick", action="store_true", help="small sizes: a smoke run")
    parser.add_argument("--list", action="store_true", help="name the stages and stop")
    parser.add_argument("--logs", type=Path, help="folder for each stage's output (a temp dir)")
    args = parser.parse_args(argv)
    args.stages = chosen_stages(parser, args)
    return args


def chosen_stages(parser: argparse.ArgumentParser, args: argparse.Namespace) -> list[Stage]:
    known = {stage.name for stage in STAGES}
    only = set(args.only.split(",")) if args.only else known
    skip = set(args.skip.split(",")) if args.skip else set()
    unknown = sorted((only | skip) - known)
    if unknown:
        parser.error(f"no stage named {', '.join(unknown)}; the stages: {', '.join(sorted(known))}")
    return [stage for stage in STAGES if stage.name in only - skip]


def run_stage(stage: Stage, quick: bool, logs: Path, summary: Path) -> tuple[int, float]:
    """Run one benchmark script with its output in a log file; its exit code and duration."""
    options = (stage.quick if quick else stage.full).split()
    command = [sys.executable, str(BENCH / stage.script), *options]
    started = time.monotonic()
    with (logs / f"{stage.name}.log").open("w") as log:
        log.write("$ " + " ".join(command) + f" --summary {summary}\n")
        log.flush()
        done = subprocess.run(
            [*command, "--summary", str(summary)],
            cwd=ROOT,
            stdout=log,
            stderr=subprocess.STDOUT,
            check=False,  # a failed stage is reported, and the others still run
        )
    return done.returncode, time.monotonic() - started


def machine() -> str:
    model = next(
        (
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        ),
        platform.processor() or "unknown CPU",
    )
    memory_kib = next(
        int(line.split()[1])
        for line in Path("/proc/meminfo").read_text().splitlines()
        if line.startswith("MemTotal")
    )
    load = " ".join(f"{value:.2f}" for value in os.getloadavg())
    return (
        f"{os.cpu_count()} cores ({model}), {memory_kib / 2**20:.0f} GiB, "
        f"load average {load} at start; Python {platform.python_version()}"
    )


def table(figures: list[_summary.Figure]) -> str:
    rows = ["| figure | value | reference, same run | target | met |", "|---|---|---|---|---|"]
    for f in figures:
        met = {True: "yes", False: "**no**", None: "-"}[f.met]
        rows.append(f"| {f.name} | {f.value} | {f.reference} | {f.target} | {met} |")
    return "\n".join(rows)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.list:
        for stage in STAGES:
            print(f"{stage.name:<10} bench/{stage.script}: {stage.what}")
        return 0
    logs = args.logs or Path(tempfile.mkdtemp(prefix="intake-bench-all-"))
    logs.mkdir(parents=True, exist_ok=True)
    summary = logs / "summary.jsonl"
    summary.unlink(missing_ok=True)
    print(f"{dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M} UTC; {machine()}")
    print("command: python -m bench " + " ".join(sys.argv[1:] if argv is None else argv))
    failed = []
    for number, stage in enumerate(args.stages, 1):
        print(f"[{number}/{len(args.stages)}] {stage.name}: {stage.what} ...", end=" ", flush=True)
        code, seconds = run_stage(stage, args.quick, logs, summary)
        print(f"{'done' if code == 0 else f'FAILED (exit {code})'} in {seconds:.0f} s", flush=True)
        if code != 0:
            failed.append(stage.name)
    print("\n" + table(_summary.read(summary)))
    print(f"\neach stage's whole output: {logs}/<stage>.log")
    if failed:
        print(f"failed: {', '.join(failed)}; see their logs")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
