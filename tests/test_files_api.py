"""`/v1/files` against real `souverain serve` processes, on SQLite and PostgreSQL, with the
openai and mistralai SDKs as clients: upload, list (filters, both paginations),
retrieve, download byte for byte, delete; and the attacks: a file over the limit (refused
while it streams, the server's memory flat), a tenant over its quota, bad purposes and
forms, hostile file names, another owner's or tenant's id, an empty file. On PostgreSQL
a second replica reads what the first received (replicas share no disk).

The servers serve no model (`models: []`): files need none, and they start in seconds.
"""

from __future__ import annotations

import hashlib
import os
import random
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest
from mistralai.client import Mistral
from mistralai.client.errors import SDKError

from .conftest import ADMIN_KEY, Server, start_server, stop_server
from .databases import server_database

MiB = 1024 * 1024
LIMIT = 24 * MiB  # files.max_file_bytes
QUOTA = 32 * MiB  # files.tenant_quota_bytes
CONFIG: dict[str, Any] = {
    "models": [],
    "libraries": {"enabled": False},
    "ocr": {"enabled": False},
    "dlp": {"enabled": False},
    "files": {"max_file_bytes": LIMIT, "tenant_quota_bytes": QUOTA},
}
PEPPER = "files-test-pepper-shared-by-both-replicas"
BOUNDARY = "souverainTestBoundary7MA4YWxk"
LINES = b'{"custom_id": "a", "body": {"x": 1}}\n{"custom_id": "b", "body": {"x": 2}}\n'


