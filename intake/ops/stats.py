"""Figures about intake and requests for the staff dashboard and ``/metrics``, straight from SQL.

Every query here is shaped to stay cheap on millions of rows: time windows are ranges over
the (received_at, id) and (created_at, id) indexes, open requests are counted from a partial
index of the open requests alone, and listed from (status, response_due_at), one status at a
time. The few expressions that differ between PostgreSQL and SQLite (hour buckets, seconds
between two times) are built per dialect.

A request's response goal is met by a person's response (``goal_met_at``, see
intake.workflows.goal), never by the acknowledgment; an open request past ``response_due_at``
without one has breached it. The breach watch's warnings and breaches are counted from their
events, by the (type, at) index.
"""

from __future__ import annotations

import datetime as dt
import itertools
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import ColumnElement, Float, Integer, and_, case, cast, func, select, union_all
from sqlalchemy.orm import InstrumentedAttribute, Session, joinedload

from intake.store.models import (
    OPEN_STATUS_SQL,
    OPEN_STATUSES,
    IntakeRecord,
    PinFailure,
    PinLockout,
    RequestEvent,
    ServiceRequest,
    utcnow,
)

EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
# Acknowledgment latency buckets, in seconds (the last, +Inf, is implied).
LATENCY_BOUNDS = (10.0, 30.0, 60.0, 120.0, 300.0, 900.0, 1800.0, 3600.0, 7200.0)
LATENCY_WINDOW = dt.timedelta(days=7)  # /metrics; the dashboard shows the last day
HOUR = dt.timedelta(hours=1)


@dataclass(frozen=True)
class HourCount:
    hour: dt.datetime  # the start of the hour, UTC
    outcome: str
    count: int


@dataclass(frozen=True)
class LatencyHistogram:
    """Cumulative counts per bound of LATENCY_BOUNDS, then the total (the +Inf bucket)."""

    severity: int
    cumulative: tuple[int, ...]
    total: int
    sum_seconds: float


def _dialect(session: Session) -> str:
    return session.get_bind().dialect.name


def epoch_seconds(
    session: Session,
    column: InstrumentedAttribute[dt.datetime] | InstrumentedAttribute[dt.datetime | None],
) -> ColumnElement[float]:
    """Seconds since 1970 of a UTC timestamp column, in the session's SQL dialect."""
    if _dialect(session) == "sqlite":
        # Stored as 'YYYY-MM-DD HH:MM:SS.ffffff' in UTC; julianday keeps the fraction.
        return (func.julianday(column) - 2440587.5) * 86400.0
    return func.date_part("epoch", column, type_=Float)


def intake_by_hour(
    session: Session, hours: int = 24, now: dt.datetime | None = None
) -> list[HourCount]:
    """Intake counts per hour and outcome over the last ``hours`` hours, oldest first."""
    since = (now or utcnow()) - dt.timedelta(hours=hours)
    bucket = cast(func.floor(epoch_seconds(session, IntakeRecord.received_at) / 3600), Integer)
    rows = session.execute(
        select(bucket, IntakeRecord.outcome, func.count())
        .where(IntakeRecord.received_at >= since)
        .group_by(bucket, IntakeRecord.outcome)
        .order_by(bucket)
    ).all()
    return [HourCount(EPOCH + dt.timedelta(hours=int(h)), o, int(n)) for h, o, n in rows]


def outcome_counts_since(session: Session, since: dt.datetime) -> dict[str, int]:
    """Intake rows received since ``since``, counted by outcome."""
    query = (
        select(IntakeRecord.outcome, func.count())
        .where(IntakeRecord.received_at >= since)
        .group_by(IntakeRecord.outcome)
    )
    return {o: int(n) for o, n in session.execute(query)}


def intake_totals(session: Session) -> dict[tuple[str, str], int]:
    """Every intake row counted by (channel, outcome), since the beginning."""
    query = select(IntakeRecord.channel, IntakeRecord.outcome, func.count()).group_by(
        IntakeRecord.channel, IntakeRecord.outcome
    )
    return {(c, o): int(n) for c, o, n in session.execute(query)}


def open_requests_by_urgency(session: Session, limit: int = 25) -> list[ServiceRequest]:
    """Open requests nobody has responded to yet first (soonest due, so the breached ones at
    the top), then the answered ones by their due time."""
    unanswered = _soonest_due(session, ServiceRequest.goal_met_at.is_(None), limit)
    if len(unanswered) >= limit:
        return unanswered
    answered = _soonest_due(
        session, ServiceRequest.goal_met_at.is_not(None), limit - len(unanswered)
    )
    return [*unanswered, *answered]


def _soonest_due(
    session: Session, answered: ColumnElement[bool], limit: int
) -> list[ServiceRequest]:
    """The ``limit`` open requests due soonest among those ``answered`` selects.

    Each open status is read on its own, in the order of the (status, response_due_at) index,
    and the few rows of each merged: an IN over the statuses would make PostgreSQL sort every
    open request (tens of thousands at a million requests) to find the first ``limit``."""
    per_status = [
        select(ServiceRequest.id, ServiceRequest.response_due_at)
        .where(ServiceRequest.status == status, answered)
        .order_by(ServiceRequest.response_due_at, ServiceRequest.id)
        .limit(limit)
        .subquery()
        for status in OPEN_STATUSES
    ]
    # Each limited select in a subquery of its own: SQLite takes no LIMIT inside a UNION.
    soonest = union_all(*(select(rows.c.id, rows.c.response_due_at) for rows in per_status))
    merged = soonest.subquery()
    return list(
        session.scalars(
            select(ServiceRequest)
            .join(merged, merged.c.id == ServiceRequest.id)
            .options(joinedload(ServiceRequest.customer), joinedload(ServiceRequest.assignee))
            .order_by(merged.c.response_due_at, merged.c.id)
            .limit(limit)
        )
    )


