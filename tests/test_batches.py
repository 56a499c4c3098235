"""Batches through the official SDKs against real gateways (SQLite and PostgreSQL), each
line a pipeline call to the recording upstream (tests/recording_upstream.py, a named
fake, here answering after a configurable delay so a batch can be caught mid-way):
upload, create, poll, download the output and error files, cancel, expire; a gateway
killed with SIGKILL mid-batch and started again; two replicas sharing one batch."""

from __future__ import annotations

import asyncio
import io
import json
import signal
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest
from aiohttp import web
from click.testing import CliRunner
from mistralai.client import Mistral
from sqlalchemy import create_engine, text

from souverain.batch.lane import BatchLane
from souverain.cli import cli
from souverain.config import ModelConfig
from souverain.routing.models import ServedModel

from .conftest import ADMIN_KEY, Server, start_server, stop_server
from .databases import postgres_database
from .recording_upstream import RecordingUpstream

CHAT = "/v1/chat/completions"
TERMINAL = {"completed", "failed", "expired", "cancelled"}


class SlowUpstream(RecordingUpstream):
    """The recording upstream (a named fake) answering chat calls after `delay_s`."""

    def __init__(self) -> None:
        super().__init__()
        self.delay_s = 0.0

    async def _chat(self, request: web.Request) -> web.StreamResponse:
        if self.delay_s:
            await asyncio.sleep(self.delay_s)
        return await super()._chat(request)


@pytest.fixture(scope="module")
def upstream() -> Iterator[SlowUpstream]:
    recorder = SlowUpstream().start()
    yield recorder  # type: ignore[misc]
    recorder.stop()


def gateway_config(
    up: RecordingUpstream, database_url: str | None = None, lease_s: float = 5, **batch: Any
) -> dict[str, Any]:
    """Short leases where a test kills a replica (it is taken over sooner); longer ones
    elsewhere, so that a loaded machine's stall does not hand a range over mid-way."""
    config: dict[str, Any] = {
        "models": [
            {"id": "cloud", "deployments": [up.deployment()]},
            {"id": "other", "deployments": [up.deployment(name="other")]},
            {"id": "vectors", "type": "embeddings", "deployments": [up.deployment(name="vec")]},
            {"id": "coder", "capabilities": {"completion_fim": True},
             "deployments": [up.deployment(name="coder")]},
        ],
        "jobs": {"lease_s": lease_s, "check_s": 0.3, "poll_s": 0.1},
        "batch": {"range_lines": 5, "max_lines": 200, "max_line_bytes": 4096,
                  "lane_concurrency": 4, **batch},
        # what leaves for the upstream (an EU cloud) is pseudonymized, batch lines included
        "dlp": {"destinations": [{"operators": ["EU Cloud"], "actions": {"*": "pseudonymize"}}]},
    }  # fmt: skip
    if database_url:
        config["database_url"] = database_url
    return config


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def gateway(
    request: pytest.FixtureRequest, upstream: SlowUpstream, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Server]:
    databases = postgres_database() if request.param == "postgresql" else None
    url = next(databases) if databases is not None else None
    server = start_server(
        tmp_path_factory.mktemp(f"batch-{request.param}"), gateway_config(upstream, url)
    )
    yield server
    stop_server(server)
    if databases is not None:
        next(databases, None)


def oai(server: Server, key: str = ADMIN_KEY) -> openai.OpenAI:
    return openai.OpenAI(api_key=key, base_url=server.v1, max_retries=0)


def chat_line(custom_id: str, content: str, model: str = "cloud", **extra: Any) -> dict[str, Any]:
    body = {"model": model, "messages": [{"role": "user", "content": content}]}
    return {"custom_id": custom_id, "method": "POST", "url": CHAT, "body": body, **extra}


def upload(client: openai.OpenAI, lines: list[Any]) -> str:
    data = "\n".join(line if isinstance(line, str) else json.dumps(line) for line in lines)
    return client.files.create(file=("input.jsonl", io.BytesIO(data.encode())), purpose="batch").id


