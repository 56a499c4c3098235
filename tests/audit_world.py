"""A gateway with two tenants for the audit tests: acme and globex, each with an admin,
an auditor and a user key; model calls go to the recording upstream; retained bodies on.

Used by test_audit_tenants_http.py and test_audit_coverage_http.py.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import Engine

from souverain.store.database import open_database

from .conftest import ADMIN_KEY, Server, start_server, stop_server
from .databases import server_database
from .recording_upstream import RecordingUpstream

_names = itertools.count()


@dataclass
class AuditWorld:
    server: Server
    database: Engine
    data_dir: Path
    keys: dict[str, str] = field(default_factory=dict)  # "acme:admin" -> key

    def call(self, method: str, path: str, who: str = "owner", **kwargs: Any) -> httpx.Response:
        key = ADMIN_KEY if who == "owner" else self.keys[who]
        headers = {"Authorization": f"Bearer {key}", **kwargs.pop("headers", {})}
        return httpx.request(method, self.server.url + path, headers=headers, timeout=60, **kwargs)

    def ok(self, method: str, path: str, who: str = "owner", **kwargs: Any) -> Any:
        response = self.call(method, path, who, **kwargs)
        assert response.status_code in (200, 201, 204), (method, path, response.text)
        return response.json() if response.content else None

    def leaves(self, who: str = "owner", **query: Any) -> list[dict[str, Any]]:
        params = {"limit": "1000", **query}
        return self.ok("GET", "/admin/v1/audit/leaves", who, params=params)["data"]  # type: ignore[no-any-return]

    def user_key(self, tenant: str, role: str, **key: Any) -> str:
        name = f"{role}{next(_names)}"
        user = self.ok("POST", "/admin/v1/users",
                       json={"name": name, "role": role, "tenant": tenant})  # fmt: skip
        created = self.ok("POST", "/admin/v1/keys",
                          json={"name": name, "user_id": user["id"], "tenant": tenant, **key})  # fmt: skip
        return str(created["key"])

    def chat(self, who: str, **body: Any) -> httpx.Response:
        request = {"model": "cloud", "messages": [{"role": "user", "content": "Bonjour"}], **body}
        return self.call("POST", "/v1/chat/completions", who, json=request)

    def processed(self, library_id: str, document_id: str, who: str) -> None:
        path = f"/v1/libraries/{library_id}/documents/{document_id}/status"
        for _ in range(600):
            status = self.ok("GET", path, who)["process_status"]
            if status not in ("todo", "in_progress"):
                assert status == "done", status
                return
            time.sleep(0.1)
        raise AssertionError(f"{document_id} not processed")


@contextmanager
def audit_world(
    kind: str, tmp: Path, upstream: RecordingUpstream, **config: Any
) -> Iterator[AuditWorld]:
    with server_database(kind, tmp) as url:
        models = [
            {"id": "cloud", "deployments": [upstream.deployment()]},
            {"id": "emb", "type": "embeddings", "deployments": [upstream.deployment()]},
        ]
        settings = {
            "models": models,
            "dlp": {"enabled": False},
            "libraries": {"embedding_model": "emb", "ocr": False},
            "audit": {"checkpoint_every": 4,
                      "payloads": {"*": {"store": True, "retention_days": 365}}},
            **config,
        }  # fmt: skip
        server = start_server(tmp, settings, env={"SOUVERAIN_DATABASE_URL": url})
        database = open_database(url)
        world = AuditWorld(server, database, tmp / "data")
        try:
            for tenant in ("acme", "globex"):
                world.ok("POST", "/admin/v1/tenants", json={"name": tenant})
                for role in ("admin", "auditor", "user", "developer"):
                    world.keys[f"{tenant}:{role}"] = world.user_key(tenant, role)
            yield world
        finally:
            stop_server(server)
            database.dispose()
