"""A few thousand random and type-confused requests to every route, as every role: no 5xx,
and the process is alive at the end.

Routes come from the Starlette app itself, so a new route is fuzzed without editing this
file. Bodies are either a valid template with one part replaced (wrong types, huge and
negative numbers, unicode, nulls, arrays for objects, deep nesting), or random JSON, or
bytes that are no JSON at all; query strings carry every parameter a route reads, with the
same kinds of values. Chat, FIM and embeddings go to a recording upstream (no real model).

Reproducible: the seed is printed on failure; `FUZZ_SEED=... pytest
tests/test_fuzz.py` replays it, and `FUZZ_REQUESTS` changes how many are sent.
"""

from __future__ import annotations

import base64
import json
import os
import random
import struct
import zlib
from collections import Counter, defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast
from urllib.parse import quote

import httpx
import pytest
from starlette.routing import Route

from souverain.app import create_app
from souverain.config import load_settings
from souverain.state import AppState

from .conftest import ADMIN_KEY, Server, start_server, stop_server
from .databases import server_database
from .recording_upstream import RecordingUpstream

SEED = int(os.environ.get("FUZZ_SEED", "20261203"))
REQUESTS = int(os.environ.get("FUZZ_REQUESTS", "2000"))
# Callers, weighted: mostly keys that get past authentication, so requests go deeper.
ROLES = ("owner", "owner", "admin", "admin", "auditor", "developer", "developer", "user",
         "user", "none", "forged")  # fmt: skip

# Every query parameter a route reads (grep query_params / query_int in src/souverain/api).
QUERY_NAMES = (
    "page", "page_size", "page_token", "search", "sort_by", "sort_order", "page_start",
    "page_end", "after", "limit", "since", "until", "tenant", "principal", "model", "outcome",
    "kind", "index", "size", "old_size", "new_size", "start", "end", "group_by", "libraries",
)  # fmt: skip


