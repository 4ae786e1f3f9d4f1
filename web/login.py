"""Staff sign-in and sign-out (Flask-Login), and the guard in front of every staff page.

The session cookie is signed with INTAKE_SECRET_KEY and holds only the staff id; the password
check, its scrypt hash and the lockout after repeated failures live in intake.accounts.sign_in.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from flask import Blueprint, Flask, flash, redirect, render_template, request, session, url_for
from flask_login import LoginManager, UserMixin, current_user, login_user, logout_user
from werkzeug.wrappers import Response

from intake.accounts.sign_in import LOCKOUT, sign_in, staff_name
from web import services
from web.forms import ConfirmForm, LoginForm

bp = Blueprint("login", __name__)
login_manager = LoginManager()
FAILED = "Wrong username or password."


@dataclass(frozen=True)
class Staff(UserMixin):  # type: ignore[misc]  # flask_login has no type hints
    """The signed-in staff member, as the session knows them."""

    id: int
    username: str


def init_login(app: Flask) -> None:
    login_manager.init_app(app)
    login_manager.login_view = "login.login"
    login_manager.login_message = "Sign in to see the staff pages."
    login_manager.user_loader(_load_staff)


def _load_staff(staff_id: str) -> Staff | None:
    if not staff_id.isdigit():
        return None
    name = staff_name(services().db, int(staff_id))
    return Staff(int(staff_id), name) if name is not None else None


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
    outcome = sign_in(services().db, form.username.data or "", form.password.data or "")
    if outcome.staff_id is None:
        return render_template("login.html", form=form, error=_refusal(outcome.locked_until)), 401
    session.clear()  # a fresh session for the signed-in staff member
    login_user(Staff(outcome.staff_id, outcome.username))
    return redirect(_safe_next(request.args.get("next")))


def _refusal(locked_until: dt.datetime | None) -> str:
    if locked_until is None:
        return FAILED
    minutes = int(LOCKOUT.total_seconds() // 60)
    return (
        f"Too many failed sign-ins: this login is locked for {minutes} minutes, "
        f"until {locked_until:%H:%M} UTC. Try again then, or ask an administrator."
    )


def _safe_next(target: str | None) -> str:
    """Only a path on this site (never //other.example or a scheme) is followed after sign-in."""
    if target and target.startswith("/") and not target.startswith("//") and "\\" not in target:
        return target
    return url_for("pages.dashboard")


@bp.post("/logout")
def logout() -> Response:
    if ConfirmForm().validate_on_submit():
        logout_user()
        session.clear()
        flash("You are signed out.")
    return redirect(url_for("login.login"))
