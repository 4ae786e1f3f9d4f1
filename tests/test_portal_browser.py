"""The contacts' portal in a real browser: Playwright driving Debian's Chromium against the real
app, a real RQ worker delivering the outbox to a real relay, and axe-core (bundled by
axe-playwright-python) checking every portal page for serious or critical violations.

Screenshots of every page go to ``INTAKE_SCREENSHOTS`` when it names a folder (the pages can
then be looked at), else under the test's temporary folder; either way they are taken, so a
page that cannot be rendered fails here.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from axe_playwright_python.sync_playwright import Axe
from playwright.sync_api import Browser, Page, expect
from sqlalchemy import select

from intake.store.models import PortalLink
from tests.helpers import add_contact
from tests.test_browser import Site, browser, site  # noqa: F401  # the gateway on free ports
from tests.web_support import add_event, add_request

BLOCKING = ("serious", "critical")
AXE = Axe()
PHONE = {"width": 390, "height": 844}


class Shots:
    """Screenshots and the accessibility check of each page, with a line per page in
    ``axe.jsonl`` beside them."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        folder.mkdir(parents=True, exist_ok=True)

    def check(self, page: Page, name: str) -> None:
        page.screenshot(path=str(self.folder / f"{name}.png"), full_page=True)
        violations = AXE.run(page).response["violations"]
        blocking = [v for v in violations if v.get("impact") in BLOCKING]
        summary = {
            "page": name,
            "url": re.sub(r"/sign-in/[^/?]+", "/sign-in/<token>", page.url),
            "violations": [(v["id"], v.get("impact")) for v in violations],
        }
        with (self.folder / "axe.jsonl").open("a", encoding="utf-8") as log:
            log.write(json.dumps(summary) + "\n")
        assert not blocking, f"{name}: {[(v['id'], v['help'], v['nodes'][:2]) for v in blocking]}"


@pytest.fixture
def shots(tmp_path: Path) -> Shots:
    return Shots(Path(os.environ.get("INTAKE_SCREENSHOTS") or tmp_path / "shots"))


@pytest.fixture
def tab(browser: Browser) -> Iterator[Page]:  # noqa: F811  # the module's browser fixture
    context = browser.new_context(locale="en-GB", timezone_id="Europe/London")
    page = context.new_page()
    page.on("dialog", lambda dialog: pytest.fail(f"a dialog opened: {dialog.message}"))
    yield page
    context.close()


def ask_for_link(page: Page, site: Site, address: str) -> str:  # noqa: F811
    """Ask for a link as a contact would, let the worker mail it, and read it at the relay:
    the path of the link (the mail names the configured public URL)."""
    page.goto(f"{site.url}/portal/sign-in")
    page.get_by_label("Your registered email address").fill(address)
    page.get_by_role("button", name="Mail me a sign-in link").click()
    expect(page.get_by_role("status")).to_contain_text("a sign-in link is on its way")
    site.drain()
    mails = [m for m in site.relay.messages if m["To"] == address and "sign-in" in m["Subject"]]
    assert mails, f"no sign-in mail reached the relay for {address}"
    body = mails[-1].get_body(("plain",))
    assert body is not None
    found = re.search(r"https?://[^/\s]+(/portal/sign-in/\S+)", body.get_content())
    assert found is not None
    return found.group(1)


def assert_fits_a_phone(page: Page) -> None:
    """The page does not scroll sideways on a phone, and no table scrolls inside its card."""
    page_width = page.evaluate("document.documentElement.scrollWidth")
    assert page_width <= PHONE["width"], f"{page.url} is {page_width}px wide on a phone"
    scrolling = page.evaluate(
        "[...document.querySelectorAll('.table-card')].filter(e => e.scrollWidth > e.clientWidth)"
        ".length"
    )
    assert scrolling == 0, f"{page.url}: a table scrolls sideways on a phone"


def sign_in(page: Page, site: Site, address: str) -> str:  # noqa: F811
    path = ask_for_link(page, site, address)
    page.goto(f"{site.url}{path}")
    expect(page).to_have_url(f"{site.url}/portal")
    return path


