"""Serving the web app with waitress, tuned so idle, slow or greedy clients cannot stop it.

Waitress stays the server: it is pure Python and already the gateway's, its single event loop
holds an idle connection for the price of a socket (so the connection limit can be high), its
worker threads only ever see whole requests, and it spools a large request body to a temporary
file rather than to memory. What its defaults lack is added here:

- a connection limit from a setting (waitress's own default of 100 let 99 idle sockets starve
  every other client), polled with poll() rather than select(), which stops at 1024 descriptors;
- a cap on connections per client address, past which a connection is answered 503 and closed;
- a deadline for a request's headers from its first byte (waitress only closes a connection that
  sends nothing at all, so one header byte every few seconds held a slot for ever), and the idle
  timeout, checked every second;
- a limit on the request body (waitress answers 413 from the Content-Length, or as soon as a
  chunked body passes it; Flask's MAX_CONTENT_LENGTH is the same limit inside the app).

In production a buffering reverse proxy (nginx, HAProxy, Caddy) in front does this better still:
see the README's Production section.
"""

from __future__ import annotations

import errno
import logging
import resource
import time
from dataclasses import dataclass
from typing import Any

from waitress.adjustments import Adjustments
from waitress.channel import HTTPChannel
from waitress.server import TcpWSGIServer

from intake.errors import IntakeError
from intake.settings import Settings

log = logging.getLogger(__name__)
MAINTENANCE_SECONDS = 1  # how often idle and slow connections are looked for
SPARE_DESCRIPTORS = 200  # files, database and Redis connections besides the clients
TURNED_AWAY = (
    b"HTTP/1.1 503 Service Unavailable\r\nConnection: close\r\nContent-Length: 0\r\n"
    b"Retry-After: 10\r\n\r\n"
)


class PortInUse(IntakeError):
    """The web port is taken; the message names it, its setting and what to do."""


@dataclass(frozen=True)
class ServerLimits:
    """What one client, and all clients together, may hold of the server."""

    connection_limit: int
    client_connection_limit: int  # 0: no cap per address
    header_timeout: int
    idle_timeout: int
    max_request_body: int
    trusted_proxy: str  # its connections are not capped per address, its X-Forwarded-For used


def limits_from(settings: Settings) -> ServerLimits:
    return ServerLimits(
        connection_limit=settings.web_connection_limit,
        client_connection_limit=settings.web_client_connection_limit,
        header_timeout=settings.web_header_timeout,
        idle_timeout=settings.web_idle_timeout,
        max_request_body=settings.web_max_request_body,
        trusted_proxy=settings.web_trusted_proxy,
    )


class GuardedChannel(HTTPChannel):  # type: ignore[misc]  # waitress has no type hints
    """A connection that notes when its current request's first byte came."""

    request_started: float | None = None

    def received(self, data: bytes) -> bool:
        if data and self.request is None:
            self.request_started = time.monotonic()
        result: bool = super().received(data)
        if self.request is None:
            self.request_started = None
        return result

    def headers_overdue(self, now: float, timeout: int) -> bool:
        started = self.request_started
        return (
            started is not None
            and self.request is not None
            and not self.request.headers_finished
            and now - started > timeout
        )


class GuardedServer(TcpWSGIServer):  # type: ignore[misc]  # waitress has no type hints
    """Waitress's TCP server with a per-address cap and a deadline for request headers."""

    channel_class = GuardedChannel

    def __init__(self, application: Any, limits: ServerLimits, adj: Adjustments) -> None:
        self.limits = limits
        super().__init__(application, adj=adj, sockinfo=adj.listen[0])

    def handle_accept(self) -> None:
        try:
            pair = self.accept()
        except OSError:
            return  # the client went away before we took it
        if pair is None:
            return
        conn, addr = pair
        if self._over_client_limit(str(addr[0])):
            _turn_away(conn)
            return
        try:
            self.set_socket_options(conn)
        except OSError:
            conn.close()
            return
        self.channel_class(self, conn, self.fix_addr(addr), self.adj, map=self._map)

    def _over_client_limit(self, address: str) -> bool:
        cap = self.limits.client_connection_limit
        if cap <= 0 or address == self.limits.trusted_proxy:
            return False
        held = sum(1 for c in list(self.active_channels.values()) if c.addr[0] == address)
        if held < cap:
            return False
        log.warning("turned away a connection from %s: it holds %d already", address, held)
        return True

    def maintenance(self, now: float) -> None:
        super().maintenance(now)  # closes connections idle for longer than the idle timeout
        monotonic = time.monotonic()
        for channel in list(self.active_channels.values()):
            if isinstance(channel, GuardedChannel) and channel.headers_overdue(
                monotonic, self.limits.header_timeout
            ):
                channel.will_close = True


def _turn_away(conn: Any) -> None:
    try:
        conn.setblocking(False)
        conn.send(TURNED_AWAY)
    except OSError:
        pass
    finally:
        conn.close()


def make_server(
    app: Any, settings: Settings, *, host: str, port: int, threads: int
) -> GuardedServer:
    """The server, bound and listening; :class:`PortInUse` when the port is taken."""
    limits = limits_from(settings)
    _allow_descriptors(limits.connection_limit + SPARE_DESCRIPTORS)
    proxy: dict[str, Any] = {}
    if limits.trusted_proxy:
        proxy = {
            "trusted_proxy": limits.trusted_proxy,
            "trusted_proxy_headers": {"x-forwarded-for", "x-forwarded-proto"},
        }
    adj = Adjustments(
        host=host,
        port=port,
        threads=threads,
        ident="intake",
        connection_limit=limits.connection_limit,
        channel_timeout=limits.idle_timeout,
        cleanup_interval=MAINTENANCE_SECONDS,
        max_request_body_size=limits.max_request_body,
        asyncore_use_poll=True,
        clear_untrusted_proxy_headers=True,
        **proxy,
    )
    try:
        return GuardedServer(app, limits, adj)
    except OSError as exc:
        if exc.errno in (errno.EADDRINUSE, errno.EACCES):
            raise PortInUse(_port_sentence(host, port, exc)) from None
        raise


def _port_sentence(host: str, port: int, exc: OSError) -> str:
    problem = "is in use" if exc.errno == errno.EADDRINUSE else "may not be opened by this user"
    return (
        f"The web port {host}:{port} {problem}: stop what listens there, or choose another "
        "port with INTAKE_WEB_PORT (web_port) or --port."
    )


def _allow_descriptors(wanted: int) -> None:
    """Raise this process's open-file limit towards ``wanted`` (up to the hard limit)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
    if target > soft:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
