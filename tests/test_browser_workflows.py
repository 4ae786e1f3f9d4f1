"""The workflows after intake in a real browser (Playwright, Debian's headless Chromium): a
contact's request for another severity accepted, a reply, a status report, an assignment that
meets the goal, an escalation and its action plan; the mail each sends checked at the relay."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

from tests.helpers import Relay, make_mail
from tests.test_browser import Site, browser, page, running_site, sign_in

__all__ = ["browser", "page"]  # the fixtures, shared with the other browser tests
MANAGERS = [{"name": "Grace", "email": "grace@desk.example", "level": 1}]


@pytest.fixture
def site(tmp_path: Path, sqlite_template: Path, relay: Relay, redis_url: str) -> Iterator[Site]:
    tables = {"escalation": {"managers": MANAGERS}}
    with running_site(tmp_path, sqlite_template, relay, redis_url, tables) as started:
        yield started


def test_severity_request_reply_report_assignment_escalation_and_plan(
    page: Page, site: Site
) -> None:
    site.mail(make_mail("ada@acme.example", "[Sev2] Exports fail since 09:00"))
    site.drain()
    (request,) = site.requests()
    number = request.number
    reply = make_mail(
        "ada@acme.example",
        f"Re: [{number}] worse now",
        "Severity: 1\nSince 10:00 nobody in finance can export; the month-end close is blocked.\n",
    )
    # A reply to the acknowledgment: our signed token in In-Reply-To.
    reply["In-Reply-To"] = site.relay.messages[0]["Message-ID"]
    site.mail(reply)
    site.drain()
    sign_in(page, site)
    page.goto(f"{site.url}/requests/{number}")

    pending = page.locator("#severity-requests")
    expect(pending).to_contain_text("2 → 1")
    expect(pending).to_contain_text("nobody in finance can export")
    pending.get_by_role("button", name="Accept").click()
    expect(page.locator(".flash")).to_contain_text("Severity changed as the contact asked")
    expect(page.locator("h1")).to_contain_text("Sev 1")
    expect(page.locator("#severity-requests")).to_have_count(0)

    page.select_option("#rep-kind", "reply")
    page.fill("#rep-body", "We are looking at the exporter now.")
    page.click("#reply-form button[type=submit]")
    expect(page.locator(".flash")).to_contain_text("Reply sent to the contact.")
    expect(page.locator("#timeline")).to_contain_text("We are looking at the exporter now.")
    expect(page.locator("#facts")).not_to_contain_text("met")  # nobody assigned yet

    page.select_option("#rep-kind", "status_report")
    page.fill("#rep-body", "The exporter is restarted; exports run again.")
    page.click("#reply-form button[type=submit]")
    expect(page.locator("#timeline li.status_report")).to_contain_text("exports run again")

    page.select_option("#asg-assignee", "alice")
    page.click("#assign-form button[type=submit]")
    expect(page.locator("#facts .badge.met")).to_have_text("met")

    page.fill("#esc-reason", "The customer's CFO asked for a manager.")
    page.fill("#esc-counterpart", "Bob Stone, CFO")
    page.click("#escalate-form button[type=submit]")
    expect(page.locator(".flash")).to_contain_text("Escalated")
    expect(page.locator("#facts")).to_contain_text("level 1, owned by Grace")

    page.fill("#plan-plan", "Grace calls Bob daily at 09:00 until the fix ships.")
    page.click("#plan-form button[type=submit]")
    expect(page.locator("#timeline li.action_plan")).to_contain_text("Grace calls Bob daily")

    site.drain()
    to_ada = [str(m["Subject"]) for m in site.relay.messages if "ada@acme.example" in str(m["To"])]
    assert [re.sub(r"^\[SR-\d+\] ", "", s) for s in to_ada] == [
        "Received: [Sev2] Exports fail since 09:00",
        "Severity 1 requested",
        "Severity changed to 1",
        "Re: [Sev2] Exports fail since 09:00",
        "Status report: [Sev2] Exports fail since 09:00",
        "Assigned to alice",
        "Escalated to Grace",
        "Action plan",
    ]
    assert any(str(m["To"]) == "grace@desk.example" for m in site.relay.messages)
