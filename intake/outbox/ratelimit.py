"""The per-address limit on acknowledgments (``INTAKE_ACK_LIMIT``, "20/hour"): a mail loop or a
flood opens requests but does not make us send a mail for each of them.

The count is of acknowledgments written to the outbox for the address within the window, sent
or still waiting, up to the limit (past it the answer is the same). Workers running side by
side may each let one more through at the edge; the limit is there to break loops, not to
meter.

Acknowledgments of mail from a verified sender and of mail from an unverified one are counted
apart, each against the limit: anyone can write with a contact's address in From, and forged
mail must not use up the acknowledgments of the contact's own.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from intake.store.models import IntakeRecord, OutboxMessage, utcnow


@dataclass(frozen=True)
class AckBudget:
    address: str
    sent: int  # acknowledgments to the address within the window, of this kind of sender
    limit: int
    window: dt.timedelta
    verified: bool = False  # whose budget: verified senders' or unverified senders'

    @property
    def exhausted(self) -> bool:
        return self.sent >= self.limit

    def explain(self) -> str:
        hours = self.window.total_seconds() / 3600
        span = f"{hours:g} hour(s)" if hours >= 1 else f"{self.window.total_seconds():g} seconds"
        kind = "verified" if self.verified else "unverified"
        return (
            f"{self.sent} acknowledgments of mail from {kind} senders went to {self.address} "
            f"in the last {span}"
        )


def ack_budget(
    session: Session,
    address: str,
    limit: tuple[int, int],
    now: dt.datetime | None = None,
    *,
    verified: bool = False,
) -> AckBudget:
    """How many acknowledgments ``address`` got within the window of ``limit`` (count,
    seconds) for items whose sender was verified (or was not, as ``verified`` says)."""
    count, seconds = limit
    window = dt.timedelta(seconds=seconds)
    since = (now or utcnow()) - window
    # Counting stops at the limit, and the index ix_outbox_ack_window leads to the window's
    # rows alone: the check costs the same after a year of acknowledgments as on the first day.
    within = (
        select(OutboxMessage.id)
        .join(IntakeRecord, IntakeRecord.id == OutboxMessage.intake_id)
        .where(
            OutboxMessage.recipient == address,
            OutboxMessage.purpose == "acknowledgment",
            OutboxMessage.channel == "email",
            OutboxMessage.created_at >= since,
            IntakeRecord.sender_verified.is_(verified),
        )
        .limit(count)
        .subquery()
    )
    sent = session.scalar(select(func.count()).select_from(within))
    return AckBudget(address, sent or 0, count, window, verified)
