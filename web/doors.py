"""The state of the doors and the job queue, for the dashboard: what Redis knows right now.

Doors report heartbeats (intake.ops.health); the web app notes Twilio's webhooks itself, since it
serves them. The queue's figures come from RQ's own registries. Redis being unreachable is a
state to show, not an error page.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
from dataclasses import dataclass, field
from typing import Any

import redis
from flask import Flask, request
from rq import Queue, Worker
from rq.exceptions import NoSuchJobError
from werkzeug.wrappers import Response

from intake.ops.health import heartbeats
from intake.settings import Settings
from web import services

LAST_WEBHOOK_KEY = "intake:voice:last_webhook"
FAILED_SHOWN = 5
JOBS_LISTED = 100  # of each state, on the queue's page
REDIS_ERRORS = (redis.RedisError, OSError)


@dataclass(frozen=True)
class Door:
    name: str
    status: str  # "ok", "stalled", "error", "missing", "not configured" or "unknown"
    facts: list[tuple[str, str | dt.datetime]] = field(default_factory=list)


@dataclass(frozen=True)
class FailedJob:
    job_id: str
    error: str
    ended_at: dt.datetime | None


@dataclass(frozen=True)
class QueueState:
    reachable: bool
    queued: int = 0
    started: int = 0
    scheduled: int = 0
    failed: int = 0
    workers: list[tuple[str, str, dt.datetime | None]] = field(default_factory=list)
    failed_jobs: list[FailedJob] = field(default_factory=list)


def door_states(settings: Settings, client: redis.Redis) -> list[Door]:
    """SMTP listeners, the IMAP poller and the Twilio webhooks, as their heartbeats tell."""
    try:
        beats = heartbeats(client)
        webhook = _last_webhook(client)
    except REDIS_ERRORS:
        names = ("SMTP", "IMAP", "Twilio")
        return [Door(n, "unknown", [("Redis", "unreachable")]) for n in names]
    return [_smtp(beats), _imap(settings, beats), _twilio(settings, webhook)]


def _smtp(beats: dict[str, list[dict[str, Any]]]) -> Door:
    instances = beats.get("smtp", [])
    if not instances:
        return Door("SMTP", "missing", [("listening", "nowhere")])
    facts = [fact for i in instances for fact in _smtp_facts(i)]
    stalled = any(fact[0] == "stalled" for fact in facts)
    return Door("SMTP", "stalled" if stalled else "ok", facts)


def _smtp_facts(instance: dict[str, Any]) -> list[tuple[str, str | dt.datetime]]:
    """Where one listener listens and whether it gets through its work."""
    detail = instance.get("detail") or {}
    facts: list[tuple[str, str | dt.datetime]] = [("listening", str(instance.get("instance")))]
    if detail.get("stalled"):
        facts.append(("stalled", str(detail["stalled"])))
    if "waiting" in detail:
        waiting = int(detail.get("waiting") or 0)
        age = detail.get("oldest_wait_seconds") or 0
        facts.append(("waiting", f"{waiting} for {age} s" if waiting else "nothing"))
        facts.append(("last batch", _moment(detail.get("last_batch_at")) or "none yet"))
    return facts


def _imap(settings: Settings, beats: dict[str, list[dict[str, Any]]]) -> Door:
    if not (settings.imap_url or settings.policy.get("imap")):
        return Door("IMAP", "not configured", [("poller", "INTAKE_IMAP_URL is unset")])
    instances = beats.get("imap", [])
    if not instances:
        return Door("IMAP", "missing", [("poller", "no heartbeat")])
    detail = instances[0].get("detail", {})
    error_at, success_at = _moment(detail.get("last_error_at")), _moment(detail.get("last_success"))
    failing = error_at is not None and (success_at is None or error_at > success_at)
    facts: list[tuple[str, str | dt.datetime]] = [
        ("last poll", _moment(detail.get("last_poll")) or "not yet"),
        ("last success", success_at or "not yet"),
        ("last error", error_at or "none"),
    ]
    if failing:
        facts.append(("error", str(detail.get("last_error") or "")[:200]))
    mailboxes = detail.get("mailboxes") or []
    facts.append(("mailboxes", str(len(mailboxes))))
    return Door("IMAP", "error" if failing else "ok", facts)


def _twilio(settings: Settings, webhook: dict[str, Any] | None) -> Door:
    if not (settings.twilio_account_sid and settings.twilio_auth_token):
        return Door("Twilio", "not configured", [("webhooks", "Twilio settings unset")])
    if webhook is None:
        return Door("Twilio", "ok", [("last webhook", "none yet")])
    at = _moment(webhook.get("at")) or "unknown"
    return Door("Twilio", "ok", [("last webhook", at), ("answered", str(webhook.get("status")))])


def _moment(value: object) -> dt.datetime | None:
    try:
        return dt.datetime.fromisoformat(str(value)) if value else None
    except ValueError:
        return None


def _aware(moment: dt.datetime | None) -> dt.datetime | None:
    """RQ's times are UTC, naive in some versions."""
    if moment is None or moment.tzinfo is not None:
        return moment
    return moment.replace(tzinfo=dt.UTC)