def _tiny_png() -> bytes:
    """An 8x8 white PNG, written by hand (OCR on it is quick and finds nothing)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        raw = kind + data
        return struct.pack(">I", len(data)) + raw + struct.pack(">I", zlib.crc32(raw))

    rows = b"".join(b"\x00" + b"\xff" * 8 for _ in range(8))
    header = struct.pack(">IIBBBBB", 8, 8, 8, 0, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(rows))
            + chunk(b"IEND", b""))  # fmt: skip


PNG_URL = "data:image/png;base64," + base64.b64encode(_tiny_png()).decode()
SCHEMA = {"type": "object", "properties": {"a": {"type": "string", "maxLength": 20}}}
TOOL = {
    "type": "function",
    "function": {"name": "lookup", "description": "d", "parameters": SCHEMA},
}
TOOL_CALL = {"id": "call_abc123", "type": "function",
             "function": {"name": "lookup", "arguments": '{"a": "x"}'}}  # fmt: skip
CHAT: dict[str, Any] = {
    "model": "cloud",
    "messages": [
        {"role": "system", "content": "be brief"},
        {"role": "user", "content": [{"type": "text", "text": "bonjour"}]},
        {"role": "assistant", "content": None, "tool_calls": [TOOL_CALL]},
        {"role": "tool", "tool_call_id": "call_abc123", "content": '{"r": 1}'},
        {"role": "user", "content": "merci"},
    ],
    "max_tokens": 8,
    "temperature": 0.5,
    "stream": False,
    "tools": [TOOL],
    "response_format": {"type": "json_schema", "json_schema": {"name": "s", "schema": SCHEMA}},
    "stop": ["\n\n"],
    "metadata": {"classification": "internal"},
}

# A valid body per route (by path pattern and method); other routes get random bodies.
TEMPLATES: dict[tuple[str, str], dict[str, Any]] = {
    ("/v1/chat/completions", "POST"): CHAT,
    ("/v1/fim/completions", "POST"): {
        "model": "cloud",
        "prompt": "def f(",
        "suffix": "):",
        "max_tokens": 8,
        "stop": ["\n"],
    },
    ("/v1/embeddings", "POST"): {"model": "emb", "input": ["a", "b"], "encoding_format": "float"},
    ("/v1/completions", "POST"): {"model": "cloud", "prompt": "Il était", "max_tokens": 8},
    ("/v1/responses", "POST"): {
        "model": "cloud",
        "input": [{"role": "user", "content": "bonjour"}],
        "instructions": "Réponds en français.",
        "max_output_tokens": 16,
    },
    ("/v1/ocr", "POST"): {
        "model": "souverain-ocr",
        "pages": [0],
        "document": {"type": "image_url", "image_url": PNG_URL},
    },
    ("/admin/v1/providers/cut", "POST"): {"deployment": "nowhere"},
    ("/admin/v1/providers/restore", "POST"): {"deployment": "nowhere"},
    ("/admin/v1/tenants", "POST"): {"name": "fuzz-t", "limits": {"rpm": 100}},
    ("/admin/v1/tenants/{tenant_id}", "PATCH"): {"limits": {"tpm": 1000, "budget_period": "day"}},
    ("/admin/v1/teams", "POST"): {"name": "fuzz-team", "tenant": "acme"},
    ("/admin/v1/teams/{team_id}", "PATCH"): {"limits": {"max_concurrency": 4}},
    ("/admin/v1/teams/{team_id}/members", "POST"): {"user_id": 1},
    ("/admin/v1/users", "POST"): {"name": "fuzz-u", "role": "user", "tenant": "acme", "teams": []},
    ("/admin/v1/users/{user_id}", "PATCH"): {"role": "developer", "disabled": False},
    ("/admin/v1/keys", "POST"): {
        "name": "fuzz-k",
        "expires_in": "1h",
        "models": ["cloud"],
        "endpoints": ["chat"],
        "limits": {"rpm": 5},
    },
    ("/admin/v1/audit/erase", "POST"): {"subject": "someone@example.com"},
    ("/v1/conversations", "POST"): {
        "model": "cloud",
        "inputs": "bonjour",
        "completion_args": {"max_tokens": 8},
    },
    ("/v1/conversations/{conversation_id}", "POST"): {
        "inputs": [{"role": "user", "content": "et?"}]
    },
    ("/v1/conversations/{conversation_id}/restart", "POST"): {
        "from_entry_id": "msg_0",
        "inputs": "x",
    },
    ("/admin/v1/connectors", "POST"): {
        "name": "fuzz-c",
        "url": "http://127.0.0.1:9/mcp",
        "timeout_s": 2,
    },
    ("/v1/libraries", "POST"): {"name": "fuzz-lib", "description": "d", "chunk_size": 512},
    ("/v1/libraries/{library_id}", "PATCH"): {"name": "renamed", "description": "d"},
    ("/v1/libraries/{library_id}/share", "PUT"): {
        "level": "Viewer",
        "share_with_uuid": "1",
        "share_with_type": "User",
    },
    ("/v1/libraries/{library_id}/share", "DELETE"): {
        "share_with_uuid": "1",
        "share_with_type": "User",
    },
    ("/v1/libraries/search", "POST"): {"query": "badge", "top_k": 3},
    ("/v1/libraries/{library_id}/search", "POST"): {"query": "badge", "top_k": 3},
    ("/v1/libraries/{library_id}/documents/{document_id}", "PATCH"): {
        "name": "n.txt",
        "attributes": {"a": 1},
        "expires_at": "2030-01-01T00:00:00Z",
    },
}


BOUNDARY_INTS = [0, -1, 2**31 - 1, 2**31, 2**53 + 1, 2**63, 2**64, 10**30, -(10**30)]


class Values:
    """Values of every kind JSON can carry, and some that trip parsers and databases."""

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng

    def scalar(self) -> Any:
        return self.rng.choice([
            None, True, False, 0, 1, -1, 2**31, 2**31 - 1, 2**63, -(2**63) - 1, 2**64 + 1,
            10**30, -(10**30), 1.5, -0.0, 1e308, -1e308, 5e-324, "", " ", "0", "-1", "null",
            "true", "1e999", "x" * self.rng.choice([1, 100, 5000]), "é", "\U0001d54f\U0001f642", "\u202e\u200b",
            "\x00", "\\", '"', "\uff46\uff55\uff4c\uff4c", "../../etc/passwd", "%00%ff", "<script>", "٣",
            "2026-13-45", "9999-12-31", "Infinity", "NaN", "cloud", "emb", "acme", "user",
            "owner", "admin", "restricted", "chat", "day", "User", "Viewer", "function",
            "json_schema", "image_url", "text", "assistant", "tool",
        ])  # fmt: skip

    def text(self) -> str:
        """A string: unicode of every plane, controls, separators, long runs, identifiers."""
        pieces = [
            "bonjour", "FR76 3000 6000 0112 3456 7890 189", "jean.dupont@example.fr",
            "+33 6 12 34 56 78", "AKIA" + "Z" * 16, "\u200b", "\u00ad", "\ufeff", "\r\n",
            "\t", "\x00", "@" * 50, "\U0010ffff", "\u0660\u0661", "<|im_end|>", "{{", "%s", "\\u0000",
        ]  # fmt: skip
        text = "".join(self.rng.choices(pieces, k=self.rng.randint(0, 6)))
        return text * self.rng.choice([1, 1, 1, 200])

    def any(self, depth: int = 0) -> Any:
        roll = self.rng.random()
        if depth > 3 or roll < 0.6:
            return self.scalar()
        if roll < 0.8:
            return [self.any(depth + 1) for _ in range(self.rng.randint(0, 4))]
        keys = self.rng.choices(["a", "type", "text", "role", "name", "", "🙂", "0"], k=3)
        return {key: self.any(depth + 1) for key in keys}

    def nested(self) -> Any:
        value: Any = self.scalar()
        for _ in range(self.rng.choice([20, 63, 64, 65, 200, 900])):
            value = [value] if self.rng.random() < 0.5 else {"a": value}
        return value

    def confused(self) -> Any:
        """A value of the wrong type for most fields."""
        roll = self.rng.random()
        if roll < 0.05:
            return self.nested()
        if roll < 0.1:
            return [self.scalar() for _ in range(self.rng.choice([0, 1, 1000]))]
        return self.any()


def leaf_paths(node: Any, path: list[Any] | None = None) -> list[list[Any]]:
    """The path to `node` and to every value inside it (keys and list indexes)."""
    path = path or []
    found = [path]
    if isinstance(node, dict):
        for key, child in node.items():
            found += leaf_paths(child, [*path, key])
    elif isinstance(node, list):
        for index, child in enumerate(node):
            found += leaf_paths(child, [*path, index])
    return found


def mutate(template: Any, values: Values) -> Any:
    """A deep copy of `template` with one value replaced, deleted, or one field added."""
    body = json.loads(json.dumps(template))
    paths = leaf_paths(body)
    for _ in range(values.rng.choice([1, 1, 1, 2, 3])):
        path = values.rng.choice(paths)
        if not path:
            continue
        action = values.rng.random()
        try:
            parent = body
            for step in path[:-1]:
                parent = parent[step]
            if action < 0.15 and isinstance(parent, dict):
                del parent[path[-1]]
            elif action < 0.25 and isinstance(parent, dict):
                parent[values.rng.choice(["x_extra", "name", "🙂", ""])] = values.confused()
            elif isinstance(parent[path[-1]], str) and action < 0.6:
                parent[path[-1]] = values.text()  # right type, hostile content
            elif isinstance(parent[path[-1]], int) and action < 0.6:
                parent[path[-1]] = values.rng.choice(BOUNDARY_INTS)
            else:
                parent[path[-1]] = values.confused()
        except (KeyError, IndexError, TypeError):
            pass  # an earlier change removed or replaced the parent
    return body


def raw_body(values: Values) -> bytes:
    """Bytes that are not a JSON object."""
    return values.rng.choice([
        b"", b" ", b"null", b"[]", b"1", b'"x"', b"{", b'{"a":', b"\xff\xfe\x00", b"{}" * 100,
        b'{"model": 1e999999}', b'{"model": "\\ud800"}', b"[" * 5000, b'{"a":' * 2000,
        b'{"model": NaN}', b'{"a": 1, "a": 2}', "{\"é\": \"\u2028\"}".encode(),
        b'{"messages": -99999999999999999999999999999999999999}',
    ])  # fmt: skip


def query_string(values: Values) -> str:
    names = values.rng.sample(QUERY_NAMES, values.rng.randint(0, 4))
    pairs = []
    for name in names:
        value = values.scalar()
        text = value if isinstance(value, str) else json.dumps(value)
        pairs.append(f"{name}={quote(text[:300], safe='')}")
    return "&".join(pairs)


@dataclass
class World:
    server: Server
    keys: dict[str, str | None] = field(default_factory=dict)
    ids: dict[str, list[str]] = field(default_factory=dict)  # path parameter -> values

    def ok(self, method: str, path: str, body: Any = None) -> Any:
        response = httpx.request(method, self.server.url + path, json=body, timeout=60,
                                 headers={"Authorization": f"Bearer {ADMIN_KEY}"})  # fmt: skip
        assert response.status_code in (200, 201), (method, path, response.text)
        return response.json()


def app_routes(tmp: Path) -> list[tuple[str, str]]:
    """(path pattern, method) of every route the app serves, read from the app itself.

    Reading the routes needs no state (middleware and lifespan use it only when they
    run), so none is built: no database, no models.
    """
    settings = load_settings(None, {"data_dir": tmp}, environ={})
    app = create_app(settings, state=cast(AppState, _NoState()))
    found = []
    for route in app.routes:
        assert isinstance(route, Route), route
        for method in sorted(route.methods or ()):
            if method != "HEAD":
                found.append((route.path, method))
    return found


class _NoState:
    """Stands in for AppState while the routes are read: every attribute is None (the
    middleware takes its parts as arguments, and nothing runs)."""

    def __getattr__(self, name: str) -> None:
        return None


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def world(
    request: pytest.FixtureRequest,
    upstream: RecordingUpstream,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[World]:
    config = {
        "models": [
            {
                "id": "cloud",
                "capabilities": {"completion_fim": True},
                "deployments": [upstream.deployment()],
            },
            {"id": "emb", "type": "embeddings", "deployments": [upstream.deployment()]},
        ],
        "ocr": {"annotation_model": "cloud"},
    }
    tmp = tmp_path_factory.mktemp(f"fuzz-{request.param}")
    with server_database(request.param, tmp) as url:
        server = start_server(tmp, config, env={"SOUVERAIN_DATABASE_URL": url})
        try:
            yield populate(World(server))
        finally:
            stop_server(server)


def populate(world: World) -> World:
    """Tenant acme with a key per role, and objects the fuzzer may change or delete."""
    server = world.server
    world.keys = {"owner": ADMIN_KEY, "none": None, "forged": "sk-sv-" + "0" * 40}
    world.ok("POST", "/admin/v1/tenants", {"name": "acme"})
    team = world.ok("POST", "/admin/v1/teams", {"name": "payments", "tenant": "acme"})
    for role in ("admin", "auditor", "developer", "user"):
        user = world.ok("POST", "/admin/v1/users",
                        {"name": f"fuzz-{role}", "role": role, "tenant": "acme"})  # fmt: skip
        key = world.ok("POST", "/admin/v1/keys", {"name": f"k-{role}", "user_id": user["id"]})
        world.keys[role] = key["key"]
    # Objects the fuzzer may change or delete (never the ones the role keys hang on).
    victim_tenant = world.ok("POST", "/admin/v1/tenants", {"name": "victim"})
    victim_user = world.ok("POST", "/admin/v1/users", {"name": "victim", "tenant": "acme"})
    victim_key = world.ok("POST", "/admin/v1/keys", {"name": "victim", "tenant": "acme"})
    library = world.ok("POST", "/v1/libraries", {"name": "fuzz"})
    uploaded = httpx.post(
        f"{server.url}/v1/libraries/{library['id']}/documents",
        files={"file": ("note.txt", b"Le badge est obligatoire.")},
        headers={"Authorization": f"Bearer {ADMIN_KEY}"},
        timeout=60,
    )
    assert uploaded.status_code == 201, uploaded.text
    stored = world.ok("POST", "/v1/responses", {"model": "cloud", "input": "bonjour"})
    talk = world.ok("POST", "/v1/conversations", {"model": "cloud", "inputs": "bonjour"})
    made = world.ok("POST", "/v1/agents", {"model": "cloud", "name": "fuzz-agent"})
    # A connector whose server is down (port 9): its live tool listing is a deliberate 502.
    connector = world.ok(
        "POST", "/admin/v1/connectors", {"name": "fuzz", "url": "http://127.0.0.1:9/mcp"}
    )
    # A file, an OpenAI batch and a Mistral batch job on it (the fuzzer may cancel them).
    lines = (
        b'{"custom_id": "a", "method": "POST", "url": "/v1/chat/completions", '
        b'"body": {"model": "cloud", "messages": [{"role": "user", "content": "hi"}]}}\n'
    )
    upload = httpx.post(
        f"{server.url}/v1/files",
        files={"file": ("lines.jsonl", lines)},
        data={"purpose": "batch"},
        headers={"Authorization": f"Bearer {ADMIN_KEY}"},
        timeout=60,
    )
    assert upload.status_code == 200, upload.text
    file_id = upload.json()["id"]
    batch = world.ok("POST", "/v1/batches", {"input_file_id": file_id,
                     "endpoint": "/v1/chat/completions", "completion_window": "24h"})  # fmt: skip
    job = world.ok("POST", "/v1/batch/jobs", {"input_files": [file_id], "model": "cloud",
                   "endpoint": "/v1/chat/completions"})  # fmt: skip
    odd = ["0", "-1", "2147483648", "99999999999999999999999", "x", "%F0%9F%99%82", "..",
           "%00", "1e3", "٣", "²", "a" * 300]  # fmt: skip
    world.ids = {
        "tenant_id": [str(victim_tenant["id"]), *odd],
        "team_id": [str(team["id"]), *odd],
        "user_id": [str(victim_user["id"]), *odd],
        "key_id": [str(victim_key["id"]), *odd],
        "library_id": [str(library["id"]), "00000000-0000-0000-0000-000000000000", *odd],
        "document_id": [uploaded.json()["id"], "00000000-0000-0000-0000-000000000000", *odd],
        "model_id": ["cloud", "emb", "souverain-ocr", "a/b/../c", *odd],
        "response_id": [stored["id"], "resp_0000", *odd],
        "conversation_id": [talk["conversation_id"], "conv_0000", *odd],
        "agent_id": [made["id"], "ag_0000", *odd],
        "version": ["1", "latest", *odd],
        "connector_id": [connector["id"], "fuzz", "conn_0000", *odd],
        "asset": ["docs.js", "docs.css", "../app.py", *odd],
        "file_id": [file_id, "file-0000", *odd],
        "batch_id": [batch["id"], "batch_0000", *odd],
        "job_id": [job["id"], "00000000-0000-0000-0000-000000000000", *odd],
    }
    return world


def fill(pattern: str, world: World, rng: random.Random) -> str:
    """The pattern with its parameters filled: half the time a real id (the first)."""
    path = pattern
    for name, choices in world.ids.items():
        for placeholder in ("{" + name + "}", "{" + name + ":path}"):
            if placeholder in path:
                choice = choices[0] if rng.random() < 0.5 else rng.choice(choices)
                path = path.replace(placeholder, str(choice))
    assert "{" not in path, pattern
    return path


def send(
    client: httpx.Client, rng: random.Random, pattern: str, method: str, url: str,
    content: bytes | None, headers: dict[str, str], roll: float,
) -> httpx.Response:  # fmt: skip
    if pattern.endswith("/documents") and method == "POST" and roll < 0.5:
        # A multipart upload: random bytes, or a little text, under a random name.
        headers = {k: v for k, v in headers.items() if k != "Content-Type"}
        name = rng.choice(["a.txt", "b.pdf", "c.docx", "d.html", "e.md", "f.png", "é🙂", "\x00"])
        data = rng.randbytes(rng.choice([0, 10, 2000])) if roll < 0.25 else b"texte"
        return client.post(url, files={"file": (name, data)}, headers=headers)
    return client.request(method, url, content=content, headers=headers)


HOSTILE = [None, "\x00", "", "x" * 20_000, 2**31, -1, 1e308, [], {}, [None], {"": None}]


def confusion_matrix() -> Iterator[tuple[str, str, Any]]:
    """(pattern, method, body): every template with each of its values, one at a time,
    replaced by each hostile value: every field gets every wrong type once."""
    for (pattern, method), template in TEMPLATES.items():
        paths = [path for path in leaf_paths(template) if path]
        for path in paths:
            for hostile in HOSTILE:
                body = json.loads(json.dumps(template))
                parent = body
                for step in path[:-1]:
                    parent = parent[step]
                parent[path[-1]] = hostile
                yield pattern, method, body


class Exchanges:
    """Sends requests and keeps what went wrong, and the status codes seen per route."""

    def __init__(self, world: World, client: httpx.Client, rng: random.Random) -> None:
        self.world, self.client, self.rng = world, client, rng
        self.failures: list[str] = []
        self.seen: dict[tuple[str, str], Counter[int]] = defaultdict(Counter)

    def send(
        self, role: str, pattern: str, method: str, url: str, content: bytes | None, roll: float
    ) -> None:
        headers = {"Content-Type": "application/json"}
        key = self.world.keys[role]
        if key is not None:
            headers["Authorization"] = f"Bearer {key}"
        where = f"#{len(self.failures)} {role} {method} {url}"
        try:
            response = send(self.client, self.rng, pattern, method, url, content, headers, roll)
        except httpx.TransportError as exc:  # the server dropped the connection
            self.failures.append(f"{where} -> {exc!r}\n    body: {(content or b'')[:500]!r}")
            return
        self.seen[(pattern, method)][response.status_code] += 1
        streamed = response.headers.get("content-type", "").startswith("text/event-stream")
        # 501 not_implemented is a documented, deliberate answer (signed URLs are not served).
        deliberate = response.status_code == 501 and b'"not_implemented"' in response.content
        # 502 connector_error: the connector's MCP server (port 9, nothing there) is down.
        deliberate |= response.status_code == 502 and b'"connector_error"' in response.content
        failed = response.status_code >= 500 and not deliberate
        if failed or (streamed and b'"internal_error"' in response.content):
            self.failures.append(f"{where} -> {response.status_code} {response.text[:300]}\n"
                                 f"    body: {(content or b'')[:500]!r}")  # fmt: skip
        if response.status_code == 200 and (pattern, method) == ("/v1/libraries/{library_id}",
                                                                   "DELETE"):  # fmt: skip
            # Keep a library for the routes below it.
            self.world.ids["library_id"][0] = self.world.ok("POST", "/v1/libraries", {"name": "l"})[
                "id"
            ]
        if pattern == "/admin/v1/providers/cut" and response.status_code == 200:
            # A cut is a valid admin action whose 503s later are by design: undo it.
            self.client.post("/admin/v1/providers/restore", content=content,
                             headers={**headers, "Authorization": f"Bearer {ADMIN_KEY}"})  # fmt: skip


def test_no_request_gets_a_5xx_and_the_process_survives(world: World, tmp_path: Path) -> None:
    rng = random.Random(SEED)
    values = Values(rng)
    routes = app_routes(tmp_path / "routes")
    assert len(routes) > 40  # the app's routes, not an empty list
    assert set(TEMPLATES) <= set(routes)  # no template for a route that is gone
    with httpx.Client(base_url=world.server.url, timeout=60) as client:
        sent = Exchanges(world, client, rng)
        # Every field of every template, with every wrong type, as the owner.
        for pattern, method, body in confusion_matrix():
            sent.send("owner", pattern, method, fill(pattern, world, rng),
                      json.dumps(body).encode(), 1.0)  # fmt: skip
        # Then random requests to every route in turn, as every role.
        for number in range(REQUESTS):
            pattern, method = routes[number % len(routes)]
            role = rng.choice(ROLES)
            query = query_string(values)
            url = fill(pattern, world, rng) + ("?" + query if query else "")
            template = TEMPLATES.get((pattern, method))
            roll = rng.random()
            content: bytes | None = None
            if method in ("GET", "DELETE") and template is None and roll < 0.8:
                content = None
            elif template is not None and roll < 0.1:
                content = json.dumps(template).encode()
            elif template is not None and roll < 0.7:
                content = json.dumps(mutate(template, values)).encode()
            elif roll < 0.85:
                content = json.dumps(values.any()).encode()
            else:
                content = raw_body(values)
            sent.send(role, pattern, method, url, content, roll)
    print("\n".join(f"{m} {p}: {dict(c)}" for (p, m), c in sorted(sent.seen.items())))
    assert world.server.process.poll() is None, "the server died"
    assert httpx.get(world.server.url + "/readyz", timeout=30).status_code == 200
    failures = sent.failures
    assert not failures, f"seed {SEED}: {len(failures)} 5xx answers\n" + "\n".join(failures[:40])
