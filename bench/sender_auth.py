"""Sender verification benchmark: the time one verdict takes, and what verifying costs the SMTP
door, against the local authoritative DNS server of the tests (tests/dns_server.py).

    .venv/bin/python bench/sender_auth.py [--rounds N] [--messages N] [--sessions N] [--repeat N]

(a) verdicts: every case of tests/senderauth_support.py (keys made here, DKIM and ARC signed
    with dkimpy) verified --rounds times; "cold" builds a new resolver (empty cache) for every
    verdict, "warm" reuses one (each case's first verdict is not counted). Median and p99.
    The SERVFAIL and timeout cases are timed apart (a timeout costs the whole budget).
(b) the verdict table: each case -> dmarc/spf/dkim/arc and the door's outcome under enforce.
(c) the door: bench/smtp_intake.py's gateway (SQLite, real Redis, its own process) and load
    client, with sender_auth off, then enforce with the cache (TTL 300 s), then enforce with
    TTL 0 (every message asks DNS again); the 50 senders' domains publish p=reject and an SPF
    record allowing 127.0.0.1, so every message passes (aligned SPF) and becomes a request.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(BENCH))

import smtp_intake  # noqa: E402
from _load import sender_addresses  # noqa: E402

from intake.senderauth import Envelope, SenderVerifier, Verdict  # noqa: E402
from intake.senderauth.resolver import Resolver  # noqa: E402
from tests.dns_server import LocalDns, Zone  # noqa: E402
from tests.senderauth_support import (  # noqa: E402
    BORDER,
    CASES,
    FORWARDER,
    Case,
    Keys,
    publish_dmarc,
    publish_spf,
    publish_world,
)

TEMPORARY = ("SERVFAIL", "timeout")


def verifier(dns: LocalDns) -> SenderVerifier:
    return SenderVerifier(
        Resolver(dns.address), trusted_authserv_ids=(BORDER,), trusted_arc_sealers=(FORWARDER,)
    )


def timed(v: SenderVerifier, raw: bytes, case: Case) -> tuple[float, Verdict]:
    started = time.perf_counter()
    verdict = v.verify(raw, Envelope(case.client_ip, case.mail_from, "mx.bench"))
    return time.perf_counter() - started, verdict


def percentile(values: list[float], q: float) -> float:
    return smtp_intake.percentile(values, q)


def ms(seconds: float) -> str:
    return f"{seconds * 1000:.1f} ms"


def verdict_times(dns: LocalDns, keys: Keys, rounds: int) -> None:
    messages = {c.name: c.build(keys) for c in CASES}
    answering = [c for c in CASES if c.name not in TEMPORARY]
    cold: list[float] = []
    warm: list[float] = []
    shared = verifier(dns)
    for case in answering:
        timed(shared, messages[case.name], case)  # fills the cache; not counted
    for _ in range(rounds):
        for case in answering:
            cold.append(timed(verifier(dns), messages[case.name], case)[0])
            warm.append(timed(shared, messages[case.name], case)[0])
    print(f"(a) one verdict, {len(cold)} verdicts each ({len(answering)} cases x {rounds}):")
    for label, values in (("cold cache", cold), ("warm cache", warm)):
        print(
            f"    {label}: median {ms(statistics.median(values))}, "
            f"p99 {ms(percentile(values, 99))}, max {ms(max(values))}"
        )
    for case in (c for c in CASES if c.name in TEMPORARY):
        seconds, verdict = timed(verifier(dns), messages[case.name], case)
        print(f"    {case.name}: {ms(seconds)} -> {verdict.dmarc}")


def outcome(verdict: Verdict) -> str:
    if verdict.temporary:
        return "451 4.7.0"
    return "quarantined" if verdict.fails_policy else "accepted"


def verdict_table(dns: LocalDns, keys: Keys) -> None:
    print("\n(b) verdicts (enforce):")
    print(f"    {'case':<50} {'dmarc':<10} {'spf':<10} {'dkim':<10} {'arc':<5} outcome")
    for case in CASES:
        _, v = timed(verifier(dns), case.build(keys), case)
        row = f"{case.name:<50} {v.dmarc:<10} {v.spf:<10} {v.dkim:<10} {v.arc:<5} {outcome(v)}"
        print("    " + row)


class AuthBench(smtp_intake.Bench):
    """smtp_intake's gateway runs, with this run's sender_auth and name server."""

    dns_address = ""

    def gateway_args(self, url: str) -> list[str]:
        return [*super().gateway_args(url), "--dns-resolver", self.dns_address]


def publish_senders(zone: Zone) -> None:
    for domain in sorted({a.rpartition("@")[2] for a in sender_addresses()}):
        publish_dmarc(zone, domain, "v=DMARC1; p=reject")
        publish_spf(zone, domain, "v=spf1 ip4:127.0.0.1 -all")


def door_throughput(dns: LocalDns, args: argparse.Namespace) -> None:
    workdir = Path(tempfile.mkdtemp(prefix="intake-bench-auth-"))
    databases = smtp_intake.SqliteDatabases(workdir)
    databases.prepare()
    base = smtp_intake.parse_args(
        ["--db", "sqlite", "--messages", str(args.messages), "--sessions", str(args.sessions)]
    )
    scenarios = (
        ("off", "off", 300),
        ("enforce, cached", "enforce", 300),
        ("enforce, TTL 0", "enforce", 0),
    )
    results: dict[str, list[smtp_intake.Run]] = {name: [] for name, _, _ in scenarios}
    try:
        for _ in range(args.repeat):
            for name, mode, ttl in scenarios:
                dns.zone.ttl = ttl
                bench = AuthBench(
                    replace_args(base, sender_auth=mode), workdir, {"sqlite": databases}
                )
                bench.dns_address = dns.address
                run = bench.measure_gateway("sqlite", args.sessions)
                results[name].append(run)
                print(
                    f"    run {name}: {run.rate:.0f} msgs/s p50 {ms(run.p50)} "
                    f"p99 {ms(run.p99)} errors {run.errors}",
                    flush=True,
                )
    finally:
        databases.close()
    print(
        f"\n(c) the SMTP door (SQLite, {args.sessions} sessions, {args.messages} messages/run, "
        f"median of {args.repeat}):"
    )
    off = statistics.median(r.rate for r in results["off"])
    for name, _, _ in scenarios:
        rate = statistics.median(r.rate for r in results[name])
        p99 = statistics.median(r.p99 for r in results[name])
        print(f"    {name:<16} {rate:6.0f} msgs/s ({rate / off:.0%} of off), p99 {ms(p99)}")


def replace_args(args: argparse.Namespace, **changes: object) -> argparse.Namespace:
    return argparse.Namespace(**(vars(args) | changes))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=30, help="verdicts per case (default 30)")
    parser.add_argument("--messages", type=int, default=1000, help="messages per door run")
    parser.add_argument("--sessions", type=int, default=8, help="SMTP sessions (default 8)")
    parser.add_argument("--repeat", type=int, default=3, help="door runs per scenario")
    parser.add_argument("--skip-door", action="store_true", help="only (a) and (b)")
    args = parser.parse_args()
    print("Sender verification benchmark")
    print("command:  " + " ".join([Path(sys.executable).name, *sys.argv]))
    keys = Keys.generate()
    dns = LocalDns().start()
    try:
        publish_world(dns.zone, keys)
        verdict_times(dns, keys, args.rounds)
        verdict_table(dns, keys)
        if not args.skip_door:
            publish_senders(dns.zone)
            door_throughput(dns, args)
    finally:
        dns.stop()


if __name__ == "__main__":
    main()
