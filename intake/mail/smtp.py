"""The SMTP door (aiosmtpd): the replies the README's SMTP conversation lists, and 250 only
once the message and its outcome are committed. Parsing and database work run in the
recorder's thread (group commit), off the event loop.

Hardening: the idle timeout is sized for the size limit and a session lives an hour at most
(both end with a 421); each command has a budget per session, the recipients one per message;
only CRLF.CRLF ends DATA (aiosmtpd >= 1.4.5), so bare LF or CR around a dot cannot smuggle a
second message; STARTTLS is offered when a certificate is configured. Sessions at once (in all
and per client address) and the DATA bytes being received are capped (smtp_limits).

The conversation as a well-kept MTA holds it: the greeting names INTAKE_SMTP_HOSTNAME and no
software or version, EHLO offers ENHANCEDSTATUSCODES and PIPELINING (aiosmtpd reads commands
one line at a time and answers them in order, so a pipelined group is answered as sent), every
reply carries an enhanced code (smtp_replies), and HELP lists what is offered.
"""

from __future__ import annotations

import asyncio
import logging
import re
import socket
import ssl
import uuid
from collections.abc import Awaitable, Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from typing import Any, AnyStr

from aiosmtpd.controller import Controller
from aiosmtpd.proxy_protocol import ProxyData
from aiosmtpd.smtp import SMTP, Envelope, Session

from intake.errors import StorageUnavailable
from intake.mail.message import OwnMail, inbound_from_mail
from intake.mail.smtp_limits import OVER_IN_FLIGHT, SessionLimits
from intake.mail.smtp_replies import help_reply, with_enhanced_code
from intake.pipeline.recorder import BatchRecorder
from intake.pipeline.steps import Decision
from intake.senderauth import Envelope as SenderEnvelope
from intake.senderauth import SenderVerifier, Verdict, verifier_from_settings
from intake.settings import Settings
from intake.store.db import Database
from intake.store.models import IntakeRecord

log = logging.getLogger(__name__)

TRY_LATER = "451 4.3.0 The message could not be stored just now; please try again later."
# A client that closed or reset its connection mid-session: no bug, nobody left to answer.
CLIENT_GONE = (ConnectionError, asyncio.IncompleteReadError)
BANNER_IDENT = "ESMTP"  # the greeting's word after the host name: no software, no version
AUTH_TRY_LATER = (
    "451 4.7.0 The sender's domain could not be verified just now (DNS); please try again later."
)
VERIFIER_THREADS = 16  # verdicts mostly wait for DNS; the recorder never waits for them
MAX_RECIPIENTS = 50
MIN_TIMEOUT = 300  # RFC 5321 4.5.3.2: a server waits five minutes for a command
SLOW_LINK_BYTES_PER_SECOND = 125_000  # 1 Mbit/s
SESSION_LIFETIME = 3600  # seconds; a relay then reconnects (421 is a "try again")
PROXY_TIMEOUT = 10  # seconds a connection has to send its PROXY header (INTAKE_SMTP_PROXY_PROTOCOL)
# Real mail has lines far over RFC 5321's 1,000 (HTML from mailers, unwrapped base64): they are
# taken up to this length rather than refused, and a longer line gets aiosmtpd's 500.
LINE_LENGTH_LIMIT = 64 * 1024
# A reverse or forward path as nearly every MTA writes it: <dot-atom@domain>, nothing quoted,
# no comments, no spaces inside the brackets; then the command's parameters (no comment).
_ATOM = r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+"
PLAIN_PATH = re.compile(
    rf"<({_ATOM}(?:\.{_ATOM})*@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*)>[ \t]*([^()\r\n]*)\Z"
)
MESSAGES_PER_SESSION = 1000
# Each command's budget per session: a relay may hand over a thousand messages on one
# connection, but nobody keeps it busy for ever with NOOP, HELP or VRFY (then: 421, closed).
COMMAND_CALL_LIMIT = {
    "MAIL": MESSAGES_PER_SESSION,
    "RCPT": 2 * MESSAGES_PER_SESSION,
    "DATA": MESSAGES_PER_SESSION,
    "RSET": MESSAGES_PER_SESSION,
    "NOOP": MESSAGES_PER_SESSION,
    "*": 20,
}


def session_timeout(max_message_size: int) -> float:
    """How long a session may sit idle, and the time one DATA transfer may take (aiosmtpd does
    not restart the clock while data arrives): the largest allowed message over a slow link,
    and never less than RFC 5321's five minutes."""
    return max(MIN_TIMEOUT, max_message_size / SLOW_LINK_BYTES_PER_SECOND)


