"""The support policy: severities, their meanings and response goals, and when a goal falls due;
and whom the phone desk believes (:class:`VoicePolicy`, the ``[voice]`` table).

Built from the ``[severity.N]`` and ``[calendar]`` tables of the config file over built-in
defaults (Severity 1: 1 hour and 2: 2 hours around the clock, 3: 3 days, 4: 5 business days).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from intake.errors import ConfigError

SEVERITIES = (1, 2, 3, 4)
WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
GOAL_UNITS = ("hours", "days", "business_days")
DAY = dt.timedelta(days=1)

DEFAULT_SEVERITIES: dict[int, dict[str, Any]] = {
    1: {
        "name": "Critical",
        "hours": 1,
        "around_the_clock": True,
        "meaning": "service down, you cannot continue work",
    },
    2: {
        "name": "Serious",
        "hours": 2,
        "around_the_clock": True,
        "meaning": "severe loss of service, important features unavailable, no workaround",
    },
    3: {"name": "Minor", "days": 3, "meaning": "minor loss of service, a workaround may be needed"},
    4: {
        "name": "Information",
        "business_days": 5,
        "meaning": "information, an enhancement or a documentation question",
    },
}


@dataclass(frozen=True)
class SeverityLevel:
    number: int
    name: str
    meaning: str
    goal_amount: int
    goal_unit: str  # one of GOAL_UNITS
    around_the_clock: bool

    @property
    def goal_length(self) -> dt.timedelta:
        """The goal as a length of time: of the wall clock for a level around the clock, of
        business time (see Calendar.add_business_time) for the others."""
        hours = {"hours": 1, "days": 24, "business_days": 24}[self.goal_unit]
        return dt.timedelta(hours=hours * self.goal_amount)

    def describe_goal(self) -> str:
        unit = self.goal_unit.replace("_", " ")
        if self.goal_amount == 1:
            unit = unit.removesuffix("s")
        return f"{self.goal_amount} {unit}"


@dataclass(frozen=True)
class Calendar:
    timezone: ZoneInfo
    business_days: frozenset[int]  # weekday numbers, Monday = 0
    holidays: frozenset[dt.date]

    def is_business_day(self, day: dt.date) -> bool:
        return day.weekday() in self.business_days and day not in self.holidays

    def next_business_day(self, day: dt.date) -> dt.date:
        day += dt.timedelta(days=1)
        while not self.is_business_day(day):
            day += dt.timedelta(days=1)
        return day

    def add_business_time(self, start: dt.datetime, amount: dt.timedelta) -> dt.datetime:
        """``amount`` of business time after ``start``: only business days count, each as a
        whole day of local wall-clock time; a start on a day off counts from the start of the
        next business day. An end at a day's midnight is the next business day's 00:00."""
        local = start.astimezone(self.timezone)
        day = local.date()
        into_day = dt.timedelta(hours=local.hour, minutes=local.minute, seconds=local.second)
        into_day += dt.timedelta(microseconds=local.microsecond)
        if not self.is_business_day(day):
            day, into_day = self.next_business_day(day), dt.timedelta(0)
        whole_days, rest = divmod(into_day + amount, DAY)
        for _ in range(whole_days):
            day = self.next_business_day(day)
        end = dt.datetime.combine(day, dt.time(0), tzinfo=self.timezone) + rest
        return _real_instant(end)

    def business_time_between(self, start: dt.datetime, end: dt.datetime) -> dt.timedelta:
        """How much business time passes from ``start`` to ``end`` (zero when end is earlier)."""
        if end <= start:
            return dt.timedelta(0)
        total, cursor = dt.timedelta(0), start.astimezone(self.timezone)
        stop = end.astimezone(self.timezone)
        while cursor.date() < stop.date():
            next_midnight = dt.datetime.combine(
                cursor.date() + DAY, dt.time(0), tzinfo=self.timezone
            )
            if self.is_business_day(cursor.date()):
                total += _wall(next_midnight) - _wall(cursor)
            cursor = next_midnight
        if self.is_business_day(stop.date()):
            total += _wall(stop) - _wall(cursor)
        return total


# How far a caller ID is believed: "attested" only with STIR/SHAKEN full attestation (the
# carrier vouches the caller may use the number), "always" as shown, "never" (PIN every time).
CALLER_ID_TRUST = ("attested", "always", "never")
VOICE_KEYS = ("caller_id_trust", "pin_failures_per_hour", "pin_failures_per_number_per_hour")


@dataclass(frozen=True)
class VoicePolicy:
    """Whom the phone desk believes: the ``[voice]`` table of the config file.

    Wrong PINs are budgeted per hour for everyone together and per calling number: PIN guesses
    spread over many contacts (each of which locks only after a few) meet the global budget.
    """

    caller_id_trust: str = "attested"
    pin_failures_per_hour: int = 30
    pin_failures_per_number_per_hour: int = 10


@dataclass(frozen=True)
class Policy:
    levels: Mapping[int, SeverityLevel]
    calendar: Calendar
    default_severity: int
    voice: VoicePolicy = field(default_factory=VoicePolicy)

    def level(self, severity: int) -> SeverityLevel:
        return self.levels[severity]

    def response_due(self, severity: int, start: dt.datetime) -> dt.datetime:
        """When the response goal of ``severity`` falls due for something received at ``start``."""
        return self.goal_instant(severity, start, 1.0)

    def goal_instant(self, severity: int, start: dt.datetime, share: float) -> dt.datetime:
        """When ``share`` of the goal (0.5: half of it) has passed for a clock started at
        ``start``: elapsed time for a level around the clock (whatever the clocks on the wall
        do), business time on the calendar for the others."""
        if start.utcoffset() is None:
            raise ValueError("response_due needs an aware datetime, not a naive one")
        level = self.levels[severity]
        start = start.astimezone(dt.UTC)
        if level.around_the_clock:
            return start + level.goal_length * share
        return self.calendar.add_business_time(start, level.goal_length * share).astimezone(dt.UTC)


def _wall(moment: dt.datetime) -> dt.timedelta:
    """A local time as wall-clock time since the epoch (a day is 24 hours, whatever DST does)."""
    naive = moment.replace(tzinfo=None)
    return naive - dt.datetime(1970, 1, 1)


def _real_instant(local: dt.datetime) -> dt.datetime:
    """A local wall time that a clock change skipped (02:30 on a spring-forward night) is taken
    as the same wall time an hour on, which exists."""
    round_trip = local.astimezone(dt.UTC).astimezone(local.tzinfo)
    if round_trip.replace(tzinfo=None) != local.replace(tzinfo=None):
        return (local.replace(tzinfo=None) + dt.timedelta(hours=1)).replace(tzinfo=local.tzinfo)
    return local


def load_policy(tables: Mapping[str, Any]) -> Policy:
    """Build the policy from the config file's tables; a bad entry raises ConfigError."""
    given = tables.get("severity", {})
    if not isinstance(given, Mapping) or not all(isinstance(t, Mapping) for t in given.values()):
        raise ConfigError("Each severity is a table of its own, such as [severity.4].")
    unknown = [k for k in given if k not in {str(s) for s in SEVERITIES}]
    if unknown:
        raise ConfigError(f"[severity.{unknown[0]}]: severities are 1, 2, 3 and 4.")
    levels = {
        n: _level(n, DEFAULT_SEVERITIES[n] | _goal_override(given.get(str(n), {})))
        for n in SEVERITIES
    }
    default = tables.get("default_severity", 3)
    if isinstance(default, bool) or default not in SEVERITIES:
        raise ConfigError(f"Setting 'default_severity' must be 1, 2, 3 or 4, not {default!r}.")
    calendar = _calendar(tables.get("calendar", {}))
    return Policy(levels, calendar, default, load_voice_policy(tables))


