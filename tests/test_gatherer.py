"""The SMTP door's gatherer: the ids of commits that follow each other closely go to the
workers as one job; what it holds is enqueued when it closes; a Redis outage does not stop it.
With a real Redis."""

from __future__ import annotations

import time

import redis
from rq import Queue

from intake.jobs.batch import Gatherer, process_intakes
from tests.helpers import free_port, wait_for


def batches(queue: Queue) -> list[list[int]]:
    jobs = [queue.fetch_job(job_id) for job_id in queue.job_ids]
    assert all(job is not None and job.func is process_intakes for job in jobs)
    return [list(job.args[0]) for job in jobs if job is not None]


def test_commits_within_the_window_become_one_job(redis_client: redis.Redis) -> None:
    queue = Queue("intake", connection=redis_client)
    gatherer = Gatherer(queue, seconds=0.5)
    try:
        for first in (1, 3, 5):
            gatherer([first, first + 1])
        wait_for(lambda: queue.count == 1)
        time.sleep(0.6)  # the window is over: nothing more comes of those six
        assert batches(queue) == [[1, 2, 3, 4, 5, 6]]
        gatherer([7])
        wait_for(lambda: queue.count == 2)
        assert batches(queue)[1] == [7]
    finally:
        gatherer.close()


def test_a_job_takes_at_most_the_most_rows(redis_client: redis.Redis) -> None:
    queue = Queue("intake", connection=redis_client)
    gatherer = Gatherer(queue, seconds=0.5, most=4)
    try:
        gatherer(list(range(1, 11)))
        wait_for(lambda: queue.count == 3)
        assert batches(queue) == [[1, 2, 3, 4], [5, 6, 7, 8], [9, 10]]
    finally:
        gatherer.close()


def test_closing_enqueues_what_was_gathered_at_once(redis_client: redis.Redis) -> None:
    queue = Queue("intake", connection=redis_client)
    gatherer = Gatherer(queue, seconds=30)
    gatherer([1, 2])
    started = time.monotonic()
    gatherer.close()
    assert time.monotonic() - started < 5
    assert batches(queue) == [[1, 2]]


def test_redis_down_loses_the_job_not_the_gatherer(redis_client: redis.Redis) -> None:
    """The rows wait in the database for the sweep; the next commits are enqueued as usual."""
    down = Queue("intake", connection=redis.Redis(port=free_port(), socket_timeout=1))
    gatherer = Gatherer(down, seconds=0.05)
    try:
        gatherer([1])
        time.sleep(0.3)
        gatherer.queue = Queue("intake", connection=redis_client)  # Redis is back
        gatherer([2])
        wait_for(lambda: Queue("intake", connection=redis_client).count == 1)
        assert batches(Queue("intake", connection=redis_client)) == [[2]]
    finally:
        gatherer.close()
