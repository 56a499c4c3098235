"""The OCR pieces on their own: request parsing, layout, decoding, fetching, the queue bound."""

from __future__ import annotations

import asyncio
import math
import threading
import time
from collections.abc import AsyncIterator

import pytest
from aiohttp import web
from pydantic import ValidationError

from souverain.config import OcrConfig, Settings
from souverain.errors import EngineOverloaded, InvalidRequest, PayloadTooLarge
from souverain.ocr.documents import decode_data_url, load_document, sniff
from souverain.ocr.engine import OcrEngine, content_box, models_dir
from souverain.ocr.images import ImageReader
from souverain.ocr.layout import Line, blocks_of, markdown_of
from souverain.ocr.pdf import PdfReader
from souverain.ocr.service import OcrOptions, OcrService
from souverain.protocol.ocr import Box, FileChunk, OCRRequest, parse_page_ranges

from .test_ocr_documents import TextPage, png, text_image, text_pdf

# ---- the request --------------------------------------------------------------------


def request(**fields: object) -> OCRRequest:
    document = {"type": "document_url", "document_url": "data:application/pdf;base64,JVBERi0="}
    return OCRRequest.model_validate({"model": "souverain-ocr", "document": document, **fields})


def test_page_ranges() -> None:
    assert parse_page_ranges("0,2-4, 7") == [0, 2, 3, 4, 7]
    assert request(pages="3,1-2,1").page_indexes() == [1, 2, 3]
    assert request(pages=[5, 0, 5]).page_indexes() == [0, 5]
    assert request().page_indexes() is None
    for bad in ("", "a", "4-2", "-1", "1-"):
        with pytest.raises(ValidationError):
            request(pages=bad)
    with pytest.raises(ValidationError, match="negative"):
        request(pages=[-1])
    with pytest.raises(ValidationError, match="empty"):
        request(pages=[])


def test_document_chunks() -> None:
    bare = OCRRequest.model_validate({"model": None, "document": {"file_id": "f-1"}})
    assert isinstance(bare.document, FileChunk)
    image = OCRRequest.model_validate(
        {"model": "x", "document": {"type": "image_url", "image_url": {"url": "data:,x"}}}
    )
    assert image.document.url == "data:,x"  # type: ignore[union-attr]


def test_annotation_formats() -> None:
    schema = {"type": "object", "properties": {"a": {"type": "string"}}}
    fmt = {"type": "json_schema", "json_schema": {"name": "doc", "schema": schema}}
    assert request(document_annotation_format=fmt).annotation_schema() == schema
    with pytest.raises(ValidationError, match="json_schema"):
        request(document_annotation_format={"type": "json_object"})
    with pytest.raises(ValidationError, match="needs a document_annotation_format"):
        request(document_annotation_prompt="Find the total.")


def test_annotation_model_must_exist() -> None:
    with pytest.raises(ValidationError, match=r"ocr\.annotation_model"):
        Settings.model_validate({"ocr": {"annotation_model": "gpt-9"}})
    Settings.model_validate({"ocr": {"annotation_model": "smollm2"}})


# ---- layout -------------------------------------------------------------------------


def line(text: str, left: float, top: float, right: float, bottom: float) -> Line:
    return Line(text, Box(left, top, right, bottom))


def test_ocr_lines_become_rows_paragraphs_and_titles() -> None:
    lines = [
        line("Title of the page", 10, 0, 400, 50),  # a taller row: a title
        line("second half", 260, 82, 400, 112),  # the detector split this row in two
        line("First line,", 10, 80, 250, 110),
        line("its next line.", 10, 108, 300, 138),  # boxes overlap: same paragraph
        line("A new paragraph.", 10, 170, 300, 200),  # a gap: a new block
    ]
    blocks = blocks_of(lines, reorder=True)
    assert [block.type for block in blocks] == ["title", "text", "text"]
    assert markdown_of(blocks) == (
        "## Title of the page\n\nFirst line, second half\nits next line.\n\nA new paragraph."
    )
    assert blocks[1].box.corners() == {
        "top_left_x": 10,
        "top_left_y": 80,
        "bottom_right_x": 400,
        "bottom_right_y": 138,
    }


