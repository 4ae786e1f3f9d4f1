"""The verdict on a message's sender: DMARC over SPF and DKIM, an ARC chain from a trusted
forwarder, or what a trusted border server found; one frozen record with a sentence of why.

:class:`SenderVerifier` holds the configuration (resolver, trusted authserv-ids, trusted ARC
sealers) and is shared by the door's threads; :meth:`SenderVerifier.verify` is the one call.
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass, replace
from email.parser import BytesHeaderParser
from email.policy import compat32
from email.utils import getaddresses
from typing import Any

from intake.senderauth.border import BorderResults, parse_results, trusted_border_results
from intake.senderauth.dkim_check import ArcChain, DkimSignature, check_arc, check_dkim
from intake.senderauth.dmarc import DmarcRecord, aligned, find_record
from intake.senderauth.resolver import Deadline, DnsTemporaryError, Resolver
from intake.senderauth.spf_check import SpfResult, check_spf

log = logging.getLogger(__name__)

HELD_POLICIES = ("quarantine", "reject")
API_FIELDS = ("dmarc", "spf", "dkim", "arc", "aligned_domain", "explanation")


@dataclass(frozen=True)
class Verdict:
    """Who the message is from, as far as DNS and signatures tell.

    ``dmarc``: pass, fail, none (the domain publishes no policy, or no From domain) or
    temperror (DNS could not answer: retry later). ``policy`` is the policy that applies to a
    failing message after pct= sampling (none, quarantine, reject; empty without a record).
    ``vouched_by`` names the trusted ARC sealer that vouched for a message whose DMARC broke
    in forwarding; ``source`` says whose checks these are (``local`` or ``border:<id>``).
    """

    dmarc: str
    spf: str
    dkim: str
    arc: str
    aligned_domain: str
    policy: str
    explanation: str
    from_domain: str = ""
    spf_domain: str = ""
    dkim_domains: tuple[str, ...] = ()
    vouched_by: str = ""
    source: str = "local"
    client_ip: str = ""
    envelope_sender: str = ""

    @property
    def temporary(self) -> bool:
        """DNS failed: the sending server should try again later."""
        return self.dmarc == "temperror"

    @property
    def fails_policy(self) -> bool:
        """Failed DMARC under a policy asking to quarantine or reject, and nobody vouched."""
        return self.dmarc == "fail" and self.policy in HELD_POLICIES and not self.vouched_by

    def as_json(self) -> dict[str, Any]:
        values = asdict(self)
        values["dkim_domains"] = list(self.dkim_domains)
        return values

    def api_json(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in API_FIELDS}

    @classmethod
    def from_json(cls, values: dict[str, Any]) -> Verdict:
        known = {k: v for k, v in values.items() if k in cls.__dataclass_fields__}
        known["dkim_domains"] = tuple(known.get("dkim_domains", ()))
        return cls(**known)


@dataclass(frozen=True)
class Envelope:
    """What the SMTP session knew of the message: the connecting IP, MAIL FROM and HELO."""

    client_ip: str = ""
    mail_from: str = ""
    helo: str = ""


@dataclass(frozen=True)
class _Evidence:
    from_domain: str
    spf: SpfResult
    dkim: tuple[DkimSignature, ...]
    border: BorderResults | None


class SenderVerifier:
    """Verifies senders with one resolver (and its cache) and the trusted parties' names."""

    def __init__(
        self,
        resolver: Resolver,
        *,
        trusted_authserv_ids: tuple[str, ...] = (),
        trusted_arc_sealers: tuple[str, ...] = (),
    ) -> None:
        self.resolver = resolver
        self.trusted_authserv_ids = frozenset(i.lower() for i in trusted_authserv_ids)
        self.trusted_arc_sealers = frozenset(d.lower() for d in trusted_arc_sealers)

    def verify(self, raw: bytes, envelope: Envelope = Envelope()) -> Verdict:
        """The verdict on ``raw``; all of its DNS look-ups together stay within the budget."""
        deadline = Deadline.after()
        from_domain = _from_domain(raw)
        try:
            return self._verify(raw, envelope, from_domain, deadline)
        except DnsTemporaryError as exc:
            log.info("sender verification of %s: DNS failed: %s", from_domain, exc)
            return _with_envelope(
                Verdict(
                    "temperror", "temperror", "temperror", "none", "", "",
                    f"DNS could not answer ({exc}); the sender should try again later.",
                    from_domain,
                ),
                envelope,
            )  # fmt: skip

    def _verify(
        self, raw: bytes, envelope: Envelope, from_domain: str, deadline: Deadline
    ) -> Verdict:
        if not from_domain:
            sentence = "The From header names no domain to verify."
            nothing = Verdict("none", "none", "none", "none", "", "", sentence)
            return _with_envelope(nothing, envelope)
        evidence = self._evidence(raw, envelope, from_domain, deadline)
        record = find_record(self.resolver, from_domain, deadline)
        verdict = _dmarc_verdict(evidence, record, raw)
        if verdict.dmarc == "fail" and "temperror" in (verdict.spf, verdict.dkim):
            # What could not be looked up might have passed: only a retry can tell.
            raise DnsTemporaryError(f"SPF {verdict.spf}, DKIM {verdict.dkim} for {from_domain}")
        if verdict.dmarc == "fail" and self.trusted_arc_sealers:
            verdict = self._vouched_by_arc(raw, verdict, deadline)
        return _with_envelope(verdict, envelope)

    def _evidence(
        self, raw: bytes, envelope: Envelope, from_domain: str, deadline: Deadline
    ) -> _Evidence:
        border = trusted_border_results(raw, self.trusted_authserv_ids)
        signatures = tuple(check_dkim(raw, self.resolver, deadline))
        if border is not None:
            # Behind a border server the connecting IP is the border's: its SPF result counts.
            found = border.first("spf")
            spf = SpfResult(found.result, found.domain) if found else SpfResult("none", "")
        else:
            spf = check_spf(
                self.resolver, deadline, envelope.client_ip, envelope.mail_from, envelope.helo
            )
        return _Evidence(from_domain, spf, signatures, border)

    def _vouched_by_arc(self, raw: bytes, verdict: Verdict, deadline: Deadline) -> Verdict:
        chain = check_arc(raw, self.resolver, deadline)
        vouches = (
            chain.result == "pass"
            and chain.sealer in self.trusted_arc_sealers
            and _forwarder_saw_pass(chain, verdict.from_domain)
        )
        if not vouches:
            why = _arc_refusal(chain, self.trusted_arc_sealers)
            return replace(verdict, arc=chain.result, explanation=f"{verdict.explanation} {why}")
        sentence = (
            f"DMARC of {verdict.from_domain} failed here, but the message came through "
            f"{chain.sealer}, a trusted forwarder whose ARC seal validates and which found "
            "DMARC passing before it forwarded the message."
        )
        return replace(verdict, arc="pass", vouched_by=chain.sealer, explanation=sentence)


