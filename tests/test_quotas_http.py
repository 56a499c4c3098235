"""Quotas end to end: real gateway processes, a recording upstream, real Redis and PostgreSQL.

The upstream (`RecordingUpstream`, a fake) reports 10 prompt + 5 completion tokens for
every chat call, so what a budget holds can be counted exactly. A request reserves its
estimate before it is sent (quotas/guard.py: prompt characters // 3 + 1, plus
`max_tokens`) and settles with those 15 tokens afterwards.

Redis-backed tests use their own Redis database number and delete their quota keys
before and after, so that key ids from a fresh PostgreSQL database never meet counters
left by another run.
"""

from __future__ import annotations

import asyncio
import json
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis
from aiohttp import web

from souverain.quotas.guard import CHARS_PER_TOKEN

from .conftest import ADMIN_KEY, Server, free_port, start_server, stop_server
from .databases import postgres_database
from .recording_upstream import RecordingUpstream

PEPPER = "test-pepper-shared-by-both-replicas"
REDIS_DB = 11  # not 0: other suites' quota counters live there
REDIS_URL = f"redis://127.0.0.1:6379/{REDIS_DB}"
PER_CALL = 15  # tokens the upstream reports for each chat call


# --- helpers (also used by test_usage_http.py and test_oidc_http.py) ------------------


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def admin(
    server: Server, method: str, path: str, body: Any = None, key: str = ADMIN_KEY
) -> httpx.Response:
    return httpx.request(
        method, f"{server.url}/admin/v1/{path}", json=body, headers=bearer(key), timeout=30
    )


def create(server: Server, path: str, body: dict[str, Any], key: str = ADMIN_KEY) -> Any:
    response = admin(server, "POST", path, body, key)
    assert response.status_code == 201, response.text
    return response.json()


def new_key(server: Server, name: str, **fields: Any) -> str:
    return str(create(server, "keys", {"name": name, **fields})["key"])


def chat_body(
    *,
    model: str = "cloud",
    content: str = "hi",
    stream: bool = False,
    max_tokens: int | None = None,
) -> dict[str, Any]:
    body: dict[str, Any] = {"model": model, "messages": [{"role": "user", "content": content}]}
    if stream:
        body["stream"] = True
    if max_tokens is not None:
        body["max_tokens"] = max_tokens
    return body


def chat(server: Server, key: str, **options: Any) -> httpx.Response:
    return httpx.post(
        server.v1 + "/chat/completions", json=chat_body(**options), headers=bearer(key), timeout=30
    )


def refused(response: httpx.Response, code: str, who: str, *, retry: bool = True) -> str:
    """Check a quota refusal; return its message."""
    assert response.status_code == 429, response.text
    error = response.json()["error"]
    assert (error["type"], error["code"]) == ("rate_limit_error", code)
    assert who in error["message"], error["message"]
    if retry:
        assert int(response.headers["retry-after"]) >= 1
    else:  # can never fit: retrying does not help
        assert "retry-after" not in response.headers
    return str(error["message"])


def usage_rows(server: Server, group_by: str, **params: str) -> list[dict[str, Any]]:
    response = admin(server, "GET", "usage?" + str(httpx.QueryParams(group_by=group_by, **params)))
    assert response.status_code == 200, response.text
    return list(response.json()["data"])


def upstream_config(upstream: RecordingUpstream, **extra: Any) -> dict[str, Any]:
    deployment = {"name": "eu-cloud", "engine": "openai", "base_url": upstream.url,
                  "jurisdiction": "FR", "operator": "EU Cloud"}  # fmt: skip
    priced = {"prompt_per_million": 1000, "completion_per_million": 2000}  # 0.02 per call
    return {
        "models": [
            {"id": "cloud", "deployments": [deployment]},
            {"id": "priced", "deployments": [{**deployment, "name": "eu-priced"}],
             "pricing": priced},
        ],
        **extra,
    }  # fmt: skip


