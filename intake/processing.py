"""The worker's half of the pipeline: from a pending intake row to a request and its outbox.

The door has already committed the decision; here the whole message is parsed (which is too
slow for the SMTP handler), the request opened or the follow-up appended, and the
acknowledgment written to the outbox in the same transaction (mail: :mod:`intake.mail_intake`;
calls: :mod:`intake.call_processing`).
"""

from __future__ import annotations

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from intake.call_processing import finish_call
from intake.mail_intake import finish_mail
from intake.models import IntakeRecord, OutboxMessage
from intake.policy import Policy
from intake.settings import Settings


def finish_intake(session: Session, settings: Settings, policy: Policy, intake_id: int) -> None:
    """Open the request (or append the follow-up, or read the bounce) for a pending row; a
    done row is left alone."""
    row = session.get(IntakeRecord, intake_id, with_for_update=True)
    if row is None or row.state != "pending":
        return
    if row.channel == "phone":
        finish_call(session, settings, policy, row)
    else:
        finish_mail(session, settings, policy, row)
    row.state = "done"


def unsent_outbox_ids(session: Session, intake_id: int) -> list[int]:
    return unsent_outbox_of_intakes(session, [intake_id])


def unsent_outbox_of_intakes(session: Session, intake_ids: list[int]) -> list[int]:
    """What finishing these rows left to send: their acknowledgments, and the mail a follow-up
    caused on its request (a notice of a request for another severity, of an escalation)."""
    request_ids = select(IntakeRecord.request_id).where(
        IntakeRecord.id.in_(intake_ids), IntakeRecord.outcome == "appended"
    )
    return list(
        session.scalars(
            select(OutboxMessage.id)
            .where(
                or_(
                    OutboxMessage.intake_id.in_(intake_ids),
                    OutboxMessage.request_id.in_(request_ids),
                ),
                OutboxMessage.sent_at.is_(None),
            )
            .order_by(OutboxMessage.id)
        )
    )
