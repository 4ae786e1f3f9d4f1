"""The workflows' settings, from the config file's ``[goal]``, ``[notices]``, ``[escalation]``
and ``[status_reports]`` tables over built-in defaults; a bad entry raises ConfigError.

```toml
[goal]
met_by = "both"              # "assignment", "first_reply" or "both"
warn_at = [50, 80, 100]      # percent of the goal at which the breach watch looks; 100: breach
notify = "desk@example.com"  # when nobody is assigned or on call (default: the From address)

[notices]                    # what the contact is told by mail (all on by default)
severity_changed = true
assigned = true
escalated = true
resolved = true

[status_reports]             # hours between status reports, per severity, until resolved
1 = 4
2 = 8

[escalation]
managers = [{ name = "Grace", email = "grace@example.com", phone = "+14155550180", level = 1 }]
```
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from intake.errors import ConfigError

MET_BY = ("assignment", "first_reply", "both")
NOTICE_KINDS = ("severity_changed", "assigned", "escalated", "resolved", "action_plan")
DEFAULT_WARN_AT = (50, 80, 100)
DEFAULT_REPORT_HOURS = {1: 4, 2: 8}


@dataclass(frozen=True)
class Manager:
    name: str
    email: str
    phone: str
    level: int


@dataclass(frozen=True)
class WorkflowConfig:
    met_by: str = "both"
    warn_at: tuple[int, ...] = DEFAULT_WARN_AT
    notify: str = ""  # empty: the From address of our mail
    notices: frozenset[str] = frozenset(NOTICE_KINDS)
    report_hours: Mapping[int, int] | None = None  # None: DEFAULT_REPORT_HOURS
    managers: tuple[Manager, ...] = ()

    def notice_on(self, kind: str) -> bool:
        return kind in self.notices

    def report_every(self, severity: int) -> int | None:
        """Hours between status reports for ``severity``; None: none are due."""
        hours = DEFAULT_REPORT_HOURS if self.report_hours is None else self.report_hours
        return hours.get(severity)

    def manager_at(self, level: int) -> Manager | None:
        return next((m for m in self.managers if m.level == level), None)


def load_workflow_config(tables: Mapping[str, Any]) -> WorkflowConfig:
    goal = _table(tables, "goal", ("met_by", "warn_at", "notify"))
    met_by = goal.get("met_by", "both")
    if met_by not in MET_BY:
        raise ConfigError(f"[goal] met_by must be one of {', '.join(MET_BY)}; not {met_by!r}.")
    return WorkflowConfig(
        met_by=met_by,
        warn_at=_warn_at(goal.get("warn_at", list(DEFAULT_WARN_AT))),
        notify=_text("[goal] notify", goal.get("notify", "")),
        notices=_notices(_table(tables, "notices", NOTICE_KINDS)),
        report_hours=_report_hours(_table(tables, "status_reports", ("1", "2", "3", "4"))),
        managers=_managers(_table(tables, "escalation", ("managers",)).get("managers", [])),
    )


def _table(tables: Mapping[str, Any], name: str, keys: tuple[str, ...]) -> Mapping[str, Any]:
    table = tables.get(name, {})
    if not isinstance(table, Mapping):
        raise ConfigError(f"[{name}] must be a table.")
    for key in table:
        if key not in keys:
            raise ConfigError(f"[{name}]: unknown key '{key}' (known: {', '.join(keys)}).")
    return table


def _warn_at(value: Any) -> tuple[int, ...]:
    ok = isinstance(value, list) and value and all(_whole(v) and 1 <= v <= 100 for v in value)
    if not ok or 100 not in value:
        raise ConfigError("[goal] warn_at must list percentages from 1 to 100, including 100.")
    return tuple(sorted(set(value)))


def _whole(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _text(where: str, value: Any) -> str:
    if not isinstance(value, str):
        raise ConfigError(f"{where} must be a string, not {value!r}.")
    return value.strip()


def _notices(table: Mapping[str, Any]) -> frozenset[str]:
    for key, value in table.items():
        if not isinstance(value, bool):
            raise ConfigError(f"[notices] {key} must be true or false, not {value!r}.")
    return frozenset(k for k in NOTICE_KINDS if table.get(k, True))


def _report_hours(table: Mapping[str, Any]) -> Mapping[int, int] | None:
    if not table:
        return None
    for key, value in table.items():
        if not _whole(value) or value < 1:
            raise ConfigError(f"[status_reports] {key} must be a whole number of hours above 0.")
    return {int(k): int(v) for k, v in table.items()}


def _managers(entries: Any) -> tuple[Manager, ...]:
    if not isinstance(entries, list):
        raise ConfigError("[escalation] managers must be a list of tables.")
    managers = tuple(_manager(i, e) for i, e in enumerate(entries, start=1))
    levels = [m.level for m in managers]
    if len(set(levels)) != len(levels):
        raise ConfigError("[escalation] managers: each level has one manager.")
    return tuple(sorted(managers, key=lambda m: m.level))


def _manager(position: int, entry: Any) -> Manager:
    where = f"[escalation] manager {position}"
    if not isinstance(entry, Mapping) or not {"name", "email", "level"} <= set(entry):
        raise ConfigError(f"{where} needs name, email and level (phone is optional).")
    level = entry["level"]
    if not _whole(level) or level < 1:
        raise ConfigError(f"{where}: level must be a whole number from 1.")
    email = _text(f"{where} email", entry["email"])
    if "@" not in email:
        raise ConfigError(f"{where}: email {email!r} is not an address.")
    return Manager(
        _text(f"{where} name", entry["name"]),
        email,
        _text(f"{where} phone", entry.get("phone", "")),
        level,
    )
