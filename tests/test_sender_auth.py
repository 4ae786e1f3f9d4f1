"""Sender verification on real cryptography: keys made here, messages signed and ARC-sealed
with dkimpy, every DNS answer from the local authoritative server (tests/dns_server.py)."""

from __future__ import annotations

import time

import pytest
from hypothesis import HealthCheck, given
from hypothesis import settings as examples
from hypothesis import strategies as st

from intake.errors import ConfigError
from intake.importer.rows import read_rows
from intake.senderauth import Envelope, SenderVerifier, Verdict
from intake.senderauth.dmarc import organisational_domain, parse_record
from intake.senderauth.resolver import VERDICT_BUDGET, Deadline, DnsTemporaryError, Resolver
from intake.settings import load_settings
from tests.dns_server import LocalDns, Zone
from tests.senderauth_support import (
    BORDER,
    CASES,
    FORWARDER,
    OTHER_IP,
    Case,
    Keys,
    message,
    publish_dmarc,
)


@pytest.fixture
def verifier(local_dns: LocalDns, world: Zone) -> SenderVerifier:
    return SenderVerifier(
        Resolver(local_dns.address),
        trusted_authserv_ids=(BORDER,),
        trusted_arc_sealers=(FORWARDER,),
    )


def verdict_of(case: Case, keys: Keys, verifier: SenderVerifier) -> Verdict:
    return verifier.verify(case.build(keys), Envelope(case.client_ip, case.mail_from, "mx.test"))


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_each_case_gets_its_verdict(case: Case, keys: Keys, verifier: SenderVerifier) -> None:
    verdict = verdict_of(case, keys, verifier)
    seen = (verdict.dmarc, verdict.spf, verdict.dkim, verdict.arc, verdict.fails_policy)
    want = case.expected
    assert seen == (want.dmarc, want.spf, want.dkim, want.arc, want.held), verdict.explanation
    assert verdict.explanation.endswith(".")
    assert verdict.client_ip == case.client_ip and verdict.envelope_sender == case.mail_from


def test_an_aligned_pass_names_the_domain_and_the_policy(
    keys: Keys, verifier: SenderVerifier
) -> None:
    dkim_case, spf_case = CASES[0], CASES[2]
    by_dkim, by_spf = verdict_of(dkim_case, keys, verifier), verdict_of(spf_case, keys, verifier)
    assert (by_dkim.aligned_domain, by_dkim.policy) == ("acme.example", "reject")
    assert "DKIM signature of acme.example" in by_dkim.explanation
    assert by_spf.aligned_domain == "acme.example" and "SPF of acme.example" in by_spf.explanation


def test_a_failure_says_what_passed_and_for_whom(keys: Keys, verifier: SenderVerifier) -> None:
    verdict = verdict_of(CASES[1], keys, verifier)  # DKIM of other.example only
    assert verdict.aligned_domain == "" and verdict.dkim_domains == ("other.example",)
    assert "policy reject" in verdict.explanation and "other.example" in verdict.explanation


def test_the_border_and_the_forwarder_are_named(keys: Keys, verifier: SenderVerifier) -> None:
    border = next(c for c in CASES if c.name.startswith("trusted Authentication"))
    arc = next(c for c in CASES if c.name == "ARC chain from a trusted forwarder")
    assert verdict_of(border, keys, verifier).source == f"border:{BORDER}"
    vouched = verdict_of(arc, keys, verifier)
    assert vouched.vouched_by == FORWARDER and FORWARDER in vouched.explanation


def test_without_trusted_ids_no_authentication_results_counts(
    local_dns: LocalDns, world: Zone, keys: Keys
) -> None:
    border = next(c for c in CASES if c.name.startswith("trusted Authentication"))
    verdict = verdict_of(border, keys, SenderVerifier(Resolver(local_dns.address)))
    assert (verdict.dmarc, verdict.source) == ("fail", "local")  # the border IP fails SPF


def test_an_arc_chain_without_trusted_sealers_vouches_for_nothing(
    local_dns: LocalDns, world: Zone, keys: Keys
) -> None:
    arc = next(c for c in CASES if c.name == "ARC chain from a trusted forwarder")
    verdict = verdict_of(arc, keys, SenderVerifier(Resolver(local_dns.address)))
    assert verdict.fails_policy and verdict.vouched_by == ""


def test_a_silent_name_server_costs_less_than_two_seconds(verifier: SenderVerifier) -> None:
    started = time.monotonic()
    verdict = verifier.verify(
        message("Ada <ada@silent.example>"), Envelope(OTHER_IP, "a@silent.example")
    )
    assert verdict.temporary
    assert time.monotonic() - started < 2.0


def test_the_cache_answers_again_without_asking(
    local_dns: LocalDns, world: Zone, keys: Keys
) -> None:
    verifier = SenderVerifier(Resolver(local_dns.address))
    case = CASES[0]
    verdict_of(case, keys, verifier)
    asked = len(world.queries)
    assert asked > 0
    assert verdict_of(case, keys, verifier).dmarc == "pass"
    assert len(world.queries) == asked


def test_the_cache_honours_the_ttl(local_dns: LocalDns, dns_zone: Zone) -> None:
    now = [1000.0]
    resolver = Resolver(local_dns.address, clock=lambda: now[0])
    dns_zone.ttl = 60
    publish_dmarc(dns_zone, "acme.example", "v=DMARC1; p=reject")
    assert resolver.txt("_dmarc.acme.example", Deadline.after()) == ("v=DMARC1; p=reject",)
    publish_dmarc(dns_zone, "acme.example", "v=DMARC1; p=none")
    now[0] += 59
    assert resolver.txt("_dmarc.acme.example", Deadline.after()) == ("v=DMARC1; p=reject",)
    now[0] += 2
    assert resolver.txt("_dmarc.acme.example", Deadline.after()) == ("v=DMARC1; p=none",)