def test_two_columns_are_read_one_after_the_other() -> None:
    """OCR lines of a page with a full-width title over two columns of running text."""
    lines = [line("A title across both columns of the page", 0, 0, 600, 30)]
    for row in range(4):
        top = 50 + 20 * row
        lines.append(line(f"left {row}", 0, top, 280, top + 16))
        lines.append(line(f"right {row}", 320, top, 600, top + 16))
    text = markdown_of(blocks_of(lines, reorder=True))
    assert text.replace("\n\n", "\n").split("\n")[1:] == [
        *(f"left {n}" for n in range(4)),
        *(f"right {n}" for n in range(4)),
    ]


def test_forms_are_read_row_by_row() -> None:
    """Short labels and values: no columns, each label stays next to its value."""
    lines = []
    for row, (label, value) in enumerate(
        [("Total", "1 240,50"), ("Date", "15/03"), ("VAT", "20 %"), ("Ref", "F-118")]
    ):
        top = 20 * row
        lines += [line(label, 0, top, 60, top + 16), line(value, 400, top, 470, top + 16)]
    assert markdown_of(blocks_of(lines, reorder=True)) == (
        "Total 1 240,50\nDate 15/03\nVAT 20 %\nRef F-118"
    )


def test_text_layer_order_is_kept() -> None:
    """Two columns in a text layer: the right column comes after the whole left one."""
    lines = [
        line("Left one", 0, 0, 100, 14),
        line("Left two", 0, 16, 100, 30),
        line("Right one", 200, 0, 300, 14),
        line("Right two", 200, 16, 300, 30),
    ]
    assert markdown_of(blocks_of(lines, reorder=False)) == (
        "Left one\nLeft two\n\nRight one\nRight two"
    )


def test_no_lines_no_blocks() -> None:
    assert blocks_of([], reorder=True) == []
    assert blocks_of([line("  ", 0, 0, 1, 1)], reorder=True) == []


# ---- documents ----------------------------------------------------------------------


def test_data_urls() -> None:
    assert decode_data_url("data:application/pdf;base64,JVBE\nRi0=", param="d") == b"%PDF-"
    assert decode_data_url("data:text/plain,a%20b", param="d") == b"a b"
    with pytest.raises(InvalidRequest, match="not valid base64"):
        decode_data_url("data:;base64,***", param="d")
    with pytest.raises(InvalidRequest, match="comma"):
        decode_data_url("data:image/png;base64", param="d")


def test_sniff() -> None:
    assert sniff(b"%PDF-1.7 ...") == "pdf"
    assert sniff(png(text_image(["x"]))) == "image"
    assert sniff(b"RIFF\x00\x00\x00\x00WEBPVP8 ") == "image"
    with pytest.raises(InvalidRequest, match="unsupported document type"):
        sniff(b"PK\x03\x04 a docx")


async def test_other_schemes_are_refused() -> None:
    for url in ("file:///etc/passwd", "ftp://host/x.pdf", "JVBERi0="):
        with pytest.raises(InvalidRequest, match="data: URL"):
            await load_document(url, OcrConfig(), param="document.document_url")


@pytest.fixture
async def web_server() -> AsyncIterator[str]:
    pdf = text_pdf([TextPage([["Fetched."]])])

    async def document(request: web.Request) -> web.StreamResponse:
        return web.Response(body=pdf, content_type="application/pdf")

    async def big(request: web.Request) -> web.StreamResponse:
        return web.Response(body=b"%PDF-" + b"0" * 50_000)

    async def moved(request: web.Request) -> web.StreamResponse:
        raise web.HTTPFound("/doc.pdf")

    app = web.Application()
    app.router.add_get("/doc.pdf", document)
    app.router.add_get("/big.pdf", big)
    app.router.add_get("/moved.pdf", moved)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    yield f"http://127.0.0.1:{port}"
    await runner.cleanup()


async def test_http_fetch_when_enabled(web_server: str) -> None:
    url = web_server + "/doc.pdf"
    with pytest.raises(InvalidRequest) as refused:
        await load_document(url, OcrConfig(), param="d")
    assert refused.value.code == "url_fetch_disabled"
    origin = web_server.replace("127.0.0.1", "127.0.0.*")
    config = OcrConfig(
        fetch_urls=True,
        max_document_bytes=20_000,
        fetch_allowed_hosts=(origin,),
        fetch_allowed_networks=("127.0.0.0/8",),  # type: ignore[arg-type]  (pydantic parses it)
    )
    data = await load_document(url, config, param="d")
    assert data.startswith(b"%PDF-")
    with pytest.raises(PayloadTooLarge):
        await load_document(web_server + "/big.pdf", config, param="d")
    with pytest.raises(InvalidRequest) as redirected:  # redirects are not followed
        await load_document(web_server + "/moved.pdf", config, param="d")
    assert redirected.value.code == "document_fetch_failed"
    only = OcrConfig(fetch_urls=True, fetch_allowed_hosts=("docs.example.org",))
    with pytest.raises(InvalidRequest, match="fetch_allowed_hosts"):
        await load_document(url, only, param="d")
    loopback = OcrConfig(fetch_urls=True, fetch_allowed_hosts=(origin,))  # networks: none
    with pytest.raises(InvalidRequest) as private:
        await load_document(url, loopback, param="d")
    assert private.value.code == "document_fetch_failed"


