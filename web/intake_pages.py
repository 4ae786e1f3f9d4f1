"""The staff pages about intake: the log of every decision with its reason in words, one entry
with the message's text, and the quarantine with release and discard.

A release commits first and enqueues after (the worker opens and acknowledges the request);
when Redis is down the sweep picks the row up later, so a release is never lost.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

from flask import Blueprint, flash, redirect, render_template, url_for
from flask_login import current_user
from sqlalchemy import ColumnElement, or_, select
from sqlalchemy.orm import Session, load_only
from werkzeug.exceptions import NotFound
from werkzeug.wrappers import Response

from intake.jobs.jobs import enqueue_quietly
from intake.jobs.queue import make_queue
from intake.requests import quarantine
from intake.requests.refused import ActionRefused
from intake.store.intake_log import OUTCOMES, REASON_WORDS, body_preview
from intake.store.models import IntakeRecord
from web import api, search, services
from web.forms import ConfirmForm
from web.login import require_staff_page

bp = Blueprint("intake_pages", __name__)
bp.before_request(require_staff_page)

PAGE_SIZE = 50
FILTERS = ("outcome", "channel", "reason", "q")


@bp.get("/intake")
def intake_log() -> str:
    conditions = _log_conditions()
    rows, next_cursor = _page(conditions)
    return render_template(
        "intake.html",
        rows=rows,
        next_cursor=next_cursor,
        filters={name: api.text_arg(name) or "" for name in FILTERS},
        outcomes=OUTCOMES,
        channels=api.CHANNELS,
        reasons=sorted(REASON_WORDS),
    )


def _log_conditions() -> list[ColumnElement[bool]]:
    conditions: list[ColumnElement[bool]] = []
    if (outcome := api.choice_arg("outcome", OUTCOMES)) is not None:
        conditions.append(IntakeRecord.outcome == outcome)
    if (channel := api.choice_arg("channel", api.CHANNELS)) is not None:
        conditions.append(IntakeRecord.channel == channel)
    if (reason := api.text_arg("reason")) is not None:
        conditions.append(IntakeRecord.reason == reason)
    if (text := api.text_arg("q")) is not None:
        conditions.append(_text_condition(text))
    return conditions


def _text_condition(text: str) -> ColumnElement[bool]:
    """A part of an address finds its senders' messages; other text is looked for in senders
    and subjects (both in any case)."""
    if "@" in text:
        return search.contains(IntakeRecord.sender, text)
    return or_(
        search.contains(IntakeRecord.sender, text), search.contains(IntakeRecord.subject, text)
    )


def _page(conditions: list[ColumnElement[bool]]) -> tuple[list[IntakeRecord], str | None]:
    """One page of the log, newest first, by keyset; never the raw messages."""
    limit, after = api.page_args()
    limit = min(limit, PAGE_SIZE)
    with services().db.sessions() as session:
        if after is not None:
            conditions = [*conditions, api.after_row(session, IntakeRecord, after)]
        rows = session.scalars(
            select(IntakeRecord)
            .where(*conditions)
            .options(
                load_only(
                    *api.INTAKE_LIST_COLUMNS,
                    IntakeRecord.detail,
                    IntakeRecord.state,
                    IntakeRecord.auth,
                )
            )
            .order_by(IntakeRecord.received_at.desc(), IntakeRecord.id.desc())
            .limit(limit + 1)
        ).all()
    more = len(rows) > limit
    return list(rows[:limit]), api.encode_cursor(rows[limit - 1].id) if more else None


@bp.get("/intake/<int:intake_id>")
def intake_entry(intake_id: int) -> str:
    with services().db.sessions() as session:
        row = session.get(IntakeRecord, intake_id) if intake_id <= api.MAX_ID else None
        if row is None:
            raise NotFound(f"There is no intake entry #{intake_id}.")
        text = body_preview(row.raw, row.size) if row.channel in ("email", "web") else ""
    return render_template("intake_entry.html", row=row, text=text, form=ConfirmForm())


@bp.get("/quarantine")
def quarantine_list() -> str:
    held = [
        IntakeRecord.outcome == quarantine.QUARANTINED,
        IntakeRecord.state != quarantine.DISCARDED,
    ]
    rows, next_cursor = _page(held)
    return render_template(
        "quarantine.html", rows=rows, next_cursor=next_cursor, form=ConfirmForm()
    )


@bp.post("/quarantine/<int:intake_id>/release")
def release(intake_id: int) -> Response:
    def done() -> None:
        svc = services()
        enqueue_quietly(make_queue(svc.settings, svc.redis), intake_id)
        flash(f"Released #{intake_id}: a worker opens its request and acknowledges it.")

    return _decide(intake_id, quarantine.release, done)


@bp.post("/quarantine/<int:intake_id>/discard")
def discard(intake_id: int) -> Response:
    return _decide(intake_id, quarantine.discard, lambda: flash(f"Discarded #{intake_id}."))


class Decide(Protocol):
    def __call__(self, session: Session, intake_id: int, *, by: str) -> object: ...


def _decide(intake_id: int, action: Decide, done: Callable[[], None]) -> Response:
    """Run a release or discard (the form's CSRF token was checked by CSRFProtect)."""
    if intake_id > api.MAX_ID:
        raise NotFound(f"There is no intake entry #{intake_id}.")
    try:
        with services().db.transaction() as session:
            action(session, intake_id, by=str(current_user.username))
    except ActionRefused as refused:
        if refused.kind == "not_found":
            raise NotFound(refused.message) from None
        flash(refused.message, "error")
    else:
        done()
    return redirect(url_for("intake_pages.quarantine_list"))
