"""The IMAP door against a real Dovecot (TLS, a private CA), with real databases: messages
delivered with APPEND become intake rows through the SMTP door's pipeline, and only then move
to the processed folder."""

from __future__ import annotations

import datetime as dt
import re
import threading
from typing import Any

from imapclient import IMAPClient
from sqlalchemy import func, select

from intake.mail.imap_config import mailboxes
from intake.mail.imap_poller import MailboxPoller
from intake.mail.registration_note import PURPOSE as NOTE
from intake.outbox.links import reply_address
from intake.settings import Settings
from intake.store.db import Database
from intake.store.imap_state import position
from intake.store.models import OutboxMessage, ServiceRequest
from tests.dns_server import Zone
from tests.dovecot import Dovecot
from tests.helpers import add_contact, make_mail, wait_for
from tests.imap_support import FAST, imap_settings, mail, message_ids, poller, polling, rows
from tests.senderauth_support import Keys, dkim_signed
from tests.web_support import add_request


def test_mail_in_the_mailbox_becomes_intake_rows_then_moves_to_processed(
    settings: Settings, db: Database, dovecot: Dovecot
) -> None:
    add_contact(db, "ada@acme.example")
    settings = imap_settings(settings, dovecot)
    received = dt.datetime(2026, 12, 1, 9, 30, tzinfo=dt.UTC)
    dovecot.deliver(mail(), mail(), when=received)
    poller(settings, db).poll_once()
    found = rows(db)
    assert [(r.channel, r.outcome, r.reason, r.state) for r in found] == [
        ("email", "accepted", "new_request", "pending")
    ] * 2
    # INTERNALDATE, not the moment of the poll, starts the response goal.
    assert {r.received_at for r in found} == {received}
    assert dovecot.count("INBOX") == 0
    assert dovecot.message_ids("Processed") == [r.message_id for r in found]
    assert position(db, mailboxes(settings)[0].key).last_uid == 2


def test_the_position_is_kept_and_nothing_is_read_twice(
    settings: Settings, db: Database, dovecot: Dovecot
) -> None:
    settings = imap_settings(settings, dovecot, dovecot.imaps_url(after="flag"))
    dovecot.deliver(mail())
    poller(settings, db).poll_once()
    dovecot.deliver(mail())
    poller(settings, db, holder="another-host:2").poll_once()
    assert len(rows(db)) == 2  # the second poller started after the first message
    # Flagged in place: both stay in the folder, with the keyword, and are not read again.
    assert dovecot.count("INBOX") == 2
    with dovecot.client() as client:
        client.select_folder("INBOX")
        assert len(client.search(["KEYWORD", "$IntakeProcessed"])) == 2
    poller(settings, db).poll_once()
    assert len(rows(db)) == 2


def test_mail_another_client_marked_seen_is_read_all_the_same(
    settings: Settings, db: Database, dovecot: Dovecot
) -> None:
    settings = imap_settings(settings, dovecot)
    dovecot.deliver(mail(), flags=(b"\\Seen",))
    dovecot.deliver(mail())
    poller(settings, db).poll_once()
    assert len(rows(db)) == 2
    assert dovecot.count("Processed") == 2


def test_a_message_already_taken_in_by_smtp_is_a_duplicate_not_a_second_request(
    settings: Settings, db: Database, dovecot: Dovecot
) -> None:
    add_contact(db, "ada@acme.example")
    settings = imap_settings(settings, dovecot)
    same = mail()
    dovecot.deliver(same, same)  # e.g. delivered twice to the mailbox
    poller(settings, db).poll_once()
    assert [r.outcome for r in rows(db)] == ["accepted", "duplicate"]
    assert dovecot.count("Processed") == 2


