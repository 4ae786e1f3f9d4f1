"""The staff pages' forms (Flask-WTF): each carries its CSRF token and checks its own fields."""

from __future__ import annotations

from flask_wtf import FlaskForm
from wtforms import PasswordField, SelectField, StringField, TextAreaField
from wtforms.fields import SelectChoice
from wtforms.validators import DataRequired, EqualTo, Length

from intake.accounts.credentials import MIN_PASSWORD_LENGTH
from intake.policy import Policy
from intake.workflows.staff_actions import TEXT_LIMIT


def severity_choices(policy: Policy) -> list[SelectChoice]:
    """The severities as the configured policy names them: "2 · Serious"."""
    return [SelectChoice(n, f"{n} · {level.name}") for n, level in sorted(policy.levels.items())]


def staff_choices(names: list[str]) -> list[SelectChoice]:
    return [SelectChoice(name) for name in names]


class LoginForm(FlaskForm):  # type: ignore[misc]  # flask_wtf has no type hints
    username = StringField("Username", validators=[DataRequired(), Length(max=100)])
    password = PasswordField("Password", validators=[DataRequired(), Length(max=1000)])


class NewPasswordForm(FlaskForm):  # type: ignore[misc]  # flask_wtf has no type hints
    """A staff login's new password, set by an administrator on the Settings page."""

    password = PasswordField(
        "New password",
        validators=[
            DataRequired(),
            Length(
                min=MIN_PASSWORD_LENGTH,
                max=1000,
                message=f"A password must be at least {MIN_PASSWORD_LENGTH} characters long.",
            ),
        ],
    )
    confirm = PasswordField(
        "Again", validators=[EqualTo("password", message="The two passwords differ.")]
    )


class SeverityForm(FlaskForm):  # type: ignore[misc]  # flask_wtf has no type hints
    severity = SelectField("New severity", coerce=int, choices=[])  # see severity_choices
    justification = TextAreaField(
        "Justification",
        validators=[
            DataRequired("Say why the severity changes: the impact, the evidence."),
            Length(max=TEXT_LIMIT),
        ],
    )


class EscalationForm(FlaskForm):  # type: ignore[misc]  # flask_wtf has no type hints
    reason = TextAreaField(
        "Reason",
        validators=[
            DataRequired("Say why this needs an escalation manager."),
            Length(max=TEXT_LIMIT),
        ],
    )
    counterpart = StringField("Contact's counterpart at this level", validators=[Length(max=200)])


class ActionPlanForm(FlaskForm):  # type: ignore[misc]  # flask_wtf has no type hints
    plan = TextAreaField(
        "Action plan",
        validators=[
            DataRequired("Write the plan agreed with the contact."),
            Length(max=TEXT_LIMIT),
        ],
    )


class SeverityDecisionForm(FlaskForm):  # type: ignore[misc]  # flask_wtf has no type hints
    """Accept or refuse a contact's request for another severity (a refusal needs the note)."""

    note = TextAreaField("Note to the contact", validators=[Length(max=TEXT_LIMIT)])


class AssignForm(FlaskForm):  # type: ignore[misc]  # flask_wtf has no type hints
    assignee = SelectField("Assign to", choices=[])  # see staff_choices


class ReplyForm(FlaskForm):  # type: ignore[misc]  # flask_wtf has no type hints
    kind = SelectField(
        "Write",
        choices=[
            SelectChoice("reply", "Reply to the contact"),
            SelectChoice("status_report", "Status report to the contact"),
            SelectChoice("internal_note", "Internal note (never sent)"),
        ],
    )
    body = TextAreaField(
        "Text",
        validators=[DataRequired("Write something to send."), Length(max=TEXT_LIMIT)],
    )


class ResolveForm(FlaskForm):  # type: ignore[misc]  # flask_wtf has no type hints
    note = TextAreaField("What solved it", validators=[Length(max=TEXT_LIMIT)])


class ConfirmForm(FlaskForm):  # type: ignore[misc]  # flask_wtf has no type hints
    """A button-only form (release, discard, sign out): the CSRF token is its one field."""


class ContactEscalationForm(FlaskForm):  # type: ignore[misc]  # flask_wtf has no type hints
    """The contact, on the status page: ask for escalation to a manager."""

    reason = TextAreaField(
        "Why escalate",
        validators=[DataRequired("Say why the request needs a manager."), Length(max=TEXT_LIMIT)],
    )
    counterpart = StringField("Your counterpart for the manager", validators=[Length(max=200)])


class ContactSeverityForm(FlaskForm):  # type: ignore[misc]  # flask_wtf has no type hints
    """The contact, on the status page: ask for another severity, saying why."""

    severity = SelectField(
        "Severity", coerce=int, choices=[SelectChoice(n, str(n)) for n in (1, 2, 3, 4)]
    )
    justification = TextAreaField(
        "How the business impact has changed", validators=[Length(max=TEXT_LIMIT)]
    )
