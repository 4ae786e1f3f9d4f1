"""The worker's half of the pipeline: from a pending intake row to a request and its outbox.

The door has already committed the decision; here the whole message is parsed (which is too
slow for the SMTP handler), the request opened or the follow-up appended, and the
acknowledgment written to the outbox in the same transaction. Each door brings its own
finisher (mail: :func:`intake.mail.finish.finish_mail`; calls:
:func:`voice.call_processing.finish_call`), so the pipeline knows no door.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from sqlalchemy import or_, select
from sqlalchemy.orm import Session, joinedload

from intake.policy import Policy
from intake.settings import Settings
from intake.store.models import Contact, IntakeRecord, OutboxMessage

# A door's worker half: opens the request (or appends, or reads the bounce) for one pending row.
Finisher = Callable[[Session, Settings, Policy, IntakeRecord], None]
# What a caller does with a batch's pending rows before they are finished.
Preparer = Callable[[Session, Sequence[IntakeRecord]], None]


def finish_intake(
    session: Session, settings: Settings, policy: Policy, intake_id: int, finish: Finisher
) -> None:
    """Open the request (or append the follow-up, or read the bounce) for a pending row with its
    door's ``finish``; a done row is left alone."""
    finish_intakes(session, settings, policy, [intake_id], finish)


def finish_intakes(
    session: Session,
    settings: Settings,
    policy: Policy,
    intake_ids: Sequence[int],
    finish: Finisher,
    *,
    prepare: Preparer | None = None,
) -> None:
    """:func:`finish_intake` for several rows in the caller's transaction, in id order;
    ``prepare`` sees the pending rows first (the batch job reserves the requests' numbers).

    The rows are locked, and their contacts with their customers loaded, by one statement each
    for the lot rather than for each row: a worker finishing a busy door's batches spends its
    time on round trips and flushes."""
    rows = session.scalars(
        select(IntakeRecord)
        .where(IntakeRecord.id.in_(list(intake_ids)))
        .order_by(IntakeRecord.id)  # one order for every worker: no deadlock between them
        .with_for_update()
        .execution_options(populate_existing=True)  # the state as locked, not as once read
    ).all()
    pending = [row for row in rows if row.state == "pending"]
    if prepare is not None:
        prepare(session, pending)
    # Held here: the session's identity map keeps only weak references.
    contacts = _load_contacts(session, {r.contact_id for r in pending if r.contact_id is not None})
    for row in pending:
        finish(session, settings, policy, row)
        row.state = "done"
    del contacts


def _load_contacts(session: Session, contact_ids: set[int]) -> Sequence[Contact]:
    """Into the session's identity map, where the finishers' ``session.get`` finds them."""
    if not contact_ids:
        return []
    return session.scalars(
        select(Contact).options(joinedload(Contact.customer)).where(Contact.id.in_(contact_ids))
    ).all()


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
