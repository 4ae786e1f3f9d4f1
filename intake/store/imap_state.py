"""The IMAP door's state in the database: each mailbox's position (UIDVALIDITY and the last UID
committed), the lease that lets one poller at a time work a mailbox, the messages that failed,
and how the last polls went (for /api/health, the dashboard and /metrics).

The position moves in the same transaction as the intake rows it covers, and only while the
poller still holds the lease: a poller that lost its lease (it stalled, another took over)
commits nothing more.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any, cast

from sqlalchemy import CursorResult, delete, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from intake.errors import IntakeError
from intake.store.db import Database
from intake.store.models import ImapFailure, ImapMailboxState, utcnow

LEASE_SECONDS = 90
ERROR_LIMIT = 2000


class LeaseLost(IntakeError):
    """Another poller holds this mailbox now; this one must stop working it."""


@dataclass(frozen=True)
class Position:
    uidvalidity: int
    last_uid: int


def ensure_mailbox(db: Database, mailbox: str) -> None:
    """The mailbox's row, made on first use (by whichever poller comes first)."""
    try:
        with db.transaction() as session:
            if session.scalar(_row_id(mailbox)) is None:
                session.execute(insert(ImapMailboxState).values(**_new_row(mailbox)))
    except IntegrityError:
        pass  # another poller made it at the same moment


def _row_id(mailbox: str) -> Any:
    return select(ImapMailboxState.id).where(ImapMailboxState.mailbox == mailbox)


def _new_row(mailbox: str) -> dict[str, Any]:
    return {
        "mailbox": mailbox,
        "uidvalidity": 0,
        "last_uid": 0,
        "holder": "",
        "last_error": "",
        "messages": 0,
    }


def take_lease(
    db: Database,
    mailbox: str,
    holder: str,
    seconds: float = LEASE_SECONDS,
    now: dt.datetime | None = None,
) -> bool:
    """Take or renew the lease on ``mailbox``: free, expired, or ours already."""
    now = now or utcnow()
    with db.transaction() as session:
        result = session.execute(
            update(ImapMailboxState)
            .where(
                ImapMailboxState.mailbox == mailbox,
                (ImapMailboxState.holder == holder)
                | (ImapMailboxState.holder == "")
                | (ImapMailboxState.lease_until.is_(None))
                | (ImapMailboxState.lease_until < now),
            )
            .values(holder=holder, lease_until=now + dt.timedelta(seconds=seconds))
        )
        return cast(CursorResult[Any], result).rowcount == 1


def release_lease(db: Database, mailbox: str, holder: str) -> None:
    with db.transaction() as session:
        session.execute(
            update(ImapMailboxState)
            .where(ImapMailboxState.mailbox == mailbox, ImapMailboxState.holder == holder)
            .values(holder="", lease_until=None)
        )


def position(db: Database, mailbox: str) -> Position:
    with db.sessions() as session:
        row = session.scalars(
            select(ImapMailboxState).where(ImapMailboxState.mailbox == mailbox)
        ).one()
        return Position(row.uidvalidity, row.last_uid)


def advance_in(
    session: Session, mailbox: str, holder: str, to: Position, recorded: int = 0
) -> None:
    """Move the position to ``to`` in the caller's transaction; raises LeaseLost (and the
    caller's transaction is rolled back) when the lease is no longer ours."""
    result = session.execute(
        update(ImapMailboxState)
        .where(ImapMailboxState.mailbox == mailbox, ImapMailboxState.holder == holder)
        .values(
            uidvalidity=to.uidvalidity,
            last_uid=to.last_uid,
            messages=ImapMailboxState.messages + recorded,
        )
    )
    if cast(CursorResult[Any], result).rowcount != 1:
        raise LeaseLost(f"the lease on {mailbox} passed to another poller")


def note_poll(db: Database, mailbox: str, error: str = "", now: dt.datetime | None = None) -> None:
    """A poll happened: a success, or the error it ended with."""
    now = now or utcnow()
    values: dict[str, Any] = {"last_poll_at": now}
    if error:
        values |= {"last_error_at": now, "last_error": error[:ERROR_LIMIT]}
    else:
        values |= {"last_success_at": now}
    with db.transaction() as session:
        session.execute(
            update(ImapMailboxState).where(ImapMailboxState.mailbox == mailbox).values(**values)
        )


