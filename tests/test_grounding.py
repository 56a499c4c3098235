"""Chat grounded on document libraries: the sources go into the prompt, the answer
carries citations, and nobody is grounded on a library they may not read.

Libraries use the embedded e5 model; the chat model is a recording upstream (a named
fake, tests/recording_upstream.py), so the test can read the prompt the model received.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import httpx
import openai
import pytest
from mistralai.client import Mistral

from .conftest import ADMIN_KEY, Server, start_server, stop_server
from .recording_upstream import RecordingUpstream

pytestmark = pytest.mark.model
POLICY_DOC = (
    "# Télétravail\n\nLes agents peuvent télétravailler trois jours par semaine au plus.\n\n"
    "La demande se fait auprès du chef de service, qui répond sous quinze jours.\n"
).encode()
EXPENSES_DOC = (
    b"# Reisekosten\n\nDie Erstattung der Reisekosten erfolgt binnen 30 Tagen.\n\n"
    b"Belege werden elektronisch eingereicht.\n"
)


@pytest.fixture(scope="module")
def server(
    upstream: RecordingUpstream, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Server]:
    cloud = upstream.deployment()
    local_embeddings = {"engine": "local", "name": "embedded-e5"}
    config = {
        "models": [
            {"id": "cloud", "deployments": [cloud]},
            {
                "id": "multilingual-e5-small",
                "type": "embeddings",
                "deployments": [local_embeddings],
            },
        ],
        "dlp": {"enabled": False},
    }
    server = start_server(tmp_path_factory.mktemp("grounding"), config)
    yield server
    stop_server(server)


def _wait(client: Mistral, library_id: str, document_id: str) -> None:
    deadline = time.monotonic() + 120
    while True:
        status = client.beta.libraries.documents.status(
            library_id=library_id, document_id=document_id
        )
        if status.process_status not in ("todo", "in_progress"):
            assert status.process_status == "done", status
            return
        assert time.monotonic() < deadline
        time.sleep(0.2)


@pytest.fixture(scope="module")
def library(server: Server) -> dict[str, Any]:
    client = Mistral(api_key=server.key, server_url=server.url)
    library = client.beta.libraries.create(name="RH")
    documents = {}
    for name, data in (("teletravail.md", POLICY_DOC), ("reisekosten.md", EXPENSES_DOC)):
        uploaded = client.beta.libraries.documents.upload(
            library_id=library.id, file={"file_name": name, "content": data}
        )
        _wait(client, library.id, uploaded.id)
        documents[name] = uploaded.id
    return {"id": library.id, "documents": documents}


def _last_prompt(upstream: RecordingUpstream) -> list[dict[str, Any]]:
    messages: list[dict[str, Any]] = upstream.received[-1]["messages"]
    return messages


def test_plain_chat_grounded_with_citations(
    server: Server, upstream: RecordingUpstream, library: dict[str, Any]
) -> None:
    client = openai.OpenAI(base_url=server.v1, api_key=server.key, max_retries=0)
    answer = client.chat.completions.create(
        model="cloud",
        messages=[{"role": "user", "content": "Combien de jours de télétravail par semaine ?"}],
        extra_body={"library_ids": [library["id"]]},
    )
    citations = answer.model_extra["citations"]  # type: ignore[index]
    assert citations[0]["document_id"] == library["documents"]["teletravail.md"]
    assert citations[0]["document_name"] == "teletravail.md"
    assert citations[0]["library_id"] == library["id"] and citations[0]["index"] == 1
    sent = _last_prompt(upstream)
    assert sent[0]["role"] == "system" and "[1] teletravail.md" in sent[0]["content"]
    assert "trois jours par semaine" in sent[0]["content"]
    assert "library_ids" not in upstream.received[-1]  # the extension never leaves


def test_document_library_tool_streamed(
    server: Server, upstream: RecordingUpstream, library: dict[str, Any]
) -> None:
    body = {
        "model": "cloud",
        "stream": True,
        "messages": [{"role": "user", "content": "Wann werden Reisekosten erstattet?"}],
        "tools": [{"type": "document_library", "library_ids": [library["id"]]}],
    }
    headers = {"Authorization": f"Bearer {server.key}"}
    with httpx.stream("POST", server.v1 + "/chat/completions", json=body, headers=headers) as r:
        assert r.status_code == 200
        frames = [line[6:] for line in r.iter_lines() if line.startswith("data: {")]
    last = json.loads(frames[-1])
    assert last["choices"][0]["finish_reason"] == "stop"
    assert last["citations"][0]["document_name"] == "reisekosten.md"
    received = upstream.received[-1]
    assert "tools" not in received  # the built-in tool is run here, not sent
    assert "binnen 30 Tagen" in received["messages"][0]["content"]


def test_no_grounding_on_a_library_one_may_not_read(
    server: Server, upstream: RecordingUpstream, library: dict[str, Any]
) -> None:
    with httpx.Client(base_url=server.url, headers={"Authorization": f"Bearer {ADMIN_KEY}"}) as h:
        h.post("/admin/v1/tenants", json={"name": "other"})
        outsider = h.post("/admin/v1/keys", json={"name": "outsider", "tenant": "other"}).json()
    before = len(upstream.received)
    response = httpx.post(
        server.v1 + "/chat/completions",
        headers={"Authorization": f"Bearer {outsider['key']}"},
        json={
            "model": "cloud",
            "library_ids": [library["id"]],
            "messages": [{"role": "user", "content": "télétravail ?"}],
        },
    )
    assert response.status_code == 404, response.text
    assert len(upstream.received) == before  # nothing was sent anywhere