def wait_for(check: Callable[[], Any], timeout: float = 30, pause: float = 0.1) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if found := check():
            return found
        time.sleep(pause)
    raise AssertionError("timed out")


def finished(client: openai.OpenAI, batch_id: str, timeout: float = 30) -> Any:
    def done() -> Any:
        batch = client.batches.retrieve(batch_id)
        return batch if batch.status in TERMINAL else None

    return wait_for(done, timeout)


def lines_of(client: openai.OpenAI, file_id: str | None) -> list[dict[str, Any]]:
    if file_id is None:
        return []
    return [json.loads(line) for line in client.files.content(file_id).text.splitlines()]


def key_in(server: Server, tenant: str, **fields: Any) -> str:
    admin = {"Authorization": f"Bearer {ADMIN_KEY}"}
    httpx.post(server.url + "/admin/v1/tenants", json={"name": tenant}, headers=admin, timeout=30)
    body = {"name": f"{tenant}-key", "tenant": tenant, "role": "developer", **fields}
    created = httpx.post(server.url + "/admin/v1/keys", headers=admin, timeout=30, json=body)
    assert created.status_code in (200, 201), created.text
    return str(created.json()["key"])


# ---- the OpenAI SDK -------------------------------------------------------------------------


def test_a_batch_completes_with_its_output_and_error_files(
    gateway: Server, upstream: SlowUpstream
) -> None:
    client = oai(gateway)
    lines = [chat_line(f"req-{n}", f"say {n} ünïcødé") for n in range(23)]
    lines[6] = {
        "custom_id": "no-messages",
        "method": "POST",
        "url": CHAT,
        "body": {"model": "cloud"},
    }
    before = len(upstream.received)
    batch = client.batches.create(input_file_id=upload(client, lines), endpoint=CHAT,
                                  completion_window="24h", metadata={"project": "archive"})  # fmt: skip
    assert batch.status == "validating" and batch.metadata == {"project": "archive"}
    batch = finished(client, batch.id)
    assert batch.status == "completed", batch
    assert batch.request_counts is not None
    assert (batch.request_counts.total, batch.request_counts.completed) == (23, 22)
    assert batch.request_counts.failed == 1
    assert batch.in_progress_at and batch.finalizing_at and batch.completed_at
    output = lines_of(client, batch.output_file_id)
    assert [line["custom_id"] for line in output] == [f"req-{n}" for n in range(23) if n != 6]
    for n, line in zip((n for n in range(23) if n != 6), output, strict=True):
        assert line["response"]["status_code"] == 200 and line["error"] is None
        assert line["response"]["body"]["choices"][0]["message"]["content"] == f"say {n} ünïcødé"
    (error,) = lines_of(client, batch.error_file_id)
    assert error["custom_id"] == "no-messages"
    assert error["response"]["status_code"] == 400
    assert error["response"]["body"]["error"]["param"] == "messages"
    # Each valid line reached the upstream exactly once.
    sent = Counter(body["messages"][-1]["content"] for body in upstream.received[before:])
    assert sent == Counter(f"say {n} ünïcødé" for n in range(23) if n != 6)
    page = client.batches.list(limit=1)
    assert page.data[0].id == batch.id


