"""`POST /v1/ocr` over real HTTP, through the official mistralai SDK, unchanged but for the URL.

Documents are generated (tests/test_ocr_documents.py) and kept to a few lines, so that
each OCR'd page takes about a second on two cores. Pages with a text layer are not
OCR'd at all, so most option checks use those.
"""

from __future__ import annotations

import base64
import io
import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from mistralai.client import Mistral
from mistralai.client.errors import SDKError
from PIL import Image

from .conftest import Server, start_server, stop_server
from .test_ocr_documents import (
    FR_DE_EN,
    INVOICE,
    TextPage,
    data_url,
    figure_page,
    png,
    scanned_pdf,
    text_image,
    text_pdf,
)

pytestmark = pytest.mark.model
MAX_DOCUMENT_BYTES = 300_000


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """The default models (SmolLM2 annotates) and a small document size limit."""
    server = start_server(
        tmp_path_factory.mktemp("ocr"), config={"ocr": {"max_document_bytes": MAX_DOCUMENT_BYTES}}
    )
    yield server
    stop_server(server)


@pytest.fixture(scope="module")
def client(server: Server) -> Mistral:
    return Mistral(api_key=server.key, server_url=server.url)


def pdf_document(data: bytes) -> dict[str, str]:
    return {"type": "document_url", "document_url": data_url(data, "application/pdf")}


def error_of(caught: pytest.ExceptionInfo[SDKError]) -> dict[str, Any]:
    body: dict[str, Any] = json.loads(caught.value.body)["error"]
    return body


# ---- OCR ------------------------------------------------------------------------------


def test_png_in_three_languages(client: Mistral) -> None:
    image = text_image(FR_DE_EN)
    result = client.ocr.process(
        model="mistral-ocr-latest",
        document={"type": "image_url", "image_url": data_url(png(image), "image/png")},
    )
    assert result.model == "souverain-ocr"
    assert result.usage_info.pages_processed == 1
    page = result.pages[0]
    assert page.index == 0
    assert (page.dimensions.width, page.dimensions.height) == image.size
    for line in FR_DE_EN:
        for word in line.split():
            assert word in page.markdown, (word, page.markdown)


def test_scanned_pdf_is_ocrd_page_by_page(client: Mistral) -> None:
    pages = [text_image(["Erste Seite: Rechnung"]), text_image(["Deuxième page : reçu"])]
    result = client.ocr.process(
        model="souverain-ocr", document=pdf_document(scanned_pdf(pages)), pages=[1]
    )
    assert [page.index for page in result.pages] == [1]
    markdown = result.pages[0].markdown
    assert "Deuxième" in markdown and "reçu" in markdown
    assert "Rechnung" not in markdown
    assert result.pages[0].dimensions.dpi == 150


def test_text_pdf_uses_the_text_layer(client: Mistral) -> None:
    data = text_pdf([INVOICE, TextPage([["Page two."]]), TextPage([["Page three."]])])
    result = client.ocr.process(
        model="mistral-ocr-2505", document=pdf_document(data), confidence_scores_granularity="page"
    )
    assert [page.index for page in result.pages] == [0, 1, 2]
    assert result.usage_info.doc_size_bytes == len(data)
    first = result.pages[0]
    assert first.markdown == (
        "# Facture F-2026-118\n\n"
        "Fournisseur : Atelier Durand SARL, 12 rue des Lilas, Lyon\nClient : Müller GmbH\n\n"
        "Montant total : 1240,50 EUR\nÉchéance : 15 mars 2026"
    )
    assert first.dimensions.dpi == 150 and first.dimensions.width == round(595 * 150 / 72)
    assert [block.type for block in first.blocks or []] == ["title", "text", "text"]
    assert first.confidence_scores.average_page_confidence_score == 1.0


def test_page_selection(client: Mistral) -> None:
    data = text_pdf([TextPage([[f"Page number {n}."]]) for n in range(4)])
    as_list = client.ocr.process(
        model="souverain-ocr", document=pdf_document(data), pages=[3, 0, 3]
    )
    assert [(p.index, p.markdown) for p in as_list.pages] == [
        (0, "Page number 0."),
        (3, "Page number 3."),
    ]
    as_text = client.ocr.process(model="souverain-ocr", document=pdf_document(data), pages="1-2")
    assert [page.index for page in as_text.pages] == [1, 2]
    with pytest.raises(SDKError) as caught:
        client.ocr.process(model="souverain-ocr", document=pdf_document(data), pages=[2, 7])
    assert caught.value.status_code == 400
    assert "page 7 does not exist" in error_of(caught)["message"]
    assert error_of(caught)["param"] == "pages"


