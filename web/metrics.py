"""``GET /metrics``: the gateway's figures for Prometheus (Bearer token as for the API).

Several processes do the work (SMTP listeners, workers, web servers on many hosts), so no
process counts in memory: a custom collector reads the database and Redis at scrape time. The
queries are the cheap ones of intake.stats; the all-time intake counts, the one full pass over
the intake log, are kept for COUNTS_TTL seconds per process, well under a scrape interval.

* ``intake_messages_total{channel, outcome}``: every intake item since the start (counter).
* ``intake_acknowledgment_latency_seconds{severity}``: receipt to acknowledgment, for requests
  received in the last 7 days (a gauge histogram: the window slides).
* ``intake_queue_jobs{state}``, ``intake_workers``: the RQ queue and its workers.
* ``intake_requests_open{severity}``, ``intake_requests_awaiting_acknowledgment{severity}``,
  ``intake_response_goal_breaches{severity}`` (open, past the goal, nobody responded),
  ``intake_pending_intake``.
* ``intake_goal_events_total{type}``: the breach watch's ``goal_warning`` and ``goal_breached``
  events since the start (counter).
"""

from __future__ import annotations

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

from intake import stats
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
