"""`POST /v1/ocr` with `ocr.fetch_urls` on: what a caller-named URL may make the gateway reach.

Real `souverain serve` processes, and real servers on loopback as the fetched side: a web
server with a PDF, a port where nothing listens, a port that accepts and never answers,
and a port that answers with something that is not HTTP. Loopback is allowed explicitly
in one gateway (`ocr.fetch_allowed_networks`) and refused by default in the other.
"""

from __future__ import annotations

import ipaddress
import socket
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest

from souverain.ocr.fetch import _PinnedResolver, refusal
from souverain.ocr.origins import parse_origin

from .conftest import Server, free_port, start_server, stop_server
from .test_ocr_documents import TextPage, text_pdf

pytestmark = pytest.mark.model
PDF = text_pdf([TextPage([["Fetched over HTTP."]])])


class _Documents(BaseHTTPRequestHandler):
    hits: list[str]

    def do_GET(self) -> None:
        type(self).hits.append(self.path)
        if self.path == "/doc.pdf":
            self.send_response(200)
            self.send_header("Content-Type", "application/pdf")
            self.send_header("Content-Length", str(len(PDF)))
            self.end_headers()
            self.wfile.write(PDF)
        else:
            self.send_error(404)

    def log_message(self, format: str, *args: Any) -> None:
        pass


class WebServer:
    """A document server on loopback that counts the requests it gets."""

    def __init__(self) -> None:
        handler = type("Handler", (_Documents,), {"hits": []})
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.hits: list[str] = handler.hits
        self.port = int(self.httpd.server_address[1])
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


class Listener:
    """A TCP port that accepts; `garbage` then writes a non-HTTP line, else it never answers."""

    def __init__(self, garbage: bool) -> None:
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port = int(self.sock.getsockname()[1])
        self.garbage = garbage
        self.held: list[socket.socket] = []
        self.accepted = 0
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.accepted += 1
            if self.garbage:
                conn.sendall(b"SSH-2.0-OpenSSH_9.2\r\n")
                conn.close()
            else:
                self.held.append(conn)  # accepted, and never answered

    def close(self) -> None:
        self.sock.close()
        for conn in self.held:
            conn.close()


@pytest.fixture(scope="module")
def targets() -> Iterator[dict[str, Any]]:
    web, other = WebServer(), WebServer()
    hanging, garbage = Listener(garbage=False), Listener(garbage=True)
    yield {"web": web, "other": other, "hanging": hanging, "garbage": garbage,
           "closed": free_port()}  # fmt: skip
    for target in (web, other, hanging, garbage):
        target.close()


def gateway(tmp: Path, targets: dict[str, Any], networks: list[str]) -> Server:
    ports = [targets["web"].port, targets["closed"], targets["hanging"].port,
             targets["garbage"].port]  # fmt: skip
    ocr = {
        "fetch_urls": True,
        "fetch_allowed_hosts": [f"http://127.0.0.1:{port}" for port in ports]
        + [f"http://localhost:{targets['web'].port}"],
        "fetch_allowed_networks": networks,
        "fetch_timeout_s": 2,
    }
    return start_server(tmp, {"ocr": ocr})


@pytest.fixture(scope="module")
def allowed(tmp_path_factory: pytest.TempPathFactory, targets: dict[str, Any]) -> Iterator[Server]:
    server = gateway(tmp_path_factory.mktemp("fetch-loopback"), targets, ["127.0.0.0/8"])
    yield server
    stop_server(server)


@pytest.fixture(scope="module")
def default(tmp_path_factory: pytest.TempPathFactory, targets: dict[str, Any]) -> Iterator[Server]:
    server = gateway(tmp_path_factory.mktemp("fetch-default"), targets, [])
    yield server
    stop_server(server)


def ocr(server: Server, url: str) -> httpx.Response:
    return httpx.post(
        server.url + "/v1/ocr",
        headers={"Authorization": f"Bearer {server.key}"},
        json={
            "model": "mistral-ocr-latest",
            "document": {"type": "document_url", "document_url": url},
        },
        timeout=60,
    )


def test_an_allowed_loopback_url_is_fetched(allowed: Server, targets: dict[str, Any]) -> None:
    answer = ocr(allowed, f"http://127.0.0.1:{targets['web'].port}/doc.pdf")
    assert answer.status_code == 200, answer.text
    assert answer.json()["pages"][0]["markdown"] == "Fetched over HTTP."


