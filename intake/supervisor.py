"""``intake run``: every component in one supervised process group.

Sets up what a first start needs (the schema, the secret key, the embedded Redis, the demo data),
then runs the SMTP listener, a worker, the web server and (when a mailbox is configured) the
IMAP poller as child processes, restarts one that dies or that is alive but stuck (the SMTP
listener reports its liveness to a file every second; a report saying it is stalled, or none
for ``stall_seconds``, and it is restarted, at most five times a minute: then it is left to
recover), and stops them all on Ctrl-C.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from intake.errors import IntakeError
from intake.jobs import embedded_redis
from intake.ops import startup
from intake.ops.liveness import read_report
from intake.secret import with_secret_key
from intake.settings import Settings
from intake.store.db import Database, upgrade

COMPONENTS = ("smtp", "worker", "web")
# The components that report their liveness (``--liveness-file``), watched for being stuck.
WATCHED = ("smtp",)
RESTARTS_PER_MINUTE = 5
STOP_GRACE_SECONDS = 10
STUCK_GRACE_SECONDS = 1  # a stuck process gets this long to stop before it is killed
START_GRACE_SECONDS = 60  # how long a process may take to send its first liveness report
DEMO_FILE = Path("config") / "demo.toml"
# `intake smtp`'s option for one of several listeners on the one port (SO_REUSEPORT).
SHARED_PORT_OPTION = "--shared-port"

Echo = Callable[[str], None]


@dataclass
class Child:
    component: str  # as the messages name it: "worker", "smtp 2"
    process: subprocess.Popen[bytes]
    starts: list[float] = field(default_factory=list)
    liveness_file: Path | None = None
    held_back: bool = False  # stuck, but restarted too often lately: left to recover
    command: tuple[str, ...] = ()  # the `intake` command line that starts it


@dataclass(frozen=True)
class Watch:
    """How the supervisor judges liveness: where reports go, and how old one may get."""

    run_dir: Path
    stall_seconds: float


def run_all(settings: Settings, *, demo: bool, echo: Echo) -> None:
    lock = startup.hold_instance_lock(settings.var_path)  # before anything is touched
    try:
        _run_locked(settings, demo=demo, echo=echo)
    finally:
        lock.close()


def _run_locked(settings: Settings, *, demo: bool, echo: Echo) -> None:
    startup.check_ports(settings)
    settings = with_secret_key(settings)
    with startup.database_reachable(settings.database_url):
        upgrade(settings.database_url)
    if demo:
        _load_demo(settings, echo)
    redis_url, started_redis = _redis(settings)
    env = _child_environment(settings, redis_url, demo)
    watch = Watch(settings.var_path / "run", settings.stall_seconds)
    children = [
        _spawn(name, command, env, watch)
        for component in components(settings)
        for name, command in _commands(component, settings)
    ]
    _announce(settings, redis_url, demo, echo)
    try:
        _supervise(children, env, echo, watch)
    finally:
        _stop_all(children)
        if started_redis:
            embedded_redis.stop(settings.var_path)
        echo("stopped")


def run_smtp_listeners(
    settings: Settings, command: tuple[str, ...], count: int, *, echo: Echo
) -> None:
    """``intake smtp --processes N``: ``count`` listeners on the one port, each a process
    running ``command`` with its own recorder, restarted when one dies or is stuck."""
    env = dict(os.environ) | {  # what the command line gave this process, for its listeners
        "INTAKE_CONFIG": settings.config,
        "INTAKE_LOG_FORMAT": settings.log_format,
        "INTAKE_LOG_LEVEL": settings.log_level,
        "INTAKE_SECRET_KEY": with_secret_key(settings).secret_key,
    }
    watch = Watch(settings.var_path / "run", settings.stall_seconds)
    children = [
        _spawn(f"smtp {number}", command, env, watch, tag=f"smtp-{os.getpid()}-{number}")
        for number in range(1, count + 1)
    ]
    try:
        _supervise(children, env, echo, watch)
    finally:
        _stop_all(children)


def components(settings: Settings) -> tuple[str, ...]:
    """The processes to run: the IMAP poller too when a mailbox is configured."""
    return (*COMPONENTS, "imap") if imap_configured(settings) else COMPONENTS


def _commands(component: str, settings: Settings) -> list[tuple[str, tuple[str, ...]]]:
    """The processes of one component, named, with their command lines: several SMTP
    listeners sharing the port where the machine suits them."""
    count = settings.smtp_process_count if component == "smtp" else 1
    if count == 1:
        return [(component, (component,))]
    return [(f"{component} {n}", (component, SHARED_PORT_OPTION)) for n in range(1, count + 1)]


def imap_configured(settings: Settings) -> bool:
    return bool(settings.imap_url.strip() or settings.policy.get("imap"))


def _load_demo(settings: Settings, echo: Echo) -> None:
    from intake.importer.run import import_file

    path = DEMO_FILE if DEMO_FILE.exists() else Path(__file__).parent.parent / DEMO_FILE
    if not path.exists():
        raise IntakeError(f"the demo data {DEMO_FILE} is missing")
    db = Database.from_settings(settings)
    try:
        import_file(db, path, progress=False)
    finally:
        db.dispose()
    echo(f"demo customers and contacts loaded from {path}")


def _redis(settings: Settings) -> tuple[str, bool]:
    if settings.redis_url:
        return settings.redis_url, False
    return embedded_redis.ensure_running(settings.var_path)


def _child_environment(settings: Settings, redis_url: str, demo: bool) -> dict[str, str]:
    env = dict(os.environ)
    env["INTAKE_CONFIG"] = settings.config
    env["INTAKE_REDIS_URL"] = redis_url
    env["INTAKE_SECRET_KEY"] = settings.secret_key
    env["INTAKE_DATABASE_URL"] = settings.database_url
    env["INTAKE_LOG_FORMAT"] = settings.log_format
    env["INTAKE_LOG_LEVEL"] = settings.log_level
    if demo:
        # The demo's senders have no DNS of their own: record the verdict, refuse nothing.
        env.setdefault("INTAKE_SENDER_AUTH", "monitor")
        env[startup.DEMO_ENV] = "1"
    return env


def _start_process(
    command: tuple[str, ...], env: dict[str, str], liveness_file: Path | None
) -> subprocess.Popen[bytes]:
    argv = [sys.executable, "-m", "intake", *command]
    if liveness_file is not None:
        liveness_file.unlink(missing_ok=True)  # a report from the last process is no news
        argv += ["--liveness-file", str(liveness_file)]
    return subprocess.Popen(argv, env=env)


def _spawn(
    name: str, command: tuple[str, ...], env: dict[str, str], watch: Watch, tag: str = ""
) -> Child:
    watched = command[0] in WATCHED
    liveness_file = watch.run_dir / f"{tag or name.replace(' ', '-')}.liveness" if watched else None
    process = _start_process(command, env, liveness_file)
    return Child(name, process, [time.monotonic()], liveness_file, command=command)


def _announce(settings: Settings, redis_url: str, demo: bool, echo: Echo) -> None:
    addresses = ", ".join(settings.support_addresses)
    acks = settings.outbound_smtp_url or f"the maildir {settings.var_path / 'outbox'}/new/"
    listeners = settings.smtp_process_count
    shared = f", {listeners} listener processes" if listeners > 1 else ""
    echo(f"SMTP      {settings.smtp_host}:{settings.smtp_port}  (mail to {addresses}{shared})")
    echo(
        f"web       http://{settings.web_host}:{settings.web_port}/  "
        f"(API: /api/health, /api/requests, /api/intake)"
    )
    voice = settings.public_url.rstrip("/") + "/voice/incoming"
    twilio = settings.twilio_account_sid and settings.twilio_auth_token
    echo(f"voice     {voice}" if twilio else "voice     off (set the TWILIO_* settings)")
    if imap_configured(settings):
        echo("imap      polling the configured mailboxes")
    echo(f"database  {startup.masked_url(settings.database_url)}")
    echo(f"redis     {startup.masked_url(redis_url)}")
    echo(f"acks      {acks}")
    if demo:
        echo("demo mode: sender authentication only recorded; demo contacts in config/demo.toml")
    echo("press Ctrl-C to stop")


def _supervise(children: list[Child], env: dict[str, str], echo: Echo, watch: Watch) -> None:
    stopping = False

    def request_stop(*_: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGINT, request_stop)
    signal.signal(signal.SIGTERM, request_stop)
    while not stopping:
        time.sleep(0.5)
        for child in children:
            if not stopping:
                _check(child, env, echo, watch)


def _check(child: Child, env: dict[str, str], echo: Echo, watch: Watch) -> None:
    """Restart a child that has exited or is stuck."""
    if child.process.poll() is not None:
        _restart(child, env, echo, f"exited with code {child.process.returncode}")
    elif stuck := _stuck_reason(child, watch):
        if _restarts_in_the_last_minute(child) >= RESTARTS_PER_MINUTE:
            # A stall outside the process (a database hanging) is waited out, not made into
            # a stop of the whole gateway: the child resumes on its own once it clears.
            if not child.held_back:
                echo(f"{child.component} is stuck again ({stuck}); waiting before another restart")
            child.held_back = True
            return
        _stop_stuck(child)
        _restart(child, env, echo, f"is stuck ({stuck})")


def _stuck_reason(child: Child, watch: Watch) -> str:
    """Why a running child counts as stuck: its own report says so, or it has sent none for
    too long (a wedged main thread); an empty string while it is fine."""
    if child.liveness_file is None:
        return ""
    report = read_report(child.liveness_file)
    if report is None or report.pid != child.process.pid:
        running_for = time.monotonic() - child.starts[-1]
        return "" if running_for < START_GRACE_SECONDS else "no liveness report since it started"
    if report.stalled:
        return report.stalled
    if report.age() > watch.stall_seconds:
        return f"no liveness report for {report.age():.0f} s"
    return ""


def _stop_stuck(child: Child) -> None:
    child.process.send_signal(signal.SIGTERM)
    try:
        child.process.wait(timeout=STUCK_GRACE_SECONDS)
    except subprocess.TimeoutExpired:
        child.process.kill()
        child.process.wait()


def _restarts_in_the_last_minute(child: Child) -> int:
    now = time.monotonic()
    child.starts = [t for t in child.starts if now - t < 60]
    return len(child.starts)


def _restart(child: Child, env: dict[str, str], echo: Echo, why: str) -> None:
    if _restarts_in_the_last_minute(child) >= RESTARTS_PER_MINUTE:
        raise IntakeError(f"{child.component} keeps stopping (it {why}); see the log above")
    echo(f"{child.component} {why}; restarting it")
    child.process = _start_process(child.command, env, child.liveness_file)
    child.starts.append(time.monotonic())
    child.held_back = False


def _stop_all(children: list[Child]) -> None:
    for child in children:
        if child.process.poll() is None:
            child.process.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + STOP_GRACE_SECONDS
    for child in children:
        try:
            child.process.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            child.process.kill()
            child.process.wait()
