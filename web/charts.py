"""The dashboard's two small charts, as geometry for an inline SVG (no script, no external asset).

Intake volume: one bar per hour over the last day, the part that became or joined a request in
one colour and the rest (refused, quarantined, suppressed, repeats) in another. Acknowledgment
latency: for each severity, one bar split into how many acknowledgments went out within 30 s,
2 min, 15 min, 1 h and later. The template draws rectangles from these numbers; it escapes any
text, and no text here comes from mail.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass

from intake.ops.stats import LATENCY_BOUNDS, HourCount, LatencyHistogram

VOLUME_WIDTH, VOLUME_HEIGHT = 480, 110
BAR_GAP = 2
REQUEST_OUTCOMES = ("accepted", "appended")
# The latency bands shown: (label, upper bound in seconds or None for "later").
LATENCY_BANDS: tuple[tuple[str, float | None], ...] = (
    ("≤ 30 s", 30.0),
    ("≤ 2 min", 120.0),
    ("≤ 15 min", 900.0),
    ("≤ 1 h", 3600.0),
    ("later", None),
)
LATENCY_WIDTH = 300


@dataclass(frozen=True)
class VolumeBar:
    x: float
    width: float
    requests_height: float  # the part that became or joined a request
    other_height: float
    hour: dt.datetime
    requests: int
    other: int


@dataclass(frozen=True)
class Band:
    label: str
    x: float
    width: float
    count: int


@dataclass(frozen=True)
class LatencyRow:
    severity: int
    total: int
    bands: list[Band]


def volume_bars(counts: Sequence[HourCount], now: dt.datetime, hours: int = 24) -> list[VolumeBar]:
    """One bar per hour, oldest first, the tallest filling the chart's height."""
    first = now.replace(minute=0, second=0, microsecond=0) - dt.timedelta(hours=hours - 1)
    slots = [first + dt.timedelta(hours=i) for i in range(hours)]
    requests = dict.fromkeys(slots, 0)
    other = dict.fromkeys(slots, 0)
    for c in counts:
        if c.hour in requests:
            target = requests if c.outcome in REQUEST_OUTCOMES else other
            target[c.hour] += c.count
    tallest = max([requests[s] + other[s] for s in slots] + [1])
    step = VOLUME_WIDTH / hours
    scale = VOLUME_HEIGHT / tallest
    return [
        VolumeBar(
            x=i * step,
            width=step - BAR_GAP,
            requests_height=requests[s] * scale,
            other_height=other[s] * scale,
            hour=s,
            requests=requests[s],
            other=other[s],
        )
        for i, s in enumerate(slots)
    ]


def latency_rows(histograms: Sequence[LatencyHistogram]) -> list[LatencyRow]:
    """Each severity's acknowledgments split into the LATENCY_BANDS, as widths of one bar."""
    return [_latency_row(h) for h in histograms if h.total]


def _latency_row(histogram: LatencyHistogram) -> LatencyRow:
    bands, x, below = [], 0.0, 0
    for label, bound in LATENCY_BANDS:
        upto = histogram.total if bound is None else _cumulative_at(histogram, bound)
        count = upto - below
        width = LATENCY_WIDTH * count / histogram.total
        bands.append(Band(label, x, width, count))
        x, below = x + width, upto
    return LatencyRow(histogram.severity, histogram.total, bands)


def _cumulative_at(histogram: LatencyHistogram, bound: float) -> int:
    return histogram.cumulative[LATENCY_BOUNDS.index(bound)]
