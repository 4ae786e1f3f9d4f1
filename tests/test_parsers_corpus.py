"""The real-world mail corpus (tests/conftest.py's `corpus`: INTAKE_TEST_CORPUS) through the
parsers.

Every file goes through read_headers, content_digest and parse_body without an exception, and
the manifest's ``kind`` column is held against ``HeaderSummary.automatic``:

- machine-sent kinds (auto-reply, challenge-response, bulk, report, bounce, arf, mdn) are
  detected, each with the reason named below; the few that the headers cannot give away are
  listed in ``UNDETECTED`` with why, and are asserted to stay undetected so the list stays exact;
- delivery reports (RFC 3464 DSNs, RFC 3798 MDNs, RFC 5965 ARF) are "bounce";
- the negative controls (kinds plain, negative and dkim-message) are not automatic, except
  one marketing mail filed as plain that carries List-Unsubscribe.
"""

from __future__ import annotations

import csv
from collections import Counter
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import pytest

from parsers import content_digest, parse_body, read_headers
from tests.conftest import CORPUS

pytestmark = pytest.mark.usefixtures("corpus")
MACHINE_KINDS = ("auto-reply", "challenge-response", "bulk", "report", "bounce", "arf", "mdn")
NEGATIVE_KINDS = ("plain", "negative", "dkim-message")
REASONS = (None, "auto_submitted", "list_mail", "bounce")

# The reason each machine kind gets, and the files that get another one, with why.
KIND_REASON = {
    "auto-reply": "auto_submitted",
    "report": "auto_submitted",  # DMARC aggregate and SMTP TLS reports
    "bulk": "list_mail",
    "bounce": "bounce",
    "arf": "bounce",
    "mdn": "bounce",
    "challenge-response": "auto_submitted",
}
OTHER_REASON = {
    # Boxbe sends its challenge as a multipart/report delivery-status: a bounce by its headers.
    "auto/bounceparser-boxbe-cr.eml": "bounce",
    "auto/bounceparser-boxbe-cr2.eml": "bounce",
    # Apple's "unsubscribe" auto-reply (text/plain, Auto-Submitted: auto-replied), filed as arf.
    "bounces/sisimai-arf-26.eml": "auto_submitted",
    # Bounces relayed to a list owner by the list server: List-* headers but no bounce header.
    "bounces/flufl-dumbass_01.eml": "list_mail",
    "bounces/flufl-microsoft_03.eml": "list_mail",
    "bounces/sisimai-lhost-fml-02.eml": "list_mail",
    # An Amazon SNS notification carrying an SES bounce in JSON (x-amz-sns-message-id).
    "bounces/sisimai-lhost-amazonses-12.eml": "auto_submitted",
}
UNDETECTED = {
    # An Exchange newsletter with no list, bulk or auto header at all: Subject "1", From
    # "Finntack Newsletter <newsletter@...>". Only a guess on names could catch it, and such a
    # guess would also catch people.
    "auto/phpmime-m0020.eml": "no machine header",
    # "non remis" notice written like a personal reply, from a person's address.
    "bounces/flufl-simple_20.eml": "no machine header, human-style subject",
    # Apache James bounce: From post_master@, Subject "Re:Test message", multipart/mixed; only
    # its body says it is a bounce, and read_headers reads headers only.
    "bounces/sisimai-lhost-apachejames-01.eml": "bounce visible in the body only",
    # (kind "loop", the helpdesk's own address as From, is not listed under MACHINE_KINDS:
    # it needs the gateway's configuration, which the parsers do not have.)
}
NEGATIVE_EXCEPTIONS = {
    # Infusionsoft marketing mail filed as plain, with List-Unsubscribe (RFC 2369): list mail.
    "plain/phpmime-m0015.eml": "list_mail",
}


@dataclass(frozen=True)
class Row:
    path: str
    kind: str
    note: str


