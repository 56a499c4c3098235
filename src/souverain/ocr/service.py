"""One document in, pages out: page selection, text layer or OCR, images, layout.

The work runs in a worker thread. At most `ocr.workers` documents are processed at
once and `ocr.max_queue` more may wait; past that a request is refused at once with
503 and Retry-After (`EngineOverloaded`) rather than queued for minutes. A document
whose client went away stops after the page in progress.
"""

from __future__ import annotations

import asyncio
import base64
import fnmatch
import io
import threading
from dataclasses import dataclass

import numpy as np
from PIL import Image

from ..config import DeploymentConfig, OcrConfig
from ..errors import EngineOverloaded, InvalidRequest, NotFound
from ..policy.facts import DeploymentFacts
from ..protocol.ocr import Box, PageImage, PageResult
from .documents import sniff
from .engine import OcrEngine
from .images import ImageReader
from .layout import Line, blocks_of, markdown_of, place_images
from .pdf import PdfReader

RETRY_AFTER_S = 10


@dataclass(frozen=True, slots=True)
class OcrOptions:
    pages: list[int] | None = None  # 0-based, sorted; None: every page
    include_image_base64: bool = False
    image_limit: int | None = None
    image_min_size: int | None = None


class _Cancelled(Exception):
    pass


class OcrService:
    """The OCR model of one app: its names, its facts for the policy, its bounded queue."""

    def __init__(self, config: OcrConfig) -> None:
        self.config = config
        self.model_id = config.model_id
        self.name = f"{config.model_id}@local"  # the deployment, as the policy sees it
        self.facts = DeploymentFacts.of(DeploymentConfig(name=self.name, engine="local"))
        self.engine = OcrEngine(config.threads)
        self._slots = asyncio.Semaphore(config.workers)
        self._capacity = config.workers + config.max_queue
        self._in_flight = 0  # touched only on the event loop

    def serves(self, name: str | None) -> bool:
        if name is None or name == self.model_id:
            return True
        return any(fnmatch.fnmatchcase(name, pattern) for pattern in self.config.aliases)

    def resolve(self, name: str | None) -> str:
        if not self.config.enabled:
            raise NotFound("OCR is disabled on this gateway (ocr.enabled)", param="model",
                           code="model_not_found")  # fmt: skip
        if not self.serves(name):
            raise NotFound(
                f"the OCR model {name!r} does not exist; use {self.model_id!r} "
                f"(or {', '.join(repr(alias) for alias in self.config.aliases)})",
                param="model",
                code="model_not_found",
            )
        return self.model_id

    def queue_depth(self) -> int:
        return self._in_flight

    async def run(self, data: bytes, options: OcrOptions) -> list[PageResult]:
        if self._in_flight >= self._capacity:
            raise EngineOverloaded(
                f"the OCR engine is busy ({self._in_flight} documents in flight); retry later",
                retry_after=RETRY_AFTER_S,
            )
        self._in_flight += 1
        try:
            async with self._slots:
                cancelled = threading.Event()
                work = asyncio.ensure_future(
                    asyncio.to_thread(self.process, data, options, cancelled)
                )
                try:
                    return await asyncio.shield(work)
                except asyncio.CancelledError:
                    cancelled.set()
                    await asyncio.wait([work])  # the slot is free once the thread is
                    if not work.cancelled():
                        work.exception()  # retrieved: nobody is waiting for it any more
                    raise
        finally:
            self._in_flight -= 1

    # ---- in the worker thread ---------------------------------------------------------

    def process(
        self, data: bytes, options: OcrOptions, cancelled: threading.Event | None = None
    ) -> list[PageResult]:
        kind = sniff(data)
        reader = _open(kind, data, self.config)
        try:
            indexes = self._select(options.pages, reader.page_count)
            images = _ImageBudget(options)
            results = []
            for index in indexes:
                if cancelled is not None and cancelled.is_set():
                    raise _Cancelled
                results.append(self._page(reader, index, options, images))
            return results
        finally:
            reader.close()

    def _select(self, pages: list[int] | None, count: int) -> list[int]:
        limit = self.config.max_pages
        if pages is None:
            if count > limit:
                raise InvalidRequest(
                    f"the document has {count} pages; at most {limit} are processed per "
                    "request (ocr.max_pages): choose some with `pages`",
                    param="pages",
                )
            return list(range(count))
        missing = [page for page in pages if page >= count]
        if missing:
            named = ", ".join(str(page) for page in missing[:10])
            raise InvalidRequest(
                f"page{'s' if len(missing) > 1 else ''} {named} "
                f"{'do' if len(missing) > 1 else 'does'} not exist: the document has "
                f"{count} page{'s' if count != 1 else ''}, numbered from 0",
                param="pages",
            )
        if len(pages) > limit:
            raise InvalidRequest(
                f"{len(pages)} pages asked for; at most {limit} per request (ocr.max_pages)",
                param="pages",
            )
        return pages

    def _page(
        self,
        reader: PdfReader | ImageReader,
        index: int,
        options: OcrOptions,
        images: _ImageBudget,
    ) -> PageResult:
        config = self.config
        figures: list[Box] = []
        if isinstance(reader, PdfReader):
            pdf_page = reader.read(
                index, dpi=config.render_dpi, max_pixels=config.max_image_pixels, render=False
            )
            figures = images.select(pdf_page.figures)
            if figures and options.include_image_base64 and pdf_page.bitmap is None:
                pdf_page = reader.read(
                    index, dpi=config.render_dpi, max_pixels=config.max_image_pixels, render=True
                )
            bitmap, text_layer = pdf_page.bitmap, pdf_page.lines
            dpi, width, height = pdf_page.dpi, pdf_page.width, pdf_page.height
        else:
            image_page = reader.read(index)
            bitmap, text_layer = image_page.bitmap, []
            dpi, width, height = image_page.dpi, image_page.width, image_page.height
        lines: list[Line] = text_layer
        if not text_layer and bitmap is not None:
            lines = self.engine.recognize(bitmap)
        page_images = [
            PageImage(
                id=images.next_id(),
                box=box,
                image_base64=_jpeg(bitmap, box) if options.include_image_base64 else None,
            )
            for box in figures
        ]
        blocks = place_images(blocks_of(lines, reorder=not text_layer), page_images)
        return PageResult(
            index=index,
            markdown=markdown_of(blocks),
            dpi=dpi,
            width=width,
            height=height,
            images=page_images,
            blocks=blocks,
            source="text_layer" if text_layer else "ocr",
        )