def test_images_of_a_pdf(client: Mistral) -> None:
    data = text_pdf([figure_page()])
    result = client.ocr.process(
        model="souverain-ocr", document=pdf_document(data), include_image_base64=True
    )
    page = result.pages[0]
    assert page.markdown == (
        "Above the figure.\n\n![img-0.jpeg](img-0.jpeg)\n\nBelow the figure, a caption."
    )
    [image] = page.images
    assert image.id == "img-0.jpeg"
    scale = 150 / 72  # the figure: 200x100 points at (72, 650) from the bottom-left
    assert abs(image.top_left_x - 72 * scale) <= 2
    assert abs(image.top_left_y - (842 - 750) * scale) <= 2
    assert abs(image.bottom_right_x - 272 * scale) <= 2
    prefix = "data:image/jpeg;base64,"
    assert image.image_base64 and image.image_base64.startswith(prefix)
    decoded = Image.open(io.BytesIO(base64.b64decode(image.image_base64[len(prefix) :])))
    assert abs(decoded.width - 200 * scale) <= 2 and abs(decoded.height - 100 * scale) <= 2
    assert [b.type for b in page.blocks or []] == ["text", "image", "text"]

    plain = client.ocr.process(model="souverain-ocr", document=pdf_document(data))
    assert plain.pages[0].images[0].image_base64 is None
    none = client.ocr.process(model="souverain-ocr", document=pdf_document(data), image_limit=0)
    assert none.pages[0].images == [] and "img-0" not in none.pages[0].markdown
    small = client.ocr.process(
        model="souverain-ocr", document=pdf_document(data), image_min_size=500
    )
    assert small.pages[0].images == []


