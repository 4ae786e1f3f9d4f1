"""The database: engines (SQLite in WAL mode or PostgreSQL), sessions, and migrations to head."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event, inspect, text
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session, sessionmaker

from intake.settings import Settings

MIGRATIONS_DIR = Path(__file__).parent / "migrations"
WRITE_OPTION = "intake_write"
LOCK_TIMEOUT_OPTION = "intake_lock_timeout"
BUSY_TIMEOUT_MS = 30_000  # how long a SQLite writer waits for the lock, unless told otherwise
CONNECT_TIMEOUT = 5  # seconds to reach PostgreSQL: an unreachable server is an error, not a hang


def normalised_url(url: str) -> str:
    """Use psycopg 3 for plain ``postgresql://`` URLs (SQLAlchemy would pick psycopg2)."""
    parsed = make_url(url)
    if parsed.drivername == "postgresql":
        parsed = parsed.set(drivername="postgresql+psycopg")
    return parsed.render_as_string(hide_password=False)


def make_engine(database_url: str, **kwargs: Any) -> Engine:
    url = make_url(normalised_url(database_url))
    if url.get_backend_name() == "sqlite":
        return _sqlite_engine(url.render_as_string(hide_password=False), **kwargs)
    kwargs.setdefault("pool_pre_ping", True)
    kwargs.setdefault("pool_size", 10)
    kwargs.setdefault("connect_args", {"connect_timeout": CONNECT_TIMEOUT})
    return create_engine(url, **kwargs)


def _sqlite_engine(url: str, **kwargs: Any) -> Engine:
    database = make_url(url).database
    if database and database != ":memory:":
        _create_private(Path(database))
    engine = create_engine(url, connect_args={"timeout": 30}, **kwargs)

    @event.listens_for(engine, "connect")
    def _pragmas(dbapi_connection: Any, _record: Any) -> None:
        # Let SQLAlchemy, not the driver, decide when transactions begin (so BEGIN IMMEDIATE works).
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        # NORMAL in WAL mode survives a process crash; FULL also survives a power loss.
        cursor.execute("PRAGMA synchronous=FULL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _begin(conn: Any) -> None:
        # A writing transaction takes the write lock at its start, so concurrent writers queue
        # on the busy timeout instead of failing when a read would turn into a write; reading
        # ones take no lock at all (WAL lets them run beside the writer).
        options = conn.get_execution_options()
        _set_busy_timeout(conn, options.get(LOCK_TIMEOUT_OPTION))
        conn.exec_driver_sql("BEGIN IMMEDIATE" if options.get(WRITE_OPTION, False) else "BEGIN")

    return engine


def _set_busy_timeout(conn: Any, seconds: float | None) -> None:
    """The lock wait this transaction may spend (a pooled connection keeps the last one set,
    so it is set again only when it changes)."""
    wanted = BUSY_TIMEOUT_MS if seconds is None else max(1, int(seconds * 1000))
    if conn.info.get("busy_timeout") != wanted:
        conn.exec_driver_sql(f"PRAGMA busy_timeout={wanted}")
        conn.info["busy_timeout"] = wanted


def _bound_postgres_waits(session: Session, seconds: float) -> None:
    """No lock wait and no statement of this transaction may take longer than ``seconds``."""
    limit = f"{max(1, int(seconds * 1000))}ms"
    session.execute(
        text(
            "SELECT set_config('lock_timeout', :limit, true), "
            "set_config('statement_timeout', :limit, true)"
        ),
        {"limit": limit},
    )


def _create_private(path: Path) -> None:
    """The database file (raw mail, PIN hashes) and a folder made for it are readable by their
    owner only; SQLite gives its -wal and -shm files the database file's permissions."""
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    if not path.exists():
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT, 0o600))


class Database:
    """An engine and its session factory, made once per process from the settings."""

    def __init__(self, database_url: str, **engine_kwargs: Any) -> None:
        self.url = normalised_url(database_url)
        self.engine = make_engine(self.url, **engine_kwargs)
        self.sessions = sessionmaker(self.engine, expire_on_commit=False)

    @classmethod
    def from_settings(cls, settings: Settings, **engine_kwargs: Any) -> Database:
        return cls(settings.database_url, **engine_kwargs)

    @property
    def is_sqlite(self) -> bool:
        return self.engine.dialect.name == "sqlite"

    @contextmanager
    def transaction(self, lock_timeout: float | None = None) -> Iterator[Session]:
        """A session whose work is committed at the end of the block, or rolled back on error.

        With ``lock_timeout``, waiting for a lock (and, on PostgreSQL, any one statement) fails
        after that many seconds instead of the database's usual patience.
        """
        with self.sessions() as session, session.begin():
            if self.is_sqlite:
                options = {WRITE_OPTION: True, LOCK_TIMEOUT_OPTION: lock_timeout}
                session.connection(execution_options=options)
            elif lock_timeout is not None:
                _bound_postgres_waits(session, lock_timeout)
            yield session

    def is_migrated(self) -> bool:
        return inspect(self.engine).has_table("alembic_version")

    def dispose(self) -> None:
        self.engine.dispose()


def transaction_scratch(session: Session, key: str) -> dict[Any, Any]:
    """A dict that lives as long as the session's current transaction: what a transaction
    that handles several items (a worker's batch) read once and keeps up to date itself."""
    transaction = session.get_transaction()
    kept = session.info.get(key)
    if kept is None or kept[0] is not transaction:
        kept = session.info[key] = (transaction, {})
    scratch: dict[Any, Any] = kept[1]
    return scratch


def alembic_config(database_url: str) -> Any:
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.set_main_option("sqlalchemy.url", normalised_url(database_url).replace("%", "%%"))
    return config


def upgrade(database_url: str, revision: str = "head") -> None:
    """Run the Alembic migrations up to ``revision``."""
    from alembic import command

    command.upgrade(alembic_config(database_url), revision)


def current_revision(database_url: str) -> str | None:
    from alembic.runtime.migration import MigrationContext

    engine = make_engine(database_url)
    try:
        with engine.connect() as conn:
            return MigrationContext.configure(conn).get_current_revision()
    finally:
        engine.dispose()