class SlowUpstream(RecordingUpstream):
    """A fake that streams one chunk every 0.1 s for 5 s: a request that stays in flight."""

    async def _chat(self, request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await response.prepare(request)
        for _ in range(50):
            delta = {"choices": [{"index": 0, "delta": {"content": "."}, "finish_reason": None}]}
            await response.write(f"data: {json.dumps(delta)}\n\n".encode())
            await asyncio.sleep(0.1)
        await response.write(b"data: [DONE]\n\n")
        return response


def clear_redis_quotas() -> None:
    client = redis.Redis.from_url(REDIS_URL)
    stale = list(client.scan_iter("souverain:quota:*"))
    if stale:
        client.delete(*stale)
    client.close()


# --- fixtures --------------------------------------------------------------------------


@pytest.fixture(scope="module")
def gateway(
    upstream: RecordingUpstream, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Server]:
    """One replica: quotas in its memory, SQLite; `slow` streams for 5 s."""
    slow = SlowUpstream().start()
    config = upstream_config(upstream)
    config["models"].append({"id": "slow", "deployments": [
        {"name": "slow", "engine": "openai", "base_url": slow.url, "timeout_s": 30}]})  # fmt: skip
    server = start_server(tmp_path_factory.mktemp("quota-gw"), config)
    yield server
    stop_server(server)
    slow.stop()


@pytest.fixture(scope="module")
def replicas(
    upstream: RecordingUpstream, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[Server, Server]]:
    """Two replicas sharing one PostgreSQL database (so keys are shared) and one Redis."""
    clear_redis_quotas()
    databases = postgres_database()
    database_url = next(databases)
    config = upstream_config(upstream, redis_url=REDIS_URL, database_url=database_url)
    env = {"SOUVERAIN_PEPPER": PEPPER}
    first = start_server(tmp_path_factory.mktemp("replica-a"), config, env)
    try:
        second = start_server(tmp_path_factory.mktemp("replica-b"), config, env)
    except BaseException:
        stop_server(first)
        raise
    yield first, second
    stop_server(first)
    stop_server(second)
    databases.close()  # drops the database
    clear_redis_quotas()


# --- one replica -------------------------------------------------------------------------


def test_rpm_on_a_key_streamed_too_other_keys_unaffected(gateway: Server) -> None:
    limited = new_key(gateway, "rpm-three", limits={"rpm": 3})
    neighbour = new_key(gateway, "rpm-neighbour", limits={"rpm": 3})
    assert chat(gateway, limited).status_code == 200
    streamed = chat(gateway, limited, stream=True)
    assert streamed.status_code == 200 and "data: [DONE]" in streamed.text
    assert chat(gateway, limited).status_code == 200

    message = refused(chat(gateway, limited), "requests_per_minute", "key 'rpm-three'")
    assert message == "rate limit reached: key 'rpm-three' allows 3 requests per minute"
    late_stream = chat(gateway, limited, stream=True)
    refused(late_stream, "requests_per_minute", "key 'rpm-three'")
    assert late_stream.headers["content-type"].startswith("application/json")  # not an SSE
    assert int(late_stream.headers["retry-after"]) <= 61

    for _ in range(3):  # another key with the same limit has its own window
        assert chat(gateway, neighbour).status_code == 200
    assert chat(gateway, ADMIN_KEY).status_code == 200  # and a key without limits is free
    refused(chat(gateway, limited), "requests_per_minute", "key 'rpm-three'")


def test_tpm_on_a_team_settles_to_the_real_usage(gateway: Server) -> None:
    create(gateway, "teams", {"name": "tpm-team", "limits": {"tpm": 50}})
    key = new_key(gateway, "tpm-member", team="tpm-team")
    # 'hi' and max_tokens 60 reserve 61 tokens: more than the team's minute can ever hold.
    message = refused(
        chat(gateway, key, max_tokens=60), "tokens_per_minute", "team 'tpm-team'", retry=False
    )
    assert message.startswith("request too large: it needs 61 tokens")
    # 21 reserved each, settled to 15: 15 + 21 fits in 50, 30 + 21 does not.
    assert chat(gateway, key, max_tokens=20).status_code == 200
    assert chat(gateway, key, max_tokens=20).status_code == 200
    refused(chat(gateway, key, max_tokens=20), "tokens_per_minute", "team 'tpm-team'")
    assert chat(gateway, key, max_tokens=5).status_code == 200  # 30 + 6 still fits


def test_token_budget_on_a_team_is_shared_by_its_keys(gateway: Server) -> None:
    create(gateway, "teams", {"name": "budget-team", "limits": {"budget_tokens": 40}})
    first = new_key(gateway, "budget-first", team="budget-team")
    second = new_key(gateway, "budget-second", team="budget-team")
    assert chat(gateway, first, max_tokens=10).status_code == 200  # 15 spent
    assert chat(gateway, second, max_tokens=10).status_code == 200  # 30 spent
    response = chat(gateway, first, max_tokens=10)  # 30 + 11 > 40
    message = refused(response, "token_budget", "team 'budget-team'")
    assert message == "budget exhausted: team 'budget-team' has used its 40 tokens for this month"
    assert int(response.headers["retry-after"]) <= 31 * 86_400  # the first of next month
    refused(chat(gateway, second, max_tokens=10), "token_budget", "team 'budget-team'")
    assert chat(gateway, second, max_tokens=5).status_code == 200  # 30 + 6 fits: exactly 40
    refused(chat(gateway, second, max_tokens=1), "token_budget", "team 'budget-team'")


def test_token_budget_on_a_tenant_per_day(gateway: Server) -> None:
    create(gateway, "tenants", {"name": "acme-quota",
                                "limits": {"budget_tokens": 40, "budget_period": "day"}})  # fmt: skip
    key = new_key(gateway, "acme-key", tenant="acme-quota")
    other = new_key(gateway, "acme-other", tenant="acme-quota")
    assert chat(gateway, key, max_tokens=10).status_code == 200
    assert chat(gateway, other, max_tokens=10).status_code == 200
    response = chat(gateway, key, max_tokens=10)
    message = refused(response, "token_budget", "tenant 'acme-quota'")
    assert message.endswith("has used its 40 tokens for today")
    assert int(response.headers["retry-after"]) <= 86_400
    assert chat(gateway, ADMIN_KEY, max_tokens=10).status_code == 200  # the default tenant


def test_cost_budget_with_pricing(gateway: Server) -> None:
    created = create(gateway, "keys", {"name": "cost-key",
                                       "limits": {"budget_cost": 0.05, "budget_period": "day"}})  # fmt: skip
    key = created["key"]
    # Each call costs 10 * 0.001 + 5 * 0.002 = 0.02; 'hi' + max_tokens 5 reserve 0.011.
    assert chat(gateway, key, model="priced", max_tokens=5).status_code == 200
    assert chat(gateway, key, model="priced", max_tokens=5).status_code == 200
    message = refused(
        chat(gateway, key, model="priced", max_tokens=5), "cost_budget", "key 'cost-key'"
    )
    assert message == "budget exhausted: key 'cost-key' has used its cost budget of 0.05 for today"
    refused(
        chat(gateway, key, model="priced", max_tokens=30), "cost_budget", "key 'cost-key'",
        retry=False,  # 0.001 + 0.06 > 0.05: too large for any day
    )  # fmt: skip
    assert chat(gateway, key, model="cloud").status_code == 200  # unpriced: costs nothing
    rows = {r["model"]: r for r in usage_rows(gateway, "key,model") if r["key"] == created["id"]}
    assert (rows["priced"]["requests"], rows["priced"]["errors"]) == (4, 2)
    assert rows["priced"]["cost"] == pytest.approx(0.04)
    assert (rows["cloud"]["requests"], rows["cloud"]["cost"]) == (1, 0)


def budget_edge(servers: list[Server], name: str, max_tokens: int) -> None:
    """50 requests at once against a budget that holds 20 of them, give or take."""
    budget = 20 * PER_CALL + 7
    content = "Bonjour, une question brève"  # 27 characters: 10 prompt tokens estimated
    reserved = len(content) // CHARS_PER_TOKEN + 1 + max_tokens
    exact = reserved == PER_CALL
    created = create(servers[0], "keys", {"name": name, "limits": {"budget_tokens": budget}})

    async def burst() -> list[httpx.Response]:
        body = chat_body(content=content, max_tokens=max_tokens)
        async with httpx.AsyncClient(headers=bearer(created["key"]), timeout=60) as client:
            return await asyncio.gather(
                *(client.post(servers[i % len(servers)].v1 + "/chat/completions", json=body)
                  for i in range(50))
            )  # fmt: skip

    responses = asyncio.run(burst())
    accepted = sum(r.status_code == 200 for r in responses)
    for response in responses:
        if response.status_code != 200:
            refused(response, "token_budget", f"key '{name}'")
    for server in servers[1:]:
        usage_rows(server, "key")  # each replica writes its pending rows when asked
    rows = [r for r in usage_rows(servers[0], "key") if r["key"] == created["id"]]
    used = rows[0]["total_tokens"]
    assert rows[0]["requests"] == 50 and rows[0]["errors"] == 50 - accepted
    assert used == accepted * PER_CALL  # refused requests spent nothing
    assert accepted * reserved <= budget  # never more admitted than the reservations allow
    if exact:  # the estimate is the real usage: exactly those that fit, never over
        assert accepted == budget // PER_CALL
        assert used <= budget
    else:  # each admitted request overshoots its reservation; by no more than that
        assert used - budget <= accepted * (PER_CALL - reserved)
        # One after another, 20 fit (15 k + 11 <= 307); all at once, up to 27 (27 * 11).
        assert budget // PER_CALL <= accepted <= budget // reserved
    for server in servers:
        refused(chat(server, created["key"], max_tokens=10), "token_budget", f"key '{name}'")


@pytest.mark.parametrize(
    "max_tokens", [5, 1], ids=["estimate-exact", "estimate-low"]
)  # 'Bonjour…' + 5 reserves 15, what the upstream then reports; + 1 reserves 11
def test_fifty_concurrent_requests_at_the_edge_of_a_budget(
    gateway: Server, max_tokens: int
) -> None:
    budget_edge([gateway], f"edge-{max_tokens}", max_tokens)


def test_a_limit_changed_through_patch_applies_at_once(gateway: Server) -> None:
    user = create(gateway, "users", {"name": "patched-user", "role": "user"})
    key = new_key(gateway, "patched-key", user_id=user["id"])
    for _ in range(3):  # no limits yet: cached, and nothing counted
        assert chat(gateway, key).status_code == 200
    patched = admin(gateway, "PATCH", f"users/{user['id']}", {"limits": {"rpm": 1}})
    assert patched.status_code == 200 and patched.json()["limits"]["rpm"] == 1
    assert chat(gateway, key).status_code == 200
    refused(chat(gateway, key), "requests_per_minute", "user 'patched-user'")
    cleared = admin(gateway, "PATCH", f"users/{user['id']}", {"limits": {"rpm": None}})
    assert cleared.status_code == 200 and cleared.json()["limits"]["rpm"] is None
    assert chat(gateway, key).status_code == 200


def test_concurrency_slot_is_held_while_streaming_and_freed_on_disconnect(
    gateway: Server,
) -> None:
    key = new_key(gateway, "one-at-a-time", limits={"max_concurrency": 1})
    body = chat_body(model="slow", stream=True)
    with httpx.Client(timeout=30) as client:
        with client.stream(
            "POST", gateway.v1 + "/chat/completions", json=body, headers=bearer(key)
        ) as stream:
            assert stream.status_code == 200
            lines = stream.iter_lines()  # kept: a dropped iterator closes the connection
            assert next(lines).startswith("data: ")  # in flight now
            response = chat(gateway, key)
            message = refused(response, "concurrent_requests", "key 'one-at-a-time'")
            assert message == (
                "concurrency limit reached: key 'one-at-a-time' allows 1 requests at a time"
            )
            assert response.headers["retry-after"] == "1"
            assert next(lines) == ""  # still streaming
        # The client hung up mid-stream: the slot comes back at once, not when the 5 s
        # stream would have ended, nor with the 10-minute lease.
        deadline = time.monotonic() + 1.5
        while (status := chat(gateway, key).status_code) == 429 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert status == 200
        assert chat(gateway, key).status_code == 200  # and unary calls free theirs


def test_a_budget_survives_a_restart(upstream: RecordingUpstream, tmp_path: Path) -> None:
    """The in-memory store starts a period from the usage table, not from zero."""
    config = upstream_config(upstream)
    server = start_server(tmp_path, config)
    try:
        key = new_key(server, "restarted", limits={"budget_tokens": 40})
        assert chat(server, key, max_tokens=10).status_code == 200
        assert chat(server, key, max_tokens=10).status_code == 200  # 30 spent
    finally:
        stop_server(server)
    server = start_server(tmp_path, config)  # same data directory: same database
    try:
        refused(chat(server, key, max_tokens=10), "token_budget", "key 'restarted'")  # 30 + 11
        assert chat(server, key, max_tokens=5).status_code == 200  # 30 + 6 fits
        refused(chat(server, key, max_tokens=1), "token_budget", "key 'restarted'")
    finally:
        stop_server(server)


# --- Redis ---------------------------------------------------------------------------------


def test_two_replicas_share_one_rpm_limit(replicas: tuple[Server, Server]) -> None:
    first, second = replicas
    rpm = 12
    key = new_key(first, "shared-rpm", limits={"rpm": rpm})
    assert chat(second, key).status_code == 200  # replica B knows replica A's key

    async def hammer() -> list[httpx.Response]:
        async with httpx.AsyncClient(headers=bearer(key), timeout=60) as client:
            calls = [
                client.post(server.v1 + "/chat/completions", json=chat_body())
                for _ in range(20)
                for server in (first, second)
            ]
            return await asyncio.gather(*calls)

    responses = asyncio.run(hammer())
    assert sum(r.status_code == 200 for r in responses) == rpm - 1
    for response in responses:
        if response.status_code != 200:
            refused(response, "requests_per_minute", "key 'shared-rpm'")
    refused(chat(first, key), "requests_per_minute", "key 'shared-rpm'")
    refused(chat(second, key), "requests_per_minute", "key 'shared-rpm'")


def test_two_replicas_at_the_edge_of_one_budget(replicas: tuple[Server, Server]) -> None:
    budget_edge(list(replicas), "shared-edge", max_tokens=5)


def test_revocation_on_one_replica_is_seen_by_the_other_at_once(
    replicas: tuple[Server, Server],
) -> None:
    first, second = replicas
    created = create(first, "keys", {"name": "revoked-everywhere"})
    assert chat(second, created["key"]).status_code == 200  # now in B's key cache
    assert admin(first, "DELETE", f"keys/{created['id']}").status_code == 200
    response = chat(second, created["key"])
    assert response.status_code == 401, response.text
    assert response.json()["error"]["code"] == "invalid_api_key"


def test_a_team_limit_patched_on_one_replica_applies_on_the_other(
    replicas: tuple[Server, Server],
) -> None:
    first, second = replicas
    team = create(first, "teams", {"name": "patched-team"})
    key = new_key(first, "patched-team-key", team="patched-team")
    for _ in range(2):
        assert chat(second, key).status_code == 200
    assert admin(first, "PATCH", f"teams/{team['id']}", {"limits": {"rpm": 2}}).status_code == 200
    assert chat(second, key).status_code == 200
    assert chat(first, key).status_code == 200
    refused(chat(second, key), "requests_per_minute", "team 'patched-team'")


@pytest.fixture
def private_redis(tmp_path: Path) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    """A Redis server of this test's own, so that it can be stopped."""
    binary = shutil.which("redis-server")
    if binary is None:
        pytest.skip("redis-server is not installed")
    port = free_port()
    process = subprocess.Popen(
        [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
         "--dir", str(tmp_path)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    url = f"redis://127.0.0.1:{port}/0"
    client = redis.Redis.from_url(url)
    deadline = time.monotonic() + 10
    while True:
        try:
            client.ping()
            break
        except redis.ConnectionError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)
    client.close()
    yield url, process
    if process.poll() is None:
        process.terminate()
        process.wait(10)


def test_redis_going_away_fails_closed_for_limited_keys_only(
    upstream: RecordingUpstream,
    private_redis: tuple[str, subprocess.Popen[bytes]],
    tmp_path: Path,
) -> None:
    url, redis_process = private_redis
    server = start_server(tmp_path / "gw", upstream_config(upstream, redis_url=url))
    try:
        limited = new_key(server, "limited-no-redis", limits={"rpm": 100})
        free = new_key(server, "free-no-redis")
        assert chat(server, limited).status_code == 200
        redis_process.terminate()
        redis_process.wait(10)
        for stream in (False, True):
            response = chat(server, limited, stream=stream)
            assert response.status_code == 503, response.text
            error = response.json()["error"]
            assert error["code"] == "quota_unavailable"
            assert url not in error["message"] and "127.0.0.1" not in error["message"]
            assert chat(server, free, stream=stream).status_code == 200
    finally:
        stop_server(server)


def test_a_gateway_starts_with_redis_unreachable_and_fails_closed(
    upstream: RecordingUpstream, tmp_path: Path
) -> None:
    """Spec: Redis configured but down → limited keys 503 quota_unavailable, others work.

    Fails today: the kill switch (and the key-cache invalidation) subscribe to Redis in
    the lifespan, so the process exits at start-up instead.
    """
    config = upstream_config(upstream, redis_url=f"redis://127.0.0.1:{free_port()}/0")
    server = start_server(tmp_path / "gw", config)
    try:
        limited = new_key(server, "limited-unreachable", limits={"rpm": 100})
        response = chat(server, limited)
        assert response.status_code == 503, response.text
        assert response.json()["error"]["code"] == "quota_unavailable"
        assert chat(server, ADMIN_KEY).status_code == 200
    finally:
        stop_server(server)
