"""A real `intake web` against idle, slow, greedy and oversized clients: it keeps answering
everyone else, and its memory does not follow what a client sends."""

from __future__ import annotations

import os
import select
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from pathlib import Path

import pytest

from intake.store.db import upgrade
from tests.conftest import ROOT
from tests.helpers import free_port, wait_for

MiB = 1024 * 1024
WebServer = Callable[..., tuple[int, subprocess.Popen[bytes]]]


@pytest.fixture
def web_server(tmp_path: Path, redis_url: str) -> Iterator[WebServer]:
    """Start `intake web` as an operator would, with extra INTAKE_* settings; stop it after."""
    shutil.copytree(ROOT / "config", tmp_path / "config")
    url = f"sqlite:///{tmp_path / 'var' / 'intake.db'}"
    upgrade(url)
    processes: list[subprocess.Popen[bytes]] = []

    def start(**settings: str) -> tuple[int, subprocess.Popen[bytes]]:
        port = free_port()
        env = dict(os.environ) | {
            "INTAKE_CONFIG": str(tmp_path / "config" / "intake.toml"),
            "INTAKE_VAR_DIR": str(tmp_path / "var"),
            "INTAKE_DATABASE_URL": url,
            "INTAKE_REDIS_URL": redis_url,
            "INTAKE_SECRET_KEY": "k" * 40,
            "INTAKE_WEB_PORT": str(port),
        }
        env |= {f"INTAKE_{name.upper()}": value for name, value in settings.items()}
        process = subprocess.Popen(
            [sys.executable, "-m", "intake", "web"], env=env, stderr=subprocess.DEVNULL
        )
        processes.append(process)
        wait_for(lambda: _status(port) == 200, timeout=30, interval=0.2)
        return port, process

    yield start
    for process in processes:
        process.terminate()
        process.wait(timeout=10)


def _status(port: int, timeout: float = 2.0) -> int | None:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/login", timeout=timeout) as answer:
            return int(answer.status)
    except OSError:
        return None


def _idle(port: int, source: str) -> socket.socket:
    """A connection that sends nothing, from the loopback address ``source``."""
    return socket.create_connection(("127.0.0.1", port), timeout=5, source_address=(source, 0))


def _rss(process: subprocess.Popen[bytes]) -> int:
    for line in Path(f"/proc/{process.pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise AssertionError("no VmRSS in /proc")


def test_a_new_client_is_served_within_a_second_beside_500_idle_connections(
    web_server: WebServer,
) -> None:
    port, _ = web_server()
    with ExitStack() as stack:
        for n in range(500):  # 10 from each of 50 loopback addresses, as from many clients
            stack.enter_context(_idle(port, f"127.0.1.{n // 10 + 1}"))
        time.sleep(0.5)  # let the server take them all
        assert _status(port, timeout=1.0) == 200


def test_one_address_past_its_connection_cap_is_turned_away_and_others_are_not(
    web_server: WebServer,
) -> None:
    port, _ = web_server(web_client_connection_limit="20")
    with ExitStack() as stack:
        for _ in range(20):
            stack.enter_context(_idle(port, "127.0.2.1"))
        time.sleep(0.3)
        extra = stack.enter_context(_idle(port, "127.0.2.1"))
        extra.settimeout(5)
        answer = extra.recv(200)
        assert answer.startswith(b"HTTP/1.1 503") or answer == b""
        assert _status(port, timeout=1.0) == 200


def test_a_client_that_trickles_its_headers_is_cut_off(web_server: WebServer) -> None:
    port, _ = web_server(web_header_timeout="2")
    with _idle(port, "127.0.3.1") as slow:
        slow.sendall(b"GET /login HTTP/1.1\r\n")
        started = time.monotonic()
        closed = False
        while time.monotonic() - started < 8 and not closed:
            try:
                slow.sendall(b"X")  # one byte every half second: never idle, never done
            except OSError:
                closed = True
                break
            readable, _, _ = select.select([slow], [], [], 0.5)
            closed = bool(readable) and slow.recv(100) == b""
        assert closed, "the server still held a connection whose headers never ended"
        assert time.monotonic() - started < 6


def _send_headers(port: int, path: str, headers: str) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", port), timeout=10)
    sock.sendall(f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n{headers}\r\n".encode())
    return sock


def _answer_while_streaming(sock: socket.socket, total: int, chunked: bool) -> bytes:
    """Stream ``total`` bytes of body, watching for the server's answer after each piece."""
    piece = b"a" * (256 * 1024)
    sent = 0
    while sent < total:
        readable, _, _ = select.select([sock], [], [], 0)
        if readable:
            break
        data = b"%x\r\n%s\r\n" % (len(piece), piece) if chunked else piece
        try:
            sock.sendall(data)
        except OSError:
            break
        sent += len(piece)
    sock.settimeout(10)
    return sock.recv(1000)


@pytest.mark.parametrize(
    ("path", "size", "chunked"),
    [
        ("/login", 400 * MiB, False),
        ("/login", 400 * MiB, True),
        ("/voice/incoming", 100 * MiB, False),
        ("/voice/incoming", 100 * MiB, True),
    ],
    ids=["login-length", "login-chunked", "voice-length", "voice-chunked"],
)
def test_an_oversized_body_is_refused_with_413_and_memory_stays_put(
    web_server: WebServer, path: str, size: int, chunked: bool
) -> None:
    port, process = web_server()
    before = _rss(process)
    framing = "Transfer-Encoding: chunked" if chunked else f"Content-Length: {size}"
    with _send_headers(
        port, path, f"Content-Type: application/x-www-form-urlencoded\r\n{framing}\r\n"
    ) as sock:
        answer = _answer_while_streaming(sock, size, chunked)
    assert answer.startswith(b"HTTP/1.1 413"), answer[:100]
    assert _rss(process) - before < 8 * MiB
    assert _status(port) == 200


def test_the_trusted_proxy_is_not_capped_as_one_client(web_server: WebServer) -> None:
    port, _ = web_server(web_client_connection_limit="5", web_trusted_proxy="127.0.4.1")
    with ExitStack() as stack:
        for _ in range(10):
            stack.enter_context(_idle(port, "127.0.4.1"))
        time.sleep(0.3)
        with _idle(port, "127.0.4.1") as proxied:
            proxied.sendall(b"GET /login HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
            assert proxied.recv(100).startswith(b"HTTP/1.1 200")
