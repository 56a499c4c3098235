"""Slow and idle clients against `souverain serve`, with raw sockets over loopback.

A client that sends its headers one byte at a time, or nothing at all, is disconnected
once the header deadline passes; a flood of idle connections past the cap is closed
while a client that sends a whole request is still served (souverain/http_server.py).
"""

from __future__ import annotations

import select
import socket
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from .conftest import ADMIN_KEY, Server, start_server, stop_server
from .recording_upstream import RecordingUpstream

# Far above the deadlines configured below: only a server that never closes hits it.
GIVE_UP_S = 30.0


def _config(upstream: RecordingUpstream, **server: Any) -> dict[str, Any]:
    return {
        "models": [{"id": "cloud", "deployments": [upstream.deployment()]}],
        "dlp": {"enabled": False},
        "server": server,
    }


@pytest.fixture(scope="module")
def quick(
    upstream: RecordingUpstream, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Server]:
    """Headers due within 1 s; idle keep-alive closed after 1 s."""
    config = _config(upstream, header_timeout_s=1, keep_alive_timeout_s=1, body_timeout_s=1)
    server = start_server(tmp_path_factory.mktemp("slow-quick"), config)
    yield server
    stop_server(server)


@pytest.fixture(scope="module")
def capped(
    upstream: RecordingUpstream, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Server]:
    """At most 20 connections; deadlines long enough that only the cap closes them."""
    config = _config(
        upstream, max_connections=20, header_timeout_s=120, keep_alive_timeout_s=120,
        body_timeout_s=120,
    )  # fmt: skip
    server = start_server(tmp_path_factory.mktemp("slow-capped"), config)
    yield server
    stop_server(server)


def _connect(server: Server) -> socket.socket:
    host, port = server.url.removeprefix("http://").split(":")
    return socket.create_connection((host, int(port)), timeout=GIVE_UP_S)


def _closed_within(sock: socket.socket, seconds: float) -> bool:
    """True once the server has closed `sock` (EOF or reset) within `seconds`; whatever
    it wrote before closing (a 503, say) is read and dropped."""
    deadline = time.monotonic() + seconds
    while (left := deadline - time.monotonic()) > 0:
        readable, _, _ = select.select([sock], [], [], left)
        if not readable:
            return False
        try:
            if sock.recv(65536) == b"":
                return True
        except (ConnectionResetError, BrokenPipeError):
            return True
    return False


def _count_closed(socks: list[socket.socket], seconds: float) -> int:
    """How many of `socks` the server closes within `seconds` (waiting on all at once)."""
    open_, closed = list(socks), 0
    deadline = time.monotonic() + seconds
    while open_ and (left := deadline - time.monotonic()) > 0:
        readable, _, _ = select.select(open_, [], [], left)
        if not readable:
            break
        for sock in readable:
            if _closed_within(sock, 0.01):
                open_.remove(sock)
                closed += 1
    return closed


def test_headers_sent_one_byte_at_a_time_are_cut_off(quick: Server) -> None:
    request = b"GET /healthz HTTP/1.1\r\nHost: localhost\r\nX-Pad: " + b"a" * 500
    with _connect(quick) as sock:
        started = time.monotonic()
        for byte in request:
            try:
                sock.sendall(bytes([byte]))
            except (ConnectionResetError, BrokenPipeError):
                break
            if _closed_within(sock, 0.25):
                break
        else:
            pytest.fail("the server read 500 bytes of headers at 4 bytes/s without closing")
        held = time.monotonic() - started
    assert held < GIVE_UP_S
    assert httpx.get(quick.url + "/healthz").status_code == 200  # and it is still serving


def test_a_connection_that_sends_nothing_is_closed(quick: Server) -> None:
    with _connect(quick) as sock:
        assert _closed_within(sock, GIVE_UP_S)


def test_idle_keep_alive_connection_is_closed_and_the_next_request_is_timed_too(
    quick: Server,
) -> None:
    with _connect(quick) as sock:
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: localhost\r\n\r\n")
        deadline = time.monotonic() + GIVE_UP_S
        answer = b""
        while b"\r\n\r\n" not in answer and time.monotonic() < deadline:
            answer += sock.recv(65536)
        assert answer.startswith(b"HTTP/1.1 200")
        sock.sendall(b"GET /healthz HTTP/1.1\r\n")  # half a second request, then silence
        assert _closed_within(sock, GIVE_UP_S)


