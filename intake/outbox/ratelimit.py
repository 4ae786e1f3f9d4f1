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

import dataclasses
import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from intake.store.db import transaction_scratch
from intake.store.models import IntakeRecord, OutboxMessage, utcnow

BudgetKey = tuple[str, bool, tuple[int, int]]


@dataclass(frozen=True)
class AckBudget:
    address: str
    sent: int  # acknowledgments to the address within the window, of this kind of sender
    limit: int
    window: dt.timedelta
    verified: bool = False  # whose budget: verified senders' or unverified senders'

    @property
    def key(self) -> BudgetKey:
        """What a transaction keeps it under: the address, whose budget, the limit."""
        return self.address, self.verified, (self.limit, int(self.window.total_seconds()))

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


# Where a transaction keeps the budgets it read and the acknowledgments it wrote since.
_TAKEN = "intake.ack_budgets"


def read_budgets(
    session: Session, senders: Iterable[tuple[str, bool]], limit: tuple[int, int]
) -> None:
    """Read the budgets of several (address, verified) pairs in one statement into the
    transaction's budgets, for a batch about to acknowledge mail from them.

    The count is not capped here as :func:`ack_budget` caps it: an acknowledgment past the
    limit is never written, so an address has at most about ``limit`` rows in the window."""
    wanted = set(senders)
    if not wanted:
        return
    count, seconds = limit
    window = dt.timedelta(seconds=seconds)
    counted = session.execute(
        select(OutboxMessage.recipient, IntakeRecord.sender_verified, func.count())
        .join(IntakeRecord, IntakeRecord.id == OutboxMessage.intake_id)
        .where(
            OutboxMessage.recipient.in_(sorted({address for address, _ in wanted})),
            OutboxMessage.purpose == "acknowledgment",
            OutboxMessage.channel == "email",
            OutboxMessage.created_at >= utcnow() - window,
        )
        .group_by(OutboxMessage.recipient, IntakeRecord.sender_verified)
    ).all()
    sent = {(address, bool(verified)): n for address, verified, n in counted}
    budgets = _budgets_of(session)
    for address, verified in wanted:
        n = min(sent.get((address, verified), 0), count)
        budget = AckBudget(address, n, count, window, verified)
        budgets[budget.key] = budget


def budget_in_transaction(
    session: Session, address: str, limit: tuple[int, int], *, verified: bool = False
) -> AckBudget:
    """:func:`ack_budget`, read once per address in a transaction that acknowledges several
    items (a worker's batch): later calls count the acknowledgments noted by :func:`take`
    instead of asking the database again, and no call makes the session flush first."""
    key = (address, verified, limit)
    budgets = _budgets_of(session)
    if key not in budgets:
        with session.no_autoflush:  # what this transaction wrote is counted by take()
            budgets[key] = ack_budget(session, address, limit, verified=verified)
    return budgets[key]


def take(session: Session, budget: AckBudget) -> None:
    """Count one more acknowledgment to ``budget``'s address in the transaction's budgets."""
    _budgets_of(session)[budget.key] = dataclasses.replace(budget, sent=budget.sent + 1)


def _budgets_of(session: Session) -> dict[BudgetKey, AckBudget]:
    """The budgets of the session's current transaction (a new transaction starts afresh)."""
    return transaction_scratch(session, _TAKEN)
