"""The administrators' Settings page: the staff logins (disable, enable, unlock, a new
password) and the API tokens (revoke), as `intake staff ...` and `intake token ...` do.

Only a staff login with the admin role may open it (the first login added is one); every
change is a form POST with its CSRF token, answered with a redirect back to the page.
"""

from __future__ import annotations

from collections.abc import Callable

from flask import Blueprint, flash, redirect, render_template, url_for
from flask_login import current_user
from werkzeug.exceptions import Forbidden
from werkzeug.wrappers import Response

from intake.accounts import staff_admin
from intake.errors import IntakeError
from intake.store.models import utcnow
from web import services
from web.forms import ConfirmForm, NewPasswordForm
from web.login import require_staff_page

bp = Blueprint("settings", __name__)


@bp.before_request
def require_admin() -> Response | None:
    """Signed in first; then the admin role, or a 403 that says so."""
    refusal = require_staff_page()
    if refusal is not None:
        return refusal
    if not current_user.is_admin:
        raise Forbidden("The Settings page is for administrators: ask one to change this.")
    return None


@bp.get("/settings")
def settings_page() -> str:
    db = services().db
    return render_template(
        "settings.html",
        staff=staff_admin.list_staff(db),
        tokens=staff_admin.list_tokens(db),
        now=utcnow(),
        form=ConfirmForm(),
        password_form=NewPasswordForm(),
    )


def _change(work: Callable[[], str], done: str) -> Response:
    """Run one change; flash what happened, or why it could not be done."""
    if not ConfirmForm().validate_on_submit():
        flash("The form could not be accepted. Reload the page and try again.", "error")
    else:
        try:
            flash(done.format(work()))
        except IntakeError as refused:
            flash(str(refused).capitalize() + ".", "error")
    return redirect(url_for("settings.settings_page"))


@bp.post("/settings/staff/<username>/disable")
def disable(username: str) -> Response:
    db = services().db
    return _change(lambda: staff_admin.set_disabled(db, username, True), "{} is disabled.")


@bp.post("/settings/staff/<username>/enable")
def enable(username: str) -> Response:
    db = services().db
    return _change(lambda: staff_admin.set_disabled(db, username, False), "{} is enabled.")


@bp.post("/settings/staff/<username>/unlock")
def unlock(username: str) -> Response:
    db = services().db
    return _change(lambda: staff_admin.unlock(db, username), "{} is unlocked.")


@bp.post("/settings/staff/<username>/password")
def reset_password(username: str) -> Response:
    form = NewPasswordForm()
    if not form.validate_on_submit():
        errors = [e for field in form.errors.values() for e in field]
        flash(" ".join(str(e) for e in errors) or "The form could not be accepted.", "error")
        return redirect(url_for("settings.settings_page"))
    db, password = services().db, form.password.data or ""
    return _change(
        lambda: staff_admin.reset_password(db, username, password),
        "{} has a new password; its open sessions are ended.",
    )


@bp.post("/settings/tokens/<int:token_id>/revoke")
def revoke(token_id: int) -> Response:
    db = services().db
    return _change(lambda: staff_admin.revoke_token(db, token_id), "The token {} is revoked.")
