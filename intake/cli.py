"""The ``intake`` command: every process and administrative task of the gateway.

This module is the composition root: it alone wires settings, database, queue and the doors
together, so it imports from every layer.
"""

from __future__ import annotations

import os
import signal
import sys
import threading
from pathlib import Path
from typing import Any

import click

from intake import __version__
from intake.errors import ConfigError, ImportFileError, IntakeError
from intake.jobs.runtime import Runtime, build_runtime, install
from intake.logs import setup_logging
from intake.ops.startup import StartupError, check_secret_key, database_reachable, demo_requested
from intake.settings import MAX_SMTP_PROCESSES, Settings, load_settings
from intake.store.db import current_revision, upgrade


def _settings(ctx: click.Context) -> Settings:
    settings: Settings = ctx.obj["settings"]
    return settings


def _migrated_runtime(ctx: click.Context) -> Runtime:
    rt = build_runtime(_settings(ctx))
    with database_reachable(rt.settings.database_url):
        migrated = rt.db.is_migrated()
    if not migrated:
        raise click.ClickException(
            f"The database {rt.db.engine.url.render_as_string()} has no schema yet: "
            "run `intake db upgrade` first."
        )
    install(rt)
    return rt


class _Commands(click.Group):
    """The command group: a process that cannot start says why in one sentence, exit code 1."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except StartupError as exc:
            raise click.ClickException(str(exc)) from None


@click.group(
    cls=_Commands,
    context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100},
)
@click.version_option(__version__, prog_name="intake")
@click.option(
    "--config",
    "config_path",
    metavar="FILE",
    help="Settings file (TOML); default $INTAKE_CONFIG or config/intake.toml.",
)
@click.option(
    "--log-format",
    type=click.Choice(["text", "json"]),
    help="Log lines for people (text) or for a log pipeline (json).",
)
@click.option(
    "--log-level", type=click.Choice(["DEBUG", "INFO", "WARNING", "ERROR"], case_sensitive=False)
)
@click.pass_context
def cli(
    ctx: click.Context, config_path: str | None, log_format: str | None, log_level: str | None
) -> None:
    """The support desk's intake gateway: mail and calls from registered contacts become
    service requests, acknowledged within their response goal.

    Settings come from built-in defaults, then config/intake.toml (or --config), then
    INTAKE_* environment variables. Start everything at once with `intake run --demo`.
    """
    env = dict(os.environ)
    if config_path:
        env["INTAKE_CONFIG"] = config_path
    overrides = {k: v for k, v in (("log_format", log_format), ("log_level", log_level)) if v}
    try:
        settings = load_settings(env, overrides)
    except ConfigError as exc:
        raise click.ClickException(str(exc)) from None
    setup_logging(settings.log_level, settings.log_format, ctx.invoked_subcommand or "")
    ctx.obj = {"settings": settings}


@cli.group()
def db() -> None:
    """The database schema (Alembic migrations)."""


@db.command("upgrade")
@click.pass_context
def db_upgrade(ctx: click.Context) -> None:
    """Migrate the database to the newest schema (safe to run again)."""
    url = _settings(ctx).database_url
    with database_reachable(url):
        upgrade(url)
        click.echo(f"database at revision {current_revision(url)}")


@db.command("current")
@click.pass_context
def db_current(ctx: click.Context) -> None:
    """Print the schema revision the database is at."""
    url = _settings(ctx).database_url
    with database_reachable(url):
        click.echo(current_revision(url) or "empty (no schema yet)")


@cli.command("import")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option(
    "--progress/--no-progress",
    default=True,
    show_default=True,
    help="Show a progress bar while writing.",
)
@click.pass_context
def import_command(ctx: click.Context, file: Path, progress: bool) -> None:
    """Create or update customers and contacts from FILE (TOML, see the README).

    Every row is checked first; if any has a problem, all problems are listed with their
    line and nothing is written. Importing the same file twice changes nothing.
    """
    from intake.importer.run import import_file

    rt = _migrated_runtime(ctx)
    try:
        report = import_file(rt.db, file, progress=progress)
    except ImportFileError as exc:
        for problem in exc.problems:
            click.echo(f"{file}: {problem}", err=True)
        raise click.ClickException(
            f"{len(exc.problems)} problem(s); nothing was imported."
        ) from None
    click.echo(report.summary())


@cli.group()
def staff() -> None:
    """Staff logins for the status pages: add, list, disable, enable, reset-password, unlock.

    The first login added is an administrator: it may do the same on the Settings page."""


@staff.command("add")
@click.argument("username")
@click.option("--email", default="", help="Where notifications about assigned requests go.")
@click.pass_context
def staff_add(ctx: click.Context, username: str, email: str) -> None:
    """Add a staff login; the password is read from standard input (or prompted for)."""
    from intake.accounts.credentials import add_staff

    if sys.stdin.isatty():
        password = click.prompt("Password", hide_input=True, confirmation_prompt=True)
    else:
        password = sys.stdin.readline().rstrip("\r\n")
    try:
        add_staff(_migrated_runtime(ctx).db, username, password, email=email.strip())
    except IntakeError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(f"staff user {username} added")


@staff.command("list")
@click.pass_context
def staff_list(ctx: click.Context) -> None:
    """List the staff logins: name, role, state (active, locked until, disabled), created."""
    from intake.accounts.staff_admin import list_staff
    from intake.store.models import utcnow

    now = utcnow()
    for row in list_staff(_migrated_runtime(ctx).db):
        role = "admin" if row.is_admin else "staff"
        click.echo(f"{row.username}\t{role}\t{row.state(now)}\tcreated {row.created_at:%Y-%m-%d}")


def _staff_change(ctx: click.Context, change: Any, username: str, *args: Any) -> str:
    try:
        name: str = change(_migrated_runtime(ctx).db, username, *args)
    except IntakeError as exc:
        raise click.ClickException(str(exc)) from None
    return name


@staff.command("disable")
@click.argument("username")
@click.pass_context
def staff_disable(ctx: click.Context, username: str) -> None:
    """Disable USERNAME: it cannot sign in, and its open sessions end at once."""
    from intake.accounts.staff_admin import set_disabled

    click.echo(f"staff user {_staff_change(ctx, set_disabled, username, True)} disabled")


@staff.command("enable")
@click.argument("username")
@click.pass_context
def staff_enable(ctx: click.Context, username: str) -> None:
    """Enable USERNAME again after `intake staff disable`."""
    from intake.accounts.staff_admin import set_disabled

    click.echo(f"staff user {_staff_change(ctx, set_disabled, username, False)} enabled")


@staff.command("reset-password")
@click.argument("username")
@click.pass_context
def staff_reset_password(ctx: click.Context, username: str) -> None:
    """Give USERNAME a new password (read from standard input, or prompted for); this also
    unlocks it and ends its open sessions."""
    from intake.accounts.staff_admin import reset_password

    if sys.stdin.isatty():
        password = click.prompt("New password", hide_input=True, confirmation_prompt=True)
    else:
        password = sys.stdin.readline().rstrip("\r\n")
    name = _staff_change(ctx, reset_password, username, password)
    click.echo(f"password of staff user {name} reset")


@staff.command("unlock")
@click.argument("username")
@click.pass_context
def staff_unlock(ctx: click.Context, username: str) -> None:
    """Lift the lock of USERNAME after too many failed sign-ins, and forget those failures."""
    from intake.accounts.staff_admin import unlock

    click.echo(f"staff user {_staff_change(ctx, unlock, username)} unlocked")


@cli.group()
def contacts() -> None:
    """Customers' contacts (to add or change them, use `intake import`)."""


