"""The web application: :func:`create_app` builds the Flask app (flaskr's app-factory style).

The app's shared services (settings, database, Redis) live in one typed holder at
``app.extensions["intake"]``; views reach them through :func:`services`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from flask import Flask, current_app
from flask.json.provider import DefaultJSONProvider

from intake.db import Database
from intake.settings import Settings

if TYPE_CHECKING:
    import redis

EXTENSION_KEY = "intake"


@dataclass(frozen=True)
class Services:
    """What every view may need, made once per app."""

    settings: Settings
    db: Database
    redis: redis.Redis


def services(app: Flask | None = None) -> Services:
    """The services of ``app``, by default of the app handling the current request."""
    holder = (app or current_app).extensions[EXTENSION_KEY]
    if not isinstance(holder, Services):
        raise TypeError(f"app.extensions[{EXTENSION_KEY!r}] is not set up by create_app")
    return holder


def create_app(
    settings: Settings, *, db: Database | None = None, redis_client: redis.Redis | None = None
) -> Flask:
    """The gateway's web app. ``db`` and ``redis_client`` may be given (tests, a shared pool);
    otherwise they are made from ``settings``."""
    # Imported here, as in flaskr, because the blueprints import this package for services().
    import voice
    from web import api, status

    app = Flask(__name__)
    app.config["SECRET_KEY"] = settings.secret_key or None
    app.extensions[EXTENSION_KEY] = Services(
        settings=settings,
        db=db if db is not None else Database.from_settings(settings),
        redis=redis_client if redis_client is not None else _connect_redis(settings),
    )
    if isinstance(app.json, DefaultJSONProvider):
        app.json.sort_keys = False  # keep fields in the documented order
    api.register_json_errors(app)
    app.register_blueprint(api.bp)
    app.register_blueprint(status.bp)
    app.register_blueprint(voice.bp)
    return app


def _connect_redis(settings: Settings) -> redis.Redis:
    # Imported only when needed: tests and callers with a client of their own skip it.
    from intake.queue import connect_redis

    return connect_redis(settings)