def test_embeddings_and_fim_batches(gateway: Server) -> None:
    client = oai(gateway)
    lines = [{"custom_id": f"e{n}", "method": "POST", "url": "/v1/embeddings",
              "body": {"model": "vectors", "input": [f"text {n}", "more"]}} for n in range(4)]  # fmt: skip
    batch = client.batches.create(input_file_id=upload(client, lines), endpoint="/v1/embeddings",
                                  completion_window="24h")  # fmt: skip
    batch = finished(client, batch.id)
    assert batch.status == "completed" and batch.error_file_id is None
    output = lines_of(client, batch.output_file_id)
    assert [len(line["response"]["body"]["data"]) for line in output] == [2, 2, 2, 2]
    fim = "/v1/fim/completions"
    lines = [{"custom_id": f"f{n}", "method": "POST", "url": fim, "body": {"model": "coder",
              "prompt": f"def f{n}(", "suffix": "return 1", "max_tokens": 8}} for n in range(3)]  # fmt: skip
    batch = client.batches.create(input_file_id=upload(client, lines), endpoint=fim,
                                  completion_window="24h")  # fmt: skip
    batch = finished(client, batch.id)
    assert batch.status == "completed" and batch.error_file_id is None, batch
    output = lines_of(client, batch.output_file_id)
    texts = [line["response"]["body"]["choices"][0]["message"]["content"] for line in output]
    assert [text.startswith(f"def f{n}(") for n, text in enumerate(texts)] == [True] * 3


def test_cancelling_stops_within_seconds_and_keeps_what_was_done(
    gateway: Server, upstream: SlowUpstream
) -> None:
    client = oai(gateway)
    upstream.delay_s = 0.25
    try:
        lines = [chat_line(f"c{n}", f"cancel {n}") for n in range(60)]
        batch = client.batches.create(input_file_id=upload(client, lines), endpoint=CHAT,
                                      completion_window="24h")  # fmt: skip
        wait_for(lambda: client.batches.retrieve(batch.id).request_counts.completed >= 3)  # type: ignore[union-attr]
        asked = time.monotonic()
        assert client.batches.cancel(batch.id).status == "cancelling"
        batch = finished(client, batch.id, timeout=15)
        took = time.monotonic() - asked
    finally:
        upstream.delay_s = 0.0
    assert batch.status == "cancelled" and batch.cancelled_at is not None
    assert took < 5, took
    output = lines_of(client, batch.output_file_id)
    assert batch.request_counts is not None
    assert 3 <= len(output) == batch.request_counts.completed < 60
    assert len({line["custom_id"] for line in output}) == len(output)
    assert client.batches.cancel(batch.id).status == "cancelled"  # already over: unchanged


# ---- the Mistral SDK -------------------------------------------------------------------------


def test_a_mistral_batch_job(gateway: Server) -> None:
    client = Mistral(api_key=ADMIN_KEY, server_url=gateway.url)
    data = "\n".join(json.dumps({"custom_id": str(n), "body": {"max_tokens": 20,
        "messages": [{"role": "user", "content": f"mistral {n}"}]}}) for n in range(7))  # fmt: skip
    uploaded = client.files.upload(file={"file_name": "in.jsonl", "content": data.encode()},
                                   purpose="batch")  # fmt: skip
    job = client.batch.jobs.create(input_files=[uploaded.id], model="cloud", endpoint=CHAT,
                                   metadata={"team": "records"})  # fmt: skip
    assert job.status in ("QUEUED", "RUNNING")

    def done() -> Any:
        current = client.batch.jobs.get(job_id=job.id)
        return current if current.status not in ("QUEUED", "RUNNING") else None

    job = wait_for(done)
    assert job.status == "SUCCESS", job
    assert (job.total_requests, job.succeeded_requests, job.failed_requests) == (7, 7, 0)
    assert job.output_file and job.error_file is None
    output = client.files.download(file_id=job.output_file).read().decode().splitlines()
    answers = [json.loads(line) for line in output]
    assert [a["custom_id"] for a in answers] == [str(n) for n in range(7)]
    assert answers[3]["response"]["body"]["choices"][0]["message"]["content"] == "mistral 3"
    listed = client.batch.jobs.list(page_size=100)
    assert job.id in [item.id for item in listed.data or []]