@contacts.command("transfer")
@click.argument("old_email")
@click.argument("new_email")
@click.pass_context
def contacts_transfer(ctx: click.Context, old_email: str, new_email: str) -> None:
    """Move technical-contact duties from OLD_EMAIL to NEW_EMAIL: the new contact takes over
    the open requests; the old one is refused from then on."""
    from intake.requests.refused import ActionRefused
    from intake.workflows.transfer import transfer_contact

    rt = _migrated_runtime(ctx)
    try:
        with rt.db.transaction() as session:
            done = transfer_contact(session, old_email, new_email, by="intake contacts transfer")
    except ActionRefused as refused:
        raise click.ClickException(refused.message) from None
    taken = ", ".join(done.requests) or "no open requests"
    click.echo(f"{done.to_name} <{done.to_address}> took over from {done.from_address}: {taken}")


@cli.group()
def token() -> None:
    """API tokens for the JSON API and /metrics."""


@token.command("list")
@click.pass_context
def token_list(ctx: click.Context) -> None:
    """List the API tokens: name, created, last used, revoked (never the token itself)."""
    from intake.accounts.staff_admin import list_tokens

    for row in list_tokens(_migrated_runtime(ctx).db):
        used = f"{row.last_used_at:%Y-%m-%d %H:%M}" if row.last_used_at else "never"
        state = f"revoked {row.revoked_at:%Y-%m-%d %H:%M}" if row.revoked_at else "live"
        click.echo(f"{row.name}\tcreated {row.created_at:%Y-%m-%d %H:%M}\tused {used}\t{state}")