@dataclass
class World:
    kind: str
    server: Server
    second: Server | None = None
    keys: dict[str, str] = field(default_factory=dict)  # actor -> secret
    key_ids: dict[str, int] = field(default_factory=dict)

    def call(self, method: str, path: str, actor: str = "alice", **kwargs: Any) -> httpx.Response:
        headers = {"Authorization": f"Bearer {self.keys.get(actor, ADMIN_KEY)}",
                   **kwargs.pop("headers", {})}  # fmt: skip
        return httpx.request(method, self.server.url + path, headers=headers, timeout=120,
                             **kwargs)  # fmt: skip

    def ok(self, method: str, path: str, actor: str = "owner", **kwargs: Any) -> Any:
        response = self.call(method, path, actor, **kwargs)
        assert response.status_code in (200, 201), (method, path, response.text)
        return response.json()

    def openai(self, actor: str = "alice", server: Server | None = None) -> openai.OpenAI:
        return openai.OpenAI(api_key=self.keys[actor], base_url=(server or self.server).v1,
                             max_retries=0)  # fmt: skip

    def mistral(self, actor: str = "alice") -> Mistral:
        return Mistral(api_key=self.keys[actor], server_url=self.server.url)

    def user(self, actor: str, tenant: str, role: str = "user") -> None:
        user = self.ok("POST", "/admin/v1/users", json={"name": actor, "role": role,
                                                         "tenant": tenant})  # fmt: skip
        key = self.ok("POST", "/admin/v1/keys", json={"name": actor, "user_id": user["id"],
                                                       "tenant": tenant})  # fmt: skip
        self.keys[actor], self.key_ids[actor] = key["key"], int(key["id"])


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def world(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[World]:
    tmp = tmp_path_factory.mktemp(f"files-{request.param}")
    with server_database(request.param, tmp / "a") as url:
        env = {"SOUVERAIN_DATABASE_URL": url, "SOUVERAIN_PEPPER": PEPPER}
        world = World(request.param, start_server(tmp / "a", CONFIG, env))
        try:
            if request.param == "postgresql":  # a second replica on the same database
                world.second = start_server(tmp / "b", CONFIG, env)
            for tenant in ("acme", "globex", "bulk"):
                world.ok("POST", "/admin/v1/tenants", json={"name": tenant})
            for actor, tenant in (("alice", "acme"), ("bob", "acme"), ("carol", "globex"),
                                  ("dave", "bulk"), ("pager", "acme")):  # fmt: skip
                world.user(actor, tenant)
            world.user("acme-admin", "acme", role="admin")
            yield world
        finally:
            for server in (world.server, world.second):
                if server is not None:
                    stop_server(server)


def _multipart(parts: list[tuple[str, str | None, bytes]], boundary: str = BOUNDARY) -> bytes:
    """A form built by hand: (field, filename or None, value); the filename is sent as
    raw UTF-8, control characters and all, as a hostile client may."""
    body = b""
    for name, filename, value in parts:
        disposition = f'form-data; name="{name}"'
        if filename is not None:
            disposition += f'; filename="{filename}"'
        body += (f"--{boundary}\r\nContent-Disposition: {disposition}\r\n".encode()
                 + (b"Content-Type: application/octet-stream\r\n" if filename is not None else b"")
                 + b"\r\n" + value + b"\r\n")  # fmt: skip
    return body + f"--{boundary}--\r\n".encode()


def _post_form(world: World, body: bytes, actor: str = "alice") -> httpx.Response:
    content_type = f"multipart/form-data; boundary={BOUNDARY}"
    return world.call("POST", "/v1/files", actor, content=body,
                      headers={"Content-Type": content_type})  # fmt: skip


def _error(response: httpx.Response, status: int, param: str | None = None) -> dict[str, Any]:
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert set(error) == {"message", "type", "param", "code"}
    if param is not None:
        assert error["param"] == param, error
    return dict(error)


# ---- the SDKs -------------------------------------------------------------------------------


def test_openai_sdk_upload_list_retrieve_download_delete(world: World) -> None:
    client = world.openai()
    created = client.files.create(file=("lines.jsonl", LINES), purpose="batch")
    assert (created.object, created.purpose, created.bytes) == ("file", "batch", len(LINES))
    assert created.filename == "lines.jsonl" and created.status == "processed"
    assert client.files.retrieve(created.id).model_dump() == created.model_dump()
    listed = client.files.list(purpose="batch")
    assert created.id in [f.id for f in listed.data]
    assert client.files.content(created.id).read() == LINES
    deleted = client.files.delete(created.id)
    assert (deleted.id, deleted.deleted, deleted.object) == (created.id, True, "file")
    with pytest.raises(openai.NotFoundError):
        client.files.retrieve(created.id)
    with pytest.raises(openai.NotFoundError):
        client.files.delete(created.id)
    assert created.id not in [f.id for f in client.files.list().data]


def test_openai_expiry_and_binary_content_across_chunks(world: World) -> None:
    """2.5 MiB of random bytes span three 1 MiB chunks and come back identical."""
    data = random.Random(7).randbytes(2 * MiB + MiB // 2)
    client = world.openai()
    created = client.files.create(file=("blob.bin", data), purpose="user_data",
                                  expires_after={"anchor": "created_at", "seconds": 3600})  # fmt: skip
    assert (
        created.expires_at is not None and 3590 <= created.expires_at - created.created_at <= 3601
    )
    assert client.files.content(created.id).read() == data
    raw = world.ok("GET", f"/v1/files/{created.id}", "alice")
    assert raw["signature"] == hashlib.sha256(data).hexdigest()
    client.files.delete(created.id)


def test_mistral_sdk_upload_list_retrieve_download_delete(world: World) -> None:
    client = world.mistral()
    created = client.files.upload(file={"file_name": "requests.jsonl", "content": LINES},
                                  purpose="batch")  # fmt: skip
    assert (created.size_bytes, created.purpose, created.source) == (len(LINES), "batch", "upload")
    assert (created.sample_type, created.num_lines) == ("batch_request", 2)
    got = client.files.retrieve(file_id=created.id)
    assert (got.id, got.deleted, got.filename) == (created.id, False, "requests.jsonl")
    listed = client.files.list(purpose="batch", search="REQUESTS", page=0, page_size=50)
    assert [f.id for f in listed.data] == [created.id] and listed.total == 1
    assert client.files.list(sample_type=["batch_result"], page_size=50).data == []
    assert client.files.download(file_id=created.id).read() == LINES
    with pytest.raises(SDKError) as refused:  # files do not leave by URL
        client.files.get_signed_url(file_id=created.id)
    assert refused.value.status_code == 501
    gone = client.files.delete(file_id=created.id)
    assert (gone.id, gone.deleted) == (created.id, True)
    with pytest.raises(SDKError) as missing:
        client.files.retrieve(file_id=created.id)
    assert missing.value.status_code == 404


def test_mistral_upload_without_purpose_is_a_fine_tuning_file(world: World) -> None:
    client = world.mistral()
    created = client.files.upload(file={"file_name": "train.jsonl", "content": LINES})
    assert (created.purpose, created.sample_type) == ("fine-tune", "instruct")
    client.files.delete(file_id=created.id)


def test_listing_pages_by_cursor_and_by_page(world: World) -> None:
    client = world.openai("pager")
    ids = [client.files.create(file=(f"f{i}.txt", b"x" * i), purpose="user_data").id
           for i in range(5)]  # fmt: skip
    newest_first = list(reversed(ids))
    first = client.files.list(limit=2)
    assert [f.id for f in first.data] == newest_first[:2] and first.has_more
    assert [f.id for f in client.files.list(limit=2)] == newest_first  # the SDK follows `after`
    assert [f.id for f in client.files.list(limit=2, order="asc")] == ids
    mistral = world.mistral("pager")
    pages = [mistral.files.list(page=p, page_size=2) for p in range(3)]
    assert [f.id for page in pages for f in page.data] == newest_first
    assert {page.total for page in pages} == {5}
    assert mistral.files.list(page=3, page_size=2).data == []
    for file_id in ids:
        client.files.delete(file_id)


# ---- who sees what --------------------------------------------------------------------------


def test_another_owner_or_tenant_or_admin_gets_404(world: World) -> None:
    created = world.openai("alice").files.create(file=("mine.txt", b"secret"),
                                                 purpose="user_data")  # fmt: skip
    for actor in ("bob", "carol", "acme-admin"):
        for method, path in (("GET", f"/v1/files/{created.id}"),
                             ("GET", f"/v1/files/{created.id}/content"),
                             ("GET", f"/v1/files/{created.id}/url"),
                             ("DELETE", f"/v1/files/{created.id}")):  # fmt: skip
            _error(world.call(method, path, actor), 404)
        listed = world.ok("GET", "/v1/files", actor)
        assert created.id not in [f["id"] for f in listed["data"]]
        _error(world.call("GET", f"/v1/files?after={created.id}", actor), 400, "after")
    assert world.openai("alice").files.content(created.id).read() == b"secret"  # still there
    world.openai("alice").files.delete(created.id)


# ---- bad requests ---------------------------------------------------------------------------


def test_bad_purposes_and_forms_are_400s_naming_the_field(world: World) -> None:
    with pytest.raises(openai.BadRequestError) as bad:
        world.openai().files.create(file=("a.jsonl", LINES), purpose="nonsense")  # type: ignore[arg-type]
    assert bad.value.param == "purpose" and "batch" in bad.value.message
    _error(_post_form(world, _multipart([("purpose", None, b"batch")])), 400, "file")
    _error(_post_form(world, _multipart([("purpose", None, b"batch"),
                                         ("document", "a.txt", b"x")])), 400, "document")  # fmt: skip
    _error(_post_form(world, _multipart([("file", "a.txt", b"x"), ("file", "b.txt", b"y")])), 400,
           "file")  # fmt: skip
    _error(_post_form(world, _multipart([("file", None, b"not a file part")])), 400, "file")
    _error(_post_form(world, _multipart([("file", "a.txt", b"x"), ("purpose", None, b"batch"),
                                         ("purpose", None, b"batch")])), 400, "purpose")  # fmt: skip
    _error(_post_form(world, _multipart([("file", "a.txt", b"x"), ("purpose", None, b"x" * 5000)])),
           400, "purpose")  # fmt: skip
    truncated = _multipart([("purpose", None, b"batch"), ("file", "a.txt", b"data")])[:-20]
    assert "closing boundary" in _error(_post_form(world, truncated), 400)["message"]
    expiry = _multipart([("file", "a.txt", b"x"), ("expires_after[anchor]", None, b"created_at"),
                         ("expires_after[seconds]", None, b"10")])  # fmt: skip
    _error(_post_form(world, expiry), 400, "expires_after[seconds]")
    _error(world.call("POST", "/v1/files", json={"purpose": "batch"}), 400)
    _error(world.call("GET", "/v1/files?order=sideways"), 400, "order")
    _error(world.call("GET", "/v1/files?limit=0"), 400, "limit")
    _error(world.call("GET", "/v1/files?purpose=nonsense"), 400, "purpose")
    assert world.ok("GET", "/v1/files?search=%25%25", "bob")["data"] == []  # LIKE escapes


@pytest.mark.parametrize(
    ("sent", "kept"),
    [
        ("../../etc/passwd", "passwd"),
        ("..\\..\\windows\\system32\\cmd.exe", "cmd.exe"),
        ("a\x00b\x1b[31mc\td\x7f.txt", "ab[31mcd.txt"),
        ("invoice\u202egnp.exe", "invoicegnp.exe"),  # the RTL override is dropped
        ("rapport-été-日本.pdf", "rapport-été-日本.pdf"),  # Unicode kept
        ("...", "file"),
        ("n" * 10_000 + ".jsonl", "n" * 249 + ".jsonl"),  # 255 characters, extension kept
    ],
)
def test_hostile_file_names_are_cleaned(world: World, sent: str, kept: str) -> None:
    response = _post_form(world, _multipart([("purpose", None, b"user_data"),
                                             ("file", sent, b"payload")]))  # fmt: skip
    assert response.status_code == 200, response.text
    created = response.json()
    assert created["filename"] == kept
    download = world.call("GET", f"/v1/files/{created['id']}/content")
    disposition = download.headers["content-disposition"]
    assert disposition.startswith('attachment; filename="') and "filename*=UTF-8''" in disposition
    assert disposition.isascii() and "/" not in disposition.split("filename*=")[0]
    assert download.headers["content-type"] == "application/octet-stream"
    assert download.content == b"payload"
    world.ok("DELETE", f"/v1/files/{created['id']}", "alice")


def test_a_line_break_in_a_file_name_ends_the_name(world: World) -> None:
    """CR LF inside the quoted name ends the header line: what follows is a header of its
    own, ignored; the name is what came before it, with nothing of the line break."""
    body = _multipart([("file", "evil\r\nContent-Type: text/html\r\nX-Injected: 1.txt", b"x")])
    created = _post_form(world, body).json()
    assert (created["filename"], created["mimetype"]) == ('"evil', "application/octet-stream")
    world.ok("DELETE", f"/v1/files/{created['id']}", "alice")


def test_an_empty_file_is_a_file(world: World) -> None:
    client = world.openai()
    created = client.files.create(file=("empty.jsonl", b""), purpose="batch")
    assert created.bytes == 0
    assert world.ok("GET", f"/v1/files/{created.id}", "alice")["num_lines"] == 0
    assert client.files.content(created.id).read() == b""
    client.files.delete(created.id)


# ---- limits ---------------------------------------------------------------------------------


def _rss(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise AssertionError("no VmRSS")


def test_a_large_upload_streams_with_flat_memory(world: World, tmp_path: Path) -> None:
    """A file as large as allowed goes to disk and the database without the server's
    memory growing by anything near its size (the body is never held whole)."""
    path = tmp_path / "large.bin"
    path.write_bytes(os.urandom(LIMIT))
    pid, peak, done = world.server.process.pid, [0], threading.Event()
    before = _rss(pid)

    def sample() -> None:
        while not done.is_set():
            peak[0] = max(peak[0], _rss(pid))
            time.sleep(0.01)

    sampler = threading.Thread(target=sample)
    sampler.start()
    try:
        with path.open("rb") as handle:
            created = world.openai("dave").files.create(file=("large.bin", handle), purpose="batch")
    finally:
        done.set()
        sampler.join()
    assert created.bytes == LIMIT
    grew = peak[0] - before
    print(f"{world.kind}: a {LIMIT // MiB} MiB upload grew the server by {grew / MiB:.1f} MiB")
    assert grew < LIMIT // 2, (
        f"the server grew by {grew / MiB:.1f} MiB for a {LIMIT // MiB} MiB file"
    )
    digest = hashlib.sha256()
    with httpx.stream("GET", f"{world.server.v1}/files/{created.id}/content", timeout=120,
                      headers={"Authorization": f"Bearer {world.keys['dave']}"}) as response:  # fmt: skip
        for chunk in response.iter_bytes():
            digest.update(chunk)
    assert digest.hexdigest() == hashlib.sha256(path.read_bytes()).hexdigest()
    world.openai("dave").files.delete(created.id)


def test_a_file_over_the_limit_is_refused_while_it_streams(world: World) -> None:
    """Chunked, with no length declared: the 413 comes back while the body is still being
    sent (the client never finishes it), in the API's error shape."""
    host, port = world.server.url.removeprefix("http://").split(":")
    head = (f"POST /v1/files HTTP/1.1\r\nHost: {host}\r\n"
            f"Authorization: Bearer {world.keys['alice']}\r\n"
            f"Content-Type: multipart/form-data; boundary={BOUNDARY}\r\n"
            "Transfer-Encoding: chunked\r\n\r\n").encode()  # fmt: skip
    preamble = _multipart([("purpose", None, b"batch")]).removesuffix(
        f"--{BOUNDARY}--\r\n".encode()
    )
    preamble += (f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="file"; '
                 'filename="huge.bin"\r\n\r\n').encode()  # fmt: skip
    block, sent, answer = b"\0" * (256 * 1024), 0, b""
    with socket.create_connection((host, int(port)), timeout=30) as sock:
        sock.sendall(head + _chunk(preamble))
        while sent < 4 * LIMIT:  # far more than the limit, if nobody stopped us
            readable = _readable(sock)
            if readable:
                break
            try:
                sock.sendall(_chunk(block))
            except (BrokenPipeError, ConnectionResetError):
                break
            sent += len(block)
        while b"\r\n\r\n" not in answer or not answer.rstrip().endswith(b"}"):
            data = sock.recv(65536)
            if not data:
                break
            answer += data
    status_line, _, rest = answer.partition(b"\r\n")
    assert status_line.split()[1] == b"413", answer[:300]
    assert sent < 2 * LIMIT, f"{sent} bytes were sent before the refusal"
    body = rest.split(b"\r\n\r\n", 1)[1]
    assert b'"param":"file"' in body and b"files.max_file_bytes" in body


def _chunk(data: bytes) -> bytes:
    return f"{len(data):x}\r\n".encode() + data + b"\r\n"


def _readable(sock: socket.socket) -> bool:
    import select

    return bool(select.select([sock], [], [], 0)[0])


def test_a_declared_length_over_the_limit_is_refused_before_the_body(world: World) -> None:
    """A Content-Length over the upload limit: 413 with no byte of the body sent. Other
    routes keep the server's general limit (server.max_body_bytes)."""
    for path, length in (("/v1/files", LIMIT * 4), ("/v1/chat/completions", LIMIT)):
        host, port = world.server.url.removeprefix("http://").split(":")
        head = (f"POST {path} HTTP/1.1\r\nHost: {host}\r\nContent-Length: {length}\r\n"
                f"Authorization: Bearer {world.keys['alice']}\r\n"
                f"Content-Type: multipart/form-data; boundary={BOUNDARY}\r\n\r\n")  # fmt: skip
        with socket.create_connection((host, int(port)), timeout=30) as sock:
            sock.sendall(head.encode())
            answer = sock.recv(65536)
        assert answer.split(b"\r\n", 1)[0].split()[1] == b"413", answer[:300]


def test_a_tenant_past_its_quota_gets_429_insufficient_quota(world: World) -> None:
    """The openai SDK does not retry it (x-should-retry: false): one request, one refusal."""
    sent: list[str] = []
    http = httpx.Client(event_hooks={"request": [lambda request: sent.append(request.url.path)]})
    client = openai.OpenAI(api_key=world.keys["dave"], base_url=world.server.v1, http_client=http)
    first = client.files.create(file=("one.bin", b"1" * (20 * MiB)), purpose="batch")
    with pytest.raises(openai.RateLimitError) as refused:
        client.files.create(file=("two.bin", b"2" * (20 * MiB)), purpose="batch")
    assert refused.value.code == "insufficient_quota"
    assert "files.tenant_quota_bytes" in refused.value.message
    assert sent.count("/v1/files") == 2
    assert refused.value.response.headers["x-should-retry"] == "false"
    other_tenant = world.openai("alice").files.create(file=("ok.txt", b"ok"), purpose="batch")
    client.files.delete(first.id)  # room again
    second = client.files.create(file=("two.bin", b"2" * (20 * MiB)), purpose="batch")
    client.files.delete(second.id)
    world.openai("alice").files.delete(other_tenant.id)


# ---- replicas and erasure -------------------------------------------------------------------


def test_a_file_uploaded_through_one_replica_is_read_through_another(world: World) -> None:
    if world.second is None:
        pytest.skip("replicas share PostgreSQL; SQLite is one process's")
    data = random.Random(3).randbytes(MiB + 17)
    first = world.openai("alice").files.create(file=("shared.bin", data), purpose="batch")
    other = world.openai("alice", world.second)
    assert other.files.retrieve(first.id).bytes == len(data)
    assert other.files.content(first.id).read() == data
    other.files.delete(first.id)
    with pytest.raises(openai.NotFoundError):
        world.openai("alice").files.retrieve(first.id)


def test_erasing_a_subject_deletes_its_files(world: World) -> None:
    world.user("erin", "acme")
    kept = world.openai("bob").files.create(file=("bob.txt", b"bob"), purpose="user_data")
    gone = world.openai("erin").files.create(file=("erin.txt", b"erin"), purpose="user_data")
    result = world.ok(
        "POST", "/admin/v1/audit/erase", json={"subject": f"key:{world.key_ids['erin']}"}
    )
    assert result["files_deleted"] == 1
    with pytest.raises(openai.NotFoundError):
        world.openai("erin").files.retrieve(gone.id)
    assert world.openai("bob").files.retrieve(kept.id).id == kept.id
    world.openai("bob").files.delete(kept.id)
