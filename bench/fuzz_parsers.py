"""Run the parsers' property tests for longer than the suite does, and count the inputs.

    .venv/bin/python bench/fuzz_parsers.py [--examples N] [--seed S]

Each property of tests/test_parsers_fuzz.py and tests/test_hygiene_fuzz.py (generated MIME
structures with nested multiparts and attached messages, header values with encoded words,
bogus and dangerous charsets, mangled and random bytes; HTML, quoted replies, tokens) gets N
generated inputs. Prints how many inputs passed per property and in all; on a failure, the
smallest failing input Hypothesis found, and the exit status is 1.
"""

from __future__ import annotations

import argparse
import sys
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from hypothesis import HealthCheck, given, seed, settings
from hypothesis import strategies as st

from tests import test_hygiene_fuzz as hygiene
from tests import test_parsers_fuzz as parsers_fuzz

Property = tuple[str, st.SearchStrategy[Any], Callable[[Any], None]]
PROPERTIES: list[Property] = [
    ("parsers never raise (headers, digest, body)", parsers_fuzz.messages,
     parsers_fuzz.check_everything),
    ("read_message: content or UnparseableMessage", parsers_fuzz.messages,
     hygiene.check_read_message),
    ("the door's header path, DSN reading", parsers_fuzz.messages, hygiene.check_door),
    ("sanitised HTML has no active content", hygiene.markup, hygiene.check_sanitised),
    ("reply stripping never grows or empties", st.one_of(hygiene.quoted_text, st.text()),
     hygiene.check_stripped),
]  # fmt: skip


def run(name: str, strategy: st.SearchStrategy[Any], check: Callable[[Any], None],
        examples: int, rng_seed: int) -> tuple[int, str | None]:  # fmt: skip
    """How many generated inputs passed ``check``, and the failure (None if there was none)."""
    passed = 0

    @seed(rng_seed)
    @settings(
        max_examples=examples,
        deadline=None,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    @given(strategy)
    def prop(value: Any) -> None:
        nonlocal passed
        check(value)
        passed += 1

    try:
        prop()
    except Exception as failure:  # Hypothesis re-raises with the smallest failing input
        return passed, f"{type(failure).__name__}: {failure}"
    return passed, None


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--examples", type=int, default=2000, help="inputs per property")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    warnings.filterwarnings("ignore", "invalid escape sequence", DeprecationWarning)
    total, failed = 0, False
    for name, strategy, check in PROPERTIES:
        started = time.monotonic()
        passed, failure = run(name, strategy, check, args.examples, args.seed)
        total += passed
        took = time.monotonic() - started
        print(f"{passed:>8} passed  {took:7.1f} s  {name}", flush=True)
        if failure:
            failed = True
            print(f"  FAILED: {failure}", flush=True)
    print(f"{total:>8} inputs passed in all{'; some property FAILED' if failed else ''}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
