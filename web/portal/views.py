"""The contacts' portal's pages: sign-in by a mailed link, the customer's requests, logging a
request, and a request's public timeline with what a technical contact may ask of it.

The portal has its own cookies, apart from the staff session: ``intake_portal`` holds the
session's token, ``intake_portal_nonce`` the browser's nonce that binds a sign-in link to the
browser that asked for it. Every page checks the contact's standing afresh, so a contact made
inactive (or a customer whose support period ended) is told why at the next click.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any, ParamSpec, TypeVar

from flask import (
    Blueprint,
    abort,
    flash,
    g,
    make_response,
    redirect,
    render_template,
    request,
    url_for,
)
from sqlalchemy import or_
from sqlalchemy.orm import selectinload
from werkzeug.datastructures import FileStorage
from werkzeug.wrappers import Response

from intake.requests.refused import ActionRefused
from intake.store.contacts import find_contact_by_id
from intake.store.models import (
    OPEN_STATUSES,
    ServiceRequest,
    format_request_number,
    parse_request_number,
)
from intake.workflows.desk import Desk, desk_for
from web import services
from web.portal import actions, sign_in
from web.portal.access import PortalUser, find_visible, may_see, portal_user, visible_requests
from web.portal.forms import (
    EscalationRequestForm,
    FilterForm,
    InformationForm,
    NewRequestForm,
    SeverityRequestForm,
    SignInForm,
    severity_filter_choices,
    with_severities,
)
from web.portal.link_mail import sign_in_row
from web.portal.submit import Upload, add_information, log_request, send_quietly
from web.portal.timeline import public_events, public_title

bp = Blueprint("portal", __name__, url_prefix="/portal")

SESSION_COOKIE = "intake_portal"
NONCE_COOKIE = "intake_portal_nonce"
LIST_LIMIT = 200
LINK_SENT = (
    "If {address} is registered with us, a sign-in link is on its way to it. It works once, "
    "within 15 minutes, in this browser."
)
REFUSED_LINKS = {
    "unknown": "This sign-in link is not valid.",
    "used": "This sign-in link was used already: each link works once.",
    "expired": "This sign-in link has expired: links work for 15 minutes.",
    "other_browser": (
        "This sign-in link was asked for in another browser. Open it in the browser where you "
        "asked for it."
    ),
}

P = ParamSpec("P")
R = TypeVar("R")


@bp.before_request
def _load_user() -> None:
    # A form with files may be as large as a mail the SMTP door takes, and no larger.
    request.max_content_length = services().settings.max_message_size + 1024 * 1024
    g.portal_user = _signed_in_user()


def _signed_in_user() -> PortalUser | None:
    token = request.cookies.get(SESSION_COOKIE)
    if not token:
        return None
    with services().db.sessions() as session:
        contact_id = sign_in.session_contact(session, token)
        contact = find_contact_by_id(session, contact_id) if contact_id is not None else None
        return portal_user(session, contact) if contact is not None else None


def signed_in(view: Callable[P, R]) -> Callable[P, R | Response | tuple[str, int]]:
    """The page needs a signed-in contact; anyone else is sent to the sign-in page, and a
    contact who may not use the portal today is told why."""

    @wraps(view)
    def guarded(*args: P.args, **kwargs: P.kwargs) -> R | Response | tuple[str, int]:
        user: PortalUser | None = g.portal_user
        if user is None:
            return redirect(url_for("portal.sign_in_page"))
        if not user.may_act and request.endpoint != "portal.home":
            return render_template("portal/standing.html", user=user), 403
        return view(*args, **kwargs)

    return guarded


def current() -> PortalUser:
    user: PortalUser = g.portal_user
    return user


# Signing in and out


@bp.route("/sign-in", methods=["GET", "POST"])
def sign_in_page() -> str | Response | tuple[str, int]:
    if g.portal_user is not None and request.method == "GET":
        return redirect(url_for("portal.home"))
    form = SignInForm()
    if not form.validate_on_submit():
        status = 422 if request.method == "POST" else 200
        return render_template("portal/sign_in.html", form=form), status
    address = (form.email.data or "").strip()
    nonce = request.cookies.get(NONCE_COOKIE) or sign_in.new_secret()
    _send_link(address, nonce)
    page = render_template(
        "portal/sign_in.html",
        form=SignInForm(formdata=None),
        sent=LINK_SENT.format(address=address),
    )
    response = make_response(page)
    _set_cookie(response, NONCE_COOKIE, nonce, int(sign_in.LINK_LIFETIME.total_seconds()))
    return response


def _send_link(address: str, nonce: str) -> None:
    """Make the link and its mail for a registered address within the limits; the page says
    the same whatever happened, so it tells nobody which addresses are registered."""
    svc = services()
    with svc.db.transaction() as session:
        asked = sign_in.request_link(
            session, address, client=request.remote_addr or "", nonce=nonce
        )
        if asked.token is None or asked.contact_id is None:
            return
        contact = find_contact_by_id(session, asked.contact_id)
        name = contact.name if contact else ""
        row = sign_in_row(svc.settings, name=name, address=address.lower(), token=asked.token)
        session.add(row)
        session.flush()
        outbox_id = row.id
    send_quietly(svc, [outbox_id])


@bp.get("/sign-in/<token>")
def use_link(token: str) -> Response | tuple[str, int]:
    with services().db.transaction() as session:
        used = sign_in.redeem_link(session, token, request.cookies.get(NONCE_COOKIE))
        if used.contact_id is None:
            message = REFUSED_LINKS[used.refusal or "unknown"]
            return render_template("portal/link_refused.html", message=message), 410
        session_token = sign_in.open_session(session, used.contact_id)
    response = redirect(url_for("portal.home"))
    _set_cookie(
        response, SESSION_COOKIE, session_token, int(sign_in.SESSION_LIFETIME.total_seconds())
    )
    response.delete_cookie(NONCE_COOKIE, path=bp.url_prefix)
    return response


@bp.post("/sign-out")
def sign_out() -> Response:
    # The CSRF token was checked before this view ran (web.security), as for every form.
    token = request.cookies.get(SESSION_COOKIE)
    if token:
        with services().db.transaction() as session:
            sign_in.end_session(session, token)
    response = redirect(url_for("portal.sign_in_page", signed_out=1))
    response.delete_cookie(SESSION_COOKIE, path=bp.url_prefix)
    return response


def _set_cookie(response: Response, name: str, value: str, max_age: int) -> None:
    response.set_cookie(
        name,
        value,
        max_age=max_age,
        path=bp.url_prefix,
        httponly=True,
        samesite="Lax",
        secure=services().settings.public_url.startswith("https://"),
    )


# The requests


@bp.get("")
@signed_in
def home() -> str:
    user = current()
    form = FilterForm(request.args)
    form.severity.choices = severity_filter_choices(services().policy)
    requests = _listed(user, form) if user.may_act else []  # the page says why instead
    return render_template("portal/home.html", user=user, form=form, requests=requests)


def _listed(user: PortalUser, form: FilterForm) -> list[ServiceRequest]:
    query = visible_requests(user)
    status = form.status.data
    if status == "open":
        query = query.where(ServiceRequest.status.in_(OPEN_STATUSES))
    elif status == "resolved":
        query = query.where(ServiceRequest.status.in_(("resolved", "closed")))
    if (form.severity.data or "").isdigit():
        query = query.where(ServiceRequest.severity == int(form.severity.data))
    if form.mine.data == "me":
        query = query.where(ServiceRequest.contact_id == user.contact.contact_id)
    if text := (form.q.data or "").strip()[:200]:
        request_id = parse_request_number(text)
        by_subject = ServiceRequest.subject.ilike(f"%{text}%")
        query = query.where(
            or_(by_subject, ServiceRequest.id == request_id) if request_id else by_subject
        )
    query = query.options(selectinload(ServiceRequest.contact))
    query = query.order_by(ServiceRequest.created_at.desc(), ServiceRequest.id.desc())
    with services().db.sessions() as session:
        found = list(session.scalars(query.limit(LIST_LIMIT)))
    return [r for r in found if may_see(user, r)]


@bp.get("/requests/new")
@signed_in
def new_request() -> str | tuple[str, int]:
    form = NewRequestForm(severity=services().policy.default_severity)
    with_severities(form, services().policy)
    return _new_page(form)


@bp.post("/requests")
@signed_in
def create_request() -> Response | str | tuple[str, int]:
    svc, user = services(), current()
    form = NewRequestForm()
    with_severities(form, svc.policy)
    if not form.validate_on_submit():
        return _new_page(form, 422)
    uploads = _uploads(form.attachments.data)
    if (refusal := _too_large(uploads)) is not None:
        return _new_page(form, 413, refusal)
    done = log_request(
        svc,
        user,
        severity=form.severity.data,
        subject=(form.subject.data or "").strip(),
        description=form.description.data or "",
        uploads=uploads,
    )
    if done.refusal:
        return _new_page(form, 403, done.refusal)
    if done.request_id is None:
        flash("Your request was received and is being registered; it shows here shortly.")
        return redirect(url_for("portal.home"))
    return redirect(url_for("portal.request_page", number=format_request_number(done.request_id)))


def _new_page(form: NewRequestForm, status: int = 200, error: str = "") -> tuple[str, int]:
    user = current()
    levels = services().policy.levels
    page = render_template("portal/new.html", user=user, form=form, levels=levels, error=error)
    return page, status


def _uploads(files: list[FileStorage] | None) -> list[Upload]:
    return [
        Upload(f.filename or "file", f.mimetype or "application/octet-stream", f.read())
        for f in files or []
        if f.filename
    ]


def _too_large(uploads: list[Upload]) -> str | None:
    limit = services().settings.max_message_size
    if sum(len(u.data) for u in uploads) <= limit:
        return None
    return (
        f"The files are larger than {limit:,} bytes in all: leave some out and add them afterwards."
    )


@bp.get("/requests/<number>")
@signed_in
def request_page(number: str) -> str:
    user = current()
    with services().db.sessions() as session:
        sr = find_visible(session, user, number)
        if sr is None:
            abort(404, "There is no such request among your company's.")
        events = public_events(sr)
        return render_template(
            "portal/request.html",
            user=user,
            sr=sr,
            events=events,
            title_of=public_title,
            level=services().policy.level(sr.severity),
            forms=_action_forms(),
            may_change=user.technical and sr.status in OPEN_STATUSES,
        )


def _action_forms() -> dict[str, Any]:
    severity = SeverityRequestForm(formdata=None)
    with_severities(severity, services().policy)
    return {
        "information": InformationForm(formdata=None),
        "escalation": EscalationRequestForm(formdata=None),
        "severity": severity,
    }


def _acting_on(number: str) -> ServiceRequest:
    """The request a technical contact acts on (404 for anyone else, as for a stranger)."""
    user = current()
    if not user.technical:
        abort(404, "There is no such request among your company's.")
    with services().db.sessions() as session:
        sr = find_visible(session, user, number)
        if sr is None:
            abort(404, "There is no such request among your company's.")
        session.expunge(sr)
        return sr


def _back(number: str, anchor: str = "timeline") -> Response:
    return redirect(url_for("portal.request_page", number=number, _anchor=anchor))


def _first_error(form: Any) -> str:
    for errors in form.errors.values():
        return str(errors[0])
    return "The form could not be accepted."


@bp.post("/requests/<number>/information")
@signed_in
def add_info(number: str) -> Response:
    sr = _acting_on(number)
    form = InformationForm()
    if not form.validate_on_submit():
        flash(_first_error(form), "error")
        return _back(sr.number, "information-form")
    uploads = _uploads(form.attachments.data)
    if (refusal := _too_large(uploads)) is not None:
        flash(refusal, "error")
        return _back(sr.number, "information-form")
    done = add_information(
        services(), current(), sr.number, text=form.text.data or "", uploads=uploads
    )
    flash(done.refusal or "Your information was added.", "error" if done.refusal else "message")
    return _back(sr.number)


@bp.post("/requests/<number>/escalation")
@signed_in
def ask_escalation(number: str) -> Response:
    sr = _acting_on(number)
    form = EscalationRequestForm()
    if not form.validate_on_submit():
        flash(_first_error(form), "error")
        return _back(sr.number, "escalation-form")
    counterpart = actions.Counterpart(
        form.counterpart_name.data or "", form.counterpart_reach.data or ""
    )
    return _act(
        sr,
        "escalation-form",
        "The escalation was recorded: an escalation manager will contact your counterpart.",
        lambda session: actions.request_escalation(
            session,
            _desk(),
            sr.id,
            reason=form.reason.data or "",
            counterpart=counterpart,
            by=_by(),
        ),
    )


@bp.post("/requests/<number>/severity")
@signed_in
def ask_severity(number: str) -> Response:
    sr = _acting_on(number)
    form = SeverityRequestForm()
    with_severities(form, services().policy)
    if not form.validate_on_submit():
        flash(_first_error(form), "error")
        return _back(sr.number, "severity-form")
    return _act(
        sr,
        "severity-form",
        "Your request for another severity was passed to the support team.",
        lambda session: actions.request_severity_change(
            session,
            _desk(),
            sr.id,
            severity=form.severity.data,
            justification=form.justification.data or "",
            by=_by(),
        ),
    )


def _desk() -> Desk:
    svc = services()
    return desk_for(svc.settings, svc.policy)


def _act(sr: ServiceRequest, anchor: str, done: str, action: Callable[[Any], None]) -> Response:
    try:
        with services().db.transaction() as session:
            action(session)
    except ActionRefused as refused:
        flash(refused.message, "error")
        return _back(sr.number, anchor)
    flash(done)
    return _back(sr.number)


def _by() -> str:
    contact = current().contact
    return f"{contact.name} ({contact.customer_name})"