def _last_webhook(client: redis.Redis) -> dict[str, Any] | None:
    raw = client.get(LAST_WEBHOOK_KEY)
    if raw is None:
        return None
    value = json.loads(raw)
    return value if isinstance(value, dict) else None


def note_webhook(client: redis.Redis, path: str, status: int) -> None:
    """Remember the latest Twilio webhook; the dashboard shows when it came and how it went."""
    value = {"at": dt.datetime.now(dt.UTC).isoformat(), "path": path, "status": status}
    client.set(LAST_WEBHOOK_KEY, json.dumps(value))


def queue_state(settings: Settings, client: redis.Redis, *, failed_jobs: bool = True) -> QueueState:
    """Jobs waiting, running, scheduled for a retry and failed (the latest few of those when
    ``failed_jobs``); the workers alive."""
    queue = Queue(settings.queue_name, connection=client)
    try:
        workers = [
            (w.name, str(w.get_state()), _aware(w.last_heartbeat))
            for w in Worker.all(connection=client)
        ]
        return QueueState(
            reachable=True,
            queued=queue.count,
            started=queue.started_job_registry.count,
            scheduled=queue.scheduled_job_registry.count,
            failed=queue.failed_job_registry.count,
            workers=sorted(workers),
            failed_jobs=_failed_jobs(queue) if failed_jobs else [],
        )
    except REDIS_ERRORS:
        return QueueState(reachable=False)


@dataclass(frozen=True)
class ListedJob:
    """One job of the queue's page: what it works on, and why it is retrying or failed."""

    job_id: str
    error: str  # RQ's error of a failed job; "" until the store's own note is added
    at: dt.datetime | None  # next attempt (retrying), end (failed), start (running)
    retries_left: int | None


JOB_STATES = ("queued", "running", "retrying", "failed")


def jobs_by_state(
    settings: Settings, client: redis.Redis, limit: int = JOBS_LISTED
) -> dict[str, list[ListedJob]] | None:
    """The queue's jobs in each state the dashboard counts, the latest ``limit`` of each;
    None when Redis does not answer."""
    queue = Queue(settings.queue_name, connection=client)
    registries = {
        "running": queue.started_job_registry,
        "retrying": queue.scheduled_job_registry,
        "failed": queue.failed_job_registry,
    }
    try:
        listed = {"queued": _listed(queue, queue.get_job_ids(0, limit - 1), "queued")}
        for state, registry in registries.items():
            ids = registry.get_job_ids(start=-limit, end=-1)
            listed[state] = _listed(queue, list(reversed(ids)), state)
    except REDIS_ERRORS:
        return None
    return listed


def _listed(queue: Queue, ids: list[str], state: str) -> list[ListedJob]:
    jobs = [j for j in queue.job_class.fetch_many(ids, connection=queue.connection) if j]
    return [_listed_job(queue, job, state) for job in jobs]


def _listed_job(queue: Queue, job: Any, state: str) -> ListedJob:
    moments = {
        "queued": job.enqueued_at,
        "running": job.started_at,
        "retrying": _scheduled_time(queue, job),
        "failed": job.ended_at,
    }
    error = _first_line(job.latest_result()) if state == "failed" else ""
    return ListedJob(job.id, error, _aware(moments[state]), job.retries_left)


def _scheduled_time(queue: Queue, job: Any) -> dt.datetime | None:
    with contextlib.suppress(NoSuchJobError):  # it left the registry meanwhile
        moment: dt.datetime = queue.scheduled_job_registry.get_scheduled_time(job)
        return moment
    return None


def _failed_jobs(queue: Queue) -> list[FailedJob]:
    registry = queue.failed_job_registry
    ids = registry.get_job_ids(start=-FAILED_SHOWN, end=-1)
    jobs = [j for j in queue.job_class.fetch_many(ids, connection=queue.connection) if j]
    return [
        FailedJob(job.id, _first_line(job.latest_result()), _aware(job.ended_at))
        for job in reversed(jobs)
    ]


def _first_line(result: Any) -> str:
    text = str(getattr(result, "exc_string", "") or "") if result is not None else ""
    lines = [line for line in text.strip().splitlines() if line.strip()]
    return lines[-1][:300] if lines else "no error recorded"


def note_voice_webhooks(app: Flask) -> None:
    """After every answer of the voice blueprint, note it for the dashboard's Twilio door."""

    def note(response: Response) -> Response:
        if request.blueprint == "voice":
            # Redis down: the dashboard shows an older webhook; the call itself is unaffected.
            with contextlib.suppress(*REDIS_ERRORS):
                note_webhook(services().redis, request.path, response.status_code)
        return response

    app.after_request(note)