def test_image_pixel_limit() -> None:
    with pytest.raises(PayloadTooLarge, match=r"ocr\.max_image_pixels"):
        ImageReader(png(text_image(["x"])), max_pixels=10_000).read(0)


def test_pdf_page_without_text_is_rendered() -> None:
    reader = PdfReader(text_pdf([TextPage([["A text layer."]]), TextPage([])]))
    with_text = reader.read(0, dpi=100, max_pixels=10**8, render=False)
    assert [ln.text for ln in with_text.lines] == ["A text layer."]
    assert with_text.bitmap is None and with_text.dpi == 100
    blank = reader.read(1, dpi=100, max_pixels=10**8, render=False)
    assert blank.lines == [] and blank.bitmap is not None
    assert blank.bitmap.shape == (math.ceil(842 * 100 / 72), math.ceil(595 * 100 / 72), 3)
    capped = reader.read(1, dpi=300, max_pixels=1_000_000, render=True)
    assert capped.width * capped.height <= 1_000_000 and capped.dpi < 300
    assert content_box(blank.bitmap) is None  # blank paper: nothing to OCR
    reader.close()


def test_page_selection_errors() -> None:
    service = OcrService(OcrConfig(max_pages=2))
    data = text_pdf([TextPage([[f"Page {n}."]]) for n in range(3)])
    with pytest.raises(InvalidRequest, match="has 3 pages; at most 2"):
        service.process(data, OcrOptions())
    with pytest.raises(InvalidRequest, match="pages 3, 9 do not exist: the document has 3 pages"):
        service.process(data, OcrOptions(pages=[0, 3, 9]))
    assert [p.markdown for p in service.process(data, OcrOptions(pages=[2]))] == ["Page 2."]


def test_model_names() -> None:
    service = OcrService(OcrConfig())
    assert service.resolve(None) == service.resolve("mistral-ocr-2512") == "souverain-ocr"
    with pytest.raises(Exception, match="does not exist"):
        service.resolve("mistral-large-latest")


# ---- the engine and the queue -------------------------------------------------------


def test_engine_loads_from_the_wheel_without_downloading(monkeypatch: pytest.MonkeyPatch) -> None:
    from rapidocr.utils import download_file

    def no_download(*args: object, **kwargs: object) -> None:
        raise AssertionError("RapidOCR tried to download a model")

    monkeypatch.setattr(download_file.DownloadFile, "run", classmethod(no_download))
    assert sorted(p.name for p in models_dir().glob("PP-OCRv6_*.onnx")) == [
        "PP-OCRv6_det_small.onnx",
        "PP-OCRv6_rec_small.onnx",
    ]
    engine = OcrEngine(threads=1)
    engine.load()
    assert engine.loaded


async def test_busy_engine_answers_503(monkeypatch: pytest.MonkeyPatch) -> None:
    service = OcrService(OcrConfig(workers=1, max_queue=1))
    release = threading.Event()
    calls: list[float] = []

    def slow(
        data: bytes, options: OcrOptions, cancelled: threading.Event | None = None
    ) -> list[object]:
        calls.append(time.monotonic())
        release.wait(10)
        return []

    monkeypatch.setattr(service, "process", slow)
    first = asyncio.create_task(service.run(b"", OcrOptions()))
    second = asyncio.create_task(service.run(b"", OcrOptions()))  # waits in the queue
    await asyncio.sleep(0.1)
    assert service.queue_depth() == 2 and len(calls) == 1  # one at a time
    with pytest.raises(EngineOverloaded) as refused:
        await service.run(b"", OcrOptions())
    assert refused.value.status_code == 503
    assert refused.value.headers()["Retry-After"] == "10"
    release.set()
    assert await first == [] and await second == []
    assert service.queue_depth() == 0