def _dmarc_verdict(evidence: _Evidence, record: DmarcRecord | None, raw: bytes) -> Verdict:
    from_domain, spf = evidence.from_domain, evidence.spf
    dkim_result = _dkim_summary(evidence)
    passing_dkim = _passing_dkim_domains(evidence)
    strict_spf = record.strict_spf if record else False
    strict_dkim = record.strict_dkim if record else False
    aligned_dkim = [d for d in passing_dkim if aligned(d, from_domain, strict=strict_dkim)]
    spf_aligned = spf.result == "pass" and aligned(spf.domain, from_domain, strict=strict_spf)
    aligned_domain = aligned_dkim[0] if aligned_dkim else (spf.domain if spf_aligned else "")
    border_dmarc = evidence.border.first("dmarc") if evidence.border else None
    base = Verdict(
        "none", spf.result, dkim_result, "none", aligned_domain, "", "",
        from_domain, spf.domain, tuple(s.domain for s in evidence.dkim),
        source=f"border:{evidence.border.authserv_id}" if evidence.border else "local",
    )  # fmt: skip
    if border_dmarc is not None and border_dmarc.result in ("pass", "fail"):
        passed = border_dmarc.result == "pass"
        return _judged(base, record, raw, passed=passed, by=base.source.partition(":")[2])
    if aligned_domain:
        return _judged(base, record, raw, passed=True)
    if record is None:
        sentence = f"{from_domain} publishes no DMARC policy; nothing aligned: " + _what_passed(
            base
        )
        return replace(base, explanation=sentence)
    return _judged(base, record, raw, passed=False)


