"""Continuity under failure: real upstream processes killed, frozen, or failing.

Each upstream here is a real Souverain process on loopback relaying to the shared
embedded model, so it can be SIGKILLed or SIGSTOPped like any engine; the gateway in
front of them must keep answering while any allowed deployment remains.
"""

from __future__ import annotations

import asyncio
import os
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from .conftest import Server, free_port, start_server, stop_server

pytestmark = pytest.mark.model
LOCAL = "smollm2-135m-instruct"
RELAY_KEY = "sk-sv-relaykey0" + "r" * 32


def relay(embedded: Server, tmp: Path, upstream: str | None = None) -> Server:
    """A Souverain process that forwards to the embedded model (or to `upstream`)."""
    deployment = {"engine": "openai", "base_url": upstream or embedded.v1, "upstream_model": LOCAL,
                  "api_key_env": "UPSTREAM_KEY", "connect_timeout_s": 1}  # fmt: skip
    config = {"models": [{"id": LOCAL, "deployments": [deployment]}], "routing": {"retries": 0}}
    return start_server(tmp, config, env={"UPSTREAM_KEY": embedded.key}, key=RELAY_KEY)


def gateway_config(a: Server, b: Server, **routing: object) -> dict[str, object]:
    def deployment(name: str, server: Server) -> dict[str, object]:
        return {"name": name, "engine": "openai", "base_url": server.v1, "upstream_model": LOCAL,
                "api_key_env": "RELAY_KEY", "timeout_s": 2, "connect_timeout_s": 1}  # fmt: skip

    return {
        "models": [{"id": "resilient", "deployments": [deployment("a", a), deployment("b", b)]}],
        "routing": {"failure_threshold": 2, "open_seconds": 1.0, **routing},
    }


@pytest.fixture
def pair(embedded: Server, tmp_path: Path) -> Iterator[tuple[Server, Server]]:
    a, b = relay(embedded, tmp_path / "a"), relay(embedded, tmp_path / "b")
    yield a, b
    for server in (a, b):
        if server.process.poll() is None:
            os.kill(server.process.pid, signal.SIGCONT)
            stop_server(server)


@pytest.fixture
def gateway(pair: tuple[Server, Server], tmp_path: Path) -> Iterator[Server]:
    server = start_server(tmp_path / "gw", gateway_config(*pair), env={"RELAY_KEY": RELAY_KEY})
    yield server
    stop_server(server)


async def load(
    gateway: Server, requests: int, concurrency: int, on_sent=None
) -> list[tuple[float, int, str, bool, bool]]:  # type: ignore[no-untyped-def]
    """Bounded load, half of the requests streamed: per request (sent_at, status, deployment,
    cut, ok). `cut`: a stream that began, then ended with finish_reason "error" and [DONE],
    which is how a deployment dying after the first token must end it (no failover then)."""
    results: list[tuple[float, int, str, bool, bool]] = []
    queue: asyncio.Queue[int] = asyncio.Queue()
    for i in range(requests):
        queue.put_nowait(i)
    headers = {"Authorization": f"Bearer {gateway.key}"}

    async def worker(client: httpx.AsyncClient) -> None:
        while not queue.empty():
            i = queue.get_nowait()
            stream = i % 2 == 1
            body = {"model": "resilient", "messages": [{"role": "user", "content": f"Say {i}"}],
                    "max_tokens": 2, "stream": stream}  # fmt: skip
            sent = time.monotonic()
            if on_sent:
                await on_sent(i)
            response = await client.post("/v1/chat/completions", json=body)
            done = response.text.rstrip().endswith("data: [DONE]")
            cut = stream and done and '"finish_reason":"error"' in response.text
            ok = response.status_code == 200 and (not stream or (done and not cut))
            deployment = response.headers.get("x-souverain-deployment", "")
            results.append((sent, response.status_code, deployment, cut, ok))

    async with httpx.AsyncClient(base_url=gateway.url, headers=headers, timeout=60) as client:
        await asyncio.gather(*(worker(client) for _ in range(concurrency)))
    return results


async def test_sigkill_of_an_upstream_under_load_fails_no_request(
    gateway: Server, pair: tuple[Server, Server]
) -> None:
    a, _ = pair
    killed_at: list[float] = []

    async def kill_a_midway(i: int) -> None:
        if i == 12:
            a.process.send_signal(signal.SIGKILL)
            killed_at.append(time.monotonic())

    results = await load(gateway, requests=40, concurrency=4, on_sent=kill_a_midway)
    # A stream that A had begun to answer when it died cannot fail over: it must end cleanly
    # (finish_reason "error", then [DONE]). Every other request must succeed.
    in_flight_cut = [r for r in results if r[3] and r[2] == "a" and r[0] < killed_at[0]]
    assert len(in_flight_cut) <= 4  # at most one per worker, in flight at the kill
    assert all(r[-1] for r in results if r not in in_flight_cut), results
    assert "a" in {r[2] for r in results if r[0] < killed_at[0]}  # A served until it died
    assert {r[2] for r in results if r[0] > killed_at[0]} == {"b"}  # in flight then: failed over


