"""The gateway beside a help desk a support team would otherwise run: the same messages, end to
end on both sides (mail in, request or ticket open, acknowledgment at the relay).

    .venv/bin/python bench/peers.py [--messages 500] [--repeat 3] [--summary FILE]

django-helpdesk (HELPDESK_VERSION, installed from PyPI with pip into a virtualenv of its own
under BENCH_PEERS_DIR, by default ~/.cache/intake-bench-peers, made on the first run) reads
the messages from a local mail directory with its `get_email` command into SQLite: a ticket
for each, and the submitter's acknowledgment mailed to a relay run here. Its time runs from
starting the command to the last acknowledgment at the relay, so it includes the command's
start-up, which is measured apart on an empty directory and printed beside it.

The gateway runs as `intake run` runs it on its embedded defaults (SQLite, one SMTP listener,
one worker, the web server, the embedded Redis) and gets the same messages over SMTP from 4
sessions. Its senders are registered contacts; sender checks are off, because the messages
carry no signatures (django-helpdesk checks none either). Its time runs from the first
message sent to the last acknowledgment at the relay, after one warm-up message.

django-mailbox (MAILBOX_VERSION, in a virtualenv of its own beside it) imports the same
messages from a local Maildir with its `getmail` command into its Django models on SQLite: a
Message row for each, parsed, and nothing sent (it is an ingest library, not a desk). Its rate
is items imported per second, from starting the command to its end, start-up included (measured
apart and printed beside it); ours stays the end-to-end rate, acknowledgment included.

Runs alternate (helpdesk, mailbox, gateway, helpdesk, ...) and the table shows medians.
"""

from __future__ import annotations

import argparse
import mailbox
import os
import queue
import shutil
import smtplib
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH.parent))

import _summary  # noqa: E402
from _load import build_messages  # noqa: E402
from _server import free_port  # noqa: E402
from smtp_intake import (  # noqa: E402
    CONFIG,
    PYTHON,
    ROOT,
    AckRecorder,
    relay,
    seed_contacts,
    stop_process,
    wait_for_acks,
)

from intake.store.db import upgrade  # noqa: E402

HELPDESK_VERSION = "2.6.1"
MAILBOX_VERSION = "4.10.1"
PEERS_DIR = Path(os.environ.get("BENCH_PEERS_DIR", Path.home() / ".cache/intake-bench-peers"))
SESSIONS = 4
TARGET_TIMES = 20.0
ACK_WAIT = 120.0  # seconds without a new acknowledgment before a run gives up

HELPDESK_SETTINGS = """\
SECRET_KEY = "benchmark-only-" + "x" * 40
DEBUG = False
ALLOWED_HOSTS = ["*"]
INSTALLED_APPS = [
    "django.contrib.admin", "django.contrib.auth", "django.contrib.contenttypes",
    "django.contrib.sessions", "django.contrib.messages", "django.contrib.staticfiles",
    "django.contrib.sites", "django.contrib.humanize", "rest_framework", "helpdesk",
]
HELPDESK_TEAMS_MODE_ENABLED = False  # pinax-teams is an extra the desk does not need
SITE_ID = 1
DATABASES = {{"default": {{"ENGINE": "django.db.backends.sqlite3", "NAME": "{database}"}}}}
ROOT_URLCONF = "urls"
USE_TZ = True
EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
EMAIL_HOST = "127.0.0.1"
EMAIL_PORT = {relay_port}
DEFAULT_FROM_EMAIL = "support@intake.localhost"
TEMPLATES = [{{
    "BACKEND": "django.template.backends.django.DjangoTemplates",
    "APP_DIRS": True,
    "OPTIONS": {{"context_processors": [
        "django.template.context_processors.request",
        "django.contrib.auth.context_processors.auth",
        "django.contrib.messages.context_processors.messages",
    ]}},
}}]
MIDDLEWARE = [
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
]
STATIC_URL = "/static/"
DEFAULT_AUTO_FIELD = "django.db.models.AutoField"
"""
HELPDESK_URLS = """\
from django.urls import include, path

urlpatterns = [path("helpdesk/", include("helpdesk.urls", namespace="helpdesk"))]
"""
HELPDESK_QUEUE = """\
from helpdesk.models import Queue

Queue.objects.create(
    title="Support", slug="support", email_address="support@intake.localhost",
    allow_email_submission=True, email_box_type="local", email_box_local_dir={mail_dir!r},
    email_box_interval=0,
)
"""


