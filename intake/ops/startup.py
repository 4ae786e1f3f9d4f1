"""Start-up checks: every way a process can fail to start becomes one sentence that names the
setting or the port and says what to do, never a traceback.

Also the one-instance lock of `intake run` on its var/ directory, and the worker's patient wait
for a Redis that is not there yet.
"""

from __future__ import annotations

import errno
import fcntl
import logging
import os
import socket
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Protocol

from sqlalchemy.engine import make_url
from sqlalchemy.exc import SQLAlchemyError

from intake.errors import IntakeError
from intake.settings import Settings

MIN_SECRET_KEY_BYTES = 32
LOCK_FILE = "intake.lock"
REDIS_FIRST_WAIT = 1.0
REDIS_LONGEST_WAIT = 30.0
# Set by `intake run --demo` for its children: a short secret key is allowed there.
DEMO_ENV = "INTAKE_DEMO"


class Pingable(Protocol):
    """A Redis client, as far as waiting for it goes (this module stays free of Redis)."""

    def ping(self) -> object: ...


class StartupError(IntakeError):
    """A process cannot start; the message says which setting or port and what to do."""


def masked_url(url: str) -> str:
    """``url`` with its password, if any, shown as ***."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:  # not an SQLAlchemy URL (redis://, unix://): mask by hand
        scheme, sep, rest = url.partition("://")
        credentials, at, host = rest.rpartition("@")
        if not at or ":" not in credentials:
            return url
        user = credentials.split(":", 1)[0]
        return f"{scheme}{sep}{user}:***@{host}"


def _reason(exc: BaseException) -> str:
    """The first line of an error, without the driver's or SQLAlchemy's decorations."""
    original = getattr(exc, "orig", None) or exc
    text = str(original).strip().splitlines()
    return (text[0] if text else type(original).__name__).rstrip(".")


@contextmanager
def database_reachable(url: str) -> Iterator[None]:
    """Turn a database that cannot be reached (or read) into a sentence naming the setting."""
    try:
        yield
    except SQLAlchemyError as exc:
        raise StartupError(
            f"The database at {masked_url(url)} cannot be used ({_reason(exc)}): start it, or "
            "correct INTAKE_DATABASE_URL (database_url)."
        ) from None


def port_in_use_sentence(what: str, host: str, port: int, setting: str, exc: OSError) -> str:
    problem = (
        "is in use by another process"
        if exc.errno == errno.EADDRINUSE
        else f"cannot be opened ({exc.strerror or exc})"
    )
    return (
        f"The {what} port {host}:{port} {problem}: stop what listens there, or choose another "
        f"port with {setting}."
    )


def check_port_free(what: str, host: str, port: int, setting: str) -> None:
    """Whether a listener could bind ``host:port`` now (as SO_REUSEADDR servers do)."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except OSError as exc:
        raise StartupError(
            f"The {what} address {host!r} cannot be resolved ({exc}): correct {setting}."
        ) from None
    family, kind, proto, _, address = infos[0]
    with socket.socket(family, kind, proto) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(address)
        except OSError as exc:
            raise StartupError(port_in_use_sentence(what, host, port, setting, exc)) from None


def check_ports(settings: Settings) -> None:
    """Both doors' ports, before anything else of `intake run` starts."""
    check_port_free("SMTP", settings.smtp_host, settings.smtp_port, "INTAKE_SMTP_PORT (smtp_port)")
    check_port_free("web", settings.web_host, settings.web_port, "INTAKE_WEB_PORT (web_port)")


def check_secret_key(settings: Settings, *, demo: bool) -> None:
    """A secret key that is set must be long enough to sign sessions and links, except in the
    demo; an unset one is generated (long enough) under var/."""
    key = settings.secret_key
    if demo or not key or len(key.encode()) >= MIN_SECRET_KEY_BYTES:
        return
    raise StartupError(
        f"INTAKE_SECRET_KEY (secret_key) is {len(key.encode())} bytes long; it must be at least "
        f"{MIN_SECRET_KEY_BYTES}: make one with `python -c 'import secrets; "
        "print(secrets.token_urlsafe(48))'`, or unset it to have one generated under var/."
    )


def demo_requested() -> bool:
    return os.environ.get(DEMO_ENV) == "1"


def hold_instance_lock(var_path: Path) -> IO[str]:
    """Take var/intake.lock for as long as the returned file stays open; refuse when another
    `intake run` holds it. The lock is the kernel's (flock): it dies with its process."""
    var_path.mkdir(mode=0o700, parents=True, exist_ok=True)
    path = var_path / LOCK_FILE
    handle = path.open("a+", encoding="ascii")
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.seek(0)
        holder = handle.read().strip() or "unknown"
        handle.close()
        raise StartupError(
            f"Another `intake run` (pid {holder}) is using {var_path}: stop it first, or give "
            "this one a var/ of its own with INTAKE_VAR_DIR (var_dir)."
        ) from None
    handle.seek(0)
    handle.truncate()
    handle.write(f"{os.getpid()}\n")
    handle.flush()
    return handle


def wait_for_redis(
    client: Pingable,
    url: str,
    log: logging.Logger,
    *,
    sleep: Callable[[float], None] = time.sleep,
) -> None:
    """Return once Redis answers, waiting longer each time (up to 30 s); say so once, not on
    every try."""
    wait, said = REDIS_FIRST_WAIT, False
    while True:
        try:
            client.ping()
        except Exception as exc:  # redis-py's errors, which this module does not import
            if not said:
                log.warning(
                    "Redis at %s (INTAKE_REDIS_URL) cannot be reached (%s): jobs wait; retrying "
                    "with backoff up to every %d s",
                    masked_url(url),
                    _reason(exc),
                    REDIS_LONGEST_WAIT,
                )
                said = True
            sleep(wait)
            wait = min(wait * 2, REDIS_LONGEST_WAIT)
            continue
        if said:
            log.warning("Redis at %s answers again: working the queue", masked_url(url))
        return