async def test_frozen_upstream_times_out_and_its_breaker_opens(
    gateway: Server, pair: tuple[Server, Server]
) -> None:
    a, _ = pair
    a.process.send_signal(signal.SIGSTOP)  # accepts connections, never answers
    results = await load(gateway, requests=16, concurrency=2)
    assert all(ok for *_, ok in results)
    assert {r[2] for r in results} == {"b"}
    # Once the breaker is open, requests no longer wait for A's timeout.
    started = time.monotonic()
    late = await load(gateway, requests=4, concurrency=1)
    assert all(ok for *_, ok in late)
    assert time.monotonic() - started < 4 * 2  # well under one timeout each
    with gateway.client() as client:
        states = {
            d["deployment"]: d["breaker"]
            for d in client.get("/admin/v1/providers").json()["deployments"]
        }
    assert states["a"] in ("open", "half_open")
    # A thaws: after `open_seconds`, a probe goes through and closes the breaker again.
    a.process.send_signal(signal.SIGCONT)
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        served = await load(gateway, requests=2, concurrency=1)
        if any(r[2] == "a" for r in served):
            break
        await asyncio.sleep(0.5)
    else:
        pytest.fail("the breaker never let traffic back to the thawed upstream")


async def test_upstream_answering_503_fails_over(embedded: Server, tmp_path: Path) -> None:
    dead = f"http://127.0.0.1:{free_port()}/v1"
    failing = relay(embedded, tmp_path / "failing", upstream=dead)  # answers 503 to everything
    healthy = relay(embedded, tmp_path / "healthy")
    gw = start_server(
        tmp_path / "gw", gateway_config(failing, healthy), env={"RELAY_KEY": RELAY_KEY}
    )
    try:
        results = await load(gw, requests=12, concurrency=3)
        assert all(ok for *_, ok in results)
        assert {r[2] for r in results} == {"b"}
    finally:
        for server in (gw, failing, healthy):
            stop_server(server)


def test_failure_after_the_first_token_ends_the_stream_cleanly(
    gateway: Server, pair: tuple[Server, Server]
) -> None:
    a, _ = pair
    body = {"model": "resilient", "messages": [{"role": "user", "content": "Write a long essay."}],
            "max_tokens": 400, "stream": True}  # fmt: skip
    with (
        gateway.client() as client,
        client.stream("POST", "/v1/chat/completions", json=body) as response,
    ):
        assert response.status_code == 200
        lines = response.iter_lines()
        first = next(line for line in lines if line.startswith("data: {"))
        assert '"content"' in first
        a.process.send_signal(signal.SIGKILL)
        rest = list(lines)  # must end, not hang
    data = [line for line in rest if line.startswith("data: ")]
    assert data[-1] == "data: [DONE]"
    assert any('"finish_reason":"error"' in line for line in data)
    assert any('"error":{' in line for line in data)


async def test_kill_switch_under_load(gateway: Server) -> None:
    cut_returned: list[float] = []

    async def cut_a_midway(i: int) -> None:
        if i == 10:
            async with httpx.AsyncClient(
                base_url=gateway.url, headers={"Authorization": f"Bearer {gateway.key}"}
            ) as c:
                response = await c.post("/admin/v1/providers/cut", json={"deployment": "a"})
                assert response.status_code == 200
            cut_returned.append(time.monotonic())

    results = await load(gateway, requests=30, concurrency=3, on_sent=cut_a_midway)
    assert all(ok for *_, ok in results)
    after = [r for r in results if r[0] > cut_returned[0]]
    assert after and {r[2] for r in after} == {"b"}  # nothing reached A after the call returned
    with gateway.client() as client:
        listing = client.get("/admin/v1/providers").json()
        assert listing["cuts"][0]["value"] == "a" and listing["cuts"][0]["actor"].startswith("key:")
        assert client.post("/admin/v1/providers/restore", json={"deployment": "a"}).json()[
            "restored"
        ]
        body = {
            "model": "resilient",
            "messages": [{"role": "user", "content": "Hi"}],
            "max_tokens": 2,
        }
        assert (
            client.post("/v1/chat/completions", json=body).headers["x-souverain-deployment"] == "a"
        )