class _ImageBudget:
    """`image_limit` across the document and `image_min_size` per image; ids in order."""

    def __init__(self, options: OcrOptions) -> None:
        self.left = options.image_limit
        self.min_size = options.image_min_size or 0
        self.count = 0

    def select(self, boxes: list[Box]) -> list[Box]:
        chosen: list[Box] = []
        for box in sorted(boxes, key=lambda b: (b.top, b.left)):
            if self.left is not None and len(chosen) >= self.left:
                break
            if min(box.right - box.left, box.bottom - box.top) < max(self.min_size, 1):
                continue
            chosen.append(box)
        if self.left is not None:
            self.left -= len(chosen)
        return chosen

    def next_id(self) -> str:
        self.count += 1
        return f"img-{self.count - 1}.jpeg"


def _open(kind: str, data: bytes, config: OcrConfig) -> PdfReader | ImageReader:
    if kind == "pdf":
        return PdfReader(data)
    return ImageReader(data, max_pixels=config.max_image_pixels)


def _jpeg(bitmap: np.ndarray | None, box: Box) -> str | None:
    if bitmap is None:
        return None
    height, width = bitmap.shape[:2]
    left, top = max(0, int(box.left)), max(0, int(box.top))
    right, bottom = min(width, round(box.right)), min(height, round(box.bottom))
    if right <= left or bottom <= top:
        return None
    crop = Image.fromarray(np.ascontiguousarray(bitmap[top:bottom, left:right, ::-1]))
    buffer = io.BytesIO()
    crop.save(buffer, format="JPEG", quality=85)
    return "data:image/jpeg;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")
