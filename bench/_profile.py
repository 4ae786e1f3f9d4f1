"""Where the server's time goes: py-spy attached to the server process during one run, and a
summary of its raw (collapsed-stack) output by function, self and inclusive.

Two views: "gil" samples only the thread holding the GIL (what the one core the Python process
can use is spent on); "wall" samples every thread, idle ones included (where the door's database
threads wait: commits, fsync, locks, the network).

    python bench/_profile.py FILE.txt [--top N] [--thread-prefix intake-recorder]
"""

from __future__ import annotations

import argparse
import contextlib
import re
import shutil
import signal
import subprocess
import sys
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

FRAME = re.compile(r"^(?P<func>.+?) \((?P<file>[^()]*?)(?::\d+)?\)$")
PY_SPY = shutil.which("py-spy", path=str(Path(sys.executable).parent)) or shutil.which("py-spy")


def available() -> bool:
    return PY_SPY is not None


@contextlib.contextmanager
def spying(pid: int, output: Path, view: str) -> Iterator[None]:
    """py-spy record on `pid` while the block runs; its raw output ends up in `output`."""
    assert PY_SPY is not None
    extra = ["--gil"] if view == "gil" else ["--idle", "--threads"]
    process = subprocess.Popen(
        [PY_SPY, "record", "-p", str(pid), "-f", "raw", "-r", "100", "-o", str(output), *extra],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        yield
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGINT)  # py-spy writes its file when interrupted
        try:
            process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def frame_name(frame: str) -> str:
    match = FRAME.match(frame.strip())
    return f"{match['func']} ({match['file']})" if match else frame.strip()


def read_stacks(path: Path, thread_prefix: str | None = None) -> Iterator[tuple[list[str], int]]:
    """(frames root first, samples) per line; with --threads lines the first frame names the
    thread, and `thread_prefix` keeps only the threads whose stacks show that name."""
    for line in path.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        frames = stack.split(";")
        if thread_prefix is not None and not _in_thread(frames, thread_prefix):
            continue
        yield [frame_name(f) for f in frames], int(count)


def _in_thread(frames: list[str], name: str) -> bool:
    """Whether the stack is of a thread whose name contains `name` (py-spy --threads puts
    "thread (<id>): <name>" first)."""
    return frames[0].startswith("thread (") and name in frames[0]


def summarise(path: Path, top: int = 15, thread_prefix: str | None = None) -> str:
    self_time: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    total = 0
    for frames, count in read_stacks(path, thread_prefix):
        total += count
        self_time[frames[-1]] += count
        for name in set(frames):
            inclusive[name] += count
    if not total:
        return f"{path.name}: no samples"
    lines = [
        f"{path.name}: {total} samples" + (f" (threads: {thread_prefix})" if thread_prefix else "")
    ]
    lines.append(f"  {'inclusive':>9}  function")
    skip = (
        "threading.py",
        "concurrent/futures/thread.py",
        "asyncio/events.py",
        "asyncio/base_events.py",
        "aiosmtpd/controller.py",
    )
    shown = [
        (n, c) for n, c in inclusive.most_common() if not n.endswith(tuple(f"({s})" for s in skip))
    ]
    lines += [f"  {c / total:>9.1%}  {n}" for n, c in shown[:top]]
    lines.append(f"  {'self':>9}  function")
    lines += [f"  {c / total:>9.1%}  {n}" for n, c in self_time.most_common(top)]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description="Summarise a py-spy raw file.")
    parser.add_argument("file", type=Path)
    parser.add_argument("--top", type=int, default=15)
    parser.add_argument(
        "--thread-prefix",
        help="only threads whose name contains this (wall view), e.g. intake-recorder",
    )
    args = parser.parse_args()
    print(summarise(args.file, args.top, args.thread_prefix))


if __name__ == "__main__":
    main()