MAILBOX_SETTINGS = """\
SECRET_KEY = "benchmark-only-" + "x" * 40
INSTALLED_APPS = ["django.contrib.contenttypes", "django.contrib.auth", "django_mailbox"]
DATABASES = {{"default": {{"ENGINE": "django.db.backends.sqlite3", "NAME": "{database}"}}}}
MEDIA_ROOT = "{media}"
USE_TZ = True
DEFAULT_AUTO_FIELD = "django.db.models.AutoField"
"""
MAILBOX_CREATE = """\
from django_mailbox.models import Mailbox

Mailbox.objects.create(name="support", uri="maildir://" + {mail_dir!r})
"""


def messages(count: int) -> list[tuple[str, bytes]]:
    """The benchmark's usual ~4 KB messages from the 50 senders: (sender, plain RFC 5322
    bytes), undoing the SMTP dot-stuffing and final dot of the load client's wire form."""
    return [
        (sender, wire.removesuffix(b".\r\n").replace(b"\r\n..", b"\r\n."))
        for sender, _, wire in build_messages(count, uuid.uuid4().hex[:8])
    ]


# ---------------------------------------------------------------------------------------------
# django-helpdesk.


def peer_python(package: str, version: str, *also: str) -> Path:
    """The virtualenv with ``package`` (and the requirements ``also``), made and filled from
    PyPI the first time; one whose filling did not finish is made again."""
    venv = PEERS_DIR / f"{package}-{version}"
    python, filled = venv / "bin" / "python", venv / "filled"
    if not filled.exists():
        print(f"installing {package} {version} into {venv} ...", flush=True)
        shutil.rmtree(venv, ignore_errors=True)
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
        pip = [str(python), "-m", "pip", "install", "-q", f"{package}=={version}", *also]
        subprocess.run(pip, check=True)
        filled.touch()
    return python


class DjangoProject:
    """A Django project of one settings file on SQLite, in a folder of its own, migrated."""

    def __init__(self, python: Path, workdir: Path, name: str, settings: str) -> None:
        self.python, self.dir = python, workdir / f"{name}-{uuid.uuid4().hex[:6]}"
        self.mail_dir = self.dir / "mail"
        self.database = self.dir / "db.sqlite3"
        self.mail_dir.mkdir(parents=True)
        text = settings.format(database=self.database, media=self.dir / "media")
        (self.dir / "settings.py").write_text(text)

    def django(self, *args: str, stdin: str | None = None) -> None:
        env = dict(os.environ) | {"DJANGO_SETTINGS_MODULE": "settings", "PYTHONPATH": str(self.dir)}
        command = [str(self.python), "-m", "django", *args]
        subprocess.run(
            command, cwd=self.dir, env=env, input=stdin, text=True, check=True,
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip

    def count(self, table: str) -> int:
        with sqlite3.connect(self.database) as conn:
            return int(conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0])


class Helpdesk(DjangoProject):
    """django-helpdesk, its queue reading the mail directory, mailing a relay on ``relay_port``."""

    def __init__(self, python: Path, workdir: Path, relay_port: int) -> None:
        settings = HELPDESK_SETTINGS.replace("{relay_port}", str(relay_port))
        super().__init__(python, workdir, "helpdesk", settings)
        (self.dir / "urls.py").write_text(HELPDESK_URLS)
        self.django("migrate", "-v0")
        self.django("shell", stdin=HELPDESK_QUEUE.format(mail_dir=str(self.mail_dir)))

    def drop_mail(self, mails: list[tuple[str, bytes]]) -> None:
        for i, (_, wire) in enumerate(mails):
            (self.mail_dir / f"{i:05d}.eml").write_bytes(wire)


class Mailbox(DjangoProject):
    """django-mailbox with one mailbox, the Maildir in the project's mail directory."""

    def __init__(self, python: Path, workdir: Path) -> None:
        super().__init__(python, workdir, "mailbox", MAILBOX_SETTINGS)
        for folder in ("new", "cur", "tmp"):  # Maildir(create=True) makes none in a folder
            (self.mail_dir / folder).mkdir()
        self.maildir = mailbox.Maildir(self.mail_dir, create=False)
        self.django("migrate", "-v0")
        self.django("shell", stdin=MAILBOX_CREATE.format(mail_dir=str(self.mail_dir)))

    def drop_mail(self, mails: list[tuple[str, bytes]]) -> None:
        for _, wire in mails:
            self.maildir.add(wire.replace(b"\r\n", b"\n"))