@token.command("revoke")
@click.argument("name")
@click.pass_context
def token_revoke(ctx: click.Context, name: str) -> None:
    """Revoke the API token(s) named NAME: requests sending it are refused from now on."""
    from intake.accounts.staff_admin import revoke_tokens

    try:
        count = revoke_tokens(_migrated_runtime(ctx).db, name)
    except IntakeError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(f"{count} token(s) named {name} revoked")


@token.command("create")
@click.argument("name")
@click.pass_context
def token_create(ctx: click.Context, name: str) -> None:
    """Create an API token named NAME and print it (it is shown only this once)."""
    from intake.accounts.credentials import create_token

    click.echo(create_token(_migrated_runtime(ctx).db, name))


@cli.command()
@click.option("--host", help="Address to listen on (default $INTAKE_SMTP_HOST).")
@click.option("--port", type=click.IntRange(0, 65535), help="Port (default $INTAKE_SMTP_PORT).")
@click.option(
    "--liveness-file",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Write a liveness report here every second (`intake run` watches it).",
)
@click.option(
    "--processes",
    type=click.IntRange(1, MAX_SMTP_PROCESSES),
    help="Listeners on the one port, each a process with its own recorder (default "
    "$INTAKE_SMTP_PROCESSES, else 1; `intake run` starts one per core on PostgreSQL).",
)
@click.option(
    "--shared-port",
    is_flag=True,
    help="Share the port with other `intake smtp --shared-port` processes (SO_REUSEPORT), as "
    "the listeners of --processes and systemd's intake-smtp@ instances do.",
)
@click.pass_context
def smtp(
    ctx: click.Context,
    *,
    host: str | None,
    port: int | None,
    liveness_file: Path | None,
    processes: int | None,
    shared_port: bool,
) -> None:
    """Run the SMTP listener (the mail door).

    With --processes N (N > 1) this process starts N listeners on the one port (SO_REUSEPORT:
    the kernel spreads the connections among them), restarts one that dies or is stuck, and
    stops them all on SIGTERM or Ctrl-C. Each reports its liveness under $INTAKE_VAR_DIR/run/.
    """
    from intake.jobs.batch import Gatherer
    from intake.jobs.queue import connect_redis, make_queue
    from intake.mail.smtp import SmtpDoor
    from intake.ops.health import record_heartbeat
    from intake.ops.liveness import HEARTBEAT_TTL, LivenessReporter
    from intake.ops.startup import port_in_use_sentence

    check_secret_key(_settings(ctx), demo=demo_requested())
    count = processes or _settings(ctx).smtp_processes or 1
    if count > 1 and not shared_port:
        _run_smtp_listeners(ctx, count, host, port, liveness_file)
        return
    rt = _migrated_runtime(ctx)
    connection = connect_redis(rt.settings)
    gatherer = Gatherer(make_queue(rt.settings, connection))
    door = SmtpDoor(
        rt.settings,
        rt.db,
        gatherer,
        host=host,
        port=port,
        reuse_port=shared_port,
    )
    try:
        door.start()
    except OSError as exc:
        door.stop(no_assert=True)
        sentence = port_in_use_sentence(
            "SMTP", door.hostname, door.port, "INTAKE_SMTP_PORT (smtp_port) or --port", exc
        )
        raise click.ClickException(sentence) from None
    where = f"{door.hostname}:{door.port}"
    click.echo(f"SMTP listening on {where}", err=True)
    instance = f"{where} pid {os.getpid()}" if shared_port else where

    def heartbeat(detail: dict[str, object]) -> None:
        record_heartbeat(connection, "smtp", instance, detail, ttl=HEARTBEAT_TTL)

    _wait_for_signal(LivenessReporter(door.liveness, heartbeat, liveness_file).tick)
    door.stop()
    gatherer.close()


