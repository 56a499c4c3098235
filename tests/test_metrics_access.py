"""Who may read `/metrics`: loopback clients by default, elsewhere only with the scrape
token; the setting is validated. Over real HTTP, from loopback and from this machine's
other address when it has one."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from souverain.config import load_settings
from souverain.errors import ConfigError
from souverain.observability.scrape import is_loopback

from .conftest import Server, start_server, stop_server

TOKEN = "scrape-" + "t" * 24


def outside_address() -> str | None:
    """An address of this machine that is not loopback, if it has one."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        try:
            sock.connect(("192.0.2.1", 9))  # no packet is sent: this only picks a route
        except OSError:
            return None
        host = str(sock.getsockname()[0])
    return None if is_loopback(host) or host == "0.0.0.0" else host


@pytest.fixture(scope="module")
def open_to_all(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """Listening on every interface with the default metrics settings."""
    config = {"models": [], "server": {"host": "0.0.0.0"}, "libraries": {"enabled": False}}
    server = start_server(tmp_path_factory.mktemp("metrics-default"), config)
    yield server
    stop_server(server)


def scrape(url: str, token: str | None = None) -> httpx.Response:
    headers = {"Authorization": f"Bearer {token}"} if token is not None else {}
    return httpx.get(url + "/metrics", headers=headers, timeout=10)


def test_loopback_scrapes_without_a_token_and_others_are_refused(open_to_all: Server) -> None:
    local = scrape(open_to_all.url)
    assert local.status_code == 200 and "souverain_http_requests" in local.text
    host = outside_address()
    if host is None:
        pytest.skip("this machine has no address but loopback")
    port = open_to_all.url.rsplit(":", 1)[1]
    remote = scrape(f"http://{host}:{port}")
    assert remote.status_code == 403
    assert remote.json()["error"]["code"] == "metrics_loopback_only"
    assert "souverain_" not in remote.text
    # An API key is not a scrape token, not even the owner's.
    assert scrape(f"http://{host}:{port}", open_to_all.key).status_code == 401


def test_with_a_token_only_the_token_scrapes(tmp_path: Path) -> None:
    config = {"models": [], "libraries": {"enabled": False},
              "metrics": {"loopback": False}}  # fmt: skip
    server = start_server(tmp_path, config, env={"SOUVERAIN_METRICS__SCRAPE_TOKEN": TOKEN})
    try:
        assert scrape(server.url).status_code == 401  # loopback is no pass any more
        assert scrape(server.url, TOKEN + "x").status_code == 401
        assert scrape(server.url, TOKEN[:-1]).status_code == 401
        assert scrape(server.url, server.key).status_code == 401
        allowed = scrape(server.url, TOKEN)
        assert allowed.status_code == 200 and "souverain_http_requests" in allowed.text
    finally:
        stop_server(server)


def test_metrics_can_be_turned_off(tmp_path: Path) -> None:
    config = {"models": [], "libraries": {"enabled": False}, "metrics": {"enabled": False}}
    server = start_server(tmp_path, config)
    try:
        assert scrape(server.url).status_code == 404
    finally:
        stop_server(server)


@pytest.mark.parametrize(
    ("environ", "says"),
    [
        ({"SOUVERAIN_METRICS__LOOPBACK": "false"}, "needs a scrape_token"),
        ({"SOUVERAIN_METRICS__SCRAPE_TOKEN": "short"}, "metrics.scrape_token"),
        ({"SOUVERAIN_METRICS__LOOPBACK": "sometimes"}, "metrics.loopback"),
    ],
)
def test_bad_metrics_settings_are_refused(environ: dict[str, str], says: str) -> None:
    with pytest.raises(ConfigError, match=says):
        load_settings(None, environ=environ)


def test_loopback_addresses() -> None:
    for host in ("127.0.0.1", "127.9.9.9", "::1", "::ffff:127.0.0.1"):
        assert is_loopback(host), host
    for host in ("192.0.2.7", "10.0.0.1", "::ffff:10.0.0.1", "fe80::1", "", None, "localhost"):
        assert not is_loopback(host), host