def test_closed_open_and_hanging_ports_give_one_error(
    allowed: Server, targets: dict[str, Any]
) -> None:
    urls = {
        "closed": f"http://127.0.0.1:{targets['closed']}/doc.pdf",
        "hanging": f"http://127.0.0.1:{targets['hanging'].port}/doc.pdf",
        "not http": f"http://127.0.0.1:{targets['garbage'].port}/doc.pdf",
        "HTTP 404": f"http://127.0.0.1:{targets['web'].port}/missing.pdf",
    }
    answers = {name: ocr(allowed, url) for name, url in urls.items()}
    assert targets["hanging"].accepted and targets["garbage"].accepted  # they were reached
    bodies = {name: (answer.status_code, answer.json()) for name, answer in answers.items()}
    assert len(set(map(repr, bodies.values()))) == 1, bodies
    status, body = bodies["closed"]
    assert status == 400
    assert body["error"]["code"] == "document_fetch_failed"
    assert body["error"]["message"] == (
        "document.document_url: the document could not be fetched from that URL"
    )


def test_a_port_not_in_the_allow_list_is_refused_unreached(
    allowed: Server, targets: dict[str, Any]
) -> None:
    other = targets["other"]  # a live web server, on a port nobody allowed
    answer = ocr(allowed, f"http://127.0.0.1:{other.port}/doc.pdf")
    assert answer.status_code == 400
    assert answer.json()["error"]["code"] == "url_not_allowed"
    https = ocr(allowed, f"https://127.0.0.1:{targets['web'].port}/doc.pdf")  # scheme differs
    assert https.json()["error"]["code"] == "url_not_allowed"
    assert other.hits == []


def test_loopback_is_refused_unless_allowed(default: Server, targets: dict[str, Any]) -> None:
    web = targets["web"]
    before = len(web.hits)
    for url in (
        f"http://127.0.0.1:{web.port}/doc.pdf",
        f"http://localhost:{web.port}/doc.pdf",  # a name that resolves to loopback
    ):
        answer = ocr(default, url)
        assert answer.status_code == 400, answer.text
        assert answer.json()["error"]["code"] == "document_fetch_failed"
    assert len(web.hits) == before  # no connection was made


# ---- the pieces -----------------------------------------------------------------------


@pytest.mark.parametrize(
    "address",
    ["127.0.0.1", "10.1.2.3", "192.168.0.1", "172.16.5.5", "169.254.169.254", "100.64.0.1",
     "0.0.0.0", "::1", "::", "fe80::1", "fc00::1", "::ffff:127.0.0.1", "::ffff:10.0.0.1",
     "2002:7f00:1::", "64:ff9b::a00:1", "224.0.0.1", "fe80::1%eth0"],
)  # fmt: skip
def test_private_addresses_are_refused(address: str) -> None:
    assert refusal(address, []) is not None


def test_public_and_explicitly_allowed_addresses_pass() -> None:
    assert refusal("93.184.216.34", []) is None
    assert refusal("2a00:1450:4007:80e::200e", []) is None
    loopback = [ipaddress.ip_network("127.0.0.0/8")]
    assert refusal("127.0.0.1", loopback) is None
    assert refusal("::ffff:127.0.0.1", loopback) is None  # the same address, mapped
    assert refusal("10.0.0.1", loopback) is not None


def test_allow_list_entries() -> None:
    assert parse_origin("docs.example.org") == parse_origin("https://DOCS.example.org.:443")
    entry = parse_origin("http://*.example.org:8080")
    assert entry.allows("http", "a.example.org", 8080)
    assert not entry.allows("http", "a.example.org", 80)
    assert not entry.allows("https", "a.example.org", 8080)
    assert parse_origin("http://[::1]:81").host == "::1"
    for bad in ("ftp://x", "http://x:0", "http://x:99999", "http://x/path", "http://u@x", ""):
        with pytest.raises(ValueError):
            parse_origin(bad)


async def test_the_pinned_resolver_answers_only_the_checked_host() -> None:
    record: Any = {"hostname": "docs.example.org", "host": "93.184.216.34", "port": 443,
                   "family": socket.AF_INET, "proto": 6, "flags": 0}  # fmt: skip
    resolver = _PinnedResolver("docs.example.org", [record])
    assert await resolver.resolve("docs.example.org", 443) == [record]
    with pytest.raises(OSError):
        await resolver.resolve("evil.example.net", 443)
