"""The audit log through the API: a leaf for every call, proofs an auditor can check."""

from __future__ import annotations

import asyncio
import base64
import json
import signal
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from souverain.audit.checkpoint import Verifier
from souverain.audit.merkle import verify_consistency, verify_inclusion
from souverain.identity.keys import KeyStore, load_pepper
from souverain.store.database import open_database, sqlite_url

from .conftest import Server, start_server, stop_server

pytestmark = pytest.mark.model
LOCAL = "smollm2-135m-instruct"
SECRET_PROMPT = "Le dossier médical de Jeanne Dupont, née le 3 mars 1961"


def relay_config(embedded: Server, **audit: object) -> dict[str, object]:
    def to(name: str, jurisdiction: str) -> dict[str, object]:
        return {"name": name, "engine": "openai", "base_url": embedded.v1, "upstream_model": LOCAL,
                "api_key_env": "UPSTREAM_KEY", "jurisdiction": jurisdiction}  # fmt: skip

    return {
        "models": [{"id": "m", "deployments": [to("onprem", "on-prem")]},
                   {"id": "abroad", "deployments": [to("us", "US")]}],
        "audit": {"checkpoint_every": 4, **audit},
    }  # fmt: skip


@pytest.fixture(scope="module")
def audited(embedded: Server, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    server = start_server(tmp_path_factory.mktemp("audited"), relay_config(embedded),
                          env={"UPSTREAM_KEY": embedded.key})  # fmt: skip
    yield server
    stop_server(server)


def add_key(server: Server, role: str) -> str:
    data_dir = server.log.parent / "data"
    return KeyStore(open_database(sqlite_url(data_dir)), load_pepper(data_dir)).create(
        name=role, role=role
    )[1]


def leaves(server: Server, key: str | None = None, **query: str) -> list[dict[str, object]]:
    headers = {"Authorization": f"Bearer {key or server.key}"}
    response = httpx.get(
        server.url + "/admin/v1/audit/leaves", params={"limit": "1000", **query}, headers=headers
    )
    assert response.status_code == 200, response.text
    return response.json()["data"]  # type: ignore[no-any-return]


def chat(server: Server, model: str = "m", stream: bool = False, **headers: str) -> httpx.Response:
    body = {
        "model": model,
        "messages": [{"role": "user", "content": SECRET_PROMPT}],
        "max_tokens": 3,
        "stream": stream,
    }
    with server.client() as client:
        return client.post("/v1/chat/completions", json=body, headers=headers)


def leaf_for(server: Server, request_id: str) -> dict[str, object]:
    found = [item for item in leaves(server) if item["leaf"].get("request_id") == request_id]  # type: ignore[attr-defined]
    assert len(found) == 1, request_id
    return found[0]


def test_every_call_has_a_leaf_without_its_content(audited: Server) -> None:
    for stream in (False, True):
        response = chat(audited, stream=stream)
        assert response.status_code == 200
        leaf = leaf_for(audited, response.headers["x-request-id"])[
            "leaf"
        ]  # present when the answer is
        assert leaf["endpoint"] == "chat" and leaf["model"] == "m" and leaf["outcome"] == "ok"  # type: ignore[index]
        assert leaf["deployment"] == "onprem" and leaf["jurisdiction"] == "on-prem"  # type: ignore[index]
        assert leaf["tokens"]["prompt"] > 0 and leaf["principal"].startswith("key:")  # type: ignore[index]
        assert "Jeanne" not in json.dumps(leaf) and "Dupont" not in json.dumps(leaf)


def test_refused_calls_are_recorded_too(audited: Server) -> None:
    denied = chat(audited, model="abroad", **{"X-Souverain-Classification": "confidential"})
    assert denied.status_code == 403
    leaf = leaves(audited, outcome="permission_error")[-1]["leaf"]
    assert leaf["status"] == 403 and leaf["classification"] == "confidential"  # type: ignore[index]
    assert leaf["policy_denied"] == {"us": "confidential.jurisdictions"}  # type: ignore[index]
    assert chat(audited, model="nope").status_code == 404
    assert leaves(audited, outcome="not_found_error")


def test_proofs_check_out_against_the_signed_checkpoint(audited: Server) -> None:
    for _ in range(5):
        chat(audited)
    headers = {"Authorization": f"Bearer {audited.key}"}
    with httpx.Client(base_url=audited.url, headers=headers) as client:
        first = client.get("/admin/v1/audit/checkpoint").json()
        verifier = Verifier.from_vkey(first["verifier_key"])
        old = verifier.verify(first["note"].encode())
        for _ in range(4):
            chat(audited)
        new = verifier.verify(client.get("/admin/v1/audit/checkpoint").json()["note"].encode())
        assert new.size > old.size
        items = leaves(audited)
        for index in (0, old.size - 1, new.size - 1):
            proof = client.get(
                "/admin/v1/audit/proof/inclusion", params={"index": index, "size": new.size}
            ).json()
            hashes = [base64.b64decode(h) for h in proof["proof"]]
            leaf_hash = base64.b64decode(items[index]["leaf_hash"])  # type: ignore[arg-type]
            assert verify_inclusion(leaf_hash, index, new.size, hashes, new.root)
        proof = client.get(
            "/admin/v1/audit/proof/consistency", params={"old_size": old.size, "new_size": new.size}
        ).json()
        hashes = [base64.b64decode(h) for h in proof["proof"]]
        assert verify_consistency(old.size, new.size, old.root, new.root, hashes)
        assert client.get("/admin/v1/audit/verify").json()["ok"] is True
        assert (
            client.get(
                "/admin/v1/audit/proof/inclusion", params={"index": "x", "size": 1}
            ).status_code
            == 400
        )


def test_roles(audited: Server) -> None:
    auditor, user = add_key(audited, "auditor"), add_key(audited, "user")
    assert leaves(audited, key=auditor)  # the auditor reads the log...
    cut = httpx.post(audited.url + "/admin/v1/providers/cut", json={"deployment": "us"},
                     headers={"Authorization": f"Bearer {auditor}"})  # fmt: skip
    assert cut.status_code == 403  # ...and changes nothing
    for path in ("/admin/v1/audit/leaves", "/admin/v1/audit/checkpoint", "/admin/v1/audit/verify"):
        assert (
            httpx.get(audited.url + path, headers={"Authorization": f"Bearer {user}"}).status_code
            == 403
        )


def test_configuration_changes_are_recorded(embedded: Server, tmp_path: Path) -> None:
    env = {"UPSTREAM_KEY": embedded.key}
    server = start_server(tmp_path / "cfg", relay_config(embedded), env=env)
    stop_server(server)
    server = start_server(tmp_path / "cfg", relay_config(embedded), env=env)  # same config
    configs = [
        item["leaf"]
        for item in leaves(server, kind="admin")
        if item["leaf"]["action"] == "configuration"
    ]  # type: ignore[index]
    assert len(configs) == 1
    stop_server(server)
    changed = {**relay_config(embedded), "policy": {"rules": {"public": {}, "internal": {}, "confidential": {},
                                                              "restricted": {"jurisdictions": ["on-prem"]}}}}  # fmt: skip
    server = start_server(tmp_path / "cfg", changed, env=env)
    try:
        configs = [
            item["leaf"]
            for item in leaves(server, kind="admin")
            if item["leaf"]["action"] == "configuration"
        ]  # type: ignore[index]
        assert (
            len(configs) == 2 and configs[0]["target"]["policy"] != configs[1]["target"]["policy"]
        )  # type: ignore[index]
    finally:
        stop_server(server)


def test_admin_actions_are_recorded(audited: Server) -> None:
    with audited.client() as client:
        client.post("/admin/v1/providers/cut", json={"jurisdiction": "US"})
        client.post("/admin/v1/providers/restore", json={"jurisdiction": "US"})
    actions = [item["leaf"]["action"] for item in leaves(audited, kind="admin")]  # type: ignore[index]
    assert actions[-2:] == ["provider.cut", "provider.restore"]


async def test_kill_9_under_load_loses_no_acknowledged_leaf(
    embedded: Server, tmp_path: Path
) -> None:
    server = start_server(
        tmp_path / "durable", relay_config(embedded), env={"UPSTREAM_KEY": embedded.key}
    )
    acknowledged: list[str] = []
    enough = asyncio.Event()
    body = {"model": "m", "messages": [{"role": "user", "content": "Hi"}], "max_tokens": 1}

    async def client_loop(client: httpx.AsyncClient) -> None:
        for _ in range(200):
            try:
                response = await client.post("/v1/chat/completions", json=body)
            except httpx.HTTPError:
                return
            if response.status_code == 200:
                acknowledged.append(response.headers["x-request-id"])
                if len(acknowledged) >= 25:
                    enough.set()

    async def killer() -> None:
        await enough.wait()
        server.process.send_signal(signal.SIGKILL)

    headers = {"Authorization": f"Bearer {server.key}"}
    async with httpx.AsyncClient(base_url=server.url, headers=headers, timeout=30) as client:
        await asyncio.gather(*(client_loop(client) for _ in range(6)), killer())
    server.process.wait()
    restarted = start_server(
        tmp_path / "durable", relay_config(embedded), env={"UPSTREAM_KEY": embedded.key}
    )
    try:
        recorded = {item["leaf"].get("request_id") for item in leaves(restarted)}  # type: ignore[attr-defined]
        assert set(acknowledged) <= recorded
        with restarted.client() as client:
            assert client.get("/admin/v1/audit/verify").json()["ok"] is True
    finally:
        stop_server(restarted)


def test_retained_bodies_are_sealed_and_erasable(embedded: Server, tmp_path: Path) -> None:
    from sqlalchemy import func, select, text

    from souverain.audit.payloads import PayloadVault, load_or_create_master_key
    from souverain.store.tables import audit_payloads

    config = relay_config(embedded, payloads={"*": {"store": True, "retention_days": 365}})
    server = start_server(tmp_path / "kept", config, env={"UPSTREAM_KEY": embedded.key})
    data_dir = tmp_path / "kept" / "data"
    database = open_database(sqlite_url(data_dir))
    vault = PayloadVault(database, load_or_create_master_key(data_dir / "audit-master.key"))
    try:
        with server.client() as client:
            body = {
                "model": "m",
                "messages": [{"role": "user", "content": SECRET_PROMPT}],
                "max_tokens": 3,
                "user": "alice",
            }
            response = client.post("/v1/chat/completions", json=body)
            answer = response.json()["choices"][0]["message"]["content"]
            leaf = leaf_for(server, response.headers["x-request-id"])["leaf"]
            payload = leaf["payload"]  # type: ignore[index]
            assert payload["subject"] == vault.pseudonym(
                "default", "alice"
            ) and "alice" not in json.dumps(leaf)
            with database.connect() as conn:
                sealed = conn.execute(select(audit_payloads.c.ciphertext)).scalar_one()
            assert SECRET_PROMPT.encode() not in sealed  # encrypted at rest
            import hashlib

            assert hashlib.sha256(sealed).hexdigest() == payload["sha256"]
            opened = json.loads(vault.open("default", "alice", sealed))
            assert opened["request"]["messages"][0]["content"] == SECRET_PROMPT
            assert opened["response"] == answer

            erased = client.post("/admin/v1/audit/erase", json={"subject": "alice"}).json()
            assert erased["payloads_erased"] == 1 and erased["kind"] == "tombstone"
            with database.connect() as conn:
                assert (
                    conn.execute(select(func.count()).select_from(audit_payloads)).scalar_one() == 0
                )
            with pytest.raises(KeyError):
                vault.open(
                    "default", "alice", sealed
                )  # the key is gone: any copy of the ciphertext is noise
            assert leaves(server, kind="tombstone")[-1]["leaf"]["subject"] == payload["subject"]  # type: ignore[index]
            assert client.get("/admin/v1/audit/verify").json()["ok"] is True

            client.post("/v1/chat/completions", json={**body, "user": "bob"})
            with database.begin() as conn:  # age bob's body past the tenant's retention
                conn.execute(text("UPDATE audit_payloads SET at = at - 400 * 86400"))
            assert vault.purge("default", 365) == 1
    finally:
        stop_server(server)


def test_retention_below_the_floor_is_refused(tmp_path: Path) -> None:
    from souverain.config import load_settings
    from souverain.errors import ConfigError

    path = tmp_path / "c.yaml"
    path.write_text("audit:\n  payloads:\n    ministry: {store: true, retention_days: 30}\n")
    with pytest.raises(ConfigError, match=r"payloads\.ministry\.retention_days"):
        load_settings(path, environ={})