def test_a_new_uidvalidity_rereads_the_folder_and_skips_nothing(
    settings: Settings, db: Database, dovecot: Dovecot
) -> None:
    settings = imap_settings(settings, dovecot, dovecot.imaps_url("Support"))
    first, second = mail(), mail()
    dovecot.deliver(first, second, folder="Support")
    poller(settings, db).poll_once()
    key = mailboxes(settings)[0].key
    before = position(db, key)
    assert before.last_uid == 2
    # The folder is deleted and made again: new UIDVALIDITY, UIDs from 1 again. Without the
    # check, UIDs 1 and 2 would count as read and these two would be skipped.
    with dovecot.client() as client:
        client.delete_folder("Support")
    third, fourth = mail(), mail()
    dovecot.deliver(third, fourth, first, folder="Support")  # first is back (a restore)
    poller(settings, db).poll_once()
    after = position(db, key)
    assert after.uidvalidity != before.uidvalidity and after.last_uid == 3
    ids = message_ids(db)
    assert len(ids) == len(set(ids)) == 4  # all four, the restored one only once
    assert [r.outcome for r in rows(db)][-1] == "duplicate"
    assert dovecot.count("Support") == 0


def test_idle_wakes_the_poller_when_mail_arrives(
    settings: Settings, db: Database, dovecot: Dovecot
) -> None:
    settings = imap_settings(settings, dovecot).replace(imap_poll_interval=3600)
    with polling(settings, db) as running:
        wait_for(lambda: _polled(db, settings), timeout=20)
        assert b"IDLE" in running.capabilities
        dovecot.deliver(mail())
        # No poll would come for an hour: only IDLE can bring it in.
        wait_for(lambda: len(rows(db)) == 1, timeout=15)
        wait_for(lambda: dovecot.count("Processed") == 1, timeout=10)


def test_mail_arriving_between_select_and_search_is_not_left_waiting(
    settings: Settings, db: Database, dovecot: Dovecot
) -> None:
    """Dovecot answers a SEARCH from the state of the mailbox at the last command and
    announces newer mail (EXISTS) only at its end, which IDLE does not repeat: a poller that
    trusted the empty search left that message for the next news, minutes away."""
    settings = imap_settings(settings, dovecot).replace(imap_poll_interval=3600)
    delivered: list[int] = []

    class DeliveryAfterSelect(MailboxPoller):
        def _connect(self) -> IMAPClient:
            client = super()._connect()
            select = client.select_folder

            def select_then_deliver(*args: Any, **kwargs: Any) -> Any:
                answer = select(*args, **kwargs)
                if not delivered:  # the mailbox was empty when selected
                    delivered.extend(dovecot.deliver(mail()))
                return answer

            client.select_folder = select_then_deliver  # type: ignore[method-assign]
            return client

    stop = threading.Event()
    running = DeliveryAfterSelect(
        db, settings, mailboxes(settings)[0], holder="test-host:1", stop=stop, backoff=FAST
    )
    thread = threading.Thread(target=running.run, daemon=True)
    thread.start()
    try:
        wait_for(lambda: len(rows(db)) == 1, timeout=5)
        assert delivered == [1]
    finally:
        stop.set()
        thread.join(timeout=30)


def _polled(db: Database, settings: Settings) -> bool:
    from intake.store.imap_state import mailbox_states

    with db.sessions() as session:
        return any(s["last_success"] for s in mailbox_states(session))


def test_an_unknown_person_gets_one_note_a_day_and_robots_none(
    settings: Settings, db: Database, dovecot: Dovecot
) -> None:
    settings = imap_settings(settings, dovecot)
    auto = make_mail(
        "Robot <robot@elsewhere.example>",
        "Out of office",
        headers={"Auto-Submitted": "auto-replied"},
    ).as_bytes()
    dovecot.deliver(mail("Eve <eve@elsewhere.example>"), mail("Eve <eve@elsewhere.example>"), auto)
    poller(settings, db).poll_once()
    assert [(r.outcome, r.reason) for r in rows(db)] == [
        ("rejected", "unknown_sender"),
        ("rejected", "unknown_sender"),
        ("suppressed", "auto_submitted"),
    ]
    with db.sessions() as session:
        notes = session.scalars(select(OutboxMessage).where(OutboxMessage.purpose == NOTE)).all()
        assert [n.recipient for n in notes] == ["eve@elsewhere.example"]
        assert b"Auto-Submitted: auto-replied" in notes[0].payload
        assert b"registered" in notes[0].payload
        assert session.scalar(select(func.count()).select_from(ServiceRequest)) == 0
    assert dovecot.count("Processed") == 3


