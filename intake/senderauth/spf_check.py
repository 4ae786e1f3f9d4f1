"""SPF (RFC 7208) of the envelope sender's domain and the connecting IP, evaluated by pyspf.

pyspf asks DNS through one module-level function, ``spf.DNSLookup``; it is pointed once at
:func:`_lookup_for_pyspf`, which answers through the resolver (cache, deadline) of the check
running in the current thread, and through pyspf's own look-up when no check of ours runs.
"""

from __future__ import annotations

import contextvars
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import spf

from intake.senderauth.resolver import Deadline, DnsTemporaryError, Resolver

_PYSPF_LOOKUP = spf.DNSLookup
_CURRENT: contextvars.ContextVar[tuple[Resolver, Deadline] | None] = contextvars.ContextVar(
    "spf_resolver", default=None
)


@dataclass(frozen=True)
class SpfResult:
    result: str  # pass, fail, softfail, neutral, none, temperror, permerror
    domain: str  # the domain checked: the envelope sender's, or the HELO name's for a bounce
    reason: str = ""


def check_spf(
    resolver: Resolver, deadline: Deadline, client_ip: str, mail_from: str, helo: str = ""
) -> SpfResult:
    """The SPF result for ``mail_from`` sent from ``client_ip``; ``none`` without an IP."""
    domain = mail_from.rpartition("@")[2].lower() if "@" in mail_from else helo.lower()
    if not client_ip or not domain:
        return SpfResult("none", domain, "no connecting address or sender domain to check")
    sender = mail_from if "@" in mail_from else f"postmaster@{domain}"
    try:
        with _answering_through(resolver, deadline):
            result, _code, reason = spf.query(
                i=client_ip, s=sender, h=helo or domain, timeout=deadline.remaining()
            ).check()
    except DnsTemporaryError as exc:  # the budget ran out before pyspf asked anything
        return SpfResult("temperror", domain, str(exc))
    except Exception as exc:  # pyspf refusing an address or name it cannot read
        return SpfResult("permerror", domain, f"{type(exc).__name__}: {exc}")
    return SpfResult(str(result), domain, str(reason))


@contextmanager
def _answering_through(resolver: Resolver, deadline: Deadline) -> Iterator[None]:
    token = _CURRENT.set((resolver, deadline))
    try:
        yield
    finally:
        _CURRENT.reset(token)


def _lookup_for_pyspf(name: str, qtype: str, strict: Any = True, timeout: float = 20) -> list[Any]:
    """pyspf's look-up contract: ``[((name, type), value), ...]``, TempError when DNS failed."""
    current = _CURRENT.get()
    if current is None:
        return list(_PYSPF_LOOKUP(name, qtype, strict, timeout))
    resolver, deadline = current
    try:
        records = resolver.lookup(name, qtype, deadline)
    except DnsTemporaryError as exc:
        raise spf.TempError(f"DNS {exc}") from exc
    return [((name, qtype), _pyspf_value(qtype, r)) for r in records]


def _pyspf_value(qtype: str, record: str) -> Any:
    if qtype in ("TXT", "SPF"):
        return [record.encode("utf-8")]
    if qtype == "MX":
        preference, _, exchange = record.partition(" ")
        return (int(preference), exchange)
    return record


spf.DNSLookup = _lookup_for_pyspf