def _goal_override(table: Mapping[str, Any]) -> dict[str, Any]:
    """A table that names a goal unit replaces the default's unit rather than adding to it."""
    if any(unit in table for unit in GOAL_UNITS):
        return dict.fromkeys(GOAL_UNITS) | dict(table)
    return dict(table)


def _level(number: int, table: Mapping[str, Any]) -> SeverityLevel:
    where = f"[severity.{number}]"
    allowed = {"name", "meaning", "around_the_clock", *GOAL_UNITS}
    for key in table:
        if key not in allowed:
            raise ConfigError(f"{where}: unknown key '{key}'.")
    goals = [(unit, table[unit]) for unit in GOAL_UNITS if table.get(unit) is not None]
    if len(goals) != 1:
        raise ConfigError(f"{where} must give its response goal in one of {', '.join(GOAL_UNITS)}.")
    unit, amount = goals[0]
    if not isinstance(amount, int) or isinstance(amount, bool) or amount < 1:
        raise ConfigError(f"{where} {unit} must be a whole number above 0, not {amount!r}.")
    return SeverityLevel(
        number,
        str(table["name"]),
        str(table["meaning"]),
        amount,
        unit,
        bool(table.get("around_the_clock", False)),
    )


def _calendar(table: Mapping[str, Any]) -> Calendar:
    if not isinstance(table, Mapping):
        raise ConfigError("[calendar] must be a table, with timezone, business_days, holidays.")
    for key in table:
        if key not in ("timezone", "business_days", "holidays"):
            raise ConfigError(f"[calendar]: unknown key '{key}'.")
    try:
        zone = ZoneInfo(str(table.get("timezone", "UTC")))
    except (ZoneInfoNotFoundError, ValueError):
        raise ConfigError(f"[calendar] timezone {table.get('timezone')!r} is not known.") from None
    names = table.get("business_days", list(WEEKDAYS[:5]))
    if not names or not all(isinstance(n, str) and n.lower()[:3] in WEEKDAYS for n in names):
        raise ConfigError(
            '[calendar] business_days must list one or more days such as "mon", "tue".'
        )
    holidays = table.get("holidays", [])
    if not all(isinstance(h, dt.date) and not isinstance(h, dt.datetime) for h in holidays):
        raise ConfigError("[calendar] holidays must list dates such as 2026-12-25.")
    days = frozenset(WEEKDAYS.index(n.lower()[:3]) for n in names)
    return Calendar(zone, days, frozenset(holidays))


