"""The real-world mail corpus (tests/conftest.py's `corpus`: INTAKE_TEST_CORPUS) through the
whole gateway: every .eml is sent through the real SMTP door by smtplib, from its own From
address registered as a contact of a test customer, and a real worker finishes what the door
accepted.

Nothing in the bytes is rewritten but the line ends (CRLF, as any MTA sends them). Replies
(kind "reply") are addressed to the signed reply address of a request opened first, so they
are follow-ups and their quoted text is stripped. Asserted: no unhandled error anywhere (every
send answered 250 or 550, no job failed, nothing left pending), exactly one intake row per
message, and the outcome each MANIFEST kind should get. SQLite runs all of it; PostgreSQL a
sample.
"""

from __future__ import annotations

import smtplib
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import pytest
from rq import Queue
from sqlalchemy import insert, select

from intake.outbox.links import reply_address
from intake.settings import Settings
from intake.store.models import Contact, ContactEmail, Customer, IntakeRecord, RequestEvent
from parsers import content_digest, read_headers
from tests.conftest import CORPUS
from tests.helpers import TODAY, Relay, make_mail
from tests.hygiene_support import SUPPORT, Gateway, gateway_for, on_the_wire
from tests.test_parsers_corpus import (
    KIND_REASON,
    MACHINE_KINDS,
    NEGATIVE_EXCEPTIONS,
    OTHER_REASON,
    UNDETECTED,
    manifest,
)

pytestmark = [pytest.mark.slow, pytest.mark.timeout(600), pytest.mark.usefixtures("corpus")]

HELPDESK = "redmine@example.net"  # the corpus' loop message comes From the helpdesk's address
SEED = "seed@corpus.example"
SESSIONS = 4
POSTGRES_SAMPLE = 6  # every sixth message on PostgreSQL


@dataclass
class Delivery:
    path: str
    kind: str
    digest: str
    sender: str
    automatic: str | None  # what the parsers make of its headers (test_parsers_corpus checks it)
    reply: str = ""  # the SMTP reply code and text, "" when it raised something else
    error: str = ""


@dataclass
class Run:
    deliveries: list[Delivery] = field(default_factory=list)
    rows: dict[str, list[IntakeRecord]] = field(default_factory=dict)  # by digest
    seed_request: int = 0


@pytest.fixture
def corpus_run(
    settings: Settings, redis_url: str, relay: Relay, database_url: str
) -> Iterator[tuple[Gateway, Run]]:
    overrides = {"support_addresses": (SUPPORT, HELPDESK)}
    with gateway_for(settings, redis_url, relay, **overrides) as gateway:
        step = 1 if database_url.startswith("sqlite") else POSTGRES_SAMPLE
        yield gateway, _run(gateway, [r for r in manifest() if r.path.endswith(".eml")][::step])


def _run(gateway: Gateway, entries: list) -> Run:  # type: ignore[type-arg]
    run = Run()
    deliveries = [_delivery(e.path, e.kind) for e in entries]
    _register(gateway, {d.sender for d in deliveries} - {HELPDESK, "", SEED})
    run.seed_request = _seed(gateway)
    to_reply = reply_address("test-secret", f"SR-{run.seed_request:06d}", SUPPORT)
    chunks = [deliveries[i::SESSIONS] for i in range(SESSIONS)]
    with ThreadPoolExecutor(SESSIONS) as pool:
        list(pool.map(lambda chunk: _send_all(gateway, chunk, to_reply), chunks))
    gateway.drain()
    run.deliveries = deliveries
    for row in gateway.rows():
        run.rows.setdefault(row.dedupe_key[len("email:") :][:64], []).append(row)
    return run


def _delivery(path: str, kind: str) -> Delivery:
    raw = (CORPUS / path).read_bytes()
    headers = read_headers(raw)
    return Delivery(path, kind, content_digest(raw), headers.from_address, headers.automatic)


