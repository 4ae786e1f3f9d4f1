"""The portal's forms (Flask-WTF): each carries its CSRF token and checks its own fields."""

from __future__ import annotations

from flask_wtf import FlaskForm
from wtforms import (
    BooleanField,
    EmailField,
    MultipleFileField,
    RadioField,
    SelectField,
    StringField,
    TextAreaField,
)
from wtforms.fields import SelectChoice
from wtforms.validators import DataRequired, Length, Optional, Regexp, ValidationError

from intake.policy import Policy
from intake.workflows.staff_actions import TEXT_LIMIT
from web.forms import severity_choices

SUBJECT_LIMIT = 200
DESCRIPTION_LIMIT = 100_000
CONFIRM_CRITICAL = (
    "Severity 1 is for a production stop. Confirm it, and that a contact of yours can be "
    "reached around the clock (24x7) while we work on it, or choose another severity."
)


class SignInForm(FlaskForm):  # type: ignore[misc]  # flask_wtf has no type hints
    email = EmailField(
        "Your registered email address",
        validators=[
            DataRequired("Enter your email address."),
            Regexp(r"^[^@\s]+@[^@\s]+$", message="Enter an address like name@example.com."),
            Length(max=320),
        ],
    )


class NewRequestForm(FlaskForm):  # type: ignore[misc]  # flask_wtf has no type hints
    severity = RadioField("Severity", coerce=int, choices=[])  # see with_severities
    confirm_critical = BooleanField(
        "Production is stopped, and a contact of ours is available around the clock (24x7) "
        "while Severity 1 is worked on."
    )
    subject = StringField(
        "Subject",
        validators=[DataRequired("Give the request a subject."), Length(max=SUBJECT_LIMIT)],
    )
    description = TextAreaField(
        "Description",
        validators=[
            DataRequired("Describe the problem: what happens, since when, what you tried."),
            Length(max=DESCRIPTION_LIMIT),
        ],
    )
    attachments = MultipleFileField("Attachments (optional)")

    def validate_confirm_critical(self, field: BooleanField) -> None:
        if self.severity.data == 1 and not field.data:
            raise ValidationError(CONFIRM_CRITICAL)


class InformationForm(FlaskForm):  # type: ignore[misc]  # flask_wtf has no type hints
    text = TextAreaField(
        "Information to add",
        validators=[DataRequired("Write what you want to add."), Length(max=DESCRIPTION_LIMIT)],
    )
    attachments = MultipleFileField("Attachments (optional)")


class EscalationRequestForm(FlaskForm):  # type: ignore[misc]  # flask_wtf has no type hints
    reason = TextAreaField(
        "Why it needs escalating",
        validators=[DataRequired("Say why this needs escalating."), Length(max=TEXT_LIMIT)],
    )
    counterpart_name = StringField(
        "Your counterpart (manager) at your company",
        validators=[DataRequired("Name the person we should speak to."), Length(max=200)],
    )
    counterpart_reach = StringField(
        "Their email address or phone number",
        validators=[DataRequired("Say how to reach them."), Length(max=320)],
    )


class SeverityRequestForm(FlaskForm):  # type: ignore[misc]  # flask_wtf has no type hints
    severity = SelectField("Severity you ask for", coerce=int, choices=[])
    justification = TextAreaField(
        "Justification: the impact, the evidence",
        validators=[Optional(), Length(max=TEXT_LIMIT)],
    )


class FilterForm(FlaskForm):  # type: ignore[misc]  # flask_wtf has no type hints
    """The request list's filters, read from the query string (GET: no CSRF token)."""

    class Meta:
        csrf = False

    status = SelectField(
        "Status",
        choices=[
            SelectChoice("open", "Open"),
            SelectChoice("resolved", "Resolved or closed"),
            SelectChoice("all", "All"),
        ],
        default="open",
    )
    severity = SelectField("Severity", choices=[], default="")  # see severity_filter_choices
    mine = SelectField(
        "Reported by",
        choices=[SelectChoice("", "Anyone at my company"), SelectChoice("me", "Me")],
        default="",
    )
    q = StringField("Search", validators=[Length(max=200)])


def with_severities(form: NewRequestForm | SeverityRequestForm, policy: Policy) -> None:
    form.severity.choices = severity_choices(policy)


def severity_filter_choices(policy: Policy) -> list[SelectChoice]:
    return [
        SelectChoice("", "Any"),
        *(SelectChoice(str(c.value), c.label) for c in severity_choices(policy)),
    ]