def test_several_mailboxes_are_polled_each_in_its_own_folder(
    settings: Settings, db: Database, dovecot: Dovecot
) -> None:
    urls = f"{dovecot.imaps_url('Sales')},{dovecot.imaps_url('Help', processed='HelpDone')}"
    settings = imap_settings(settings, dovecot, urls)
    dovecot.deliver(mail(), folder="Sales")
    dovecot.deliver(mail(), mail(), folder="Help")
    configured = mailboxes(settings)
    assert [m.folder for m in configured] == ["Sales", "Help"]
    for mailbox in configured:
        poller(settings, db, mailbox=mailbox).poll_once()
    assert len(rows(db)) == 3
    assert (dovecot.count("Processed"), dovecot.count("HelpDone")) == (1, 2)


def test_a_reply_to_our_signed_reply_address_is_added_to_its_request(
    settings: Settings, db: Database, dovecot: Dovecot
) -> None:
    ada = add_contact(db, "ada@acme.example")
    request = add_request(db, ada)
    settings = imap_settings(settings, dovecot).replace(secret_key="imap-" + "k" * 27)
    to = reply_address(settings.secret_key, request.number, "support@intake.localhost")
    # No request number in the subject: only the address it was sent to threads it (the
    # mailbox keeps no envelope, so the door reads Delivered-To, To and Cc).
    reply = make_mail("Ada Lovelace <ada@acme.example>", "Re: your note", to=to).as_bytes()
    dovecot.deliver(reply)
    poller(settings, db).poll_once()
    ((outcome, reason, request_id),) = [(r.outcome, r.reason, r.request_id) for r in rows(db)]
    assert (outcome, reason, request_id) == ("appended", "follow_up", request.id)


def test_a_message_over_the_size_limit_is_refused_without_fetching_its_body(
    settings: Settings, db: Database, dovecot: Dovecot
) -> None:
    add_contact(db, "ada@acme.example")
    settings = imap_settings(settings, dovecot).replace(max_message_size=4096)
    large = make_mail("Ada Lovelace <ada@acme.example>", "[Sev3] Huge log", size=20_000)
    dovecot.deliver(large.as_bytes(), mail())
    poller(settings, db).poll_once()
    refused, accepted = rows(db)
    assert (refused.outcome, refused.reason, refused.raw) == ("rejected", "too_large", None)
    assert (refused.sender, refused.subject) == ("ada@acme.example", "[Sev3] Huge log")
    assert refused.size > 20_000 and "over the limit of 4096 bytes" in refused.detail
    assert accepted.outcome == "accepted"
    assert dovecot.count("Processed") == 2
    # Dovecot's account of each session: no session was sent the large message's body.
    sent = [int(n) for n in re.findall(r"body_bytes=(\d+)", dovecot.log_file.read_text())]
    assert sent and max(sent) < 4096


def test_mail_in_a_mailbox_is_verified_like_mail_at_the_door(
    settings: Settings, db: Database, dovecot: Dovecot, world: Zone, keys: Keys
) -> None:
    """acme.example publishes p=reject: a forged From in the mailbox is held in the quarantine,
    Ada's mail signed by acme.example's key opens a request, verified."""
    add_contact(db, "ada@acme.example")
    settings = imap_settings(settings, dovecot)
    forged = mail()
    signed = dkim_signed(mail(), "acme.example", keys.acme)
    dovecot.deliver(forged, signed)
    poller(settings, db).poll_once()
    found = rows(db)
    assert [(r.outcome, r.reason) for r in found] == [
        ("quarantined", "sender_not_authenticated"),
        ("accepted", "new_request"),
    ]
    assert [r.sender_verified for r in found] == [False, True]
    assert found[0].auth is not None and found[0].auth["dmarc"] == "fail"