def _register(gateway: Gateway, addresses: set[str]) -> None:
    """Every sender a technical contact of one customer (one transaction, bulk inserts)."""
    with gateway.rt.db.transaction() as session:
        customer = Customer(
            name="Corpus Customer",
            offering="IXCloud",
            support_start=TODAY.replace(year=TODAY.year - 1),
            support_end=TODAY.replace(year=TODAY.year + 1),
        )
        session.add(customer)
        session.flush()
        for address in sorted(addresses | {SEED}):
            contact = Contact(customer_id=customer.id, name=address, role="technical")
            session.add(contact)
            session.flush()
            session.execute(insert(ContactEmail), [{"contact_id": contact.id, "address": address}])


def _seed(gateway: Gateway) -> int:
    gateway.send(make_mail(SEED, "The request the corpus replies go to"), sender=SEED)
    gateway.drain()
    return int(gateway.requests()[-1].id)


def _send_all(gateway: Gateway, deliveries: list[Delivery], to_reply: str) -> None:
    with smtplib.SMTP("127.0.0.1", gateway.door.port, timeout=60) as client:
        for delivery in deliveries:
            raw = on_the_wire((CORPUS / delivery.path).read_bytes())
            to = to_reply if delivery.kind == "reply" else SUPPORT
            try:
                client.sendmail("relay@corpus.example", [to], raw)
                delivery.reply = "250"
            except smtplib.SMTPDataError as refused:
                delivery.reply = f"{refused.smtp_code} {refused.smtp_error.decode()[:60]}"
            except Exception as exc:  # anything else is a failure of the door
                delivery.error = repr(exc)
                client.connect("127.0.0.1", gateway.door.port)


def test_the_corpus_through_the_whole_gateway(corpus_run: tuple[Gateway, Run]) -> None:
    """One run of the corpus per database (it takes a while), then each check in turn."""
    gateway, run = corpus_run
    _check_no_unhandled_error_and_one_row_per_message(gateway, run)
    _check_each_kind_gets_its_outcome(run)
    _check_replies_are_appended_with_their_quotes_stripped(gateway, run)
    _check_charsets_are_decoded(gateway, run)


def _check_no_unhandled_error_and_one_row_per_message(gateway: Gateway, run: Run) -> None:
    assert [d for d in run.deliveries if d.error] == []
    assert {d.reply[:3] for d in run.deliveries} <= {"250", "550"}
    failed = Queue(gateway.rt.settings.queue_name, connection=gateway.redis).failed_job_registry
    assert failed.count == 0
    files_per_digest = Counter(d.digest for d in run.deliveries)
    rows_per_digest = {digest: len(rows) for digest, rows in run.rows.items()}
    seed_digest = next(k for k, rows in run.rows.items() if rows[0].sender == SEED)
    assert rows_per_digest == dict(files_per_digest) | {seed_digest: 1}
    for digest, count in files_per_digest.items():
        outcomes = Counter(r.outcome for r in run.rows[digest])
        assert outcomes["duplicate"] == count - 1  # the same bytes filed twice in the corpus
    assert all(row.state == "done" for rows in run.rows.values() for row in rows)


def _check_each_kind_gets_its_outcome(run: Run) -> None:
    wrong = {}
    for delivery in _firsts(run):
        row = run.rows[delivery.digest][0]
        expected = _expected(delivery)
        if (row.outcome, row.reason) not in expected:
            wrong[delivery.path] = (row.outcome, row.reason, row.detail[:80])
    assert not wrong, "\n".join(f"{k}: {v}" for k, v in sorted(wrong.items()))


def _check_replies_are_appended_with_their_quotes_stripped(gateway: Gateway, run: Run) -> None:
    replies = [d for d in _firsts(run) if d.kind == "reply" and d.sender]
    assert replies
    events = {e.detail["intake_id"]: e for e in gateway.events(run.seed_request, "message")}
    stripped = 0
    for delivery in replies:
        row = run.rows[delivery.digest][0]
        if row.outcome == "suppressed":  # a reply from a list (its List-* headers say so)
            continue
        assert row.outcome == "appended" and row.request_id == run.seed_request, delivery.path
        detail = events[row.id].detail
        assert detail["text"] and len(detail["text"]) <= len(detail["full_text"])
        stripped += len(detail["text"]) < len(detail["full_text"])
    assert stripped >= len(replies) // 2  # most corpus replies quote what they answer


