"""DMARC (RFC 7489): the From domain's published policy, and whether an authenticated domain
is aligned with it.

The organisational domain comes from the Public Suffix List (the ``publicsuffixlist``
package and the snapshot it ships; nothing is downloaded).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from functools import lru_cache

from publicsuffixlist import PublicSuffixList

from intake.senderauth.resolver import Deadline, Resolver

POLICIES = ("none", "quarantine", "reject")
# RFC 7489 6.6.4: a message left out of the pct= sample gets the next policy down.
NEXT_POLICY_DOWN = {"reject": "quarantine", "quarantine": "none", "none": "none"}


@dataclass(frozen=True)
class DmarcRecord:
    domain: str  # where it was found: the From domain or its organisational domain
    policy: str  # p=
    subdomain_policy: str  # sp= (p= when absent)
    percent: int = 100  # pct=
    strict_spf: bool = False  # aspf=s
    strict_dkim: bool = False  # adkim=s

    def policy_for(self, from_domain: str) -> str:
        """p= for the domain that published it, sp= for its subdomains (RFC 7489 6.6.3)."""
        return self.policy if from_domain == self.domain else self.subdomain_policy

    def applied_policy(self, from_domain: str, sample_key: bytes) -> str:
        """The policy after pct= sampling, decided by the message's digest (the same message
        always gets the same answer, also when it is delivered again)."""
        policy = self.policy_for(from_domain)
        bucket = int.from_bytes(hashlib.sha256(sample_key).digest()[:2], "big") % 100
        return policy if bucket < self.percent else NEXT_POLICY_DOWN[policy]


@lru_cache(maxsize=1)
def _suffix_list() -> PublicSuffixList:
    return PublicSuffixList()


def organisational_domain(domain: str) -> str:
    """``mail.acme.example`` -> ``acme.example``; a bare public suffix stays as it is."""
    domain = domain.lower().rstrip(".")
    return _suffix_list().privatesuffix(domain) or domain


def aligned(authenticated: str, from_domain: str, *, strict: bool) -> bool:
    """Strict: the same domain; relaxed: the same organisational domain (RFC 7489 3.1)."""
    authenticated, from_domain = authenticated.lower(), from_domain.lower()
    if strict:
        return authenticated == from_domain
    return organisational_domain(authenticated) == organisational_domain(from_domain)


def find_record(resolver: Resolver, from_domain: str, deadline: Deadline) -> DmarcRecord | None:
    """The record at ``_dmarc.<From domain>``, else at its organisational domain's; None when
    neither publishes one. Raises DnsTemporaryError."""
    candidates = dict.fromkeys((from_domain, organisational_domain(from_domain)))
    for domain in candidates:
        records = [r for r in resolver.txt(f"_dmarc.{domain}", deadline) if _is_dmarc(r)]
        if len(records) == 1:  # several records: as if none (RFC 7489 6.6.3)
            return parse_record(domain, records[0])
    return None


def _is_dmarc(text: str) -> bool:
    return text.replace(" ", "").upper().startswith("V=DMARC1")


def parse_record(domain: str, text: str) -> DmarcRecord | None:
    """The tags of ``v=DMARC1; p=...``; a record without a valid p= counts as none."""
    tags = _tags(text)
    policy = tags.get("p", "")
    if policy not in POLICIES:
        # RFC 7489 6.6.3: with a valid rua= a missing p= is read as none; otherwise no record.
        return DmarcRecord(domain, "none", "none") if "rua" in tags else None
    subdomain_policy = tags.get("sp", policy)
    return DmarcRecord(
        domain,
        policy,
        subdomain_policy if subdomain_policy in POLICIES else policy,
        _percent(tags.get("pct", "100")),
        tags.get("aspf") == "s",
        tags.get("adkim") == "s",
    )


def _tags(text: str) -> dict[str, str]:
    tags: dict[str, str] = {}
    for part in text.split(";"):
        name, _, value = part.partition("=")
        if name.strip():
            tags.setdefault(name.strip().lower(), value.strip().lower())
    return tags


def _percent(value: str) -> int:
    return min(100, max(0, int(value))) if value.isdigit() else 100