def test_a_technical_contact_does_everything_in_the_browser(
    tab: Page,
    site: Site,  # noqa: F811
    shots: Shots,
    tmp_path: Path,
) -> None:
    tab.goto(f"{site.url}/portal")
    expect(tab).to_have_url(f"{site.url}/portal/sign-in")
    shots.check(tab, "01-sign-in")
    path = ask_for_link(tab, site, "ada@acme.example")
    shots.check(tab, "02-link-sent")
    tab.goto(f"{site.url}{path}")
    expect(tab.locator("h1")).to_have_text("Acme Corp's requests")
    shots.check(tab, "03-requests-empty")

    tab.get_by_role("link", name="Log a request").first.click()
    expect(tab.locator("h1")).to_have_text("Log a request")
    expect(tab.locator("form.portal-form")).to_contain_text("available 24x7")
    shots.check(tab, "04-new-request-form")
    tab.get_by_label("1 · Critical").check()
    tab.get_by_label("Subject").fill("Exports fail since 09:00")
    tab.get_by_label("Description").fill("Every export fails with error 17.")
    tab.get_by_role("button", name="Log the request").click()
    expect(tab.locator(".field-error")).to_contain_text("around the clock (24x7)")
    shots.check(tab, "05-severity-1-needs-confirmation")

    trace = tmp_path / "export-trace.log"
    trace.write_text("ERROR 17 at 09:00:01\n")
    tab.get_by_label("2 · Serious").check()
    tab.get_by_label("Attachments (optional)").set_input_files(str(trace))
    tab.get_by_role("button", name="Log the request").click()
    (request,) = site.requests()
    expect(tab).to_have_url(f"{site.url}/portal/requests/{request.number}")
    assert (request.channel, request.severity) == ("web", 2)
    expect(tab.locator("#timeline")).to_contain_text("export-trace.log")

    site.drain()  # the worker sends the acknowledgment through the relay
    acks = [m for m in site.relay.messages if request.number in str(m["Subject"])]
    assert acks and acks[0]["To"].addresses[0].addr_spec == "ada@acme.example"
    tab.reload()
    expect(tab.locator("#timeline")).to_contain_text("Acknowledgment sent")
    shots.check(tab, "06-request-acknowledged")

    tab.get_by_label("Information to add").fill("It started after the 08:30 deployment.")
    information = tab.locator("#information-form")
    information.get_by_label("Attachments (optional)").set_input_files(str(trace))
    tab.get_by_role("button", name="Add", exact=True).click()
    expect(tab.get_by_role("status")).to_contain_text("Your information was added.")
    expect(tab.locator("#timeline")).to_contain_text("after the 08:30 deployment")

    tab.get_by_label("Why it needs escalating").fill("Month-end close is blocked.")
    tab.get_by_label("Your counterpart (manager) at your company").fill("Grace Hopper")
    tab.get_by_label("Their email address or phone number").fill("+44 20 7946 0000")
    tab.get_by_role("button", name="Ask for escalation").click()
    expect(tab.locator("#timeline")).to_contain_text("Grace Hopper")

    tab.get_by_label("Severity you ask for").select_option("1")
    tab.get_by_role("button", name="Ask for this severity").click()
    expect(tab.locator(".flash.error")).to_contain_text("needs the impact")
    shots.check(tab, "07-request-after-information-and-escalation")

    tab.get_by_role("link", name="Requests", exact=True).click()
    expect(tab.locator("table")).to_contain_text(request.number)
    shots.check(tab, "08-requests-list")
    tab.set_viewport_size(PHONE)
    shots.check(tab, "09-requests-list-phone")
    assert_fits_a_phone(tab)
    tab.goto(f"{site.url}/portal/requests/{request.number}")
    shots.check(tab, "10-request-phone")
    assert_fits_a_phone(tab)

    tab.get_by_role("button", name="Sign out").click()
    expect(tab.get_by_role("status")).to_contain_text("You are signed out.")
    shots.check(tab, "11-signed-out")
    tab.goto(f"{site.url}/portal/requests/{request.number}")
    expect(tab).to_have_url(f"{site.url}/portal/sign-in")
    tab.goto(f"{site.url}{path}")
    expect(tab.get_by_role("alert")).to_contain_text("used already")
    shots.check(tab, "12-link-used")


def test_an_expired_link_is_refused(tab: Page, site: Site, shots: Shots) -> None:  # noqa: F811
    path = ask_for_link(tab, site, "ada@acme.example")
    with site.rt.db.transaction() as session:
        link = session.scalars(select(PortalLink)).one()
        link.expires_at = link.created_at
    tab.goto(f"{site.url}{path}")
    expect(tab.get_by_role("alert")).to_contain_text("expired")
    shots.check(tab, "13-link-expired")
    tab.goto(f"{site.url}/portal")
    expect(tab).to_have_url(f"{site.url}/portal/sign-in")


def test_another_customers_request_is_unreachable(
    tab: Page,
    site: Site,  # noqa: F811
    shots: Shots,
) -> None:
    stranger = add_contact(site.rt.db, "zed@globex.example", customer="Globex", name="Zed")
    theirs = add_request(site.rt.db, stranger, subject="Globex merger outage")
    sign_in(tab, site, "ada@acme.example")
    answer = tab.goto(f"{site.url}/portal/requests/{theirs.number}")
    assert answer is not None and answer.status == 404
    shots.check(tab, "14-other-customers-request-404")
    tab.goto(f"{site.url}/portal?status=all&q={theirs.number}")
    expect(tab.locator("main")).not_to_contain_text("Globex merger outage")
    expect(tab.locator(".empty")).to_contain_text("No requests match")


def test_an_end_user_may_log_only_platform_and_recording_problems(
    tab: Page,
    site: Site,  # noqa: F811
    shots: Shots,
) -> None:
    add_contact(site.rt.db, "eu@acme.example", role="end_user", name="Eve User")
    sign_in(tab, site, "eu@acme.example")
    expect(tab.locator("main")).to_contain_text("platform and recording problems")
    tab.get_by_role("link", name="Log a request").first.click()
    tab.get_by_label("Subject").fill("Licence question")
    tab.get_by_label("Description").fill("How many seats do we have?")
    tab.get_by_role("button", name="Log the request").click()
    expect(tab.get_by_role("alert")).to_contain_text("platform and recording problems only")
    shots.check(tab, "15-end-user-refused")
    assert site.requests() == []
    tab.get_by_label("Subject").fill("[Recording] Calls of 3 May missing")
    tab.get_by_role("button", name="Log the request").click()
    (request,) = site.requests()
    expect(tab).to_have_url(f"{site.url}/portal/requests/{request.number}")
    expect(tab.locator("#escalation-form")).to_have_count(0)  # end users follow; they do not act
    shots.check(tab, "16-end-user-request")


def test_an_inactive_contact_is_told_why(tab: Page, site: Site, shots: Shots) -> None:  # noqa: F811
    contact = add_contact(site.rt.db, "old@acme.example", active=False, name="Old Timer")
    sr = add_request(site.rt.db, contact, subject="Old problem")
    with site.rt.db.transaction() as session:
        add_event(session, sr.id, "status_report", text="Looking into it.")
    sign_in(tab, site, "old@acme.example")
    expect(tab.get_by_role("alert")).to_contain_text("no longer active")
    shots.check(tab, "17-inactive-contact")