def test_the_cli_submits_follows_and_downloads(gateway: Server, tmp_path: Path) -> None:
    source = tmp_path / "requests.jsonl"
    source.write_text("\n".join(json.dumps({"custom_id": f"cli-{n}", "body": {
        "messages": [{"role": "user", "content": f"from the cli {n}"}]}}) for n in range(5)))  # fmt: skip
    target = tmp_path / "out.jsonl"
    env = {"SOUVERAIN_URL": gateway.url, "SOUVERAIN_API_KEY": ADMIN_KEY}
    runner = CliRunner()
    submitted = runner.invoke(cli, ["batch", "submit", str(source), "--model", "cloud", "--wait",
                                    "--output", str(target)], env=env)  # fmt: skip
    assert submitted.exit_code == 0, submitted.output
    summary = json.loads(submitted.stdout[submitted.stdout.index("{") :])
    assert summary["status"] == "SUCCESS" and summary["succeeded_requests"] == 5
    answers = [json.loads(line) for line in target.read_text().splitlines()]
    assert [a["custom_id"] for a in answers] == [f"cli-{n}" for n in range(5)]
    listed = runner.invoke(cli, ["batch", "list"], env=env)
    assert summary["id"] in listed.output and "5/5" in listed.output
    shown = runner.invoke(cli, ["batch", "get", summary["id"]], env=env)
    assert json.loads(shown.output)["output_file"] == summary["output_file"]
    missing = runner.invoke(cli, ["batch", "cancel", "batch_nope"], env=env)
    assert missing.exit_code != 0 and "404" in missing.output


class Engine:
    """Stands for a deployment's engine: only its kind and reported depth are read by the
    lane."""

    kind = "openai"  # a remote engine: the lane's share alone bounds its batch lines

    def __init__(self) -> None:
        self.depth = 0

    def queue_depth(self) -> int:
        return self.depth


def test_the_lane_lets_interactive_calls_go_first() -> None:
    engine = Engine()
    served = ServedModel(config=ModelConfig(id="m", deployments=[{"engine": "openai",
                         "base_url": "http://127.0.0.1:9/v1"}]), backends=[engine])  # type: ignore[list-item]  # fmt: skip

    class Catalog:
        def get(self, name: str) -> ServedModel:
            return served

    lane = BatchLane(Catalog(), share=1)  # type: ignore[arg-type]
    order: list[str] = []

    async def line(name: str, hold: float) -> None:
        async with lane.admitted("m"):
            engine.depth += 1  # the engine counts the line while it runs
            order.append(name)
            await asyncio.sleep(hold)
            engine.depth -= 1

    async def run() -> None:
        engine.depth = 1  # an interactive call in flight: batch lines wait
        first = asyncio.create_task(line("a", 0.1))
        second = asyncio.create_task(line("b", 0.0))
        await asyncio.sleep(0.2)
        assert order == []
        engine.depth = 0  # it ended: one line at a time (share 1)
        await asyncio.sleep(0.05)
        assert order == ["a"] and lane.interactive(served) == 0
        await asyncio.gather(first, second)
        assert order == ["a", "b"]

    asyncio.run(run())


# ---- what is refused, and why ---------------------------------------------------------------


def test_a_bad_input_file_fails_validation_naming_each_line(gateway: Server) -> None:
    client = oai(gateway)
    lines: list[Any] = [
        chat_line("a", "fine"),
        "{not json",
        chat_line("a", "the same id again"),
        chat_line("b", "x", url="/v1/embeddings"),
        chat_line("c", "x", model="no-such-model"),
        chat_line("d", "x", model="other"),
        {"method": "POST", "url": CHAT, "body": {"model": "cloud"}},
        "[1, 2]",
    ]
    batch = client.batches.create(input_file_id=upload(client, lines), endpoint=CHAT,
                                  completion_window="24h")  # fmt: skip
    batch = finished(client, batch.id)
    assert batch.status == "failed" and batch.failed_at and batch.output_file_id is None
    assert batch.errors is not None and batch.errors.data is not None
    found = [(e.line, e.code) for e in batch.errors.data]
    assert found == [(2, "invalid_json_line"), (3, "duplicate_custom_id"), (4, "mismatched_url"),
                     (5, "model_not_found"), (6, "mismatched_model"), (7, "missing_custom_id"),
                     (8, "invalid_json_line")]  # fmt: skip
    assert all(e.message and e.message.startswith(f"line {e.line}") for e in batch.errors.data)