def _run_smtp_listeners(
    ctx: click.Context, count: int, host: str | None, port: int | None, liveness: Path | None
) -> None:
    """``intake smtp --processes N``: check what all N need, then start and watch them."""
    from intake.ops.startup import check_port_free
    from intake.supervisor import SHARED_PORT_OPTION, run_smtp_listeners

    settings = _settings(ctx)
    host = host or settings.smtp_host
    port = settings.smtp_port if port is None else port
    if port == 0:
        raise click.UsageError("--processes needs a fixed port: with 0 each would get its own.")
    if liveness is not None:
        raise click.UsageError(
            "--liveness-file reports on one listener; with --processes each reports its own."
        )
    check_port_free("SMTP", host, port, "INTAKE_SMTP_PORT (smtp_port) or --port")
    _migrated_runtime(ctx).db.dispose()  # the schema is there: no listener fails for it
    click.echo(f"SMTP listening on {host}:{port} with {count} processes", err=True)
    command = ("smtp", SHARED_PORT_OPTION, "--host", host, "--port", str(port))
    try:
        run_smtp_listeners(settings, command, count, echo=lambda s: click.echo(s, err=True))
    except IntakeError as exc:
        raise click.ClickException(str(exc)) from None


@cli.command()
@click.pass_context
def imap(ctx: click.Context) -> None:
    """Run the IMAP poller: read the support mailboxes into the intake log.

    Mailboxes: INTAKE_IMAP_URL (imaps://user:password@host/INBOX, several comma-separated) or
    [[imap]] tables in the config file. Always TLS: imaps://, or imap:// with STARTTLS
    required; the certificate is checked (against INTAKE_IMAP_CA_FILE where set). Without a
    password in the URL the login is XOAUTH2 with the token INTAKE_IMAP_OAUTH2_TOKEN_COMMAND
    prints (run again for every login). Each message is recorded like mail to the SMTP door,
    then moved to INTAKE_IMAP_PROCESSED_FOLDER (or flagged, INTAKE_IMAP_AFTER=flag); one that
    fails INTAKE_IMAP_MAX_ATTEMPTS times goes to INTAKE_IMAP_QUARANTINE_FOLDER. Several
    pollers (on several hosts) share the work: one at a time per mailbox.
    """
    from intake.errors import ConfigError
    from intake.jobs.batch import enqueue_intakes_quietly
    from intake.jobs.queue import connect_redis, make_queue
    from intake.mail.imap_door import ImapDoor
    from intake.ops.health import record_heartbeat

    rt = _migrated_runtime(ctx)
    connection = connect_redis(rt.settings)
    queue = make_queue(rt.settings, connection)
    try:
        door = ImapDoor(rt.settings, rt.db, lambda ids: enqueue_intakes_quietly(queue, ids))
    except ConfigError as exc:
        raise click.ClickException(str(exc)) from None
    if not door.pollers:
        raise click.ClickException("no mailbox: set INTAKE_IMAP_URL or add [[imap]] tables")
    door.start()
    click.echo("IMAP polling " + ", ".join(p.key for p in door.pollers), err=True)

    def heartbeat() -> None:
        try:
            record_heartbeat(connection, "imap", door.holder, door.report())
        except Exception as exc:  # Redis being down must not stop the door
            click.echo(f"heartbeat not recorded: {exc}", err=True)

    _wait_for_signal(heartbeat)
    door.stop()


def _wait_for_signal(every_second: Any) -> None:
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    every_second()
    while not stop.wait(1):
        every_second()


@cli.command()
@click.option("--burst", is_flag=True, help="Stop when the queue is empty.")
@click.option("--name", help="Worker name (default: host and pid).")
@click.option(
    "--cron/--no-cron", default=True, show_default=True, help="Also run the periodic outbox sweep."
)
@click.pass_context
def worker(ctx: click.Context, burst: bool, name: str | None, cron: bool) -> None:
    """Run a worker: sends acknowledgments and runs the periodic jobs."""
    from intake.jobs.queue import connect_redis, redis_url
    from intake.jobs.worker import log as worker_log
    from intake.jobs.worker import run_worker
    from intake.ops.startup import wait_for_redis
    from voice.sms_sender import register as register_sms_sender

    check_secret_key(_settings(ctx), demo=demo_requested())
    rt = _migrated_runtime(ctx)
    register_sms_sender()  # outbox rows of the "sms" channel go out through Twilio
    connection = connect_redis(rt.settings, socket_timeout=None)
    wait_for_redis(connection, redis_url(rt.settings), worker_log)
    run_worker(rt, connection, burst=burst, cron=cron, name=name)


