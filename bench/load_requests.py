"""Load a PostgreSQL database with a large, realistic history for the web benchmarks.

    .venv/bin/python bench/load_requests.py postgresql+psycopg://postgres@127.0.0.1:5432/DB \
        [--requests 1000000] [--customers 2000] [--days 730] [--seed 7]

The database is migrated to head first (it must exist; bench/web_latency.py creates and drops
its own). Everything goes in with COPY: customers, contacts and their addresses, N requests
spread over the last --days days, their events (created, acknowledged, some severity changes),
one intake-log row for each request plus the refused, quarantined and suppressed mail around
them, and a staff user and API token for the load tool. Old requests are resolved or closed;
the last two weeks hold open ones, a few still waiting for their acknowledgment and a few past
their response goal, as a busy desk's database would. Ends with VACUUM ANALYZE.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import random
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import psycopg

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from intake.store.db import upgrade  # noqa: E402 - after the path is set

SEVERITY_WEIGHTS = (5, 15, 50, 30)  # Sev 1 .. 4, in percent
GOALS = {1: dt.timedelta(hours=1), 2: dt.timedelta(hours=2), 3: dt.timedelta(days=3)}
SEV4_GOAL = dt.timedelta(days=7)  # 5 business days, near enough for data
RECENT = dt.timedelta(days=14)
OPEN_STATUSES = ("new", "acknowledged", "in_progress")
SUBJECTS = (
    "Export job fails on the reporting server",
    "Scheduled report not delivered this morning",
    "Users cannot upload recordings larger than 2 GB",
    "Dashboard slow since the last update",
    "Question about the retention settings of the archive",
    "Login page shows an error for some users",
    "Platform API answers 503 intermittently",
    "Recording playback stutters in the browser",
)
REFUSALS = (
    ("rejected", "unknown_sender"),
    ("rejected", "outside_support_period"),
    ("quarantined", "sender_not_authenticated"),
    ("suppressed", "auto_submitted"),
    ("duplicate", ""),
)
STAFF_PASSWORD_HASH_NOTE = "set by bench/web_latency.py with intake staff add"


@dataclass(frozen=True)
class Plan:
    requests: int
    customers: int
    days: int
    now: dt.datetime

    @property
    def contacts(self) -> int:
        return self.customers * 5


def iso(moment: dt.datetime | None) -> str | None:
    return moment.isoformat() if moment is not None else None


def copy_rows(conn: psycopg.Connection, table: str, columns: str, rows: Iterator[tuple]) -> int:
    count = 0
    with conn.cursor() as cursor, cursor.copy(f"COPY {table} ({columns}) FROM STDIN") as copy:
        for row in rows:
            copy.write_row(row)
            count += 1
    return count


def customers(plan: Plan) -> Iterator[tuple]:
    start, end = dt.date(2020, 1, 1), dt.date(2030, 12, 31)
    now = iso(plan.now)
    for n in range(1, plan.customers + 1):
        yield (
            n,
            f"Customer {n:05d}",
            "IXCloud" if n % 3 else "IXCloud Hybrid",
            start,
            end,
            now,
            now,
        )


def contacts(plan: Plan) -> Iterator[tuple]:
    now = iso(plan.now)
    for n in range(1, plan.contacts + 1):
        customer = (n - 1) // 5 + 1
        phone = f"+1415{n:07d}"
        role = "technical" if n % 5 else "end_user"
        yield (n, customer, f"Contact {n:06d}", role, phone, 0, 0, True, True, now, now)


def contact_emails(plan: Plan) -> Iterator[tuple]:
    for n in range(1, plan.contacts + 1):
        yield (n, n, f"contact{n}@customer{(n - 1) // 5 + 1}.example")


@dataclass
class Request:
    id: int
    contact: int
    severity: int
    channel: str
    created: dt.datetime
    acked: dt.datetime | None
    status: str
    due: dt.datetime


def make_requests(plan: Plan, rng: random.Random) -> Iterator[Request]:
    """Requests in time order (ids grow with time, as in a real database)."""
    span = plan.days * 86400.0
    offsets = sorted(rng.random() * span for _ in range(plan.requests))
    start = plan.now - dt.timedelta(days=plan.days)
    for n, offset in enumerate(offsets, start=1):
        created = start + dt.timedelta(seconds=offset)
        severity = rng.choices((1, 2, 3, 4), weights=SEVERITY_WEIGHTS)[0]
        due = created + GOALS.get(severity, SEV4_GOAL)
        acked, status = _fate(plan, rng, created)
        channel = "email" if rng.random() < 0.7 else "phone"
        yield Request(
            n, rng.randrange(1, plan.contacts + 1), severity, channel, created, acked, status, due
        )


def _fate(plan: Plan, rng: random.Random, created: dt.datetime) -> tuple[dt.datetime | None, str]:
    """Acknowledged seconds after receipt (a handful never, lately); old requests are done."""
    latency = dt.timedelta(seconds=min(rng.lognormvariate(2.5, 0.9), 7200))
    acked = created + latency
    if plan.now - created > RECENT:
        return acked, rng.choice(("resolved", "closed", "closed"))
    if rng.random() < 0.006:
        return None, "new"  # the acknowledgment has not gone out: the desk's queue
    return acked, rng.choice(("acknowledged", "in_progress", "in_progress", "resolved"))


def request_rows(reqs: list[Request], rng: random.Random) -> Iterator[tuple]:
    for r in reqs:
        subject = f"{rng.choice(SUBJECTS)} (ref {r.id})"
        description = f"{subject}. It started this morning; nothing changed on our side."
        yield (
            r.id, (r.contact - 1) // 5 + 1, r.contact, r.channel, r.severity, r.severity,
            r.status, subject, description, iso(r.created), iso(r.due), iso(r.acked),
        )  # fmt: skip


def event_rows(reqs: list[Request]) -> Iterator[tuple]:
    event_id = 0
    for r in reqs:
        event_id += 1
        created = json.dumps({"channel": r.channel, "severity": r.severity})
        yield (event_id, r.id, "created", iso(r.created), created)
        if r.acked is not None:
            event_id += 1
            detail = json.dumps({"to": f"contact{r.contact}@example", "via": "smtp"})
            yield (event_id, r.id, "acknowledged", iso(r.acked), detail)


def intake_rows(reqs: list[Request], rng: random.Random) -> Iterator[tuple]:
    """One accepted row per request, and about one refused or held row for every ten."""
    intake_id = 0
    for r in reqs:
        intake_id += 1
        yield _intake(intake_id, r.channel, r.created, "accepted", "new_request", r.id, r.contact)
        if rng.random() < 0.1:
            intake_id += 1
            outcome, reason = rng.choice(REFUSALS)
            at = r.created + dt.timedelta(seconds=rng.randrange(1, 600))
            yield _intake(intake_id, "email", at, outcome, reason, None, None)


def _intake(
    intake_id: int,
    channel: str,
    at: dt.datetime,
    outcome: str,
    reason: str,
    request_id: int | None,
    contact: int | None,
) -> tuple:
    sender = f"contact{contact}@example" if contact else f"stranger{intake_id}@elsewhere.example"
    return (
        intake_id, channel, iso(at), sender, "support@intake.localhost", f"Message {intake_id}",
        f"<{intake_id}@bench.example>", f"bench:{intake_id}", outcome, reason, "", "done", 0, "",
        contact, request_id, 4000, contact is not None,
    )  # fmt: skip


REQUEST_COLUMNS = (
    "id, customer_id, contact_id, channel, severity, initial_severity, status, subject, "
    "description, created_at, response_due_at, acknowledged_at"
)
INTAKE_COLUMNS = (
    "id, channel, received_at, sender, recipients, subject, message_id, dedupe_key, outcome, "
    "reason, detail, state, attempts, last_error, contact_id, request_id, size, sender_verified"
)


def load(url: str, plan: Plan, seed: int) -> dict[str, int]:
    rng = random.Random(seed)
    upgrade(url)
    counts: dict[str, int] = {}
    with psycopg.connect(url.replace("postgresql+psycopg://", "postgresql://")) as conn:
        counts["customers"] = copy_rows(
            conn,
            "customers",
            "id, name, offering, support_start, support_end, created_at, updated_at",
            customers(plan),
        )
        counts["contacts"] = copy_rows(
            conn,
            "contacts",
            "id, customer_id, name, role, phone, pin_failures, pin_locks, available_24x7, "
            "active, created_at, updated_at",
            contacts(plan),
        )
        copy_rows(conn, "contact_emails", "id, contact_id, address", contact_emails(plan))
        reqs = list(make_requests(plan, rng))
        counts["requests"] = copy_rows(
            conn, "service_requests", REQUEST_COLUMNS, request_rows(reqs, rng)
        )
        counts["events"] = copy_rows(
            conn, "request_events", "id, request_id, type, at, detail", event_rows(reqs)
        )
        counts["intake"] = copy_rows(conn, "intake_log", INTAKE_COLUMNS, intake_rows(reqs, rng))
        _reset_sequences(conn)
    _vacuum(url)
    return counts


def _reset_sequences(conn: psycopg.Connection) -> None:
    """Ids were given explicitly: move each identity sequence past them."""
    for table in (
        "customers",
        "contacts",
        "contact_emails",
        "service_requests",
        "request_events",
        "intake_log",
    ):
        conn.execute(
            f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "
            f"(SELECT coalesce(max(id), 1) FROM {table}))"
        )


def _vacuum(url: str) -> None:
    with psycopg.connect(
        url.replace("postgresql+psycopg://", "postgresql://"), autocommit=True
    ) as conn:
        conn.execute("VACUUM ANALYZE")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("database_url", help="postgresql+psycopg://... of an existing database")
    parser.add_argument("--requests", type=int, default=1_000_000)
    parser.add_argument("--customers", type=int, default=2000)
    parser.add_argument("--days", type=int, default=730)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    plan = Plan(args.requests, args.customers, args.days, dt.datetime.now(dt.UTC))
    started = time.monotonic()
    counts = load(args.database_url, plan, args.seed)
    took = time.monotonic() - started
    print(", ".join(f"{n:,} {name}" for name, n in counts.items()) + f" loaded in {took:.0f} s")


if __name__ == "__main__":
    main()