def test_limits_of_the_batch_section(gateway: Server) -> None:
    client = oai(gateway)
    too_many = [chat_line(f"n{n}", "x") for n in range(201)]  # batch.max_lines is 200 here
    batch = finished(client, client.batches.create(
        input_file_id=upload(client, too_many), endpoint=CHAT, completion_window="24h").id)  # fmt: skip
    assert batch.status == "failed" and batch.errors and batch.errors.data
    assert batch.errors.data[0].code == "too_many_requests" and batch.errors.data[0].line == 201
    nested = json.dumps(
        chat_line("deep", "x") | {"body": {"model": "cloud", "x": [[[[[[1]]]]]] * 2}}
    )
    deep = "[" * 200 + "]" * 200
    odd = [chat_line("ok", "x"), "x" * 5000, deep, b"\xff\xfe{}".decode("latin-1"), nested]
    batch = finished(client, client.batches.create(input_file_id=upload(client, odd),
                                                   endpoint=CHAT, completion_window="24h").id)  # fmt: skip
    assert batch.errors and batch.errors.data
    assert [(e.line, e.code) for e in batch.errors.data] == [
        (2, "line_too_long"), (3, "invalid_json_line"), (4, "invalid_json_line")]  # fmt: skip
    empty = client.files.create(file=("e.jsonl", io.BytesIO(b"\n\n")), purpose="batch").id
    batch = finished(client, client.batches.create(input_file_id=empty, endpoint=CHAT,
                                                   completion_window="24h").id)  # fmt: skip
    assert batch.errors and batch.errors.data and batch.errors.data[0].code == "empty_file"


def test_each_line_is_a_pipeline_call_as_the_submitter(
    gateway: Server, upstream: SlowUpstream
) -> None:
    client = oai(gateway)
    before = len(upstream.received)
    lines = [chat_line("pii", "write to jeanne.martin@example.fr please")]
    batch = finished(client, client.batches.create(input_file_id=upload(client, lines),
                                                   endpoint=CHAT, completion_window="24h").id)  # fmt: skip
    (answer,) = lines_of(client, batch.output_file_id)
    sent = json.dumps(upstream.received[before:])
    assert "jeanne.martin@example.fr" not in sent  # DLP: the upstream got a pseudonym
    content = answer["response"]["body"]["choices"][0]["message"]["content"]
    assert "jeanne.martin@example.fr" in content  # ... restored in the answer
    # A key scoped to another model may not batch this one: its scopes apply per line.
    scoped = oai(gateway, key_in(gateway, "scoped", models=["other"]))
    mine = upload(scoped, [chat_line("s", "x")])
    batch = finished(scoped, scoped.batches.create(input_file_id=mine, endpoint=CHAT,
                                                   completion_window="24h").id)  # fmt: skip
    assert batch.status == "failed" and batch.errors and batch.errors.data
    assert batch.errors.data[0].code == "model_not_found"