@cli.command()
@click.option("--host", help="Address to listen on (default $INTAKE_WEB_HOST).")
@click.option("--port", type=click.IntRange(1, 65535), help="Port (default $INTAKE_WEB_PORT).")
@click.option("--threads", default=8, show_default=True, type=click.IntRange(1, 256))
@click.pass_context
def web(ctx: click.Context, host: str | None, port: int | None, threads: int) -> None:
    """Run the web server: the JSON API, status pages and Twilio webhooks (waitress, with the
    limits of the INTAKE_WEB_* settings: connections, per client, header and idle timeouts,
    request body size)."""
    from web import create_app
    from web.server import PortInUse, make_server

    check_secret_key(_settings(ctx), demo=demo_requested())
    rt = _migrated_runtime(ctx)
    app = create_app(rt.settings, db=rt.db)
    host, port = host or rt.settings.web_host, port or rt.settings.web_port
    try:
        server = make_server(app, rt.settings, host=host, port=port, threads=threads)
    except PortInUse as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(f"web listening on http://{host}:{port}/", err=True)
    server.run()


@cli.command()
@click.option(
    "--demo",
    is_flag=True,
    help="Load the demo customers and contacts, and only record sender checks.",
)
@click.pass_context
def run(ctx: click.Context, demo: bool) -> None:
    """Run everything in one supervised process group: the SMTP listener, a worker and the
    web server (with an embedded Redis when INTAKE_REDIS_URL is unset). Ctrl-C stops all."""
    from intake.supervisor import run_all

    check_secret_key(_settings(ctx), demo=demo)
    try:
        run_all(_settings(ctx), demo=demo, echo=lambda line: click.echo(line, err=True))
    except IntakeError as exc:
        raise click.ClickException(str(exc)) from None


@cli.group()
def call() -> None:
    """Phone calls: walk the IVR as a caller would."""


@call.command("simulate")
@click.option(
    "--from",
    "caller_id",
    required=True,
    help="The caller ID Twilio would show (+14155550101; 'anonymous' for a withheld number).",
)
@click.option(
    "--url",
    help="Where the web server listens (default http://$INTAKE_WEB_HOST:$INTAKE_WEB_PORT).",
)
@click.option(
    "--verstat",
    default="TN-Validation-Passed-A",
    show_default=True,
    help="The STIR/SHAKEN StirVerstat Twilio would pass ('none': none, as from abroad).",
)
@click.pass_context
def call_simulate(ctx: click.Context, caller_id: str, url: str | None, verstat: str) -> None:
    """Walk the IVR in the terminal against the running web server (`intake web` or `intake
    run`), playing Twilio: requests signed with TWILIO_AUTH_TOKEN for INTAKE_PUBLIC_URL, as
    Twilio signs them, so the server must have the same settings.

    The prompts are printed. At a menu type keys (2, or 14155550101# for a number), 'say:
    severity one' for speech ('say 0.4: ...' sets the recogniser's confidence), Enter for
    silence, or 'hangup'. At the tone, type the description.
    """
    from voice.context import twilio_configured
    from voice.simulator import simulate

    settings = _settings(ctx)
    if not twilio_configured(settings):
        raise click.ClickException(
            "set TWILIO_ACCOUNT_SID, TWILIO_AUTH_TOKEN and TWILIO_PHONE_NUMBER, as for the server"
        )
    app_url = url or f"http://{settings.web_host}:{settings.web_port}"
    try:
        attestation = None if verstat.lower() == "none" else verstat
        simulate(settings, caller_id, app_url, _read_line, click.echo, attestation=attestation)
    except (OSError, RuntimeError) as exc:
        raise click.ClickException(f"the call failed: {exc}") from None


def _read_line(prompt: str) -> str:
    """One typed line; the end of the input hangs up."""
    try:
        return str(click.prompt(prompt, default="", show_default=False, prompt_suffix=""))
    except click.Abort:
        return "hangup"


def main() -> None:
    cli(prog_name="intake")
