"""Authentication-Results from a border server we trust (RFC 8601), read with ``authres``.

A border MTA that checked the mail adds its Authentication-Results at the very top, above its
own Received line and so above everything the sender (or the sender's servers) wrote. Only the
topmost Authentication-Results counts, only when no Received line stands above it, and only
when its authserv-id is one of INTAKE_TRUSTED_AUTHSERV_IDS: a copy lower down (even one naming
a trusted id) or one with another id may have come from the sender, and is ignored (§5).
The border must remove copies of its own id from mail it receives, as RFC 8601 §5 asks, and
the door must only be reachable through it.
"""

from __future__ import annotations

from dataclasses import dataclass
from email.parser import BytesHeaderParser
from email.policy import compat32

import authres

# What our border adds above its own Received line; a Received line (or anything else) above
# an Authentication-Results means it was written before the border saw the message.
BORDER_HEADERS = frozenset(
    {"return-path", "authentication-results", "arc-seal", "arc-message-signature",
     "arc-authentication-results", "received-spf", "delivered-to", "x-original-to"}
)  # fmt: skip


@dataclass(frozen=True)
class MethodResult:
    method: str  # spf, dkim, dmarc, arc
    result: str  # pass, fail, ...
    domain: str  # smtp.mailfrom's domain (spf), header.d (dkim), header.from (dmarc)


@dataclass(frozen=True)
class BorderResults:
    authserv_id: str
    results: tuple[MethodResult, ...]

    def first(self, method: str) -> MethodResult | None:
        return next((r for r in self.results if r.method == method), None)

    def passing(self, method: str) -> tuple[MethodResult, ...]:
        return tuple(r for r in self.results if r.method == method and r.result == "pass")


def trusted_border_results(raw: bytes, trusted_ids: frozenset[str]) -> BorderResults | None:
    """The topmost Authentication-Results, when only the border's own headers stand above it
    and it carries a trusted authserv-id; None otherwise."""
    if not trusted_ids:
        return None
    for name, value in BytesHeaderParser(policy=compat32).parsebytes(raw).items():
        lowered = name.lower()
        if lowered not in BORDER_HEADERS:
            return None  # a Received line or the sender's own headers: nothing below is ours
        if lowered == "authentication-results":
            return _parsed_if_trusted(str(value), trusted_ids)
    return None


def _parsed_if_trusted(value: str, trusted_ids: frozenset[str]) -> BorderResults | None:
    parsed = parse_results(value)
    if parsed is None or parsed.authserv_id not in trusted_ids:
        return None
    return parsed


def parse_results(value: str) -> BorderResults | None:
    """An Authentication-Results value (``authserv-id; method=result ...``); None if garbled."""
    try:
        header = authres.AuthenticationResultsHeader.parse_value(" ".join(value.split()))
    except Exception:  # authres raises its own SyntaxError and others for garbage
        return None
    results = tuple(
        MethodResult(str(r.method).lower(), str(r.result).lower(), _domain_of(r))
        for r in header.results
    )
    return BorderResults(str(header.authserv_id).lower(), results)


def _domain_of(result: object) -> str:
    """The domain a result speaks for: header.d, header.from or smtp.mailfrom's domain."""
    values = {f"{p.type}.{p.name}".lower(): str(p.value) for p in getattr(result, "properties", [])}
    for key in ("header.d", "header.from", "smtp.mailfrom", "header.i", "smtp.helo"):
        if values.get(key):
            return values[key].rpartition("@")[2].lower()
    return ""
