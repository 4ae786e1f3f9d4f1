"""Search for the request lists and the intake log: a part of a customer's or contact's name or
address, whatever its case, and the words of a request and of its follow-up messages.

On PostgreSQL the conditions are written with the very expressions of the search indexes
(intake.store.models: trigram indexes on lower-cased names and addresses, full-text indexes on the
words of requests and messages), so each is an index scan. SQLite has neither kind of index:
there the same columns are read with LIKE, which finds the same rows on a smaller table.
"""

from __future__ import annotations

import re
import threading
import time
from typing import Any

from sqlalchemy import ColumnElement, and_, false, func, literal, or_, select, text
from sqlalchemy.orm import Session

from intake.store.models import (
    SEARCH_CONFIG,
    Contact,
    ContactEmail,
    Customer,
    RequestEvent,
    ServiceRequest,
    message_text_vector,
    request_text_vector,
)

WORD = re.compile(r"\w+")
MAX_WORDS = 20  # a query of more words is a paste, not a search; the rest add nothing
MESSAGE = text("'message'")  # a constant, as in the index's WHERE, so the planner can use it
FEW_MATCHES = 2000  # up to this many, matches are looked up by key (see _full_text_condition)
RECENT = 500  # the newest requests a word is looked for in first
# Matches among them that make a word common: a full page of the request list (50) and the
# row that shows there is another, so that the newest-first scan fills the page within them.
COMMON = 51
# How long a process remembers whether words are common (a search paged through, or asked
# again, looks once). Only the way of searching depends on it: both ways find the same rows.
COMMON_MEMORY = 60.0  # seconds
COMMON_REMEMBERED = 1000  # words remembered at most; past that the memory starts afresh
_commonness: dict[str, tuple[float, bool]] = {}  # the words: when looked at, and whether common
_commonness_lock = threading.Lock()


def contains(column: Any, fragment: str) -> ColumnElement[bool]:
    """``column`` holds ``fragment``, whatever the case of either (LIKE's wildcards are taken
    literally). ASCII letters only on SQLite, whose lower() knows no other."""
    escaped = fragment.lower().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return func.lower(column).like(f"%{escaped}%", escape="\\")


def customer_condition(fragment: str) -> ColumnElement[bool]:
    """Requests of the customers whose name holds ``fragment``."""
    customers = select(Customer.id).where(contains(Customer.name, fragment))
    return ServiceRequest.customer_id.in_(customers)


def contact_condition(fragment: str) -> ColumnElement[bool]:
    """Requests of the contacts whose name or one of whose addresses holds ``fragment``."""
    by_address = select(ContactEmail.contact_id).where(contains(ContactEmail.address, fragment))
    by_name = select(Contact.id).where(contains(Contact.name, fragment))
    return ServiceRequest.contact_id.in_(by_address.union(by_name))


def words_condition(session: Session, query: str) -> ColumnElement[bool]:
    """Requests holding every word of ``query`` (each as the start of a word on PostgreSQL,
    anywhere on SQLite) in their subject or description, or in one of their messages."""
    words = [w.lower() for w in WORD.findall(query)][:MAX_WORDS]
    if not words:
        return false()  # punctuation only: nothing to look for
    if session.get_bind().dialect.name == "postgresql":
        return _full_text_condition(session, words)
    return and_(*(_word_condition(word) for word in words))


def _full_text_condition(session: Session, words: list[str]) -> ColumnElement[bool]:
    """PostgreSQL cannot tell how many requests hold a word (it guesses 2% for any prefix).
    A word common among the newest requests is looked for newest first, row by row: a page is
    found within them. Otherwise the matches are counted, up to FEW_MATCHES, from the words'
    indexes (whose scan reads every match, so it is left for the rarer words). Few: the
    condition names them, and the planner looks each up by its key. Many: the requests, newest
    first, are tested one by one, and a page is found within the first few thousand."""
    # Each word a prefix ('expor' finds 'export'); \w+ words hold no tsquery syntax.
    tsquery = func.to_tsquery(SEARCH_CONFIG, " & ".join(f"'{word}':*" for word in words))
    in_messages = select(RequestEvent.request_id).where(
        RequestEvent.type == MESSAGE, message_text_vector().op("@@")(tsquery)
    )
    newest_first = or_(request_text_vector().op("@@")(tsquery), ServiceRequest.id.in_(in_messages))
    if _common_among_recent(session, words, tsquery):
        return newest_first
    in_requests = select(ServiceRequest.id).where(request_text_vector().op("@@")(tsquery))
    # UNION ALL, not OR: each half is a scan of its own index, and the count stops early.
    found = session.scalars(in_requests.union_all(in_messages).limit(FEW_MATCHES + 1)).all()
    if len(found) <= FEW_MATCHES:
        return ServiceRequest.id.in_(sorted(set(found))) if found else false()
    return newest_first


def _common_among_recent(session: Session, words: list[str], tsquery: ColumnElement[Any]) -> bool:
    """At least COMMON of the RECENT newest requests hold the words in their own text, as
    this process found within the last COMMON_MEMORY seconds, or as counted now."""
    key = " ".join(words)
    now = time.monotonic()
    with _commonness_lock:
        remembered = _commonness.get(key)
    if remembered is not None and now - remembered[0] < COMMON_MEMORY:
        return remembered[1]
    common = _count_common_among_recent(session, tsquery)
    with _commonness_lock:
        if len(_commonness) >= COMMON_REMEMBERED:
            _commonness.clear()
        _commonness[key] = (now, common)
    return common


def _count_common_among_recent(session: Session, tsquery: ColumnElement[Any]) -> bool:
    """At least COMMON of the RECENT newest requests hold the words in their own text (the
    scan stops at the COMMON-th)."""
    recent = (
        select(ServiceRequest.subject, ServiceRequest.description)
        .order_by(ServiceRequest.created_at.desc(), ServiceRequest.id.desc())
        .limit(RECENT)
        .subquery()
    )
    vector = request_text_vector(recent.c.subject, recent.c.description)
    matches = select(literal(1)).select_from(recent).where(vector.op("@@")(tsquery)).limit(COMMON)
    return len(session.scalars(matches).all()) >= COMMON


def _word_condition(word: str) -> ColumnElement[bool]:
    in_messages = select(RequestEvent.request_id).where(
        RequestEvent.type == MESSAGE,
        or_(
            contains(RequestEvent.detail["subject"].as_string(), word),
            contains(RequestEvent.detail["full_text"].as_string(), word),
        ),
    )
    return or_(
        contains(ServiceRequest.subject, word),
        contains(ServiceRequest.description, word),
        ServiceRequest.id.in_(in_messages),
    )