@dataclass(frozen=True)
class OpenCounts:
    """Open requests per severity: all of them, those still waiting for their acknowledgment,
    and those past their response goal with nobody having responded (breaches)."""

    open: dict[int, int]
    awaiting: dict[int, int]
    breached: dict[int, int]


def open_counts(session: Session, now: dt.datetime | None = None) -> OpenCounts:
    """Open requests per severity, those of them still waiting for their acknowledgment and
    those breached, in one reading of the open requests' own index (a few in a hundred rows,
    with every column the counts test)."""
    awaiting = ServiceRequest.acknowledged_at.is_(None)
    breached = and_(
        ServiceRequest.goal_met_at.is_(None), ServiceRequest.response_due_at < (now or utcnow())
    )
    query = (
        select(
            ServiceRequest.severity,
            func.count(),
            func.count().filter(awaiting),
            func.count().filter(breached),
        )
        .where(OPEN_STATUS_SQL)
        .group_by(ServiceRequest.severity)
    )
    rows = [tuple(int(n) for n in row) for row in session.execute(query)]
    return OpenCounts(
        {severity: n for severity, n, _, _ in rows},
        {severity: n for severity, _, n, _ in rows if n},
        {severity: n for severity, _, _, n in rows if n},
    )


def goal_event_totals(session: Session) -> dict[str, int]:
    """How many goal warnings and breaches the breach watch has recorded, ever."""
    kinds = ("goal_warning", "goal_breached")
    query = (
        select(RequestEvent.type, func.count())
        .where(RequestEvent.type.in_(kinds))
        .group_by(RequestEvent.type)
    )
    found = {str(t): int(n) for t, n in session.execute(query)}
    return {kind: found.get(kind, 0) for kind in kinds}


def pending_intake(session: Session) -> int:
    """Intake rows whose request a worker has yet to open (or follow-up to append)."""
    query = select(func.count()).where(IntakeRecord.state == "pending")
    return int(session.scalar(query) or 0)


def acknowledgment_latency(
    session: Session, window: dt.timedelta = LATENCY_WINDOW, now: dt.datetime | None = None
) -> list[LatencyHistogram]:
    """How long acknowledgments took, per severity at receipt, for requests received in the
    window: one histogram each.

    Each row's latency is computed once (OFFSET 0 keeps PostgreSQL from inlining the subquery
    and computing it again in every comparison) and falls into one bucket; the database counts
    per (severity, bucket) and the cumulative counts are summed up here.
    """
    since = (now or utcnow()) - window
    latency = epoch_seconds(session, ServiceRequest.acknowledged_at) - epoch_seconds(
        session, ServiceRequest.created_at
    )
    rows = (
        select(ServiceRequest.initial_severity.label("severity"), latency.label("seconds"))
        .where(ServiceRequest.created_at >= since, ServiceRequest.acknowledged_at.is_not(None))
        .offset(0)
        .subquery()
    )
    bucket = case(
        *[(rows.c.seconds <= bound, i) for i, bound in enumerate(LATENCY_BOUNDS)],
        else_=len(LATENCY_BOUNDS),
    )
    query = select(rows.c.severity, bucket, func.count(), func.sum(rows.c.seconds)).group_by(
        rows.c.severity, bucket
    )
    return _histograms(session.execute(query).all())


def _histograms(counts: Sequence[Sequence[Any]]) -> list[LatencyHistogram]:
    """(severity, bucket, count, seconds) rows into one cumulative histogram per severity."""
    per_bucket: dict[int, list[int]] = {}
    seconds: dict[int, float] = {}
    for severity, bucket, count, total in counts:
        buckets = per_bucket.setdefault(int(severity), [0] * (len(LATENCY_BOUNDS) + 1))
        buckets[int(bucket)] += int(count)
        seconds[int(severity)] = seconds.get(int(severity), 0.0) + float(total or 0)
    return [
        LatencyHistogram(
            severity=severity,
            cumulative=tuple(itertools.accumulate(buckets[:-1])),
            total=sum(buckets),
            sum_seconds=seconds[severity],
        )
        for severity, buckets in sorted(per_bucket.items())
    ]


def quantile_bound(histogram: LatencyHistogram, share: float) -> float | None:
    """The smallest bucket bound under which ``share`` of the acknowledgments fell (None: above
    the largest bound, or no acknowledgments)."""
    if histogram.total == 0:
        return None
    for bound, count in zip(LATENCY_BOUNDS, histogram.cumulative, strict=True):
        if count >= share * histogram.total:
            return bound
    return None


def pin_lockout_totals(session: Session) -> dict[str, int]:
    """PIN lockouts since the start: ``number`` (one calling number) and ``all`` (everyone)."""
    kind = case((PinLockout.scope == "*", "all"), else_="number")
    rows = session.execute(select(kind, func.count()).group_by(kind))
    counts = {"number": 0, "all": 0}
    counts.update({str(name): int(count) for name, count in rows})
    return counts


def pin_failures_last_hour(session: Session, now: dt.datetime | None = None) -> int:
    """Wrong PINs typed on the phone within the hour before ``now``, as the budgets count them."""
    since = (now or utcnow()) - HOUR
    query = select(func.count()).select_from(PinFailure).where(PinFailure.at > since)
    return session.scalar(query) or 0
