"""intake.ops.health: heartbeats in a real Redis, RQ's worker registry, and the health verdict."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
import redis
from rq import Queue, Worker

from intake.ops.health import (
    HEARTBEAT_PREFIX,
    component_status,
    degraded_reasons,
    heartbeats,
    record_heartbeat,
)
from intake.store.db import Database


@pytest.fixture
def client(redis_client: redis.Redis) -> redis.Redis:
    return redis_client


@pytest.fixture
def closed_redis() -> Iterator[redis.Redis]:
    """A client for a port where nothing listens."""
    connection = redis.Redis(port=1, socket_connect_timeout=1)
    yield connection
    connection.close()


def test_heartbeats_are_read_back_by_component(client: redis.Redis) -> None:
    record_heartbeat(client, "smtp", "host-a:2525", {"port": 2525})
    record_heartbeat(client, "smtp", "host-b:2525", {"port": 2525})
    record_heartbeat(client, "imap", "support", {"mailbox": "INBOX"})

    beats = heartbeats(client)

    assert sorted(beats) == ["imap", "smtp"]
    assert [b["instance"] for b in beats["smtp"]] == ["host-a:2525", "host-b:2525"]
    assert beats["imap"][0]["detail"] == {"mailbox": "INBOX"}
    assert beats["imap"][0]["at"].endswith("+00:00")


def test_a_heartbeat_expires_after_its_ttl(client: redis.Redis) -> None:
    record_heartbeat(client, "smtp", "one", {}, ttl=7)

    ttl = client.ttl(HEARTBEAT_PREFIX + "smtp:one")

    assert 0 < ttl <= 7


def test_no_heartbeats_is_an_empty_mapping(client: redis.Redis) -> None:
    assert heartbeats(client) == {}


def test_a_garbled_heartbeat_is_skipped(client: redis.Redis) -> None:
    client.set(HEARTBEAT_PREFIX + "smtp:broken", b"not json")
    client.set(HEARTBEAT_PREFIX + "smtp:list", json.dumps([1, 2]))
    record_heartbeat(client, "smtp", "fine", {})

    assert [b["instance"] for b in heartbeats(client)["smtp"]] == ["fine"]


def test_heartbeats_are_found_among_many_keys(client: redis.Redis) -> None:
    # SCAN walks in batches; the heartbeats must be found wherever they fall.
    client.mset({f"other:{i}": "x" for i in range(2000)})
    record_heartbeat(client, "smtp", "one", {})

    assert len(heartbeats(client)["smtp"]) == 1


@pytest.mark.parametrize("component", ["", "smtp:extra"])
def test_a_component_name_must_not_be_empty_or_hold_a_colon(
    client: redis.Redis, component: str
) -> None:
    with pytest.raises(ValueError, match="component name"):
        record_heartbeat(client, component, "one", {})


def test_healthy_with_database_and_redis(db: Database, client: redis.Redis) -> None:
    healthy, components = component_status(db, client)

    assert healthy
    assert components["database"] == {"status": "ok"}
    assert components["redis"] == {"status": "ok"}
    assert components["smtp"] == {"status": "missing"}
    assert components["worker"] == {"status": "missing", "count": 0}


def test_every_door_with_a_heartbeat_is_listed(db: Database, client: redis.Redis) -> None:
    record_heartbeat(client, "smtp", "one", {"port": 2525})
    record_heartbeat(client, "imap", "support", {})

    _, components = component_status(db, client)

    assert components["smtp"]["status"] == "ok"
    assert components["imap"]["status"] == "ok"
    assert components["smtp"]["instances"] == heartbeats(client)["smtp"]


def test_a_door_saying_it_is_stalled_makes_the_gateway_degraded(
    db: Database, client: redis.Redis
) -> None:
    record_heartbeat(client, "smtp", "a:25", {"stalled": "", "waiting": 0})
    record_heartbeat(client, "smtp", "b:25", {"stalled": "4 message(s) waiting for 12 s"})

    healthy, components = component_status(db, client)

    assert not healthy
    assert components["smtp"]["status"] == "stalled"
    assert components["smtp"]["reason"] == "b:25: 4 message(s) waiting for 12 s"
    assert degraded_reasons(components) == ["smtp is stalled: b:25: 4 message(s) waiting for 12 s"]


def test_rq_workers_are_counted(db: Database, client: redis.Redis) -> None:
    worker = Worker([Queue("intake", connection=client)], connection=client)
    worker.register_birth()  # type: ignore[no-untyped-call]
    try:
        _, components = component_status(db, client)
    finally:
        worker.register_death()  # type: ignore[no-untyped-call]

    assert components["worker"] == {"status": "ok", "count": 1}


def test_redis_down_is_reported_not_raised(db: Database, closed_redis: redis.Redis) -> None:
    healthy, components = component_status(db, closed_redis)

    assert not healthy
    assert components["database"] == {"status": "ok"}
    assert components["redis"]["status"] == "down"
    assert components["redis"]["error"]
    assert components["smtp"] == {"status": "unknown"}
    assert components["worker"] == {"status": "unknown"}


def test_database_down_is_reported_not_raised(client: redis.Redis) -> None:
    unreachable = Database("postgresql+psycopg://nobody@127.0.0.1:1/none", pool_pre_ping=False)
    try:
        healthy, components = component_status(unreachable, client)
    finally:
        unreachable.dispose()

    assert not healthy
    assert components["database"]["status"] == "down"
    assert "127.0.0.1" in str(components["database"]["error"])
    assert components["redis"] == {"status": "ok"}
