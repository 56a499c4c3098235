"""OCR batches (`/v1/ocr`) through the official SDKs against a real gateway: each line is
the OCR route's own call as the submitter (model names and scopes, endpoint scopes,
the document rules of `/v1/ocr`, an audit leaf per line), answered by the local OCR
engine. Documents are generated (tests/test_ocr_documents.py) and kept to one short
line of text, so that the one OCR'd image takes about a second; the PDF has a text
layer and is not OCR'd at all."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from typing import Any

import httpx
import openai
import pytest
from mistralai.client import Mistral
from mistralai.client.errors import SDKError

from souverain.batch.ocr_lines import OcrLines

from .conftest import ADMIN_KEY, Server, start_server, stop_server
from .recording_upstream import RecordingUpstream
from .test_batches import finished, gateway_config, key_in, lines_of, oai, upload, wait_for
from .test_ocr_documents import TextPage, data_url, png, text_image, text_pdf

pytestmark = pytest.mark.model  # the real OCR engine (RapidOCR models in its wheel)
OCR = "/v1/ocr"


@pytest.fixture(scope="module")
def gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    upstream = RecordingUpstream().start()  # a named fake: the chat model no line calls
    server = start_server(tmp_path_factory.mktemp("batch-ocr"), gateway_config(upstream))
    yield server
    stop_server(server)
    upstream.stop()


def image_document(words: str) -> dict[str, str]:
    return {"type": "image_url", "image_url": data_url(png(text_image([words])), "image/png")}


def pdf_document(text: str) -> dict[str, str]:
    data = text_pdf([TextPage([[text]])])
    return {"type": "document_url", "document_url": data_url(data, "application/pdf")}


def mistral_line(custom_id: str, document: Any, **body: Any) -> str:
    return json.dumps({"custom_id": custom_id, "body": {"document": document, **body}})


def mistral_job(client: Mistral, lines: list[str], model: str = "mistral-ocr-latest") -> Any:
    uploaded = client.files.upload(
        file={"file_name": "ocr.jsonl", "content": "\n".join(lines).encode()}, purpose="batch"
    )
    return client.batch.jobs.create(input_files=[uploaded.id], model=model, endpoint=OCR)


def test_an_ocr_batch_job_through_the_mistral_sdk(gateway: Server) -> None:
    client = Mistral(api_key=ADMIN_KEY, server_url=gateway.url)
    lines = [
        mistral_line("scan", image_document("Rechnung Nummer 4711 bezahlt")),
        mistral_line("pdf", pdf_document("Facture payée le 3 mars.")),
        # What `/v1/ocr` refuses is refused per line, in the route's words:
        mistral_line("fetch", {"type": "document_url", "document_url": "http://10.0.0.1/a.pdf"}),
        mistral_line("file", {"type": "file", "file_id": "file-abc"}),
        mistral_line("words", pdf_document("x"), confidence_scores_granularity="word"),
        json.dumps({"custom_id": "nodoc", "body": {"pages": [0]}}),
    ]
    job = mistral_job(client, lines)

    def done() -> Any:
        current = client.batch.jobs.get(job_id=job.id)
        return current if current.status not in ("QUEUED", "RUNNING") else None

    job = wait_for(done, timeout=90)
    assert job.status == "SUCCESS", job
    assert (job.total_requests, job.succeeded_requests, job.failed_requests) == (6, 2, 4)
    assert job.output_file and job.error_file
    output = [json.loads(x) for x in client.files.download(file_id=job.output_file).read().split(b"\n") if x]  # fmt: skip
    assert [line["custom_id"] for line in output] == ["scan", "pdf"]
    scan, pdf = (line["response"]["body"] for line in output)
    assert scan["model"] == "souverain-ocr" and scan["usage_info"]["pages_processed"] == 1
    for word in ("Rechnung", "4711", "bezahlt"):
        assert word in scan["pages"][0]["markdown"], scan["pages"][0]["markdown"]
    assert pdf["pages"][0]["markdown"] == "Facture payée le 3 mars."
    errors = [json.loads(x) for x in client.files.download(file_id=job.error_file).read().split(b"\n") if x]  # fmt: skip
    refused = {e["custom_id"]: e["response"] for e in errors}
    assert {k: v["status_code"] for k, v in refused.items()} == {
        "fetch": 400, "file": 400, "words": 400, "nodoc": 400}  # fmt: skip
    assert refused["fetch"]["body"]["error"]["code"] == "url_fetch_disabled"
    assert refused["file"]["body"]["error"]["param"] == "document.file_id"
    assert refused["words"]["body"]["error"]["param"] == "confidence_scores_granularity"
    assert refused["nodoc"]["body"]["error"]["param"] == "document"
    # One audit leaf per line that reached the OCR call, under the request id of its line.
    leaves = httpx.get(gateway.url + "/admin/v1/audit/leaves", timeout=30,
                       params={"model": "souverain-ocr", "limit": "1000"},
                       headers={"Authorization": f"Bearer {ADMIN_KEY}"}).json()["data"]  # fmt: skip
    by_request = {leaf["leaf"]["request_id"]: leaf["leaf"] for leaf in leaves}
    for line in output:
        leaf = by_request[line["response"]["request_id"]]
        assert (leaf["endpoint"], leaf["outcome"], leaf["deployment"]) == (
            "batch", "ok", "souverain-ocr@local")  # fmt: skip
    assert by_request[refused["words"]["request_id"]]["status"] == 400


def test_an_ocr_batch_through_the_openai_sdk(gateway: Server) -> None:
    client = oai(gateway)
    good = {"custom_id": "p", "method": "POST", "url": OCR,
            "body": {"model": "souverain-ocr", "document": pdf_document("Bonjour.")}}  # fmt: skip
    batch = client.batches.create(input_file_id=upload(client, [good]), endpoint=OCR,  # type: ignore[arg-type]
                                  completion_window="24h",
                                  output_expires_after={"anchor": "created_at", "seconds": 7200})  # fmt: skip
    batch = finished(client, batch.id, timeout=60)
    assert batch.status == "completed" and batch.endpoint == OCR, batch
    (line,) = lines_of(client, batch.output_file_id)
    assert line["response"]["body"]["pages"][0]["markdown"] == "Bonjour."
    # output_expires_after: the output file expires that long after it was made.
    assert batch.output_file_id is not None
    output = client.files.retrieve(batch.output_file_id)
    assert output.expires_at is not None  # from the file's creation, within the second
    assert abs(output.expires_at - output.created_at - 7200) <= 1, output
    # A line's model must be the OCR model: a chat model fails validation, naming the line.
    chat_model = {**good, "custom_id": "c", "body": {**good["body"], "model": "cloud"}}
    batch = client.batches.create(input_file_id=upload(client, [good, chat_model]),  # type: ignore[arg-type]
                                  endpoint=OCR, completion_window="24h")  # fmt: skip
    batch = finished(client, batch.id)
    assert batch.status == "failed" and batch.errors and batch.errors.data
    assert [(e.line, e.code) for e in batch.errors.data] == [(2, "model_not_found")]


def test_ocr_batches_are_refused_clearly(gateway: Server) -> None:
    admin = Mistral(api_key=ADMIN_KEY, server_url=gateway.url)
    http = gateway.client()
    file_id = upload(oai(gateway), [{"custom_id": "a", "method": "POST", "url": OCR, "body": {}}])
    for expiry in ({"anchor": "created_at", "seconds": 60}, {"anchor": "now", "seconds": 7200},
                   {"anchor": "created_at", "seconds": 7200, "x": 1}, "1h"):  # fmt: skip
        answer = http.post("/v1/batches", json={"input_file_id": file_id, "endpoint": OCR,
                           "completion_window": "24h", "output_expires_after": expiry})  # fmt: skip
        assert answer.status_code == 400, (expiry, answer.text)
        assert answer.json()["error"]["param"].startswith("output_expires_after"), answer.text
    with pytest.raises(SDKError) as caught:  # not a name of the OCR model
        mistral_job(admin, [mistral_line("a", pdf_document("x"))], model="cloud")
    assert caught.value.status_code == 404
    # A key scoped to other models does not see the OCR model ...
    scoped = Mistral(api_key=key_in(gateway, "ocr-scoped", models=["cloud"]),
                     server_url=gateway.url)  # fmt: skip
    with pytest.raises(SDKError) as caught:
        mistral_job(scoped, [mistral_line("a", pdf_document("x"))])
    assert caught.value.status_code == 404
    assert json.loads(caught.value.body)["error"]["code"] == "model_not_found"
    # ... and a key without the `ocr` endpoint scope may not batch OCR calls.
    chat_only = oai(gateway, key_in(gateway, "chat-only", endpoints=["chat", "batch", "files"]))
    file_id = upload(chat_only, [{"custom_id": "a", "method": "POST", "url": OCR, "body": {}}])
    with pytest.raises(openai.PermissionDeniedError):
        chat_only.batches.create(input_file_id=file_id, endpoint=OCR, completion_window="24h")  # type: ignore[arg-type]


class Engine:
    """Stands for the OCR engine: only its reported depth is read by the OCR lines' gate."""

    def __init__(self) -> None:
        self.depth = 0

    def queue_depth(self) -> int:
        return self.depth


class Calls:
    def __init__(self) -> None:
        self.service = Engine()


def test_ocr_lines_let_interactive_ocr_go_first() -> None:
    calls = Calls()
    gate = OcrLines(calls, share=1)  # type: ignore[arg-type]
    order: list[str] = []

    async def line(name: str, hold: float) -> None:
        async with gate.admitted():
            calls.service.depth += 1  # the engine counts the line while it runs
            order.append(name)
            await asyncio.sleep(hold)
            calls.service.depth -= 1

    async def run() -> None:
        calls.service.depth = 1  # an interactive OCR call in flight: batch lines wait
        first = asyncio.create_task(line("a", 0.1))
        second = asyncio.create_task(line("b", 0.0))
        await asyncio.sleep(0.2)
        assert order == []
        calls.service.depth = 0  # it ended: one line at a time (share 1)
        await asyncio.sleep(0.05)
        assert order == ["a"] and gate.interactive() == 0
        await asyncio.gather(first, second)
        assert order == ["a", "b"]

    asyncio.run(run())