def load_voice_policy(tables: Mapping[str, Any]) -> VoicePolicy:
    """The ``[voice]`` table over the defaults; a bad entry raises ConfigError."""
    table = tables.get("voice", {})
    if not isinstance(table, Mapping):
        raise ConfigError("[voice] must be a table, with caller_id_trust and the PIN budgets.")
    for key in table:
        if key not in VOICE_KEYS:
            raise ConfigError(f"[voice]: unknown key '{key}' (known: {', '.join(VOICE_KEYS)}).")
    defaults = VoicePolicy()
    trust = table.get("caller_id_trust", defaults.caller_id_trust)
    if trust not in CALLER_ID_TRUST:
        choices = ", ".join(f'"{c}"' for c in CALLER_ID_TRUST)
        raise ConfigError(f"[voice] caller_id_trust must be one of {choices}, not {trust!r}.")
    return VoicePolicy(
        trust,
        _budget(table, "pin_failures_per_hour", defaults.pin_failures_per_hour),
        _budget(
            table, "pin_failures_per_number_per_hour", defaults.pin_failures_per_number_per_hour
        ),
    )


def _budget(table: Mapping[str, Any], key: str, default: int) -> int:
    value = table.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 100_000:
        raise ConfigError(f"[voice] {key} must be a whole number from 1 to 100000, not {value!r}.")
    return value
