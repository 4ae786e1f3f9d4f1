"""`python -m bench`: the one benchmark command runs its stages and prints their figures in one
table. The figures themselves are not judged here (speed lives in the benchmarks); this keeps
the command and the scripts' summaries from drifting apart."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def run_bench(*args: str, path: str | None = None) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ) | ({"PATH": path} if path is not None else {})
    return subprocess.run(
        [sys.executable, "-m", "bench", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )


def table_rows(output: str) -> list[list[str]]:
    lines = [line for line in output.splitlines() if line.startswith("| ")]
    return [[cell.strip() for cell in line.strip("|").split("|")] for line in lines[1:]]


def test_list_names_every_stage_and_its_script() -> None:
    done = run_bench("--list")
    assert done.returncode == 0, done.stderr
    names = [line.split()[0] for line in done.stdout.splitlines()]
    assert names == ["door", "listeners", "ivr", "web", "peers", "soak", "memory", "ratelimit"]
    for line in done.stdout.splitlines():
        script = line.split()[1].rstrip(":")
        assert (ROOT / script).is_file(), script


def test_an_unknown_stage_is_refused_with_the_names_of_the_known_ones() -> None:
    done = run_bench("--only", "door,nonsense")
    assert done.returncode == 2
    assert "no stage named nonsense" in done.stderr
    assert "ratelimit" in done.stderr


def test_a_stage_prints_its_figures_beside_their_references_in_one_table(
    tmp_path: Path,
) -> None:
    done = run_bench("--only", "ratelimit", "--quick", "--logs", str(tmp_path))
    assert done.returncode == 0, done.stdout + (tmp_path / "ratelimit.log").read_text()
    rows = table_rows(done.stdout)
    figures = {row[0]: row for row in rows}
    for kind in ("sqlite", "postgres"):
        _, value, reference, target, met = figures[f"acknowledgment limit's check, {kind}"]
        assert value.endswith("at 2,000 past acks")
        assert target.startswith("the same at any history")
        assert reference.endswith("at 0")
        assert met in ("yes", "**no**")
    assert "$ " in (tmp_path / "ratelimit.log").read_text()


def test_a_failing_stage_fails_the_command_and_names_itself(tmp_path: Path) -> None:
    """The web stage stops at once when wrk is not on the PATH: the command says which stage
    failed, keeps its log, still prints the table, and exits 1. A summary file left in the
    logs folder by an earlier run is replaced, never read."""
    (tmp_path / "summary.jsonl").write_text("not json, left from before\n")
    done = run_bench("--only", "web", "--quick", "--logs", str(tmp_path), path="/nonexistent")
    assert done.returncode == 1
    assert "FAILED (exit 1)" in done.stdout
    assert "failed: web; see their logs" in done.stdout
    assert "wrk is missing" in (tmp_path / "web.log").read_text()
    assert table_rows(done.stdout) == []
