"""Cost of the per-address acknowledgment limit's check as one address's history grows.

    .venv/bin/python bench/ack_ratelimit.py [--db sqlite|postgres|both] [--sizes 0,2000,24000]
                                            [--calls 300]

For each size, a fresh migrated database gets that many acknowledgments to one address (half
of them within the limit's window, half older, verified and unverified senders mixed, beside
as many to other addresses), then the check the worker makes before each acknowledgment
(``intake.outbox.ratelimit.ack_budget``) is timed ``--calls`` times. The reference is the same
check on the empty database, measured in the same run: a check that costs the same at any
history shows a ratio near 1 at every size.
"""

from __future__ import annotations

import argparse
import datetime as dt
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH.parent))

import _summary  # noqa: E402
from sqlalchemy import create_engine, insert, text  # noqa: E402

from intake.outbox.ratelimit import ack_budget  # noqa: E402
from intake.store.db import Database, upgrade  # noqa: E402
from intake.store.models import IntakeRecord, OutboxMessage, utcnow  # noqa: E402

POSTGRES_ADMIN = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
ADDRESS = "ada@acme.example"
LIMIT = (20, 3600)  # INTAKE_ACK_LIMIT's default, 20/hour
CHUNK = 2000
SAME_COST = 2.0  # the check at the largest history may cost this much more, noise included


def fill(db: Database, size: int) -> None:
    """``size`` acknowledgments to ADDRESS and as many to other addresses."""
    now = utcnow()
    for start in range(0, 2 * size, CHUNK):
        numbers = range(start, min(start + CHUNK, 2 * size))
        with db.transaction() as session:
            session.execute(insert(IntakeRecord), [_intake(n, now) for n in numbers])
            ids = dict(
                session.execute(
                    text("SELECT dedupe_key, id FROM intake_log WHERE dedupe_key LIKE 'bench-%'")
                ).all()
            )
            session.execute(insert(OutboxMessage), [_ack(n, now, ids) for n in numbers])
    with db.engine.begin() as conn:
        conn.execute(text("ANALYZE"))


def _intake(n: int, now: dt.datetime) -> dict[str, object]:
    return {
        "channel": "email",
        "received_at": _when(n, now),
        "sender": _recipient(n),
        "dedupe_key": f"bench-{n}",
        "outcome": "accepted",
        "sender_verified": n % 3 == 0,
    }


def _ack(n: int, now: dt.datetime, ids: dict[str, int]) -> dict[str, object]:
    return {
        "channel": "email",
        "purpose": "acknowledgment",
        "intake_id": ids[f"bench-{n}"],
        "recipient": _recipient(n),
        "payload": b"x",
        "created_at": _when(n, now),
        "sent_at": _when(n, now),
    }


def _recipient(n: int) -> str:
    return ADDRESS if n % 2 == 0 else f"other{n % 50}@globex.example"


def _when(n: int, now: dt.datetime) -> dt.datetime:
    # Every other row to the address within the last half hour, the rest days old.
    if (n // 2) % 2 == 0:
        return now - dt.timedelta(seconds=n % 1800)
    return now - dt.timedelta(days=2, seconds=n)


def time_checks(db: Database, calls: int) -> tuple[float, int]:
    """The median milliseconds of one check, and what it counted."""
    timings = []
    counted = 0
    for i in range(calls):
        with db.sessions() as session:
            started = time.perf_counter()
            budget = ack_budget(session, ADDRESS, LIMIT, verified=i % 2 == 0)
            timings.append((time.perf_counter() - started) * 1000)
            counted = max(counted, budget.sent)
    return statistics.median(timings), counted


def sqlite_database(folder: Path, size: int) -> tuple[Database, str]:
    url = f"sqlite:///{folder / f'ack-{size}.db'}"
    upgrade(url)
    return Database(url), url


def postgres_database(size: int) -> tuple[Database, str]:
    name = f"bench_ack_{size}_{uuid.uuid4().hex[:8]}"
    admin = create_engine(POSTGRES_ADMIN, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    admin.dispose()
    url = POSTGRES_ADMIN.rsplit("/", 1)[0] + "/" + name
    upgrade(url)
    return Database(url), name


def drop_postgres(name: str) -> None:
    admin = create_engine(POSTGRES_ADMIN, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


def run(kind: str, sizes: list[int], calls: int) -> list[float]:
    """The median time of a check at each size, printed beside the first size's."""
    medians: list[float] = []
    reference = None
    for size in sizes:
        with tempfile.TemporaryDirectory() as folder:
            if kind == "sqlite":
                db, name = sqlite_database(Path(folder), size)
            else:
                db, name = postgres_database(size)
            try:
                fill(db, size)
                median, counted = time_checks(db, calls)
            finally:
                db.dispose()
                if kind == "postgres":
                    drop_postgres(name)
        reference = reference if reference is not None else median
        print(
            f"{kind:8} {size:>8} {counted:>8} {median:>10.3f} {median / reference:>8.2f}",
            flush=True,
        )
        medians.append(median)
    return medians


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--db", choices=["sqlite", "postgres", "both"], default="both")
    parser.add_argument(
        "--sizes", default="0,2000,24000", help="history sizes, the first is the reference"
    )
    parser.add_argument("--calls", type=int, default=300, help="checks timed per size")
    _summary.add_option(parser)
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    print(f"{'database':8} {'history':>8} {'counted':>8} {'median ms':>10} {'ratio':>8}")
    for kind in ["sqlite", "postgres"] if args.db == "both" else [args.db]:
        medians = run(kind, sizes, args.calls)
        figure = _summary.Figure(
            name=f"acknowledgment limit's check, {kind}",
            value=f"{_summary.ms(medians[-1])} at {sizes[-1]:,} past acks",
            reference=f"{_summary.ms(medians[0])} at {sizes[0]:,}",
            target=f"the same at any history (<= {SAME_COST}x)",
            met=medians[-1] <= SAME_COST * medians[0],
        )
        _summary.record(args.summary, figure)


if __name__ == "__main__":
    main()
