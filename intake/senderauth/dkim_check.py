"""DKIM (RFC 6376) signatures and the ARC chain (RFC 8617), verified by dkimpy.

dkimpy asks DNS through the ``dnsfunc`` it is given; ours answers through the verdict's
resolver and notes a temporary failure, which dkimpy itself would only report as "invalid".
A signature whose ``l=`` covers less than the body signed only a prefix: whatever follows
was added by someone else, so such a signature does not count as a pass.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

import dkim
from dkim.canonicalization import CanonicalizationPolicy
from dkim.util import parse_tag_value

from intake.senderauth.resolver import Deadline, DnsTemporaryError, Resolver

# dkimpy logs every failed signature as an error; a forged signature is not our error.
_QUIET = logging.getLogger("intake.senderauth.dkimpy")
_QUIET.setLevel(logging.CRITICAL)


@dataclass(frozen=True)
class DkimSignature:
    domain: str  # d=
    valid: bool  # the signature verified against the key published for d= and s=
    partial: bool = False  # l= covers less than the body: appended content
    temporary: bool = False  # the key could not be looked up just now

    @property
    def passes(self) -> bool:
        return self.valid and not self.partial


@dataclass(frozen=True)
class ArcChain:
    result: str  # pass, fail or none (no ARC headers)
    sealer: str = ""  # d= of the newest ARC-Seal
    newest_results: str = ""  # the newest ARC-Authentication-Results, without its i= tag
    reason: str = ""


@dataclass
class _TxtLookup:
    """dkimpy's ``dnsfunc``: a TXT look-up through our resolver, remembering failures."""

    resolver: Resolver
    deadline: Deadline
    failures: list[str] = field(default_factory=list)

    def __call__(self, name: bytes | str, timeout: float = 5) -> bytes | None:
        text = name.decode("ascii", "replace") if isinstance(name, bytes) else name
        try:
            records = self.resolver.txt(text, self.deadline)
        except DnsTemporaryError as exc:
            self.failures.append(str(exc))
            raise dkim.DnsTimeoutError(str(exc)) from exc
        return records[0].encode("utf-8") if records else None


def check_dkim(raw: bytes, resolver: Resolver, deadline: Deadline) -> list[DkimSignature]:
    """Every DKIM-Signature of the message, topmost first, each verified on its own. A message
    dkimpy cannot read has no signature that counts (a failure, never a pass)."""
    try:
        message = dkim.DKIM(raw, logger=_QUIET)
    except Exception:
        return []
    count = sum(1 for name, _ in message.headers if name.lower() == b"dkim-signature")
    return [_verify_one(raw, message, i, resolver, deadline) for i in range(count)]


def _verify_one(
    raw: bytes, message: dkim.DKIM, index: int, resolver: Resolver, deadline: Deadline
) -> DkimSignature:
    lookup = _TxtLookup(resolver, deadline)
    try:
        valid = bool(message.verify(idx=index, dnsfunc=lookup))
    except Exception:  # dkimpy's own errors, and whatever a hostile signature provokes
        valid = False
    fields = _signature_fields(message, index)
    domain = fields.get(b"d", b"").decode("ascii", "replace").lower()
    partial = _covers_less_than_body(message, fields)
    return DkimSignature(domain, valid, partial, temporary=bool(lookup.failures))


def _signature_fields(message: dkim.DKIM, index: int) -> dict[bytes, bytes]:
    values = [v for n, v in message.headers if n.lower() == b"dkim-signature"]
    try:
        return dict(parse_tag_value(values[index]))
    except Exception:  # an unreadable signature header: no fields, and it did not verify
        return {}


def _covers_less_than_body(message: dkim.DKIM, fields: dict[bytes, bytes]) -> bool:
    if b"l" not in fields:
        return False
    try:
        policy = CanonicalizationPolicy.from_c_value(fields.get(b"c"))
        return int(fields[b"l"]) < len(policy.canonicalize_body(message.body))
    except Exception:  # a malformed l= or c=: the signature did not verify anyway
        return True


def check_arc(raw: bytes, resolver: Resolver, deadline: Deadline) -> ArcChain:
    """The chain's validation (cv) and who sealed it last, with what that sealer found."""
    lookup = _TxtLookup(resolver, deadline)
    try:
        cv, instances, reason = dkim.arc_verify(raw, logger=_QUIET, dnsfunc=lookup)
    except Exception as exc:  # a chain dkimpy cannot even read vouches for nothing
        return ArcChain("fail", reason=f"unreadable ARC headers ({type(exc).__name__})")
    if lookup.failures:
        raise DnsTemporaryError(lookup.failures[0])
    result = (cv or b"fail").decode("ascii").lower()
    if not instances:
        return ArcChain(result if result == "none" else "fail", reason=str(reason))
    newest = max(instances, key=lambda i: int(i["instance"]))
    sealer = bytes(newest.get("as-domain") or b"").decode("ascii", "replace").lower()
    return ArcChain(result, sealer, _newest_results(raw, int(newest["instance"])), str(reason))


def _newest_results(raw: bytes, instance: int) -> str:
    """The ARC-Authentication-Results of ``instance`` (unfolded, ``i=N;`` removed)."""
    headers = dkim.DKIM(raw, logger=_QUIET).headers  # it was read once already: it parses
    for name, value in headers:
        if name.lower() != b"arc-authentication-results":
            continue
        text = " ".join(value.decode("utf-8", "replace").split())
        tag, _, rest = text.partition(";")
        if tag.replace(" ", "") == f"i={instance}":
            return rest.strip()
    return ""
