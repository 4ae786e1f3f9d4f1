"""Severity markers, request numbers and end-user categories found in subjects and bodies."""

from __future__ import annotations

import pytest

from parsers import (
    end_user_category,
    request_numbers_in,
    severity_from_body,
    severity_from_subject,
)


@pytest.mark.parametrize(
    ("subject", "severity"),
    [
        ("[Sev1] Production down", 1),
        ("[Sev 2] Recording fails", 2),
        ("[Severity 3] Typo in docs", 3),
        ("Sev4: question about invoices", 4),
        ("[SEV-1] outage", 1),
        ("[sev1] lower case", 1),
        ("[ Sev_2 ] spaced", 2),
        ("Re: [SR-000123] [Sev2] still failing", 2),
        ("Severity 3: slow login", 3),
        ("Outage [Sev1] and later [Sev3]", 1),
        ("[Sev5] out of range", None),
        ("[Sev0] out of range", None),
        ("[Sev12] two digits", None),
        ("Sev14: two digits", None),
        ("Sev1 without a delimiter", None),
        ("Asev1: not a word", None),
        ("[Sev١] Arabic-Indic digit", None),
        ("The severity is high", None),
        ("", None),
    ],
)
def test_severity_from_subject(subject: str, severity: int | None) -> None:
    assert severity_from_subject(subject) == severity


@pytest.mark.parametrize(
    ("text", "severity"),
    [
        ("Hello,\nSeverity: 2\nThanks", 2),
        ("severity:1", 1),
        ("   SEVERITY :  4  (information)", 4),
        ("\tSeverity: 3\r\nmore", 3),
        ("Severity: 7\nSeverity: 2", 2),
        ("Severity: 12", None),
        ("> Severity: 1 (quoted from an earlier mail)", None),
        ("The Severity: 1 is not at the start of a line", None),
        ("Severity: high", None),
        ("Severity 2", None),
        ("", None),
    ],
)
def test_severity_from_body(text: str, severity: int | None) -> None:
    assert severity_from_body(text) == severity


def test_severity_from_body_reads_only_the_first_200_lines() -> None:
    assert severity_from_body("\n" * 199 + "Severity: 2") == 2
    assert severity_from_body("\n" * 200 + "Severity: 2") is None


def test_severity_from_body_is_fast_on_huge_text() -> None:
    assert severity_from_body("x" * 5_000_000) is None


@pytest.mark.parametrize(
    ("subject", "numbers"),
    [
        ("Re: [SR-000123] Received: outage", ("SR-000123",)),
        ("[sr-000123] lower case", ("SR-000123",)),
        ("[SR-1234567] seven digits", ("SR-1234567",)),
        ("[SR-000002] and [SR-000001] and [SR-000002]", ("SR-000002", "SR-000001")),
        ("[ SR-000123 ] padded", ("SR-000123",)),
        ("SR-000123 without brackets", ()),
        ("[SR-12345] five digits", ()),
        ("[SR-000123x] trailing junk", ()),
        ("[SR000123] no dash", ()),
        ("[SR-٠٠٠١٢٣] Arabic-Indic digits", ()),
        ("", ()),
    ],
)
def test_request_numbers_in(subject: str, numbers: tuple[str, ...]) -> None:
    assert request_numbers_in(subject) == numbers


@pytest.mark.parametrize(
    ("subject", "category"),
    [
        ("[Platform] login page blank", "platform"),
        ("[Recording] no audio", "recording"),
        ("[RECORDING] shouting", "recording"),
        ("The platform is slow", "platform"),
        ("Recording missing since Monday", "recording"),
        ("Re: re-recording of the call", "recording"),
        ("Recording on the platform", "recording"),
        ("Platforms and recordings", None),
        ("platform_admin password", None),
        ("Invoice question", None),
        ("", None),
    ],
)
def test_end_user_category(subject: str, category: str | None) -> None:
    assert end_user_category(subject) == category
