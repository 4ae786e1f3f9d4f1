"""The worker's half of the pipeline: from a pending intake row to a request and its outbox.

The door has already committed the decision; here the whole message is parsed (which is too
slow for the SMTP handler), the request opened or the follow-up appended, and the
acknowledgment written to the outbox in the same transaction. Each door brings its own
finisher (mail: :func:`intake.mail.finish.finish_mail`; calls:
:func:`voice.call_processing.finish_call`), so the pipeline knows no door.
"""

from __future__ import annotations

from collections.abc import Callable

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from intake.policy import Policy
from intake.settings import Settings
from intake.store.models import IntakeRecord, OutboxMessage

# A door's worker half: opens the request (or appends, or reads the bounce) for one pending row.
Finisher = Callable[[Session, Settings, Policy, IntakeRecord], None]


def finish_intake(
    session: Session, settings: Settings, policy: Policy, intake_id: int, finish: Finisher
) -> None:
    """Open the request (or append the follow-up, or read the bounce) for a pending row with its
    door's ``finish``; a done row is left alone."""
    row = session.get(IntakeRecord, intake_id, with_for_update=True)
    if row is None or row.state != "pending":
        return
    finish(session, settings, policy, row)
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