def _judged(
    base: Verdict, record: DmarcRecord | None, raw: bytes, *, passed: bool, by: str = ""
) -> Verdict:
    domain = base.from_domain
    who = f"the border server {by} found that " if by else ""
    if passed:
        how = f"aligned {_aligned_how(base)}"
        if by:
            how = f"the border server {by} found it passing" + (
                f" ({how})" if base.aligned_domain else ""
            )
        policy = record.policy_for(domain) if record else ""
        sentence = f"DMARC passes for {domain}: {how}."
        return replace(base, dmarc="pass", policy=policy, explanation=sentence)
    if record is None:  # only a border's verdict gets here without a record of ours
        return replace(base, dmarc="fail", explanation=f"DMARC fails for {domain}: {who}it fails.")
    if record.policy_for(domain) == "none":
        sentence = (
            f"{record.domain} publishes DMARC p=none (monitoring only): nothing is asked of "
            f"mail from {domain}. Nothing aligned: {_what_passed(base)}"
        )
        return replace(base, dmarc="none", policy="none", explanation=sentence)
    policy = record.applied_policy(domain, raw)
    sentence = (
        f"DMARC fails for {domain} (policy {policy}): {who}neither an SPF pass nor a valid "
        f"DKIM signature aligns with the From domain; {_what_passed(base)}"
    )
    return replace(base, dmarc="fail", policy=policy, explanation=sentence)


def _aligned_how(verdict: Verdict) -> str:
    if verdict.aligned_domain in verdict.dkim_domains and verdict.dkim == "pass":
        return f"DKIM signature of {verdict.aligned_domain}"
    return f"SPF of {verdict.aligned_domain}"


def _what_passed(verdict: Verdict) -> str:
    spf = f"SPF {verdict.spf}" + (f" for {verdict.spf_domain}" if verdict.spf_domain else "")
    domains = ", ".join(dict.fromkeys(verdict.dkim_domains)) or "no signature"
    if verdict.dkim == "policy":
        return f"{spf}; the DKIM signature of {domains} covers only part of the body (l=)."
    return f"{spf}, DKIM {verdict.dkim} ({domains})."


def _dkim_summary(evidence: _Evidence) -> str:
    signatures = evidence.dkim
    border_pass = evidence.border.passing("dkim") if evidence.border else ()
    if any(s.passes for s in signatures) or border_pass:
        return "pass"
    if any(s.temporary for s in signatures):
        return "temperror"
    if any(s.valid and s.partial for s in signatures):
        return "policy"  # RFC 8601 2.7.1: valid for a prefix of the body only (l=), not accepted
    return "fail" if signatures else "none"


def _passing_dkim_domains(evidence: _Evidence) -> list[str]:
    local = [s.domain for s in evidence.dkim if s.passes]
    border = [r.domain for r in evidence.border.passing("dkim")] if evidence.border else []
    return list(dict.fromkeys(local + border))


def _forwarder_saw_pass(chain: ArcChain, from_domain: str) -> bool:
    results = parse_results(chain.newest_results) if chain.newest_results else None
    if results is None:
        return False
    return any(r.domain in ("", from_domain) for r in results.passing("dmarc"))


def _arc_refusal(chain: ArcChain, trusted: frozenset[str]) -> str:
    if chain.result == "none":
        return "No ARC chain vouches for it."
    if chain.result != "pass":
        return f"Its ARC chain does not validate ({chain.reason})."
    if chain.sealer not in trusted:
        return f"Its ARC chain was sealed by {chain.sealer}, which is not a trusted forwarder."
    return f"The trusted forwarder {chain.sealer} did not record a DMARC pass."


def _from_domain(raw: bytes) -> str:
    """The domain of the (first) From address; empty when there is none."""
    headers = BytesHeaderParser(policy=compat32).parsebytes(raw, headersonly=True)
    addresses = getaddresses([str(v) for v in headers.get_all("From", [])])
    for _name, address in addresses:
        if "@" in address:
            return address.rpartition("@")[2].strip().lower().rstrip(".")
    return ""


def _with_envelope(verdict: Verdict, envelope: Envelope) -> Verdict:
    return replace(verdict, client_ip=envelope.client_ip, envelope_sender=envelope.mail_from)
