"""Documents never leave in the clear: data-loss prevention on the document paths.

A library whose embeddings deployment is outside the gateway, a chat grounded on it,
and an OCR document annotation made by an outside chat model: each sends text to
`RecordingUpstream` (tests/recording_upstream.py, a fake that records every body), and
none of what it received may hold the identifiers the documents carry. The documents
themselves stay whole on the gateway (`text_content`, the OCR pages).
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator

import httpx
import pytest
from mistralai.client import Mistral

from .conftest import Server, start_server, stop_server
from .recording_upstream import RecordingUpstream
from .test_ocr import pdf_document
from .test_ocr_documents import TextPage, text_pdf

IBAN = "FR76 3000 6000 0112 3456 7890 189"
EMAIL = "jeanne.dupont@example.fr"
MEMO = (
    f"# Remboursements\n\nLes notes de frais sont versées sur le compte {IBAN}. "
    f"Questions à {EMAIL}, sous huit jours.\n"
).encode()


@pytest.fixture(scope="module")
def gateway(
    upstream: RecordingUpstream, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Server]:
    eu = upstream.deployment()
    config = {
        "models": [
            {"id": "cloud", "deployments": [{**eu, "name": "eu-chat"}]},
            {"id": "emb", "type": "embeddings", "deployments": [{**eu, "name": "eu-embed"}]},
        ],
        "libraries": {"embedding_model": "emb"},
        "ocr": {"annotation_model": "cloud"},
    }
    server = start_server(tmp_path_factory.mktemp("dlp-docs"), config)
    yield server
    stop_server(server)


def leaked(upstream: RecordingUpstream) -> list[str]:
    seen = upstream.seen()
    compact = seen.replace(" ", "")
    return [value for value in (IBAN, EMAIL) if value in seen or value.replace(" ", "") in compact]


def test_library_ingest_and_grounded_chat_send_no_identifier(
    gateway: Server, upstream: RecordingUpstream
) -> None:
    client = Mistral(api_key=gateway.key, server_url=gateway.url)
    library = client.beta.libraries.create(name="Comptabilité")
    document = client.beta.libraries.documents.upload(
        library_id=library.id, file={"file_name": "frais.md", "content": MEMO}
    )
    deadline = time.monotonic() + 60
    while (status := client.beta.libraries.documents.status(
        library_id=library.id, document_id=document.id
    )).process_status in ("todo", "in_progress"):  # fmt: skip
        assert time.monotonic() < deadline
        time.sleep(0.2)
    assert status.process_status == "done", status
    embedded = [body["input"] for body in upstream.received if "input" in body]
    assert embedded and "⟦IBAN_" in json.dumps(embedded, ensure_ascii=False)
    assert leaked(upstream) == []
    # The gateway keeps the document whole.
    kept = client.beta.libraries.documents.text_content(
        library_id=library.id, document_id=document.id
    ).text
    assert IBAN in kept and EMAIL in kept

    before = len(upstream.received)
    with httpx.Client(
        base_url=gateway.v1, headers={"Authorization": f"Bearer {gateway.key}"}
    ) as http:
        answer = http.post("/chat/completions", json={
            "model": "cloud", "library_ids": [library.id],
            "messages": [{"role": "user", "content": "Sur quel compte sont versés les frais ?"}],
        }, timeout=60)  # fmt: skip
    assert answer.status_code == 200, answer.text
    assert answer.json()["citations"][0]["document_id"] == document.id
    sent = json.dumps(upstream.received[before:], ensure_ascii=False)
    assert "Remboursements" in sent and "⟦IBAN_" in sent  # the sources went, masked
    assert leaked(upstream) == []


def test_ocr_document_annotation_sends_no_identifier(
    gateway: Server, upstream: RecordingUpstream
) -> None:
    page = TextPage(title="Relevé", paragraphs=[[f"Compte : {IBAN}", f"Contact : {EMAIL}"]])
    before = len(upstream.received)
    with httpx.Client(
        base_url=gateway.v1, headers={"Authorization": f"Bearer {gateway.key}"}
    ) as http:
        result = http.post("/ocr", json={
            "model": "mistral-ocr-latest", "document": pdf_document(text_pdf([page])),
            "document_annotation_format": {"type": "json_schema", "json_schema": {
                "name": "account", "schema": {"type": "object", "properties": {"iban": {"type": "string"}}}}},
        }, timeout=60)  # fmt: skip
    sent = upstream.received[before:]
    # The annotation's chat call, tried 3 times: the echoing fake answers with the prompt,
    # not JSON, and an answer that does not conform is retried (answer_conformance.py).
    assert len(sent) == 3 and all("messages" in body for body in sent)
    assert "Relevé" in json.dumps(sent, ensure_ascii=False)
    assert leaked(upstream) == []
    # Then a clear 422, never the pages.
    assert result.status_code == 422, result.text
    assert result.json()["error"]["code"] == "output_not_conforming"