def server_tls_context(settings: Settings) -> ssl.SSLContext | None:
    """The context STARTTLS uses, when a certificate is configured."""
    if not settings.tls_cert_file:
        return None
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(settings.tls_cert_file, settings.tls_key_file or None, password="")
    return context


OnCommitted = Callable[[list[int]], object]


def reply_for(decision: Decision, refusals: str = "reject") -> str:
    """250 for what is kept; a refusal is a 550 with its sentence, or (``accept_and_log``, for
    a door behind a relay, whose bounce of our 550 would go to a forged sender) a 250 too:
    the row says ``rejected`` with its reason either way and nothing is sent."""
    if decision.outcome == "rejected" and refusals == "reject":
        return f"550 5.7.1 {decision.sentence}"
    return "250 2.0.0 Message accepted"


def greeting_host_name(settings: Settings) -> str:
    """The host name the door gives in its greeting and EHLO: the setting, else this machine's."""
    return settings.smtp_hostname or socket.gethostname()


class IntakeHandler:
    """aiosmtpd handler hooks: recipients at RCPT, the pipeline at DATA."""

    def __init__(
        self,
        settings: Settings,
        db: Database,
        recorder: BatchRecorder,
        executor: ThreadPoolExecutor,
        *,
        verifier: SenderVerifier | None = None,
        verifier_pool: ThreadPoolExecutor | None = None,
    ) -> None:
        self.settings = settings
        self.db = db
        self.recorder = recorder
        self.executor = executor
        self.verifier = verifier
        self.verifier_pool = verifier_pool
        self.support_addresses = frozenset(a.lower() for a in settings.support_addresses)
        self.own = OwnMail.from_settings(settings)

    async def handle_EHLO(
        self,
        server: SMTP,
        session: Session,
        envelope: Envelope,
        hostname: str,
        responses: list[str],
    ) -> list[str]:
        """aiosmtpd's extensions, less AUTH (no login is offered), plus ENHANCEDSTATUSCODES and
        PIPELINING before the closing HELP line."""
        session.host_name = hostname
        kept = [r for r in responses[:-1] if not r.startswith("250-AUTH")]
        return [*kept, "250-ENHANCEDSTATUSCODES", "250-PIPELINING", responses[-1]]

    async def handle_MAIL(
        self,
        server: SMTP,
        session: Session,
        envelope: Envelope,
        address: str,
        mail_options: list[str],
    ) -> str:
        envelope.mail_from = address
        envelope.mail_options.extend(mail_options)
        return "250 2.1.0 OK"

    def is_support_address(self, address: str) -> bool:
        """One of ours, or its plus-address (``support+sr-000123.<tag>@``, our Reply-To)."""
        local, _, domain = address.lower().rpartition("@")
        return f"{local.partition('+')[0]}@{domain}" in self.support_addresses

    async def handle_RCPT(
        self,
        server: SMTP,
        session: Session,
        envelope: Envelope,
        address: str,
        rcpt_options: list[str],
    ) -> str:
        if not self.is_support_address(address):
            return f"550 5.1.1 <{address}>: no such mailbox here; write to " + ", ".join(
                sorted(self.support_addresses)
            )
        if len(envelope.rcpt_tos) >= MAX_RECIPIENTS:
            return "452 4.5.3 Too many recipients"
        envelope.rcpt_tos.append(address)
        return "250 2.1.5 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        try:
            return await self.accept(envelope.original_content or b"", envelope, session)
        except StorageUnavailable as exc:
            log.error("storage unavailable, answered 451: %s", exc)
            return TRY_LATER

    async def accept(self, raw: bytes, envelope: Envelope, session: Session | None = None) -> str:
        """Verify the sender (in a pool of its own, so the recorder never waits for DNS), decide
        and commit (in the recorder's thread), then answer; a worker does the rest.

        The answer comes within ``storage_timeout`` seconds whatever the database does, so
        replies never queue behind one another's timeouts (a message stored after its 451 is
        found again as a duplicate when the client retries)."""
        recipients, mail_from = tuple(envelope.rcpt_tos), envelope.mail_from
        client_ip = _client_ip(session)
        mode = self.settings.sender_auth
        smtp_envelope = SenderEnvelope(client_ip, mail_from or "", _helo(session))
        verdict = await self.verdict(raw, smtp_envelope)
        if verdict is not None and verdict.temporary and mode == "enforce":
            log.info("sender of a message from %s not verified (DNS): 451", client_ip)
            return AUTH_TRY_LATER
        future = self.recorder.submit(
            lambda: inbound_from_mail(
                raw,
                recipients=recipients,
                envelope_sender=mail_from,
                own=self.own,
                sender_auth=verdict,
                sender_auth_mode=mode,
                client_ip=client_ip,
            )
        )
        deadline = self.settings.storage_timeout
        try:
            decision, intake_id = await asyncio.wait_for(future, deadline)
        except TimeoutError:
            raise StorageUnavailable(f"not stored within {deadline} s") from None
        log.info("intake #%s: %s %s", intake_id, decision.outcome, decision.reason)
        return reply_for(decision, self.settings.refusals)

    async def verdict(self, raw: bytes, envelope: SenderEnvelope) -> Verdict | None:
        """The verdict on the sender, or None when INTAKE_SENDER_AUTH is off."""
        if self.verifier is None or self.settings.sender_auth == "off":
            return None
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self.verifier_pool, self.verifier.verify, raw, envelope)

    def record_too_large(self, sender: str, recipients: tuple[str, ...]) -> None:
        """A message over the size limit leaves a rejected row too (its bytes are not kept)."""
        with self.db.transaction() as session:
            session.add(
                IntakeRecord(
                    channel="email",
                    sender=sender[:320],
                    recipients=",".join(recipients),
                    dedupe_key=f"too_large:{uuid.uuid4()}",
                    outcome="rejected",
                    reason="too_large",
                    detail=f"over the limit of {self.settings.max_message_size} bytes",
                )
            )

    async def handle_PROXY(
        self, server: SMTP, session: Session, envelope: Envelope, proxy_data: ProxyData
    ) -> bool:
        """Behind a load balancer speaking the PROXY protocol: the client's own address becomes
        the session's (for the caps per address, SPF and the intake log). A header without an
        address (the balancer's own health check) keeps the balancer's."""
        source = proxy_data.src_addr
        if source is not None:
            # aiosmtpd keeps the peer as (host, port), though its annotation says str.
            session.peer = (str(source), proxy_data.src_port or 0)  # type: ignore[assignment]
        assert isinstance(server, IntakeSMTP)
        return server.admit_proxied(_client_ip(session) or "?")

    async def handle_exception(self, error: Exception) -> str:
        # Whatever went wrong, the sender keeps the message and tries again: never a 500.
        if isinstance(error, CLIENT_GONE):  # the client closed or reset the connection
            log.info("an SMTP client went away: %s", error)
        else:
            log.exception("unexpected error in an SMTP session", exc_info=error)
        return TRY_LATER


