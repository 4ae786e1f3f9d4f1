"""Handing slow work to the worker after a webhook's commit: the acknowledgments and pages.

Redis being down never fails a call: the row is committed, and the outbox sweep enqueues it.
"""

from __future__ import annotations

import logging

from redis.exceptions import RedisError

from intake.jobs.jobs import enqueue_outbox, enqueue_quietly
from voice.context import VoiceContext

log = logging.getLogger(__name__)


def enqueue_intake(vc: VoiceContext, intake_id: int) -> None:
    """The worker finishes the call's row (if the door could not) and sends its outbox."""
    enqueue_quietly(vc.queue, intake_id, "phone")


def enqueue_outbox_rows(vc: VoiceContext, outbox_ids: list[int]) -> None:
    for outbox_id in outbox_ids:
        try:
            enqueue_outbox(vc.queue, outbox_id)
        except (RedisError, OSError) as exc:
            log.warning("could not enqueue outbox #%s (the sweep will): %s", outbox_id, exc)
            return
