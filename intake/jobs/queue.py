"""The job queue's connection: the configured Redis, or the embedded one under var/."""

from __future__ import annotations

from typing import Any

import redis
from rq import Queue

from intake.jobs import embedded_redis
from intake.settings import Settings


def redis_url(settings: Settings) -> str:
    """The Redis to use: INTAKE_REDIS_URL, else the embedded Redis (started if needed)."""
    if settings.redis_url:
        return settings.redis_url
    url, _started = embedded_redis.ensure_running(settings.var_path)
    return url


def connect_redis(settings: Settings, **kwargs: Any) -> redis.Redis:
    kwargs.setdefault("socket_connect_timeout", 2)
    kwargs.setdefault("socket_timeout", 5)
    return redis.Redis.from_url(redis_url(settings), **kwargs)


def make_queue(settings: Settings, connection: redis.Redis) -> Queue:
    return Queue(settings.queue_name, connection=connection)