def seconds_of(project: DjangoProject, command: str) -> float:
    """How long one run of the project's management ``command`` takes, start-up included."""
    started = time.monotonic()
    project.django(command)
    return time.monotonic() - started


def measure_helpdesk(
    python: Path, mails: list[tuple[str, bytes]], workdir: Path
) -> tuple[float, float]:
    """Messages per second end to end, and the `get_email` start-up on an empty directory."""
    with relay() as (recorder, port):
        desk = Helpdesk(python, workdir, port)
        startup = seconds_of(desk, "get_email")
        desk.drop_mail(mails)
        started = time.monotonic()
        desk.django("get_email")
        last = arrival_of(recorder, len(mails))
        opened = desk.count("helpdesk_ticket")
    shutil.rmtree(desk.dir, ignore_errors=True)
    if opened != len(mails):
        raise RuntimeError(f"django-helpdesk opened {opened} tickets for {len(mails)} messages")
    return len(mails) / (last - started), startup


def measure_mailbox(
    python: Path, mails: list[tuple[str, bytes]], workdir: Path
) -> tuple[float, float]:
    """Messages imported per second, and the `getmail` start-up on an empty Maildir."""
    box = Mailbox(python, workdir)
    startup = seconds_of(box, "getmail")
    box.drop_mail(mails)
    took = seconds_of(box, "getmail")
    imported = box.count("django_mailbox_message")
    shutil.rmtree(box.dir, ignore_errors=True)
    if imported != len(mails):
        raise RuntimeError(f"django-mailbox imported {imported} of {len(mails)} messages")
    return len(mails) / took, startup


# ---------------------------------------------------------------------------------------------
# The gateway.


def measure_gateway(mails: list[tuple[str, bytes]], workdir: Path) -> float:
    home = workdir / f"gateway-{uuid.uuid4().hex[:6]}"
    home.mkdir()
    url = f"sqlite:///{home / 'intake.db'}"
    upgrade(url)
    seed_contacts(url)
    smtp_port = free_port()
    with relay() as (recorder, relay_port):
        env = {k: v for k, v in os.environ.items() if not k.startswith("INTAKE_")} | {
            "INTAKE_CONFIG": str(CONFIG),
            "INTAKE_DATABASE_URL": url,
            "INTAKE_VAR_DIR": str(home / "var"),
            "INTAKE_SECRET_KEY": "benchmark-secret-key-of-at-least-32-bytes",
            "INTAKE_SENDER_AUTH": "off",
            "INTAKE_OUTBOUND_SMTP_URL": f"smtp://127.0.0.1:{relay_port}",
            "INTAKE_SMTP_PORT": str(smtp_port),
            "INTAKE_WEB_PORT": str(free_port()),
        }
        with (home / "run.log").open("ab") as log:
            gateway = subprocess.Popen(
                [PYTHON, "-m", "intake", "run"], cwd=ROOT, env=env, stdout=log, stderr=log
            )
        try:
            send_all(smtp_port, messages(1), timeout=120)  # warm-up: every process is up
            arrival_of(recorder, 1)
            before = recorder.count()
            started = time.monotonic()
            send_all(smtp_port, mails, timeout=120)
            last = arrival_of(recorder, before + len(mails))
        finally:
            stop_process(gateway)
    shutil.rmtree(home, ignore_errors=True)
    return len(mails) / (last - started)