def test_curl_style_request_without_chunk_type(server: Server) -> None:
    """Mistral's own curl examples send `{"document_url": ...}` with no `type`."""
    data = text_pdf([TextPage([["Bonjour, Welt."]])])
    response = server.client().post(
        "/v1/ocr",
        json={
            "model": "mistral-ocr-latest",
            "document": {"document_url": data_url(data, "application/pdf")},
        },
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["pages"][0]["markdown"] == "Bonjour, Welt."
    assert "blocks" not in body["pages"][0]  # only when include_blocks is asked for
    assert response.headers["x-souverain-jurisdiction"] == "on-prem"


# ---- refusals -------------------------------------------------------------------------


def test_http_urls_are_not_fetched_by_default(client: Mistral) -> None:
    with pytest.raises(SDKError) as caught:
        client.ocr.process(
            model="souverain-ocr",
            document={"type": "document_url", "document_url": "https://example.com/a.pdf"},
        )
    assert caught.value.status_code == 400
    error = error_of(caught)
    assert error["code"] == "url_fetch_disabled"
    assert "data: URL" in error["message"]


@pytest.mark.parametrize(
    ("document", "words"),
    [
        (b"%PDF-1.4\n1 0 obj garbage", "PDF cannot be read"),
        (png(text_image(["x"]))[:120], "image is corrupt"),
        (b"\x89PNG\r\n\x1a\n" + b"\x00" * 64, "image cannot be read"),
        (b"Just some plain text, not a document.", "unsupported document type"),
    ],
)
def test_corrupt_or_unsupported_documents(client: Mistral, document: bytes, words: str) -> None:
    with pytest.raises(SDKError) as caught:
        client.ocr.process(model="souverain-ocr", document=pdf_document(document))
    assert caught.value.status_code == 400
    assert words in error_of(caught)["message"]


def test_bad_data_url(client: Mistral) -> None:
    with pytest.raises(SDKError) as caught:
        client.ocr.process(
            model="souverain-ocr",
            document={"type": "document_url", "document_url": "data:application/pdf;base64,%%%"},
        )
    assert caught.value.status_code == 400
    assert "not valid base64" in error_of(caught)["message"]


def test_oversized_document(client: Mistral) -> None:
    data = text_pdf([TextPage([["x"]])]) + b"%" + b"0" * MAX_DOCUMENT_BYTES
    with pytest.raises(SDKError) as caught:
        client.ocr.process(model="souverain-ocr", document=pdf_document(data))
    assert caught.value.status_code == 413
    assert "ocr.max_document_bytes" in error_of(caught)["message"]


def test_unauthenticated(server: Server) -> None:
    with pytest.raises(SDKError) as caught:
        Mistral(api_key="sk-sv-nope", server_url=server.url).ocr.process(
            model="souverain-ocr", document=pdf_document(text_pdf([TextPage([["x"]])]))
        )
    assert caught.value.status_code == 401
    assert httpx.post(server.url + "/v1/ocr", json={}).status_code == 401


def test_unknown_model_and_unsupported_options(client: Mistral) -> None:
    document = pdf_document(text_pdf([TextPage([["x"]])]))
    with pytest.raises(SDKError) as caught:
        client.ocr.process(model="tesseract-9", document=document)
    assert caught.value.status_code == 404
    assert error_of(caught)["code"] == "model_not_found"
    schema = {"type": "object", "properties": {"kind": {"type": "string"}}}
    with pytest.raises(SDKError) as caught:
        client.ocr.process(
            model="souverain-ocr",
            document=document,
            bbox_annotation_format={
                "type": "json_schema",
                "json_schema": {"name": "i", "schema": schema},
            },
        )
    assert caught.value.status_code == 400
    assert error_of(caught)["param"] == "bbox_annotation_format"
    with pytest.raises(SDKError) as caught:
        client.ocr.process(model="souverain-ocr", document={"type": "file", "file_id": "file-123"})
    assert caught.value.status_code == 400
    assert "data: URL" in error_of(caught)["message"]


# ---- document annotation --------------------------------------------------------------


def test_document_annotation_follows_the_schema(client: Mistral) -> None:
    schema = {
        "type": "object",
        "properties": {
            "invoice_number": {"type": "string", "maxLength": 20},
            "total_eur": {"type": "number"},
            "customer": {"type": "string", "maxLength": 40},
        },
        "required": ["invoice_number", "total_eur", "customer"],
        "additionalProperties": False,
    }
    result = client.ocr.process(
        model="mistral-ocr-latest",
        document=pdf_document(text_pdf([INVOICE])),
        document_annotation_format={
            "type": "json_schema",
            "json_schema": {"name": "invoice", "schema": schema, "strict": True},
        },
        document_annotation_prompt="Amounts are in euros.",
    )
    assert result.pages[0].markdown.startswith("# Facture F-2026-118")
    assert isinstance(result.document_annotation, str)
    data = json.loads(result.document_annotation)
    # The embedded model is tiny: the shape is guaranteed (constrained decoding), not the facts.
    assert set(data) == {"invoice_number", "total_eur", "customer"}
    assert isinstance(data["invoice_number"], str) and len(data["invoice_number"]) <= 20
    assert isinstance(data["total_eur"], int | float) and not isinstance(data["total_eur"], bool)
    assert isinstance(data["customer"], str) and len(data["customer"]) <= 40


def test_calls_are_audited(server: Server) -> None:
    """The OCR call gets its own leaf; the annotation's chat call gets one through the
    pipeline, under the same request id."""
    schema = {"type": "object", "properties": {"title": {"type": "string", "maxLength": 30}},
              "required": ["title"], "additionalProperties": False}  # fmt: skip
    body = {
        "model": "souverain-ocr",
        "document": pdf_document(text_pdf([INVOICE])),
        "document_annotation_format": {
            "type": "json_schema",
            "json_schema": {"name": "t", "schema": schema},
        },
    }
    with server.client() as http:
        response = http.post("/v1/ocr", json=body)
        assert response.status_code == 200, response.text
        refused = http.post("/v1/ocr", json={**body, "pages": [4]})
        assert refused.status_code == 400
        found = http.get("/admin/v1/audit/leaves", params={"limit": "1000"}).json()["data"]
    request_id = response.headers["x-request-id"]
    mine = [item["leaf"] for item in found if item["leaf"].get("request_id") == request_id]
    by_model = {leaf["model"]: leaf for leaf in mine}
    assert set(by_model) == {"souverain-ocr", "smollm2-135m-instruct"}
    ocr_leaf = by_model["souverain-ocr"]
    assert ocr_leaf["endpoint"] == "ocr" and ocr_leaf["status"] == 200
    assert ocr_leaf["deployment"] == "souverain-ocr@local"
    assert ocr_leaf["jurisdiction"] == "on-prem"
    assert by_model["smollm2-135m-instruct"]["endpoint"] == "ocr"
    statuses = [
        item["leaf"]["status"] for item in found if item["leaf"].get("model") == "souverain-ocr"
    ]
    assert 400 in statuses


def test_quotas_count_ocr_calls(server: Server) -> None:
    """OCR is admitted by the quota stage like any model call: a key allowed one request
    a minute gets its second OCR refused with 429, and the usage table has the first."""
    with server.client() as http:
        created = http.post("/admin/v1/keys", json={"name": "ocr-once", "limits": {"rpm": 1}})
        assert created.status_code == 201, created.text
        headers = {"Authorization": f"Bearer {created.json()['key']}"}
        body = {"model": "souverain-ocr", "document": pdf_document(text_pdf([INVOICE]))}
        assert http.post("/v1/ocr", json=body, headers=headers).status_code == 200
        refused = http.post("/v1/ocr", json=body, headers=headers)
        assert refused.status_code == 429 and refused.headers["retry-after"]
        assert refused.json()["error"]["code"] == "requests_per_minute"
        rows = http.get("/admin/v1/usage", params={"group_by": "key,endpoint"}).json()["data"]
    mine = [row for row in rows if row["key"] == created.json()["id"]]
    assert mine == [{**mine[0], "endpoint": "ocr", "requests": 2, "errors": 1, "total_tokens": 0}]