def test_cutting_every_allowed_deployment_is_a_clear_503(gateway: Server) -> None:
    with gateway.client() as client:
        assert (
            client.post("/admin/v1/providers/cut", json={"operator": "unknown"}).status_code == 200
        )
        body = {"model": "resilient", "messages": [{"role": "user", "content": "Hi"}]}
        response = client.post("/v1/chat/completions", json=body)
        assert response.status_code == 503 and "cut off" in response.json()["error"]["message"]
        client.post("/admin/v1/providers/restore", json={"operator": "unknown"})
        assert (
            client.post("/v1/chat/completions", json={**body, "max_tokens": 2}).status_code == 200
        )


def test_admin_routes_need_an_admin_and_a_valid_target(gateway: Server) -> None:
    with httpx.Client(base_url=gateway.url) as anonymous:
        assert anonymous.get("/admin/v1/providers").status_code == 401
    with gateway.client() as client:
        for bad in ({}, {"deployment": "a", "operator": "x"}, {"region": "x"}):
            response = client.post("/admin/v1/providers/cut", json=bad)
            assert response.status_code == 400, bad


def test_kill_switch_reaches_every_replica_through_redis(
    pair: tuple[Server, Server], tmp_path: Path
) -> None:
    """Two gateway replicas sharing one database and one real Redis."""
    config = {**gateway_config(*pair), "redis_url": "redis://127.0.0.1:6379/0"}
    shared = tmp_path / "shared-data"
    one = start_server(tmp_path / "one", config, env={"RELAY_KEY": RELAY_KEY}, data_dir=shared)
    two = start_server(tmp_path / "two", config, env={"RELAY_KEY": RELAY_KEY}, data_dir=shared)
    body = {"model": "resilient", "messages": [{"role": "user", "content": "Hi"}], "max_tokens": 2}
    try:
        with one.client() as c1, two.client() as c2:
            assert (
                c2.post("/v1/chat/completions", json=body).headers["x-souverain-deployment"] == "a"
            )
            assert c1.post("/admin/v1/providers/cut", json={"deployment": "a"}).status_code == 200
            # The very next request on the other replica already avoids A.
            assert (
                c2.post("/v1/chat/completions", json=body).headers["x-souverain-deployment"] == "b"
            )
            assert c2.get("/admin/v1/providers").json()["cuts"][0]["value"] == "a"
            assert (
                c2.post("/admin/v1/providers/restore", json={"deployment": "a"}).status_code == 200
            )
            assert (
                c1.post("/v1/chat/completions", json=body).headers["x-souverain-deployment"] == "a"
            )
    finally:
        stop_server(one)
        stop_server(two)


def test_providers_cli_cuts_and_restores_through_the_api(gateway: Server) -> None:
    from click.testing import CliRunner

    from souverain.cli import cli

    runner = CliRunner()
    common = ["--url", gateway.url, "--key", gateway.key]
    result = runner.invoke(cli, ["providers", "cut", "--jurisdiction", "unknown", *common])
    assert result.exit_code == 0 and '"jurisdiction"' in result.output
    listed = runner.invoke(cli, ["providers", "list", *common])
    assert '"value": "unknown"' in listed.output
    assert (
        runner.invoke(cli, ["providers", "restore", "--jurisdiction", "unknown", *common]).exit_code
        == 0
    )
    refused = runner.invoke(
        cli, ["providers", "list", "--url", gateway.url, "--key", "sk-sv-wrong"]
    )
    assert refused.exit_code != 0 and "401" in refused.output


def test_active_health_checks_open_the_breaker_before_any_request(
    pair: tuple[Server, Server], tmp_path: Path
) -> None:
    a, b = pair
    config = gateway_config(a, b)
    for deployment in config["models"][0]["deployments"]:  # type: ignore[index]
        deployment["health_check_s"] = 0.2
    gw = start_server(tmp_path / "gw-active", config, env={"RELAY_KEY": RELAY_KEY})
    try:
        a.process.send_signal(signal.SIGKILL)
        with gw.client() as client:
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline:
                states = {
                    d["deployment"]: d["breaker"]
                    for d in client.get("/admin/v1/providers").json()["deployments"]
                }
                if states["a"] == "open":
                    break
                time.sleep(0.1)
            assert states == {"a": "open", "b": "closed"}
            body = {
                "model": "resilient",
                "messages": [{"role": "user", "content": "Hi"}],
                "max_tokens": 2,
            }
            response = client.post("/v1/chat/completions", json=body)
            assert response.headers["x-souverain-deployment"] == "b"
    finally:
        stop_server(gw)
