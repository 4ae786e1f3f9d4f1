"""The response goal as the support policy means it: met by the first response of a person.

An engineer assigned and a first reply or status report sent to the contact (``[goal] met_by``:
``assignment``, ``first_reply`` or ``both``, the default) meet it; the automatic acknowledgment
never does (its latency is tracked on its own). The clock starts at receipt and starts again at
a severity change; it runs around the clock for Severity 1 and 2 and on the business calendar
for 3 and 4 (:meth:`intake.policy.Policy.goal_instant`).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Literal

from sqlalchemy.orm import Session

from intake.policy import Policy
from intake.requests.opening import add_event
from intake.store.models import OPEN_STATUSES, ServiceRequest
from intake.workflows.config import WorkflowConfig

GoalState = Literal["pending", "met", "breached"]


@dataclass(frozen=True)
class Goal:
    state: GoalState
    met_at: dt.datetime | None
    due_at: dt.datetime


def goal_of(request: ServiceRequest, now: dt.datetime) -> Goal:
    """``met`` when a person responded in time; ``breached`` when that came late, or has not
    come and the goal has passed; else ``pending``."""
    due, met_at = request.response_due_at, request.goal_met_at
    if met_at is not None:
        return Goal("met" if met_at <= due else "breached", met_at, due)
    late = now >= due if request.status in OPEN_STATUSES else False
    if request.goal_breached_at is not None or late:
        return Goal("breached", None, due)
    return Goal("pending", None, due)


def clock_start(request: ServiceRequest) -> dt.datetime:
    """Where the goal's clock counts from: receipt, or the latest severity change."""
    return request.goal_started_at or request.created_at


def restart_clock(request: ServiceRequest, policy: Policy, now: dt.datetime) -> None:
    """A severity change: the goal counts from now under the new severity; a goal not met yet
    is watched again from the start (its warnings and breach belonged to the old clock)."""
    request.goal_started_at = now
    request.response_due_at = policy.response_due(request.severity, now)
    if request.goal_met_at is None:
        request.goal_warned_share = 0
        request.goal_breached_at = None


def note_assignment(
    session: Session, request: ServiceRequest, config: WorkflowConfig, now: dt.datetime
) -> None:
    if request.assigned_at is None:
        request.assigned_at = now
    _meet_if_done(session, request, config, now)


def note_first_response(
    session: Session, request: ServiceRequest, config: WorkflowConfig, now: dt.datetime
) -> None:
    """A reply or status report went to the contact (an internal note does not count)."""
    if request.first_response_at is None:
        request.first_response_at = now
    _meet_if_done(session, request, config, now)


def _meet_if_done(
    session: Session, request: ServiceRequest, config: WorkflowConfig, now: dt.datetime
) -> None:
    if request.goal_met_at is not None or not _responded(request, config):
        return
    request.goal_met_at = now
    detail = {
        "met_by": config.met_by,
        "response_due_at": request.response_due_at.isoformat(),
        "in_time": now <= request.response_due_at,
    }
    add_event(session, request, "goal_met", detail, at=now)


def _responded(request: ServiceRequest, config: WorkflowConfig) -> bool:
    assigned = request.assigned_at is not None
    replied = request.first_response_at is not None
    if config.met_by == "assignment":
        return assigned
    if config.met_by == "first_reply":
        return replied
    return assigned and replied
