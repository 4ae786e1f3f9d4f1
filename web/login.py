"""Staff sign-in and sign-out (Flask-Login), and the guard in front of every staff page.

The session cookie is signed with INTAKE_SECRET_KEY and holds only the staff id and its session
version (raised by sign-out, so a copied cookie dies with it); the password check, its scrypt hash
and the lockout after repeated failures live in intake.accounts.sign_in, the throttle per client
address in web.throttle.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from urllib.parse import urlsplit

from flask import (
    Blueprint,
    Flask,
    current_app,
    flash,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from flask_login import LoginManager, UserMixin, current_user, login_user, logout_user
from werkzeug.wrappers import Response

from intake.accounts.sign_in import (
    LOCKOUT,
    MAX_FAILURES,
    end_sessions,
    sign_in,
    staff_session,
)
from web import services
from web.forms import ConfirmForm, LoginForm
from web.throttle import FailureThrottle

bp = Blueprint("login", __name__)
login_manager = LoginManager()
log = logging.getLogger(__name__)
THROTTLE_KEY = "intake_sign_in_throttle"
# One answer for every refusal: an unknown, disabled or locked login reads like a wrong password.
FAILED = (
    f"Wrong username or password. After {MAX_FAILURES} wrong tries a login is locked for "
    f"{int(LOCKOUT.total_seconds() // 60)} minutes."
)


@dataclass(frozen=True)
class Staff(UserMixin):  # type: ignore[misc]  # flask_login has no type hints
    """The signed-in staff member, as the session knows them."""

    id: int
    username: str
    session_version: int = 1
    is_admin: bool = False

    def get_id(self) -> str:
        # The version makes a cookie from before a sign-out (or a password reset) worthless.
        return f"{self.id}:{self.session_version}"


def init_login(app: Flask) -> None:
    login_manager.init_app(app)
    login_manager.login_view = "login.login"
    login_manager.login_message = "Sign in to see the staff pages."
    login_manager.user_loader(_load_staff)
    app.extensions[THROTTLE_KEY] = FailureThrottle()


def _load_staff(session_id: str) -> Staff | None:
    staff_id, _, version = session_id.partition(":")
    if not staff_id.isdigit() or not version.isdigit():
        return None
    found = staff_session(services().db, int(staff_id))
    if found is None or found.session_version != int(version):
        return None
    return Staff(found.staff_id, found.username, found.session_version, found.is_admin)


def require_staff_page() -> Response | None:
    """Before every staff page: an anonymous visitor is sent to the sign-in page."""
    if current_user.is_authenticated:
        return None
    target = request.full_path.rstrip("?") if request.method == "GET" else None
    return redirect(url_for("login.login", next=target))


@bp.route("/login", methods=["GET", "POST"])
def login() -> Response | str | tuple[str, int]:
    form = LoginForm()
    if not form.validate_on_submit():
        return render_template("login.html", form=form)
    address = request.remote_addr or "unknown"
    throttle: FailureThrottle = current_app.extensions[THROTTLE_KEY]
    wait = throttle.seconds_to_wait(address)
    if wait > 0:
        minutes = math.ceil(wait / 60)
        error = f"Too many failed sign-ins from your address. Try again in {minutes} minute(s)."
        return render_template("login.html", form=form, error=error), 429
    username = form.username.data or ""
    outcome = sign_in(services().db, username, form.password.data or "")
    if outcome.staff_id is None:
        throttle.note_failure(address)
        log.warning("staff sign-in refused for %r from %s: %s", username, address, outcome.reason)
        return render_template("login.html", form=form, error=FAILED), 401
    session.clear()  # a fresh session for the signed-in staff member
    login_user(Staff(outcome.staff_id, outcome.username, outcome.session_version))
    return redirect(_safe_next(request.args.get("next")))


def _safe_next(target: str | None) -> str:
    """Only a path on this site is followed after sign-in. Judged on what a browser would make
    of it: browsers drop tabs and newlines and read a backslash as a slash, so any control
    character or backslash refuses the target, and so does anything with a scheme or a host."""
    fallback = url_for("pages.dashboard")
    if not target or any(ord(c) < 0x20 or ord(c) == 0x7F or c == "\\" for c in target):
        return fallback
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or not target.startswith("/") or target.startswith("//"):
        return fallback
    return target


@bp.post("/logout")
def logout() -> Response:
    if ConfirmForm().validate_on_submit():
        if current_user.is_authenticated:
            end_sessions(services().db, int(current_user.id))
        logout_user()
        session.clear()
        flash("You are signed out.")
    return redirect(url_for("login.login"))