def test_create_refuses_clearly(gateway: Server) -> None:
    client = oai(gateway)
    good = upload(client, [chat_line("x", "y")])
    other_purpose = client.files.create(file=("u.jsonl", io.BytesIO(b"{}")), purpose="user_data").id
    http = gateway.client()
    cases: list[tuple[Any, int, str | None]] = [
        ({"input_file_id": good, "endpoint": "/v1/moderations", "completion_window": "24h"}, 400, "endpoint"),
        ({"input_file_id": "file-nope", "endpoint": CHAT, "completion_window": "24h"}, 404, "input_file_id"),
        ({"input_file_id": other_purpose, "endpoint": CHAT, "completion_window": "24h"}, 400, "input_file_id"),
        ({"input_file_id": good, "endpoint": CHAT, "completion_window": "24 hours"}, 400, "completion_window"),
        ({"input_file_id": good, "endpoint": CHAT, "completion_window": "9999h"}, 400, "completion_window"),
        ({"input_file_id": good, "endpoint": CHAT, "completion_window": "24h",
          "metadata": {f"k{n}": "v" for n in range(17)}}, 400, "metadata"),
        ({"input_file_id": good, "endpoint": CHAT, "completion_window": "24h",
          "metadata": {"k": {"nested": 1}}}, 400, None),
        ({"input_file_id": 5, "endpoint": CHAT, "completion_window": "24h"}, 400, "input_file_id"),
        ([1, 2], 400, None),
        ({"input_file_id": "x" * 100_000, "endpoint": CHAT, "completion_window": "24h"}, 400, "input_file_id"),
    ]  # fmt: skip
    for body, status, param in cases:
        answer = http.post("/v1/batches", json=body)
        assert answer.status_code == status, (body, answer.text)
        assert answer.json()["error"]["message"]
        if param is not None:
            assert answer.json()["error"]["param"] == param, answer.text
    assert http.post("/v1/batches", content=b"{oops").status_code == 400
    jobs = [({"input_files": [good], "endpoint": CHAT, "model": "nope"}, 404),
            ({"input_files": [good], "endpoint": CHAT, "model": "cloud", "requests": [{"body": {}}]}, 400),
            ({"input_files": [], "endpoint": CHAT, "model": "cloud"}, 400),
            ({"input_files": [good], "endpoint": CHAT, "model": "cloud", "timeout_hours": 0}, 400)]  # fmt: skip
    for body, status in jobs:
        answer = http.post("/v1/batch/jobs", json=body)
        assert answer.status_code == status, (body, answer.text)
    assert http.get("/v1/batches/" + "z" * 10_000).status_code == 404
    assert http.get("/v1/batches", params={"limit": 0}).status_code == 400
    assert http.get("/v1/batches", params={"after": "batch_unknown"}).status_code == 400


def test_another_tenants_batch_is_404(gateway: Server) -> None:
    client = oai(gateway)
    batch = client.batches.create(input_file_id=upload(client, [chat_line("x", "y")]),
                                  endpoint=CHAT, completion_window="24h")  # fmt: skip
    stranger = oai(gateway, key_in(gateway, "elsewhere"))
    with pytest.raises(openai.NotFoundError):
        stranger.batches.retrieve(batch.id)
    with pytest.raises(openai.NotFoundError):
        stranger.batches.cancel(batch.id)
    assert batch.id not in [b.id for b in stranger.batches.list().data]
    with pytest.raises(openai.NotFoundError):  # nor may it batch another tenant's file
        stranger.batches.create(input_file_id=batch.input_file_id, endpoint=CHAT,
                                completion_window="24h")  # fmt: skip
    finished(client, batch.id)


# ---- expiry, a crash, two replicas ------------------------------------------------------------

STORES = ["sqlite", "postgresql"]


@contextmanager
def store_url(store: str) -> Iterator[str | None]:
    """None (the server's SQLite file), or a fresh PostgreSQL database, dropped after."""
    if store == "sqlite":
        yield None
    else:
        yield from postgres_database()


@pytest.mark.parametrize("store", STORES)
def test_a_batch_expires_with_its_window(
    store: str, upstream: SlowUpstream, tmp_path_factory: pytest.TempPathFactory
) -> None:
    with store_url(store) as url:
        expire_a_batch(upstream, tmp_path_factory.mktemp(f"batch-expiry-{store}"), url)


def expire_a_batch(upstream: SlowUpstream, tmp: Path, url: str | None) -> None:
    server = start_server(tmp, gateway_config(upstream, url, max_window_s=2.0))
    upstream.delay_s = 0.3
    try:
        client = oai(server)
        lines = [chat_line(f"x{n}", f"expire {n}") for n in range(40)]
        batch = client.batches.create(input_file_id=upload(client, lines), endpoint=CHAT,
                                      completion_window="24h")  # fmt: skip
        batch = finished(client, batch.id, timeout=20)
        done = lines_of(client, batch.output_file_id)
        unanswered = lines_of(client, batch.error_file_id)
    finally:
        upstream.delay_s = 0.0
        stop_server(server)
    assert batch.status == "expired" and batch.expired_at is not None
    assert 0 < len(done) < 40
    assert sorted(line["custom_id"] for line in done + unanswered) == sorted(
        f"x{n}" for n in range(40)
    )
    assert {line["error"]["code"] for line in unanswered} == {"batch_expired"}


