"""A real Dovecot IMAP server for the tests: its own configuration, users, maildirs and a
certificate signed by a private CA made here, on free ports of 127.0.0.1, TLS only.

Dovecot runs in the foreground (``dovecot -F``) as a child of the test run. Its mail processes
run as the ``dovecot`` system user (Dovecot never gives mail access to root), so the directory
it works in is one that user may enter. XOAUTH2 logins are checked by Dovecot's oauth2 passdb
against a small token validator (RFC 7662 introspection) on 127.0.0.1 run by the tests.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import pwd
import shutil
import signal
import socket
import ssl
import subprocess
import tempfile
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs

from imapclient import IMAPClient

from tests.helpers import free_port, wait_for

DOVECOT = shutil.which("dovecot") or "/usr/sbin/dovecot"
MAIL_USER = "dovecot"
LOGIN_USER = "dovenull"
PASSWORD = "s3cret-imap"


class TokenValidator:
    """An OAuth2 introspection endpoint: the tokens it knows map to a user name."""

    def __init__(self) -> None:
        self.tokens: dict[str, str] = {}
        self.asked = 0
        validator = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                form = parse_qs(self.rfile.read(length).decode())
                token = (form.get("token") or [""])[0]
                if not token:  # Dovecot may send the token as a Bearer header instead
                    token = self.headers.get("Authorization", "").removeprefix("Bearer ")
                validator.asked += 1
                user = validator.tokens.get(token)
                body = {"active": True, "username": user} if user else {"active": False}
                data = json.dumps(body).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/introspect"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def start(self) -> TokenValidator:
        self.thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


class Dovecot:
    """One Dovecot instance with one user; ``imap_url``/``imaps_url`` name its mailbox."""

    def __init__(self, user: str = "support") -> None:
        self.root = Path(tempfile.mkdtemp(prefix="intake-dovecot-"))
        self.root.chmod(0o755)  # the mail user must reach mail/ beneath it
        self.user = user
        self.password = PASSWORD
        self.imap_port = free_port()
        self.imaps_port = free_port()
        self.validator = TokenValidator()
        self.process: subprocess.Popen[bytes] | None = None

    # -- set-up ---------------------------------------------------------------------------

    @property
    def ca_file(self) -> str:
        return str(self.root / "ca.crt")

    @property
    def log_file(self) -> Path:
        return self.root / "dovecot.log"

    def imaps_url(self, folder: str = "INBOX", **query: str) -> str:
        return self._url("imaps", self.imaps_port, folder, query)

    def imap_url(self, folder: str = "INBOX", **query: str) -> str:
        return self._url("imap", self.imap_port, folder, query)

    def _url(self, scheme: str, port: int, folder: str, query: dict[str, str]) -> str:
        extra = "&".join(f"{k}={v}" for k, v in query.items())
        auth = f"{self.user}:{self.password}" if "auth" not in query else self.user
        return f"{scheme}://{auth}@localhost:{port}/{folder}" + (f"?{extra}" if extra else "")

    def start(self) -> Dovecot:
        self._make_certificates()
        self._write_users()
        (self.root / "mail").mkdir()
        mail_user = pwd.getpwnam(MAIL_USER)
        os.chown(self.root / "mail", mail_user.pw_uid, mail_user.pw_gid)
        self.validator.start()
        (self.root / "oauth2.conf").write_text(
            f"introspection_mode = post\nintrospection_url = {self.validator.url}\n"
            "username_attribute = username\nactive_attribute = active\nactive_value = true\n"
            "tokeninfo_url = \n"
        )
        (self.root / "dovecot.conf").write_text(self._config(mail_user))
        self.process = subprocess.Popen(
            [DOVECOT, "-F", "-c", str(self.root / "dovecot.conf")],
            stdout=subprocess.DEVNULL,
            stderr=(self.root / "stderr.log").open("wb"),
        )
        wait_for(self._answers, timeout=20)
        return self

    def _make_certificates(self) -> None:
        """A private CA, and a server certificate for localhost signed by it."""
        r = self.root

        def openssl(*args: str) -> None:
            subprocess.run(["openssl", *args], check=True, capture_output=True, cwd=r)

        openssl(
            "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj",
            "/CN=Intake Test CA", "-keyout", "ca.key", "-out", "ca.crt",
        )  # fmt: skip
        openssl(
            "req", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=localhost",
            "-keyout", "server.key", "-out", "server.csr",
        )  # fmt: skip
        (r / "san.ext").write_text("subjectAltName=DNS:localhost\n")
        openssl(
            "x509", "-req", "-in", "server.csr", "-CA", "ca.crt", "-CAkey", "ca.key",
            "-CAcreateserial", "-days", "2", "-extfile", "san.ext", "-out", "server.crt",
        )  # fmt: skip

    def _write_users(self) -> None:
        # A new file in place of the old (a new inode): Dovecot sees the change at once.
        fresh = self.root / "users.new"
        fresh.write_text(f"{self.user}:{{PLAIN}}{self.password}::::::\n")
        fresh.chmod(0o644)
        fresh.replace(self.root / "users")

    def set_password(self, password: str) -> None:
        """Change the user's password (Dovecot re-reads the file when it changes)."""
        self.password = password
        self._write_users()

    def _config(self, mail_user: pwd.struct_passwd) -> str:
        r = self.root
        return f"""
base_dir = {r}/run
state_dir = {r}/state
log_path = {self.log_file}
protocols = imap
listen = 127.0.0.1
default_internal_user = {MAIL_USER}
default_internal_group = {MAIL_USER}
default_login_user = {LOGIN_USER}
ssl = required
ssl_cert = <{r}/server.crt
ssl_key = <{r}/server.key
disable_plaintext_auth = yes
auth_mechanisms = plain login xoauth2 oauthbearer
first_valid_uid = {mail_user.pw_uid}
mail_location = maildir:{r}/mail/%u
mail_fsync = never
imap_idle_notify_interval = 30 secs
service imap-login {{
  inet_listener imap {{
    address = 127.0.0.1
    port = {self.imap_port}
  }}
  inet_listener imaps {{
    address = 127.0.0.1
    port = {self.imaps_port}
    ssl = yes
  }}
}}
service anvil {{
  chroot =
}}
passdb {{
  driver = passwd-file
  mechanisms = plain login
  args = scheme=PLAIN username_format=%u {r}/users
}}
passdb {{
  driver = oauth2
  mechanisms = xoauth2 oauthbearer
  args = {r}/oauth2.conf
}}
userdb {{
  driver = static
  args = uid={mail_user.pw_uid} gid={mail_user.pw_gid} home={r}/mail/%u
}}
"""

    def _answers(self) -> bool:
        if self.process is not None and self.process.poll() is not None:
            raise RuntimeError(f"dovecot exited: {self.diagnostics()}")
        try:
            with socket.create_connection(("127.0.0.1", self.imaps_port), timeout=0.5):
                return True
        except OSError:
            return False

    def diagnostics(self) -> str:
        text = ""
        for name in ("stderr.log", "dovecot.log"):
            path = self.root / name
            if path.exists():
                text += path.read_text(errors="replace")[-3000:]
        return text

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.validator.stop()
        shutil.rmtree(self.root, ignore_errors=True)

    # -- a mail client of the tests ---------------------------------------------------------

    def tls_context(self) -> ssl.SSLContext:
        return ssl.create_default_context(cafile=self.ca_file)

    @contextmanager
    def client(self) -> Iterator[IMAPClient]:
        """Another mail client of the same mailbox (logged in by password)."""
        client = IMAPClient(
            "localhost", self.imaps_port, ssl_context=self.tls_context(), timeout=30
        )
        client.login(self.user, self.password)
        try:
            yield client
        finally:
            try:
                client.logout()
            except Exception:
                client.shutdown()

    def deliver(
        self,
        *messages: bytes,
        folder: str = "INBOX",
        flags: tuple[bytes, ...] = (),
        when: dt.datetime | None = None,
    ) -> list[int]:
        """APPEND each message to ``folder`` (made when missing); returns their UIDs."""
        with self.client() as client:
            if not client.folder_exists(folder):
                client.create_folder(folder)
            answers = [client.append(folder, m, flags=flags, msg_time=when) for m in messages]
        return [int(a.split(b"]")[0].split()[-1]) for a in answers]

    def file_of(self, uid: int, folder: str = "INBOX") -> Path:
        """The maildir file of a message (Dovecot's uidlist names it by UID)."""
        base = self.root / "mail" / self.user
        if folder != "INBOX":
            base = base / f".{folder}"
        for line in (base / "dovecot-uidlist").read_text().splitlines()[1:]:
            number, _, name = line.partition(":")
            if int(number.split()[0]) == uid:
                (found,) = [*base.glob(f"cur/{name}*"), *base.glob(f"new/{name}*")]
                return found
        raise AssertionError(f"no UID {uid} in {folder}")

    def kick(self) -> None:
        """End the user's IMAP sessions, as an administrator (or a server restart) would."""
        subprocess.run(
            ["doveadm", "-c", str(self.root / "dovecot.conf"), "kick", self.user],
            check=True,
            capture_output=True,
        )

    def count(self, folder: str) -> int:
        with self.client() as client:
            if not client.folder_exists(folder):
                return 0
            return int(client.folder_status(folder, [b"MESSAGES"])[b"MESSAGES"])

    def message_ids(self, folder: str) -> list[str]:
        """The Message-ID headers of the folder's messages, in UID order."""
        with self.client() as client:
            if not client.folder_exists(folder):
                return []
            client.select_folder(folder, readonly=True)
            uids = client.search(["ALL"])
            found = client.fetch(uids, [b"BODY.PEEK[HEADER.FIELDS (MESSAGE-ID)]"])
            return [
                found[u][b"BODY[HEADER.FIELDS (MESSAGE-ID)]"].decode().split(":", 1)[1].strip()
                for u in sorted(found)
            ]