def _client_ip(session: Session | None) -> str:
    peer = getattr(session, "peer", None)
    return str(peer[0]) if isinstance(peer, tuple) and peer else ""


def _helo(session: Session | None) -> str:
    return str(getattr(session, "host_name", "") or "")


class IntakeSMTP(SMTP):
    """aiosmtpd's SMTP with the contract's wording for oversized mail, a 421 before a timeout
    closes the connection, a limited lifetime, the door's caps, enhanced codes and HELP."""

    event_handler: IntakeHandler
    line_length_limit = LINE_LENGTH_LIMIT
    lifetime: float = SESSION_LIFETIME
    limits: SessionLimits | None = None
    proxied: bool = False  # a PROXY header names the client; it is counted in only then

    _refused_sender: str = ""
    _data_envelope: Envelope | None = None
    _lifetime_handle: asyncio.TimerHandle | None = None
    _admitted: str | None = None  # the client address counted in by the limits
    _refusal: str = ""  # a 421 answering instead of the greeting
    _receiving: bool = False  # between DATA and the reply to it
    _data_counted: int = 0  # bytes of this session's DATA counted as in flight
    _greeting_reply: bool = False  # HELO/EHLO replies carry no enhanced code (RFC 2034)

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)
        if self._lifetime_handle is None:  # not again for the TLS transport after STARTTLS
            self._lifetime_handle = self.loop.call_later(
                self.lifetime, self._close_with, "421 4.4.2 Session too long; please reconnect"
            )
            if not self.proxied:
                peer = transport.get_extra_info("peername")
                self._admit(str(peer[0]) if isinstance(peer, tuple) and peer else "?")

    def _admit(self, address: str) -> None:
        if self.limits is None:
            return
        self._refusal = self.limits.admit(address)
        if not self._refusal:
            self._admitted = address

    def _refused(self) -> bool:
        """A cap is reached: say so instead of the greeting, and close."""
        if self._refusal:
            log.info("refused an SMTP session: %s", self._refusal)
            self._close_with(self._refusal)
        return bool(self._refusal)

    def admit_proxied(self, address: str) -> bool:
        """Count in the client a PROXY header named; past a cap, say why and close."""
        self._admit(address)
        return not self._refused()

    async def _handle_client(self) -> None:
        if self._refused():
            return
        try:
            await super()._handle_client()
        except CLIENT_GONE as exc:  # the client closed or reset the connection before our reply
            log.info("an SMTP client went away: %s", exc)

    def connection_lost(self, error: Exception | None) -> None:
        if self._lifetime_handle is not None:
            self._lifetime_handle.cancel()
        if self.limits is not None and self._admitted is not None:
            self.limits.leave(self._admitted)
            self._admitted = None
        self._release_data()
        super().connection_lost(error)

    def data_received(self, data: bytes) -> None:
        if self._receiving and self.limits is not None:
            self._data_counted += len(data)
            if not self.limits.receive(len(data)):
                self._close_with(OVER_IN_FLIGHT)
                return
        super().data_received(data)

    def _release_data(self) -> None:
        if self.limits is not None and self._data_counted:
            self.limits.release(self._data_counted)
        self._data_counted = 0

    def _timeout_cb(self) -> None:
        self._close_with("421 4.4.2 Timed out waiting for the client; closing")

    def _close_with(self, reply: str) -> None:
        """Say why, then close (the transport sends what it holds before it closes)."""
        transport = self.transport
        if isinstance(transport, asyncio.WriteTransport) and not transport.is_closing():
            log.info("closing an SMTP session: %s", reply)
            transport.write(reply.encode("ascii") + b"\r\n")
            transport.close()

    def _getaddr(self, arg: str) -> tuple[str | None, str | None]:
        """aiosmtpd's reading of a path, which runs the email package's whole address grammar
        (and makes a class) for every MAIL and RCPT, a sixth of the door's CPU: a plain
        ``<local@domain>`` is read by a pattern instead, to the same address and rest, and
        anything else still goes the long way."""
        plain = PLAIN_PATH.match(arg)
        if plain is None:
            return super()._getaddr(arg)
        address, rest = plain.group(1), plain.group(2)
        if self.local_part_limit and len(address.rpartition("@")[0]) > self.local_part_limit:
            return None, None
        return address, rest

    async def smtp_MAIL(self, arg: str) -> None:
        # A SIZE= over the limit is refused here, before the envelope records the sender.
        self._refused_sender = arg.partition("<")[2].partition(">")[0] if arg else ""
        await super().smtp_MAIL(arg)

    async def smtp_DATA(self, arg: str) -> None:
        self._data_envelope = self.envelope  # reset before the size reply is pushed
        busy = self._data_refusal()
        if busy and self.envelope is not None and self.envelope.rcpt_tos and not arg:
            await self.push(busy)
            return
        self._receiving = True
        try:
            await super().smtp_DATA(arg)
        finally:  # the message's bytes are held until its reply is sent
            self._receiving = False
            self._release_data()

    def _data_refusal(self) -> str:
        if self.limits is None or self.envelope is None:
            return ""
        declared = [o for o in self.envelope.mail_options if o.upper().startswith("SIZE=")]
        size = declared[0][5:] if declared else "0"
        return self.limits.may_start_data(int(size) if size.isdigit() else 0)

    @contextmanager
    def _replying_to_a_greeting(self) -> Iterator[None]:
        self._greeting_reply = True
        try:
            yield
        finally:
            self._greeting_reply = False

    async def smtp_EHLO(self, hostname: str) -> None:
        with self._replying_to_a_greeting():
            await super().smtp_EHLO(hostname)

    async def smtp_HELO(self, hostname: str) -> None:
        with self._replying_to_a_greeting():
            await super().smtp_HELO(hostname)

    async def smtp_HELP(self, arg: str) -> None:
        offered = ["EHLO", "HELO", "MAIL", "RCPT", "DATA", "RSET", "NOOP", "QUIT", "HELP", "VRFY"]
        if self.tls_context is not None and self._tls_protocol is None:
            offered.append("STARTTLS")
        await self.push(help_reply(arg or "", offered))

    async def push(self, status: AnyStr) -> None:
        if isinstance(status, str) and status.startswith("552 Error"):
            await self._record_too_large(status)
            status = (
                f"552 5.3.4 Message too big: the limit is "
                f"{self.data_size_limit} bytes; send large files as a link."
            )
        greeting = f"220 {self.hostname} {BANNER_IDENT}"
        if isinstance(status, str) and not self._greeting_reply and status != greeting:
            status = with_enhanced_code(status)
        await super().push(status)

    async def _record_too_large(self, status: str) -> None:
        if "Too much mail data" in status and self._data_envelope is not None:
            sender, recipients = self._data_envelope.mail_from, self._data_envelope.rcpt_tos
        else:  # declared with SIZE= at MAIL FROM
            sender, recipients = self._refused_sender, []
        handler = self.event_handler
        loop = asyncio.get_running_loop()
        try:
            await loop.run_in_executor(
                handler.executor, handler.record_too_large, sender or "", tuple(recipients)
            )
        except Exception:
            log.exception("could not log an oversized message")


