"""Verifying who sent a message: DMARC over SPF and DKIM, ARC from trusted forwarders, and
trusted Authentication-Results.

:func:`verifier_from_settings` builds the one :class:`SenderVerifier` a process needs (its DNS
cache is shared); its ``verify`` gives a frozen :class:`Verdict`.
"""

from __future__ import annotations

from intake.senderauth.resolver import Resolver
from intake.senderauth.verdict import Envelope, SenderVerifier, Verdict
from intake.settings import Settings

__all__ = ["Envelope", "SenderVerifier", "Verdict", "verifier_from_settings"]


def verifier_from_settings(settings: Settings) -> SenderVerifier:
    return SenderVerifier(
        Resolver(settings.dns_resolver),
        trusted_authserv_ids=settings.trusted_authserv_ids,
        trusted_arc_sealers=settings.trusted_arc_sealers,
    )
