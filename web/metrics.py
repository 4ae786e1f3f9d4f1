"""``GET /metrics``: the gateway's figures for Prometheus (Bearer token as for the API).

Several processes do the work (SMTP listeners, workers, web servers on many hosts), so no
process counts in memory: a custom collector reads the database and Redis at scrape time. The
queries are the cheap ones of intake.ops.stats; the all-time intake counts, the one full pass over
the intake log, are kept for COUNTS_TTL seconds per process, well under a scrape interval.

* ``intake_messages_total{channel, outcome}``: every intake item since the start (counter).
* ``intake_acknowledgment_latency_seconds{severity}``: receipt to acknowledgment, for requests
  received in the last 7 days (a gauge histogram: the window slides).
* ``intake_queue_jobs{state}``, ``intake_workers``: the RQ queue and its workers.
* ``intake_imap_last_poll_timestamp_seconds{mailbox}``, ``..._last_success_...``,
  ``..._last_error_...``, ``intake_imap_messages_total{mailbox}``: the IMAP door's mailboxes.
* ``intake_requests_open{severity}``, ``intake_requests_awaiting_acknowledgment{severity}``,
  ``intake_response_goal_breaches{severity}`` (open, past the goal, nobody responded),
  ``intake_pending_intake``.
* ``intake_goal_events_total{type}``: the breach watch's ``goal_warning`` and ``goal_breached``
  events since the start (counter).
* ``intake_pin_lockouts_total{scope}``: PIN entry locked for one calling number (``number``)
  or for every caller (``all``) after wrong PINs spent a budget (counter);
  ``intake_pin_failures_last_hour``: the wrong PINs the budgets count now.
"""

from __future__ import annotations

import datetime as dt
import threading
import time
from collections.abc import Iterator

from flask import Blueprint, Response
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeHistogramMetricFamily,
    GaugeMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector
from sqlalchemy.orm import Session

from intake.ops import stats
from intake.store.imap_state import mailbox_states
from web import Services, services
from web.auth import require_staff_or_token
from web.doors import queue_state

bp = Blueprint("metrics", __name__)
COUNTS_TTL = 10.0
_counts_cache: dict[str, tuple[float, dict[tuple[str, str], int]]] = {}
_counts_lock = threading.Lock()


@bp.get("/metrics")
def metrics() -> Response:
    require_staff_or_token()
    registry = CollectorRegistry(auto_describe=False)
    registry.register(GatewayCollector(services()))
    return Response(generate_latest(registry), mimetype=CONTENT_TYPE_LATEST)


class GatewayCollector(Collector):
    """Reads every figure at scrape time from the database and Redis."""

    def __init__(self, svc: Services) -> None:
        self.svc = svc

    def collect(self) -> Iterator[Metric]:
        with self.svc.db.sessions() as session:
            yield _message_totals(self.svc.db.url, session)
            yield _latency(session)
            yield from _request_gauges(session)
            yield from _pin_figures(session)
            yield from _imap_gauges(session)
        yield from _queue_gauges(self.svc)


def _message_totals(url: str, session: Session) -> Metric:
    family = CounterMetricFamily(
        "intake_messages", "Intake items by channel and outcome.", labels=["channel", "outcome"]
    )
    for (channel, outcome), count in sorted(_cached_totals(url, session).items()):
        family.add_metric([channel, outcome], count)
    return family


def _cached_totals(url: str, session: Session) -> dict[tuple[str, str], int]:
    with _counts_lock:
        cached = _counts_cache.get(url)
        if cached is None or time.monotonic() - cached[0] > COUNTS_TTL:
            cached = (time.monotonic(), stats.intake_totals(session))
            _counts_cache[url] = cached
        return cached[1]


def _latency(session: Session) -> Metric:
    family = GaugeHistogramMetricFamily(
        "intake_acknowledgment_latency_seconds",
        "Seconds from receipt to acknowledgment, requests received in the last 7 days.",
        labels=["severity"],
    )
    for histogram in stats.acknowledgment_latency(session):
        bounds = [str(b) for b in stats.LATENCY_BOUNDS] + ["+Inf"]
        counts = [*histogram.cumulative, histogram.total]
        family.add_metric(
            [str(histogram.severity)],
            list(zip(bounds, counts, strict=True)),
            gsum_value=histogram.sum_seconds,
        )
    return family


def _request_gauges(session: Session) -> Iterator[Metric]:
    counts = stats.open_counts(session)
    figures = (
        ("intake_requests_open", "Open requests.", counts.open),
        (
            "intake_requests_awaiting_acknowledgment",
            "Open requests whose acknowledgment has not gone out.",
            counts.awaiting,
        ),
        (
            "intake_response_goal_breaches",
            "Open requests past their response goal that no person has responded to.",
            counts.breached,
        ),
    )
    for name, text, by_severity in figures:
        family = GaugeMetricFamily(name, text, labels=["severity"])
        for severity in (1, 2, 3, 4):
            family.add_metric([str(severity)], by_severity.get(severity, 0))
        yield family
    events = CounterMetricFamily(
        "intake_goal_events",
        "Response-goal warnings and breaches recorded by the breach watch.",
        labels=["type"],
    )
    for kind, count in stats.goal_event_totals(session).items():
        events.add_metric([kind], count)
    yield events
    yield GaugeMetricFamily(
        "intake_pending_intake",
        "Accepted intake whose request a worker has yet to open.",
        value=stats.pending_intake(session),
    )


def _pin_figures(session: Session) -> Iterator[Metric]:
    lockouts = CounterMetricFamily(
        "intake_pin_lockouts",
        "PIN entry locked after wrong PINs spent a budget: for one calling number or for all.",
        labels=["scope"],
    )
    for scope, count in sorted(stats.pin_lockout_totals(session).items()):
        lockouts.add_metric([scope], count)
    yield lockouts
    yield GaugeMetricFamily(
        "intake_pin_failures_last_hour",
        "Wrong PINs typed on the phone within the last hour.",
        value=stats.pin_failures_last_hour(session),
    )


def _imap_gauges(session: Session) -> Iterator[Metric]:
    states = mailbox_states(session)
    for moment in ("last_poll", "last_success", "last_error_at"):
        name = moment.removesuffix("_at")
        family = GaugeMetricFamily(
            f"intake_imap_{name}_timestamp_seconds",
            f"When the IMAP door's {name.replace('_', ' ')} of each mailbox happened (Unix time).",
            labels=["mailbox"],
        )
        for state in states:
            if state[moment]:
                family.add_metric([state["mailbox"]], _unix(state[moment]))
        yield family
    total = CounterMetricFamily(
        "intake_imap_messages", "Messages the IMAP door recorded, by mailbox.", labels=["mailbox"]
    )
    for state in states:
        total.add_metric([state["mailbox"]], state["messages"])
    yield total


def _unix(moment: str) -> float:
    return dt.datetime.fromisoformat(moment).timestamp()


def _queue_gauges(svc: Services) -> Iterator[Metric]:
    queue = queue_state(svc.settings, svc.redis, failed_jobs=False)
    yield GaugeMetricFamily("intake_redis_up", "1 when Redis answers.", value=int(queue.reachable))
    jobs = GaugeMetricFamily(
        "intake_queue_jobs", "Jobs in the RQ queue by state.", labels=["state"]
    )
    for state, count in (
        ("queued", queue.queued),
        ("started", queue.started),
        ("scheduled", queue.scheduled),
        ("failed", queue.failed),
    ):
        jobs.add_metric([state], count)
    yield jobs
    yield GaugeMetricFamily("intake_workers", "RQ workers alive.", value=len(queue.workers))
