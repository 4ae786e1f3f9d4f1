"""The server under test, in a process of its own (so it does not share a GIL with the client).

    python bench/_server.py bare
    python bench/_server.py gateway --database-url URL --redis-url URL --var-dir DIR

Prints `PORT <n>` once it listens on 127.0.0.1, then serves until its stdin closes or it gets
SIGTERM/SIGINT, and stops cleanly. "bare" is aiosmtpd with a handler that answers 250 to every
DATA; "gateway" is the gateway's SmtpDoor wired as `intake smtp` wires it (settings from
config/intake.toml, logging at the configured level to stderr, RQ enqueue after each commit).
"""

from __future__ import annotations

import argparse
import signal
import socket
import sys
import threading
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))


class SinkHandler:
    """The reference: accept everything, keep nothing."""

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        return "250 OK"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def bare_server(port: int) -> tuple[Any, list]:
    from aiosmtpd.controller import Controller

    return Controller(SinkHandler(), hostname="127.0.0.1", port=port), []


def gateway_server(args: argparse.Namespace, port: int) -> tuple[Any, list]:
    """The SmtpDoor with the real pipeline, database and Redis queue (as in `intake smtp`)."""
    from intake.jobs.batch import Gatherer
    from intake.jobs.queue import connect_redis, make_queue
    from intake.jobs.runtime import build_runtime, install
    from intake.logs import setup_logging
    from intake.mail.smtp import SmtpDoor
    from intake.settings import load_settings

    settings = load_settings(
        env={"INTAKE_CONFIG": str(ROOT / "config" / "intake.toml")},
        overrides={
            "var_dir": args.var_dir,
            "database_url": args.database_url,
            "redis_url": args.redis_url,
            "secret_key": "bench-secret",
            "smtp_host": "127.0.0.1",
            "smtp_port": port,
            "sender_auth": args.sender_auth,
            "dns_resolver": args.dns_resolver,
            "ack_limit": "1000000/hour",
            "smtp_max_sessions_per_ip": 200,  # every client session comes from 127.0.0.1
        },
    )
    setup_logging(settings.log_level, settings.log_format, "smtp")
    rt = build_runtime(settings)
    install(rt)
    gatherer = Gatherer(make_queue(rt.settings, connect_redis(rt.settings)))
    door = SmtpDoor(
        rt.settings,
        rt.db,
        gatherer,
        host="127.0.0.1",
        port=port,
    )
    return door, [gatherer.close, rt.db.dispose]


def wait_until_told_to_stop() -> None:
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())

    def watch_stdin() -> None:
        sys.stdin.read()  # returns at EOF: the parent closed our stdin or went away
        stop.set()

    threading.Thread(target=watch_stdin, daemon=True).start()
    stop.wait()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("mode", choices=["bare", "gateway"])
    parser.add_argument("--database-url")
    parser.add_argument("--redis-url")
    parser.add_argument("--var-dir")
    parser.add_argument("--sender-auth", default="off")
    parser.add_argument("--dns-resolver", default="", help="host:port of the name server")
    args = parser.parse_args()
    port = free_port()
    server, cleanups = bare_server(port) if args.mode == "bare" else gateway_server(args, port)
    server.start()
    try:
        print(f"PORT {port}", flush=True)
        wait_until_told_to_stop()
    finally:
        server.stop()
        for cleanup in cleanups:
            cleanup()


if __name__ == "__main__":
    main()