class SmtpDoor(Controller):
    """The listener: an aiosmtpd controller running IntakeSMTP in its own thread and loop."""

    def __init__(
        self,
        settings: Settings,
        db: Database,
        on_committed: OnCommitted | None,
        *,
        host: str | None = None,
        port: int | None = None,
        timeout: float | None = None,
        lifetime: float = SESSION_LIFETIME,
        reuse_port: bool = False,
    ) -> None:
        # With reuse_port, several processes listen on the one port (SO_REUSEPORT) and the
        # kernel spreads the connections among them.
        self.reuse_port = reuse_port
        # The recorder does the per-message work; this pool only logs oversized messages.
        self.executor = ThreadPoolExecutor(max_workers=2, thread_name_prefix="smtp-db")
        self.recorder = BatchRecorder(db, on_committed, lock_timeout=settings.storage_timeout)
        self.stall_seconds = settings.stall_seconds
        verifying = settings.sender_auth != "off"
        self.verifier_pool = ThreadPoolExecutor(VERIFIER_THREADS, thread_name_prefix="smtp-auth")
        self.intake_handler = IntakeHandler(
            settings,
            db,
            self.recorder,
            self.executor,
            verifier=verifier_from_settings(settings) if verifying else None,
            verifier_pool=self.verifier_pool,
        )
        self.lifetime = lifetime
        self.limits = SessionLimits(
            settings.smtp_max_sessions,
            settings.smtp_max_sessions_per_ip,
            settings.smtp_max_data_in_flight,
        )
        super().__init__(
            self.intake_handler,
            hostname=host or settings.smtp_host,
            server_hostname=greeting_host_name(settings),
            ident=BANNER_IDENT,
            port=settings.smtp_port if port is None else port,
            data_size_limit=settings.max_message_size,
            timeout=timeout or session_timeout(settings.max_message_size),
            command_call_limit=COMMAND_CALL_LIMIT,
            tls_context=server_tls_context(settings),
            ready_timeout=10,
            proxy_protocol_timeout=PROXY_TIMEOUT if settings.smtp_proxy_protocol else None,
        )
        self.proxied = settings.smtp_proxy_protocol

    def factory(self) -> IntakeSMTP:
        kwargs: dict[str, Any] = dict(self.SMTP_kwargs)
        server = IntakeSMTP(self.handler, **kwargs)
        server.lifetime = self.lifetime
        server.limits = self.limits
        server.proxied = self.proxied
        return server

    def _create_server(self) -> Awaitable[asyncio.AbstractServer]:
        return self.loop.create_server(
            self._factory_invoker,
            host=self.hostname,
            port=self.port,
            ssl=self.ssl_context,
            reuse_port=self.reuse_port or None,
        )

    def _trigger_server(self) -> None:
        """aiosmtpd opens a connection to its new listener to make the first SMTP instance;
        with the port shared, that connection may reach a sibling process (and behind the PROXY
        protocol it would be one without a header), so the instance is made in the loop."""
        if not self.reuse_port and not self.proxied:
            super()._trigger_server()  # type: ignore[no-untyped-call]
            return
        self.loop.call_soon_threadsafe(self._factory_invoker)

    def start(self) -> None:
        self.recorder.start()
        super().start()

    def stop(self, no_assert: bool = False) -> None:
        super().stop(no_assert=no_assert)
        self.recorder.stop()
        self.executor.shutdown(wait=True)
        self.verifier_pool.shutdown(wait=True)

    def liveness(self) -> dict[str, object]:
        """Whether the door gets through its work: its heartbeat's detail (intake.ops.health)."""
        progress = self.recorder.progress()
        last = progress.last_batch_at
        return {
            "listening": f"{self.hostname}:{self.port}",
            "waiting": progress.waiting,
            "oldest_wait_seconds": round(progress.oldest_wait, 1),
            "last_batch_at": last.isoformat() if last else None,
            "last_error": progress.last_error,
            "stalled": progress.stalled_reason(self.stall_seconds),
        }
