"""Times as people read them: "in 42 min", "overdue by 5 min", "3 min ago".

The pages render every time as ``<time datetime="…UTC…">`` with this text inside; the page's
script (static/app.js) then shows it in the viewer's own zone and keeps countdowns current. The
text here is what a reader sees without script, and what tests can check.
"""

from __future__ import annotations

import datetime as dt

MINUTES_PER_DAY = 24 * 60


def now_utc() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def span(minutes: int) -> str:
    """A duration in words: "42 min", "3 h 5 min", "4 days"."""
    if minutes < 120:
        return f"{minutes} min"
    if minutes < 2 * MINUTES_PER_DAY:
        return f"{minutes // 60} h {minutes % 60} min"
    return f"{minutes // MINUTES_PER_DAY} days"


def _minutes_until(moment: dt.datetime, now: dt.datetime | None) -> int:
    seconds = (moment - (now or now_utc())).total_seconds()
    # Round towards the past, so "overdue" starts the minute the goal passes.
    return int(seconds // 60)


def time_left(due: dt.datetime, now: dt.datetime | None = None) -> str:
    """``in 42 min`` before ``due``, ``overdue by 5 min`` after it."""
    minutes = _minutes_until(due, now)
    if minutes < 0:
        return f"overdue by {span(-minutes)}"
    return f"in {span(minutes)}"


def ago(moment: dt.datetime, now: dt.datetime | None = None) -> str:
    minutes = -_minutes_until(moment, now) - 1
    return "just now" if minutes < 1 else f"{span(minutes)} ago"


def utc_text(moment: dt.datetime | None) -> str:
    return f"{moment:%Y-%m-%d %H:%M} UTC" if moment is not None else ""


def urgency(due: dt.datetime, goal: dt.timedelta, now: dt.datetime | None = None) -> str:
    """``breached``, ``near`` (a quarter of the goal or less left) or ``ok``: the row's colour."""
    left = due - (now or now_utc())
    if left < dt.timedelta(0):
        return "breached"
    return "near" if left <= goal / 4 else "ok"
