"""Health of the gateway's parts: the database, Redis, the doors' heartbeats and the RQ workers.

Each long-running door (an SMTP listener, an IMAP poller, ...) calls :func:`record_heartbeat`
every few seconds; the key expires after ``ttl`` seconds, so a door that died simply disappears.
:func:`component_status` gathers everything into the answer of ``GET /api/health``.

The overall verdict needs the database and Redis (without them nothing can be stored or
queued) and no door that is alive but stuck: a door's heartbeat carries its progress (work
waiting, for how long, its last finished batch) and a ``stalled`` sentence when work has waited
too long with no progress; such a door is ``stalled`` and the verdict ``degraded``, with the
reason. A door or worker with no heartbeat at all is reported as ``missing`` but does not flip
the verdict, because in production each runs in its own process and may legitimately be scaled
to zero on a given host; monitoring alerts on the component entries themselves.
"""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

import redis
from rq import Worker
from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError

from intake.store.db import Database
from intake.store.imap_state import mailbox_states

HEARTBEAT_PREFIX = "intake:heartbeat:"
# Doors that are always listed, as "missing" when no instance reports a heartbeat.
EXPECTED_DOORS = ("smtp",)

Component = dict[str, object]


def record_heartbeat(
    redis_client: redis.Redis,
    component: str,
    instance: str,
    detail: dict[str, object],
    ttl: int = 30,
) -> None:
    """Say that ``instance`` of ``component`` is alive, for the next ``ttl`` seconds."""
    if not component or ":" in component:
        raise ValueError(f"a component name must be non-empty and without ':', not {component!r}")
    value = {
        "instance": instance,
        "at": dt.datetime.now(dt.UTC).isoformat(),
        "detail": detail,
    }
    redis_client.set(f"{HEARTBEAT_PREFIX}{component}:{instance}", json.dumps(value), ex=ttl)


def heartbeats(redis_client: redis.Redis) -> dict[str, list[dict[str, Any]]]:
    """The live heartbeats by component, each list sorted by instance (SCAN, never KEYS)."""
    keys = list(redis_client.scan_iter(match=HEARTBEAT_PREFIX + "*", count=500))
    if not keys:
        return {}
    found: dict[str, list[dict[str, Any]]] = {}
    # A key may expire between SCAN and MGET; its value then comes back as None.
    for key, raw in zip(keys, redis_client.mget(keys), strict=True):
        entry = _decode_heartbeat(raw)
        if entry is not None:
            found.setdefault(_component_of(key), []).append(entry)
    return {name: sorted(items, key=lambda e: str(e["instance"])) for name, items in found.items()}


def _component_of(key: bytes | str) -> str:
    name = key.decode() if isinstance(key, bytes) else key
    return name.removeprefix(HEARTBEAT_PREFIX).split(":", 1)[0]


def _decode_heartbeat(raw: bytes | str | None) -> dict[str, Any] | None:
    if raw is None:
        return None
    try:
        value = json.loads(raw)
    except ValueError:
        return None
    return value if isinstance(value, dict) else None


def component_status(db: Database, redis_client: redis.Redis) -> tuple[bool, dict[str, Component]]:
    """Whether the gateway is healthy (database and Redis up), and the state of every part."""
    components = {"database": database_status(db), "redis": redis_status(redis_client)}
    healthy = all(c["status"] == "ok" for c in components.values())
    redis_up = components["redis"]["status"] == "ok"
    doors = door_statuses(redis_client) if redis_up else _unknown(EXPECTED_DOORS)
    healthy = healthy and not any(d["status"] == "stalled" for d in doors.values())
    components |= doors
    components["worker"] = worker_status(redis_client) if redis_up else {"status": "unknown"}
    imap = imap_status(db, components.get("imap"))
    if imap is not None:
        components["imap"] = imap
    return healthy, components


def degraded_reasons(components: dict[str, Component]) -> list[str]:
    """One sentence per part that makes the verdict ``degraded``."""
    reasons = []
    for name, component in components.items():
        if component["status"] == "down":
            reasons.append(f"{name} is down: {component.get('error', 'no answer')}")
        elif component["status"] == "stalled":
            reasons.append(f"{name} is stalled: {component.get('reason', '')}")
    return reasons


def imap_status(db: Database, door: Component | None) -> Component | None:
    """The IMAP door's mailboxes (their last poll, last success and last error) beside its
    heartbeat; ``error`` while any mailbox's latest poll failed. None when no mailbox was
    ever polled here."""
    try:
        with db.sessions() as session:
            states = mailbox_states(session)
    except SQLAlchemyError:
        return None
    if not states:
        return door
    status = str((door or {}).get("status", "missing"))
    if status == "ok" and any(s["status"] == "error" for s in states):
        status = "error"
    return {**(door or {}), "status": status, "mailboxes": states}


def database_status(db: Database) -> Component:
    try:
        with db.engine.connect() as conn:
            conn.execute(text("SELECT 1"))
    except SQLAlchemyError as exc:
        return {"status": "down", "error": _error_text(exc)}
    return {"status": "ok"}


def redis_status(redis_client: redis.Redis) -> Component:
    try:
        redis_client.ping()
    except (redis.RedisError, OSError) as exc:
        return {"status": "down", "error": _error_text(exc)}
    return {"status": "ok"}


def door_statuses(redis_client: redis.Redis) -> dict[str, Component]:
    """Every door with a heartbeat as ``ok`` with its instances; expected doors without one as
    ``missing``."""
    try:
        beats = heartbeats(redis_client)
    except (redis.RedisError, OSError) as exc:
        return {door: {"status": "unknown", "error": _error_text(exc)} for door in EXPECTED_DOORS}
    statuses: dict[str, Component] = {door: {"status": "missing"} for door in EXPECTED_DOORS}
    for door, instances in beats.items():
        statuses[door] = _door_status(instances)
    return statuses


def _door_status(instances: list[dict[str, Any]]) -> Component:
    """``stalled`` with the reason when an instance says it is stuck, else ``ok``."""
    stalled = [
        f"{i.get('instance', '?')}: {i['detail']['stalled']}"
        for i in instances
        if isinstance(i.get("detail"), dict) and i["detail"].get("stalled")
    ]
    if stalled:
        return {"status": "stalled", "reason": "; ".join(stalled), "instances": instances}
    return {"status": "ok", "instances": instances}


def worker_status(redis_client: redis.Redis) -> Component:
    """The RQ workers registered in Redis (RQ keeps its own registry of live workers)."""
    try:
        count = len(Worker.all(connection=redis_client))
    except (redis.RedisError, OSError) as exc:
        return {"status": "unknown", "error": _error_text(exc)}
    return {"status": "ok" if count else "missing", "count": count}


def _unknown(names: tuple[str, ...]) -> dict[str, Component]:
    return {name: {"status": "unknown"} for name in names}


def _error_text(exc: BaseException) -> str:
    # The first line is enough; SQLAlchemy appends SQL and a documentation link.
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0]
