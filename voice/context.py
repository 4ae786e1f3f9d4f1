"""What the phone door's views share: settings, database, queue, policy and rota, made once per
app when the blueprint is registered, and the absolute URLs Twilio is sent to.

The app's services come from ``app.extensions["intake"]`` (put there by ``web.create_app``);
``voice`` never imports ``web``, so it reads them through the :class:`AppServices` protocol.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass
from typing import Protocol
from urllib.parse import urlencode

import redis
from flask import current_app
from flask.sansio.app import App
from rq import Queue
from sqlalchemy.orm import Session

from intake.jobs.queue import make_queue
from intake.policy import Policy, load_policy
from intake.rota import Rota, load_rota
from intake.settings import Settings
from intake.store.db import Database
from intake.workflows.config import load_workflow_config
from intake.workflows.desk import Desk

EXTENSION_KEY = "voice"
_SQLITE_WRITERS = threading.Lock()


class AppServices(Protocol):
    @property
    def settings(self) -> Settings: ...
    @property
    def db(self) -> Database: ...
    @property
    def redis(self) -> redis.Redis: ...


@dataclass(frozen=True)
class VoiceContext:
    settings: Settings
    db: Database
    queue: Queue
    policy: Policy
    rota: Rota

    @property
    def desk(self) -> Desk:
        """What the workflows after intake need (intake.workflows), from this context."""
        return Desk(
            self.settings, self.policy, load_workflow_config(self.settings.policy), self.rota
        )

    @contextmanager
    def transaction(self) -> Iterator[Session]:
        """A writing transaction; on SQLite, one at a time in this process.

        SQLite has one writer. Threads that all BEGIN IMMEDIATE at once wait in SQLite's busy
        handler, which sleeps in steps of up to 100 ms and so wakes late (hundreds of ms at 32
        calls); queued on a lock of ours, the next writer starts the moment one commits.
        """
        with _SQLITE_WRITERS if self.db.is_sqlite else nullcontext(), self.db.transaction() as s:
            yield s

    def url(self, path: str, **query: object) -> str:
        """The absolute URL of one of our routes as Twilio must request it (and sign it)."""
        base = self.settings.public_url.rstrip("/") + "/voice/" + path
        return base + ("?" + urlencode(query) if query else "")


def set_up(app: App) -> None:
    """Build the context from the app's services; a bad [rota] table stops start-up here."""
    services: AppServices = app.extensions["intake"]
    settings = services.settings
    app.extensions[EXTENSION_KEY] = VoiceContext(
        settings=settings,
        db=services.db,
        queue=make_queue(settings, services.redis),
        policy=load_policy(settings.policy),
        rota=load_rota(settings.policy),
    )


def voice_context() -> VoiceContext:
    context: VoiceContext = current_app.extensions[EXTENSION_KEY]
    return context


def twilio_configured(settings: Settings) -> bool:
    """Whether all three Twilio settings are given (else the routes answer 503)."""
    return all(
        (settings.twilio_account_sid, settings.twilio_auth_token, settings.twilio_phone_number)
    )