def send_all(port: int, mails: list[tuple[str, bytes]], timeout: float) -> None:
    """Every message over SMTP from SESSIONS sessions at once; each must get a 250."""
    waiting: queue.Queue[tuple[str, bytes]] = queue.Queue()
    for mail in mails:
        waiting.put(mail)
    errors: list[BaseException] = []

    def session() -> None:
        try:
            with connect(port, timeout) as client:
                while True:
                    try:
                        sender, wire = waiting.get_nowait()
                    except queue.Empty:
                        return
                    client.sendmail(sender, ["support@intake.localhost"], wire)
        except BaseException as exc:  # reported below, in the main thread
            errors.append(exc)

    threads = [threading.Thread(target=session) for _ in range(SESSIONS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if errors:
        raise errors[0]


def connect(port: int, timeout: float) -> smtplib.SMTP:
    """A session with the door, waiting for it to listen (`intake run` is starting)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            return smtplib.SMTP("127.0.0.1", port, timeout=timeout)
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)


def arrival_of(recorder: AckRecorder, expected: int) -> float:
    """The monotonic time the ``expected``-th acknowledgment arrived at the relay."""
    wait_for_acks(recorder, expected, ACK_WAIT)
    with recorder.lock:
        if len(recorder.arrivals) < expected:
            raise RuntimeError(f"{len(recorder.arrivals)} of {expected} acknowledgments arrived")
        return recorder.arrivals[expected - 1][1]


# ---------------------------------------------------------------------------------------------
# Main.


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--messages", type=int, default=500)
    parser.add_argument("--repeat", type=int, default=3, help="runs per side (medians)")
    _summary.add_option(parser)
    args = parser.parse_args()
    helpdesk_python = peer_python("django-helpdesk", HELPDESK_VERSION)
    # django-mailbox names no Django release it needs; its classifiers end at Django 5.0.
    mailbox_python = peer_python("django-mailbox", MAILBOX_VERSION, "Django>=4.2,<5.1")
    mails = messages(args.messages)
    helpdesk, mailbox_rates, startups, gateway = [], [], {"helpdesk": [], "mailbox": []}, []
    with tempfile.TemporaryDirectory(prefix="bench-peers-") as folder:
        workdir = Path(folder)
        for _ in range(args.repeat):
            rate, startup = measure_helpdesk(helpdesk_python, mails, workdir)
            helpdesk.append(rate)
            startups["helpdesk"].append(startup)
            print(f"  django-helpdesk: {rate:,.1f} msgs/s (start-up {startup:.2f} s)", flush=True)
            rate, startup = measure_mailbox(mailbox_python, mails, workdir)
            mailbox_rates.append(rate)
            startups["mailbox"].append(startup)
            print(f"  django-mailbox: {rate:,.1f} msgs/s (start-up {startup:.2f} s)", flush=True)
            gateway.append(measure_gateway(mails, workdir))
            print(f"  gateway (intake run): {gateway[-1]:,.1f} msgs/s", flush=True)
    theirs, ours = statistics.median(helpdesk), statistics.median(gateway)
    imported = statistics.median(mailbox_rates)
    runs = f"medians of {args.repeat} runs; {os.cpu_count()} cores"
    print(f"\n{args.messages} messages, {runs}")
    print(f"django-helpdesk {HELPDESK_VERSION} get_email, end to end: {theirs:,.1f} msgs/s "
          f"(its start-up {statistics.median(startups['helpdesk']):.2f} s included)")  # fmt: skip
    print(f"django-mailbox {MAILBOX_VERSION} getmail, import only: {imported:,.1f} msgs/s "
          f"(its start-up {statistics.median(startups['mailbox']):.2f} s included)")  # fmt: skip
    print(f"gateway, intake run's embedded defaults, end to end: {ours:,.1f} msgs/s")
    print(f"  = {ours / theirs:.1f}x django-helpdesk, {ours / imported:.2f}x django-mailbox")
    _summary.record(
        args.summary,
        _summary.Figure(
            name=f"end to end, {args.messages} messages, intake run (SQLite)",
            value=f"{ours:,.0f} msgs/s = {ours / theirs:.1f}x",
            reference=f"django-helpdesk {HELPDESK_VERSION} get_email {theirs:,.1f} msgs/s",
            target=f">= {TARGET_TIMES:g}x django-helpdesk",
            met=ours / theirs >= TARGET_TIMES,
        ),
    )
    _summary.record(
        args.summary,
        _summary.Figure(
            name="the same, against a mail-ingest peer (import only, nothing sent)",
            value=f"{ours:,.0f} msgs/s = {ours / imported:.2f}x",
            reference=f"django-mailbox {MAILBOX_VERSION} getmail {imported:,.1f} msgs/s",
            target="",
            met=None,
        ),
    )


if __name__ == "__main__":
    main()