@pytest.mark.parametrize("store", STORES)
def test_a_batch_survives_sigkill_of_its_gateway(
    store: str, upstream: SlowUpstream, tmp_path_factory: pytest.TempPathFactory
) -> None:
    with store_url(store) as url:
        crash_mid_batch(upstream, tmp_path_factory.mktemp(f"batch-crash-{store}"), url)


def crash_mid_batch(upstream: SlowUpstream, tmp: Path, url: str | None) -> None:
    config = gateway_config(upstream, url, lease_s=2)
    server = start_server(tmp, config)
    key = key_in(server, "archives")  # the env admin key is made again at each start
    upstream.delay_s = 0.2
    try:
        client = oai(server, key)
        lines = [chat_line(f"k{n}", f"crash {n}") for n in range(50)]
        batch = client.batches.create(input_file_id=upload(client, lines), endpoint=CHAT,
                                      completion_window="24h")  # fmt: skip
        wait_for(lambda: client.batches.retrieve(batch.id).request_counts.completed >= 8)  # type: ignore[union-attr]
        server.process.send_signal(signal.SIGKILL)
        server.process.wait(10)
        server = start_server(tmp, config, data_dir=tmp / "data")
        client = oai(server, key)
        batch = finished(client, batch.id, timeout=40)
        output = lines_of(client, batch.output_file_id)
    finally:
        upstream.delay_s = 0.0
        stop_server(server)
    assert batch.status == "completed", batch
    assert sorted(line["custom_id"] for line in output) == sorted(f"k{n}" for n in range(50))
    assert batch.error_file_id is None
    verified = CliRunner().invoke(cli, ["audit", "verify", "--config", str(tmp / "config.yaml"),
                                        "--data-dir", str(tmp / "data")])  # fmt: skip
    assert verified.exit_code == 0, verified.output
    assert json.loads(verified.output)["ok"] is True


def test_two_replicas_on_postgresql_share_one_batch(
    upstream: SlowUpstream, tmp_path_factory: pytest.TempPathFactory
) -> None:
    databases = postgres_database()
    url = next(databases)
    tmp = tmp_path_factory.mktemp("batch-replicas")
    config = gateway_config(upstream, url, lease_s=2)
    # Replicas of one deployment share their database and their secrets (the data folder's
    # pepper and keys), as they would behind a load balancer.
    first = start_server(tmp / "one", config)
    second = start_server(tmp / "two", config, data_dir=tmp / "one" / "data")
    key = key_in(first, "replicated")
    upstream.delay_s = 0.15
    try:
        client = oai(first, key)
        lines = [chat_line(f"p{n}", f"replica {n}") for n in range(60)]
        batch = client.batches.create(input_file_id=upload(client, lines), endpoint=CHAT,
                                      completion_window="24h")  # fmt: skip
        batch = finished(oai(second, key), batch.id, timeout=40)  # the other replica sees it
        output = lines_of(oai(second, key), batch.output_file_id)
    finally:
        upstream.delay_s = 0.0
        stop_server(first)
        stop_server(second)
    assert batch.status == "completed"
    assert sorted(line["custom_id"] for line in output) == sorted(f"p{n}" for n in range(60))
    engine = create_engine(url)
    with engine.connect() as conn:
        results = conn.execute(text("SELECT result FROM jobs WHERE parent_id = :id"),
                               {"id": batch.id}).scalars().all()  # fmt: skip
    engine.dispose()
    replicas = {json.loads(result)["replica"] for result in results}
    assert len(replicas) == 2, replicas  # both replicas answered ranges of the one batch
    next(databases, None)