# -- messages that failed -------------------------------------------------------------------


def failures(db: Database, mailbox: str, uidvalidity: int) -> dict[int, int]:
    """UID -> attempts so far, for the messages of the mailbox that failed."""
    with db.sessions() as session:
        rows = session.execute(
            select(ImapFailure.uid, ImapFailure.attempts).where(
                ImapFailure.mailbox == mailbox, ImapFailure.uidvalidity == uidvalidity
            )
        ).all()
        return {int(uid): int(attempts) for uid, attempts in rows}


def count_attempt(
    db: Database, mailbox: str, uidvalidity: int, uid: int, *, error: str, by: int = 1
) -> int:
    """One more failed (or begun) attempt at a message, or (``by=0``) only its error;
    returns how many attempts there have been."""
    for _ in range(2):  # a second poller may insert the row between our look and our insert
        try:
            with db.transaction() as session:
                return _count_attempt_in(session, (mailbox, uidvalidity, uid), error, by)
        except IntegrityError:
            continue
    raise LeaseLost(f"another poller is counting the failures of {mailbox} UID {uid}")


def _count_attempt_in(session: Session, where: tuple[str, int, int], error: str, by: int) -> int:
    mailbox, uidvalidity, uid = where
    row = session.scalars(
        select(ImapFailure).where(
            ImapFailure.mailbox == mailbox,
            ImapFailure.uidvalidity == uidvalidity,
            ImapFailure.uid == uid,
        )
    ).one_or_none()
    if row is None:
        row = ImapFailure(mailbox=mailbox, uidvalidity=uidvalidity, uid=uid, attempts=0)
        session.add(row)
    row.attempts += by
    row.last_error = error[:ERROR_LIMIT]
    session.flush()
    return row.attempts


def failure_error(db: Database, mailbox: str, uidvalidity: int, uid: int) -> str:
    with db.sessions() as session:
        error = session.scalar(
            select(ImapFailure.last_error).where(
                ImapFailure.mailbox == mailbox,
                ImapFailure.uidvalidity == uidvalidity,
                ImapFailure.uid == uid,
            )
        )
        return error or ""


def clear_failures(db: Database, mailbox: str, uidvalidity: int, uids: list[int]) -> None:
    with db.transaction() as session:
        clear_failures_in(session, mailbox, uidvalidity, uids)


def clear_failures_in(session: Session, mailbox: str, uidvalidity: int, uids: list[int]) -> None:
    """Forget the failures of messages now recorded (or quarantined)."""
    if uids:
        session.execute(
            delete(ImapFailure).where(
                ImapFailure.mailbox == mailbox,
                ImapFailure.uidvalidity == uidvalidity,
                ImapFailure.uid.in_(uids),
            )
        )


def forget_other_generations(db: Database, mailbox: str, uidvalidity: int) -> None:
    """After a UIDVALIDITY change the old UIDs name nothing any more."""
    with db.transaction() as session:
        session.execute(
            delete(ImapFailure).where(
                ImapFailure.mailbox == mailbox, ImapFailure.uidvalidity != uidvalidity
            )
        )


# -- for health, the dashboard and metrics --------------------------------------------------


def mailbox_states(session: Session) -> list[dict[str, Any]]:
    """Each mailbox's last poll, last success and last error, as plain values."""
    rows = session.scalars(select(ImapMailboxState).order_by(ImapMailboxState.mailbox)).all()
    return [_state(row) for row in rows]


def _state(row: ImapMailboxState) -> dict[str, Any]:
    def moment(value: dt.datetime | None) -> str | None:
        return value.isoformat() if value else None

    failing = row.last_error_at is not None and (
        row.last_success_at is None or row.last_error_at > row.last_success_at
    )
    return {
        "mailbox": row.mailbox,
        "status": "error" if failing else "ok",
        "last_poll": moment(row.last_poll_at),
        "last_success": moment(row.last_success_at),
        "last_error": row.last_error if row.last_error_at else "",
        "last_error_at": moment(row.last_error_at),
        "messages": row.messages,
        "last_uid": row.last_uid,
        "uidvalidity": row.uidvalidity,
        "lease_held": bool(row.holder) and row.lease_until is not None,
    }