@cache
def manifest() -> tuple[Row, ...]:
    with (CORPUS / "MANIFEST.tsv").open(newline="", encoding="utf-8") as handle:
        rows = csv.DictReader(handle, delimiter="\t")
        return tuple(Row(r["path"], r["kind"], r["note"]) for r in rows if r["path"] != "path")


def corpus_files() -> list[Path]:
    """Every file in the corpus but the raw TNEF payloads (winmail.dat streams, not mail)."""
    raw_payloads = CORPUS / "multipart" / "tnef"
    return sorted(
        path
        for path in CORPUS.rglob("*")
        if path.is_file() and not (path.parent == raw_payloads and path.suffix != ".eml")
    )


@cache
def automatic(path: str) -> str | None:
    return read_headers((CORPUS / path).read_bytes()).automatic


def rows_of(*kinds: str) -> list[Row]:
    return [row for row in manifest() if row.kind in kinds and row.path.endswith(".eml")]


def test_the_manifest_describes_files_that_exist() -> None:
    missing = [row.path for row in manifest() if not (CORPUS / row.path).is_file()]
    assert not missing
    assert len(rows_of(*MACHINE_KINDS)) >= 300
    assert len(rows_of(*NEGATIVE_KINDS)) >= 50


def test_every_corpus_file_goes_through_the_parsers() -> None:
    files = corpus_files()
    assert len(files) >= 900
    failures = []
    for path in files:
        raw = path.read_bytes()
        try:
            summary = read_headers(raw)
            digest = content_digest(raw)
            body = parse_body(raw)
        except Exception as error:  # collect them all, then fail once with the list
            failures.append(f"{path.relative_to(CORPUS)}: {error!r}")
            continue
        assert len(summary.subject) <= 998
        assert "\n" not in summary.subject
        assert summary.automatic in REASONS
        assert summary.from_address == summary.from_address.lower()
        assert len(digest) == 64
        assert len(body.text) <= 1_000_000
        assert all(a.filename and "/" not in a.filename for a in body.attachments)
    assert not failures, "\n".join(failures)


@pytest.mark.parametrize("kind", MACHINE_KINDS)
def test_machine_sent_mail_is_detected_with_its_reason(kind: str) -> None:
    rows = rows_of(kind)
    assert rows
    wrong = {}
    for row in rows:
        expected = None if row.path in UNDETECTED else OTHER_REASON.get(row.path, KIND_REASON[kind])
        if automatic(row.path) != expected:
            wrong[row.path] = (automatic(row.path), expected, row.note)
    assert not wrong


def test_delivery_reports_are_bounces() -> None:
    """Every DSN, MDN and ARF report the manifest names as such (multipart/report) is a bounce."""
    reports = [
        row
        for row in rows_of("bounce", "arf", "mdn")
        if row.path not in OTHER_REASON
        and (
            "multipart/report" in row.note
            or "report-type" in row.note
            or row.kind == "mdn"
            or row.note.startswith("ARF feedback report")
        )
    ]
    assert len(reports) >= 150
    assert Counter(automatic(row.path) for row in reports) == {"bounce": len(reports)}


def test_negative_controls_are_not_automatic() -> None:
    rows = rows_of(*NEGATIVE_KINDS)
    found = {row.path: automatic(row.path) for row in rows}
    expected = {row.path: NEGATIVE_EXCEPTIONS.get(row.path) for row in rows}
    assert found == expected


def test_detection_counts_per_kind() -> None:
    """The totals, as a readable summary of the expectations above."""
    counts = {
        kind: sum(automatic(row.path) is not None for row in rows_of(kind))
        for kind in MACHINE_KINDS
    }
    totals = {kind: len(rows_of(kind)) for kind in MACHINE_KINDS}
    undetected = Counter(row.kind for row in manifest() if row.path in UNDETECTED)
    assert counts == {kind: totals[kind] - undetected[kind] for kind in MACHINE_KINDS}
