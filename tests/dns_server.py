"""A small authoritative DNS server on 127.0.0.1 (dnslib), UDP and TCP on one free port, for
the sender-verification tests and benchmark: TXT records set per test, and names that answer
SERVFAIL or never answer at all. Every name it holds no record for is NXDOMAIN."""

from __future__ import annotations

import socket
import threading
from typing import Any

from dnslib import QTYPE, RCODE, RR, SOA, TXT, A, DNSError, DNSRecord
from dnslib.server import DNSLogger, DNSServer

SILENCE_SECONDS = 5.0  # longer than any verdict waits


class Zone:
    """The records served, by (lower-case name without the dot, type name)."""

    def __init__(self) -> None:
        self.records: dict[tuple[str, str], list[str]] = {}
        self.servfail: set[str] = set()
        self.silent: set[str] = set()
        self.ttl = 300
        self.queries: list[tuple[str, str]] = []
        self.lock = threading.Lock()
        self.stopping = threading.Event()

    def txt(self, name: str, *values: str) -> None:
        self.records[(name.lower(), "TXT")] = list(values)

    def a(self, name: str, *addresses: str) -> None:
        self.records[(name.lower(), "A")] = list(addresses)

    def clear(self) -> None:
        self.records.clear()
        self.servfail.clear()
        self.silent.clear()
        with self.lock:
            self.queries.clear()

    def resolve(self, request: DNSRecord, handler: Any) -> DNSRecord:
        name = str(request.q.qname).rstrip(".").lower()
        kind = QTYPE[request.q.qtype]
        with self.lock:
            self.queries.append((name, kind))
        reply = request.reply()
        if _under(name, self.silent):
            self.stopping.wait(SILENCE_SECONDS)
            raise DNSError("silent")  # never answered (dnslib drops the request)
        if _under(name, self.servfail):
            reply.header.rcode = RCODE.SERVFAIL
            return reply
        values = self.records.get((name, kind))
        if values is None:
            if not any(key[0] == name for key in self.records):
                reply.header.rcode = RCODE.NXDOMAIN
            reply.add_auth(RR(name, QTYPE.SOA, rdata=_SOA, ttl=60))
            return reply
        for value in values:
            rdata = TXT(_chunks(value)) if kind == "TXT" else A(value)
            reply.add_answer(RR(name, getattr(QTYPE, kind), rdata=rdata, ttl=self.ttl))
        return reply


_SOA = SOA("ns.test.", "hostmaster.test.", (1, 3600, 600, 86400, 60))


def _under(name: str, domains: set[str]) -> bool:
    return any(name == d or name.endswith("." + d) for d in domains)


def _chunks(value: str) -> list[str]:
    """A long TXT value as 255-byte character strings (a DKIM key is longer than one)."""
    return [value[i : i + 255] for i in range(0, len(value), 255)] or [""]


class LocalDns:
    """The server: start() binds UDP and TCP on the same free port of 127.0.0.1."""

    def __init__(self) -> None:
        self.zone = Zone()
        self.port = 0
        self._servers: list[DNSServer] = []

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def start(self) -> LocalDns:
        for _ in range(20):
            port = _free_udp_port()
            try:
                quiet = DNSLogger("-recv,-send,-request,-reply,-truncated,-data,-error")
                udp = DNSServer(self.zone, address="127.0.0.1", port=port, logger=quiet)
                tcp = DNSServer(self.zone, address="127.0.0.1", port=port, tcp=True, logger=quiet)
            except OSError:
                continue
            self._servers = [udp, tcp]
            self.port = port
            for server in self._servers:
                server.start_thread()
            return self
        raise RuntimeError("no free port for the DNS server")

    def stop(self) -> None:
        self.zone.stopping.set()
        for server in self._servers:
            server.stop()
            server.server.server_close()


def _free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])