def _check_charsets_are_decoded(gateway: Gateway, run: Run) -> None:
    """The charset messages' subjects and texts come out as their authors wrote them: no
    replacement character but where the bytes are invalid in their own declared charset."""
    requests = {r.intake_id: r for r in _created_requests(gateway)}
    opened = {
        d.path: requests[row.id]
        for d in _firsts(run)
        if d.kind == "charset" and (row := run.rows[d.digest][0]).request_id is not None
    }
    assert opened
    replaced = {path for path, request in opened.items() if "\ufffd" in request.text}
    assert replaced <= set(INVALID_IN_THEIR_CHARSET)
    for path, expected in DECODED.items():
        if path in opened:
            assert expected in opened[path].text, path


# Files whose bytes are invalid in the charset they declare: replacement characters are right.
INVALID_IN_THEIR_CHARSET = {
    "charsets/phpmime-m0022.eml": "the body says UTF-8 but holds ISO-8859-1 bytes",
    "charsets/phpmime-m0023.eml": "the body says UTF-8 but holds ISO-8859-1 bytes",
    "charsets/spamscope-mail_test_12.eml": "the body says GB2312 but is UTF-8",
}
DECODED = {
    "charsets/redmine-subject_japanese_3.eml": "① 丸数字テスト",  # NEC extension in ISO-2022-JP
    "charsets/phpmime-issue116.eml": "ЖД№41",  # Cyrillic and "№" through ISO-2022-JP
    "charsets/mimekit-japanese.eml": "日本語メールテスト",
    "charsets/rt-8859-15-msg1.eml": "äöüßÄÖÜß€",
    "charsets/rt-new-ticket-from-gb18030.eml": "测试",
    "charsets/rubymail-ks_c_5601-1987.eml": "스티해",
    "charsets/phpmime-issue149.eml": "מענה",  # iso-8859-8-i
    "charsets/redmine-gmail-iso8859-2.eml": "Na štriku se suši šosić",
}


@dataclass(frozen=True)
class _Created:
    intake_id: int
    subject: str
    description: str

    @property
    def text(self) -> str:
        return self.subject + self.description


def _created_requests(gateway: Gateway) -> list[_Created]:
    with gateway.rt.db.sessions() as session:
        rows = session.execute(
            select(IntakeRecord.id, IntakeRecord.subject, RequestEvent.request_id)
            .join(RequestEvent, RequestEvent.request_id == IntakeRecord.request_id)
            .where(RequestEvent.type == "created", IntakeRecord.outcome == "accepted")
        ).all()
        descriptions = {r.id: r.description for r in gateway.requests()}
    return [_Created(r.id, r.subject, descriptions[r.request_id]) for r in rows]


def _firsts(run: Run) -> list[Delivery]:
    """One delivery per distinct message (the corpus holds a few files twice)."""
    seen: dict[str, Delivery] = {}
    for delivery in run.deliveries:
        seen.setdefault(delivery.digest, delivery)
    return list(seen.values())


def _expected(delivery: Delivery) -> set[tuple[str, str]]:
    """The outcomes a message may get: machine kinds by the MANIFEST (and the parsers' tables of
    exceptions), list posts and the like among the other kinds by their headers."""
    kind, path = delivery.kind, delivery.path
    if kind in MACHINE_KINDS and path not in UNDETECTED:
        return {("suppressed", OTHER_REASON.get(path, KIND_REASON[kind]))}
    if kind == "loop":
        return {("suppressed", "loop")}
    if path in NEGATIVE_EXCEPTIONS:
        return {("suppressed", NEGATIVE_EXCEPTIONS[path])}
    if delivery.automatic:  # e.g. a reply posted to a list, with Precedence: bulk
        return {("suppressed", delivery.automatic)}
    if not delivery.sender:
        return {("rejected", "unknown_sender")}
    if kind == "reply":
        return {("appended", "follow_up")}
    # A sender with more than INTAKE_ACK_LIMIT messages in the corpus (Redmine's fixtures are
    # all from jsmith@somenet.foo) gets the rest of its requests unacknowledged.
    opened = {("accepted", "new_request"), ("suppressed", "rate_limited")}
    if kind in ("plain", "negative", "dkim-message", "charset"):
        return opened
    return opened | {("quarantined", "parse_error"), ("quarantined", "ambiguous_sender")}