def test_nxdomain_is_an_answer_and_servfail_is_not(local_dns: LocalDns, dns_zone: Zone) -> None:
    resolver = Resolver(local_dns.address)
    dns_zone.servfail.add("broken.example")
    assert resolver.txt("_dmarc.nowhere.example", Deadline.after()) == ()
    with pytest.raises(DnsTemporaryError):
        resolver.txt("_dmarc.broken.example", Deadline.after())


def test_a_spent_budget_is_a_temporary_failure(local_dns: LocalDns, dns_zone: Zone) -> None:
    with pytest.raises(DnsTemporaryError):
        Resolver(local_dns.address).txt("acme.example", Deadline(time.monotonic() - 1))
    assert VERDICT_BUDGET < 2


def test_the_organisational_domain_comes_from_the_public_suffix_list() -> None:
    assert organisational_domain("eu.mail.acme.example") == "acme.example"
    assert organisational_domain("support.acme.co.uk") == "acme.co.uk"
    assert organisational_domain("someone.github.io") == "someone.github.io"


def test_dmarc_records_are_read_by_their_tags() -> None:
    record = parse_record("acme.example", "v=DMARC1; p=quarantine; sp=reject; pct=0; adkim=s")
    assert record is not None
    assert (record.policy, record.subdomain_policy, record.percent) == ("quarantine", "reject", 0)
    assert record.strict_dkim and not record.strict_spf
    assert record.applied_policy("acme.example", b"any message") == "none"  # left out by pct=0
    assert record.applied_policy("eu.acme.example", b"any message") == "quarantine"
    assert parse_record("acme.example", "v=DMARC1; p=bogus") is None


def test_the_import_file_takes_a_customers_own_mode_and_nothing_else() -> None:
    text = IMPORT.format(mode="monitor") + IMPORT.format(mode="lenient").replace("Acme", "Globex")
    rows, problems = read_rows(text)
    assert rows[0].sender_auth == "monitor"
    assert problems == [
        "line 9 (customer \"Globex Corp\"): sender_auth: 'lenient' is not one of "
        "'enforce', 'monitor', 'off'"
    ]
    (without,), _ = read_rows(IMPORT.format(mode="x").replace('sender_auth = "x"\n', ""))
    assert without.sender_auth == ""


IMPORT = """
[[customers]]
name = "Acme Corp"
offering = "IXCloud"
support_start = 2026-01-01
support_end = 2027-12-31
sender_auth = "{mode}"
"""


@pytest.mark.parametrize(
    ("value", "accepted"),
    [("127.0.0.1:5353", True), ("ns.example", True), ("[::1]:53", True), ("127.0.0.1:0", False),
     ("127.0.0.1:dns", False), (":53", False)],
)  # fmt: skip
def test_the_dns_resolver_setting_is_host_and_port(value: str, accepted: bool) -> None:
    if accepted:
        assert load_settings(env={"INTAKE_DNS_RESOLVER": value}).dns_resolver == value
    else:
        with pytest.raises(ConfigError, match="dns_resolver"):
            load_settings(env={"INTAKE_DNS_RESOLVER": value})


def test_the_trusted_parties_are_lists_of_names() -> None:
    settings = load_settings(
        env={
            "INTAKE_TRUSTED_AUTHSERV_IDS": "mx1.border.example, MX2.border.example",
            "INTAKE_TRUSTED_ARC_SEALERS": "lists.example",
        }
    )
    assert settings.trusted_authserv_ids == ("mx1.border.example", "mx2.border.example")
    assert settings.trusted_arc_sealers == ("lists.example",)


HEADERS = st.sampled_from(
    [b"From: ", b"DKIM-Signature: ", b"ARC-Seal: ", b"ARC-Message-Signature: ", b"l=",
     b"Authentication-Results: ", b"ARC-Authentication-Results: i=1; ", b"v=1; a=rsa-sha256; ",
     b"d=acme.example; s=s1; h=from; bh=; b=", b"i=1; cv=none; ", b"\r\n", b"\r\n\r\n", b"@",
     b";", b"=", b" ", b"\r\n\t"]
)  # fmt: skip


@examples(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck))
@given(parts=st.lists(HEADERS | st.binary(max_size=40), max_size=40))
def test_any_bytes_get_a_verdict_and_never_a_pass(
    parts: list[bytes], verifier: SenderVerifier
) -> None:
    """Broken or hostile headers never crash the check (which would answer 451 for ever) and
    never make a message pass for acme.example."""
    raw = b"From: ada@acme.example\r\n" + b"".join(parts)
    verdict = verifier.verify(raw, Envelope(OTHER_IP, "ada@acme.example"))
    assert verdict.dmarc in ("fail", "none", "temperror")
    if verdict.from_domain == "acme.example":
        assert verdict.dmarc == "fail" and verdict.fails_policy


@pytest.mark.parametrize(
    "domain", ["m\ufffd\ufffdchine.example", "a..b.example", "x" * 64 + ".example", "-.example"]
)
def test_a_name_that_cannot_exist_has_no_records(local_dns: LocalDns, domain: str) -> None:
    """Not a DNS failure: mail from such a From domain must not be answered 451 for ever."""
    assert Resolver(local_dns.address).txt(f"_dmarc.{domain}", Deadline.after()) == ()
