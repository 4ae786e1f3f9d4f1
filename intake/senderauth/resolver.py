"""DNS for sender verification: one resolver with short timeouts and a cache that honours TTLs.

Every verdict runs against a deadline (see :data:`VERDICT_BUDGET`), so a slow or silent name
server costs a message at most that long. A SERVFAIL, a timeout or a spent budget is a
*temporary* failure (the sending server should retry); NXDOMAIN and an empty answer are
answers ("there is no such record") and are cached like any other.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

import dns.exception
import dns.message
import dns.name
import dns.rdatatype
import dns.resolver

from parsers.addresses import split_server

VERDICT_BUDGET = 1.5  # seconds for all the look-ups of one verdict (the whole verdict: < 2 s)
QUERY_TIMEOUT = 0.8  # seconds one server gets for one query before the next try
NEGATIVE_TTL = 300  # seconds "no such record" is remembered when the zone does not say
MAX_TTL = 3600  # a record is never trusted for longer than this
CACHE_ENTRIES = 10_000


class DnsTemporaryError(Exception):
    """The question could not be answered now (SERVFAIL, timeout, out of time): retry later."""


@dataclass(frozen=True)
class Deadline:
    """The moment (time.monotonic) a verdict's look-ups must be done by."""

    at: float

    @classmethod
    def after(cls, seconds: float = VERDICT_BUDGET) -> Deadline:
        return cls(time.monotonic() + seconds)

    def remaining(self) -> float:
        left = self.at - time.monotonic()
        if left <= 0:
            raise DnsTemporaryError("the time for DNS look-ups ran out")
        return left


Records = tuple[str, ...]  # each record as text (TXT strings joined, names without the dot)


class Resolver:
    """Looks records up through one configured name server (or the system's), with a cache."""

    def __init__(self, server: str = "", *, clock: Callable[[], float] = time.monotonic) -> None:
        self._resolver = _make_resolver(server)
        self._cache: dict[tuple[str, str], tuple[float, Records]] = {}
        self._lock = threading.Lock()
        self._clock = clock

    def lookup(self, name: str, rdtype: str, deadline: Deadline) -> Records:
        """The records of ``name``; empty when there are none. Raises DnsTemporaryError."""
        key = (name.lower().rstrip("."), rdtype)
        cached = self._cached(key)
        if cached is not None:
            return cached
        records, ttl = self._ask(key[0], rdtype, deadline)
        with self._lock:
            if len(self._cache) >= CACHE_ENTRIES:
                self._cache.clear()  # a crude bound: the cache only saves time
            self._cache[key] = (self._clock() + ttl, records)
        return records

    def txt(self, name: str, deadline: Deadline) -> Records:
        return self.lookup(name, "TXT", deadline)

    def _cached(self, key: tuple[str, str]) -> Records | None:
        with self._lock:
            entry = self._cache.get(key)
        if entry is None or entry[0] <= self._clock():
            return None
        return entry[1]

    def _ask(self, name: str, rdtype: str, deadline: Deadline) -> tuple[Records, float]:
        try:
            qname = dns.name.from_text(name)
        except dns.exception.DNSException:  # too long, empty labels, not IDNA: no such name
            return (), NEGATIVE_TTL
        try:
            answer = self._resolver.resolve(
                qname, rdtype, lifetime=deadline.remaining(), search=False, raise_on_no_answer=False
            )
        except dns.resolver.NXDOMAIN as exc:
            responses = exc.kwargs.get("responses") or {}
            return (), _negative_ttl(next(iter(responses.values()), None))
        except (dns.exception.Timeout, dns.resolver.LifetimeTimeout) as exc:
            raise DnsTemporaryError(f"no answer in time for {name} {rdtype}") from exc
        except (dns.resolver.NoNameservers, dns.resolver.NoResolverConfiguration) as exc:
            raise DnsTemporaryError(f"the name server failed for {name} {rdtype}") from exc
        except dns.exception.DNSException as exc:  # a malformed name or answer: nothing usable
            raise DnsTemporaryError(f"{name} {rdtype}: {exc}") from exc
        if answer.rrset is None:
            return (), _negative_ttl(answer.response)
        return tuple(_as_text(r) for r in answer.rrset), min(answer.rrset.ttl, MAX_TTL)


def _make_resolver(server: str) -> dns.resolver.Resolver:
    """dnspython's resolver, pointed at ``host[:port]`` when given; no retries on SERVFAIL."""
    if not server:
        resolver = dns.resolver.Resolver()
    else:
        host, port = split_server(server)
        resolver = dns.resolver.Resolver(configure=False)
        resolver.nameservers = [host]
        resolver.port = port
    resolver.timeout = QUERY_TIMEOUT
    resolver.retry_servfail = False
    resolver.cache = None  # ours honours TTLs for negative answers too, and is bounded
    return resolver


def _negative_ttl(response: dns.message.Message | None) -> float:
    """RFC 2308: the SOA's minimum (bounded by its TTL) when the zone sends one."""
    if response is not None:
        for rrset in response.authority:
            if rrset.rdtype == dns.rdatatype.SOA:
                return float(min(rrset.ttl, rrset[0].minimum, MAX_TTL))
    return NEGATIVE_TTL


def _as_text(rdata: object) -> str:
    strings = getattr(rdata, "strings", None)
    if strings is not None:  # TXT: the character strings of one record, joined (RFC 7208 3.3)
        return b"".join(strings).decode("utf-8", "replace")
    exchange = getattr(rdata, "exchange", None)
    if isinstance(exchange, dns.name.Name):  # MX: "preference exchange"
        return f"{getattr(rdata, 'preference', 0)} {exchange.to_text(omit_final_dot=True)}"
    target = getattr(rdata, "target", None)
    if isinstance(target, dns.name.Name):  # PTR, CNAME
        return target.to_text(omit_final_dot=True)
    return str(getattr(rdata, "address", rdata))