def test_headers_larger_than_the_cap_close_the_connection(quick: Server) -> None:
    with _connect(quick) as sock:
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: localhost\r\n")
        try:
            for _ in range(40):  # 40 x 8 KiB = 320 KiB of headers, the cap is 64 KiB
                sock.sendall(b"X-Pad: " + b"a" * 8192 + b"\r\n")
        except (ConnectionResetError, BrokenPipeError):
            return
        assert _closed_within(sock, 5)


def test_idle_connections_past_the_cap_are_closed_and_a_real_request_is_served(
    capped: Server,
) -> None:
    idle = [_connect(capped) for _ in range(60)]
    try:
        with httpx.Client(timeout=GIVE_UP_S) as client:
            for _ in range(5):
                assert client.get(capped.url + "/healthz").status_code == 200
        closed = _count_closed(idle, 3)
        # 60 idle and a real client against a cap of 20: 41 idle ones at least made room.
        assert closed >= 41, closed
        assert httpx.get(capped.url + "/readyz", timeout=GIVE_UP_S).status_code == 200
    finally:
        for sock in idle:
            sock.close()


def test_a_body_answered_before_it_was_read_is_not_taken_for_headers(quick: Server) -> None:
    """A 401 goes out before the 300 KB body is read; the rest of the body is skipped, and
    the connection serves the next request (the header size cap must not count it)."""
    body = b'{"x": "' + b"a" * 300_000 + b'"}'
    with _connect(quick) as sock:
        sock.sendall(b"POST /v1/chat/completions HTTP/1.1\r\nHost: localhost\r\n"
                     b"Content-Type: application/json\r\nContent-Length: %d\r\n\r\n" % len(body)
                     + body)  # fmt: skip
        answers = b""
        while answers.count(b"HTTP/1.1 ") < 2:
            if b"HTTP/1.1 401" in answers and b"GET" not in body:
                body = b"GET"  # send the second request once the first is answered
                sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: localhost\r\n\r\n")
            chunk = sock.recv(65536)
            assert chunk, f"closed after {answers[:200]!r}"
            answers += chunk
        assert answers.startswith(b"HTTP/1.1 401")
        assert b"HTTP/1.1 200" in answers


def _slow_post(server: Server) -> socket.socket:
    """A connection whose request is in progress: headers complete, body 10 bytes of 1000."""
    sock = _connect(server)
    sock.sendall(b"POST /v1/chat/completions HTTP/1.1\r\nHost: localhost\r\n"
                 b"Authorization: Bearer " + ADMIN_KEY.encode() + b"\r\n"
                 b"Content-Type: application/json\r\n"
                 b"Content-Length: 1000\r\n\r\n" + b'{"x": "aaa')  # fmt: skip
    return sock


def test_a_body_sent_one_byte_at_a_time_gets_a_408(quick: Server) -> None:
    with _slow_post(quick) as sock:
        answer = b""
        deadline = time.monotonic() + GIVE_UP_S
        while not answer and time.monotonic() < deadline:
            try:
                sock.sendall(b"a")
            except (ConnectionResetError, BrokenPipeError):
                break
            readable, _, _ = select.select([sock], [], [], 0.25)
            if readable:
                answer = sock.recv(65536)
        assert answer.startswith(b"HTTP/1.1 408"), answer[:200]
        while b"request_timeout" not in answer and time.monotonic() < deadline:
            chunk = sock.recv(65536)  # the body may come in a second segment
            if not chunk:
                break
            answer += chunk
        assert b"request_timeout" in answer, answer


def test_when_every_connection_has_a_request_in_progress_a_new_one_gets_a_503(
    capped: Server,
) -> None:
    busy = [_slow_post(capped) for _ in range(20)]
    try:
        time.sleep(0.5)  # let the server read their headers
        with _connect(capped) as extra:
            answer = b""
            deadline = time.monotonic() + GIVE_UP_S
            while time.monotonic() < deadline and (chunk := extra.recv(65536)):
                answer += chunk
            assert answer.startswith(b"HTTP/1.1 503"), answer[:200]
            assert b"Retry-After" in answer or b"retry-after" in answer
    finally:
        for sock in busy:
            sock.close()
    assert httpx.get(capped.url + "/readyz", timeout=GIVE_UP_S).status_code == 200
