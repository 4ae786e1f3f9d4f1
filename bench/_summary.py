"""The figures a benchmark hands to `python -m bench`: one JSON line each, appended to the file
its `--summary FILE` option names, so that the runner can print every benchmark's result in
one table.

A figure carries its reference measured in the same run and its target in words, and says
whether the target was met (None where a figure has no target of its own).
"""

from __future__ import annotations

import argparse
import json
from dataclasses import asdict, dataclass
from pathlib import Path


@dataclass(frozen=True)
class Figure:
    name: str
    value: str
    reference: str = ""
    target: str = ""
    met: bool | None = None


def add_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--summary",
        metavar="FILE",
        help="also append the headline figures to FILE, one JSON line each (python -m bench)",
    )


def record(path: str | None, figure: Figure) -> None:
    """Append ``figure`` to the summary file, when the run was asked for one."""
    if path is None:
        return
    with Path(path).open("a", encoding="utf-8") as out:
        out.write(json.dumps(asdict(figure)) + "\n")


def read(path: Path) -> list[Figure]:
    if not path.exists():
        return []
    lines = path.read_text(encoding="utf-8").splitlines()
    return [Figure(**json.loads(line)) for line in lines if line.strip()]


def ms(value: float) -> str:
    """Milliseconds with the digits that mean something at that size."""
    if value < 10:
        return f"{value:.2f} ms"
    return f"{value:,.1f} ms" if value < 100 else f"{value:,.0f} ms"
