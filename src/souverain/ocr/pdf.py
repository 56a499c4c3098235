"""PDF pages through pdfium (pypdfium2): the text layer when it is usable, else a render.

pdfium is one library per process and is not thread-safe, so every call into it holds
`PDFIUM`, a process-wide lock; the OCR itself runs outside it.

A page's text layer is used when it has visible characters, at most 10 % of them
unreadable (U+FFFD, private-use code points: fonts without a Unicode map), and the page
is not a scan with a few words of text on top (an image over half the page and fewer
than `SCAN_TEXT_CHARS` characters). Otherwise the page is rendered at `render_dpi`
(less if it would exceed `max_image_pixels`) for OCR.
"""

from __future__ import annotations

import math
import threading
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pypdfium2 as pdfium
import pypdfium2.raw as pdfium_c

from ..errors import InvalidRequest
from ..protocol.ocr import Box
from .layout import Line

PDFIUM = threading.Lock()
SCAN_TEXT_CHARS = 200
FULL_PAGE = 0.85  # an image over this share of the page is the page itself (a scan)


@dataclass(slots=True)
class PdfPage:
    index: int
    scale: float  # pixels per PDF point
    width: int  # pixels at `scale`
    height: int
    lines: list[Line]  # the text layer, boxes in pixels; empty when it is not usable
    figures: list[Box] = field(default_factory=list)  # image objects, in pixels
    bitmap: np.ndarray | None = None  # BGR, when rendered

    @property
    def dpi(self) -> int:
        return round(self.scale * 72)


class PdfReader:
    def __init__(self, data: bytes) -> None:
        with PDFIUM:
            try:
                self._pdf = pdfium.PdfDocument(data)
                self.page_count = len(self._pdf)
            except pdfium.PdfiumError as exc:
                raise InvalidRequest(_why(str(exc)), param="document") from None

    def close(self) -> None:
        with PDFIUM:
            self._pdf.close()

    def read(self, index: int, *, dpi: int, max_pixels: int, render: bool) -> PdfPage:
        """One page; rendered when its text layer is unusable or when `render` is set."""
        with PDFIUM:
            try:
                page = self._pdf[index]
            except pdfium.PdfiumError as exc:
                raise InvalidRequest(f"page {index}: {_why(str(exc))}", param="document") from None
            try:
                return _read_page(page, index, dpi=dpi, max_pixels=max_pixels, render=render)
            finally:
                page.close()


def _read_page(page: Any, index: int, *, dpi: int, max_pixels: int, render: bool) -> PdfPage:
    width_pt, height_pt = page.get_size()
    if width_pt <= 0 or height_pt <= 0:
        raise InvalidRequest(f"page {index} has no size", param="document")
    scale = min(dpi / 72, math.sqrt(max_pixels / (width_pt * height_pt)))
    while math.ceil(width_pt * scale) * math.ceil(height_pt * scale) > max_pixels:
        scale *= 0.995  # pdfium rounds sizes up

    def to_box(left: float, bottom: float, right: float, top: float) -> Box:
        return Box(
            left * scale, (height_pt - top) * scale, right * scale, (height_pt - bottom) * scale
        )

    lines = _text_layer(page, to_box)
    figures = []
    for obj in page.get_objects(filter=[pdfium_c.FPDF_PAGEOBJ_IMAGE], max_depth=3):
        left, bottom, right, top = obj.get_bounds()
        figures.append(to_box(left, bottom, right, top))
    page_area = width_pt * height_pt * scale * scale
    scan = any(_area(box) >= 0.5 * page_area for box in figures)
    visible = sum(len(line.text.replace(" ", "")) for line in lines)
    unreadable = sum(_unreadable(line.text) for line in lines)
    usable = (
        visible > 0 and unreadable <= 0.1 * visible and not (scan and visible < SCAN_TEXT_CHARS)
    )
    result = PdfPage(
        index=index,
        scale=scale,
        width=math.ceil(width_pt * scale),  # as pdfium sizes its renders
        height=math.ceil(height_pt * scale),
        lines=lines if usable else [],
        figures=[box for box in figures if _area(box) < FULL_PAGE * page_area],
    )
    if render or not usable:
        bitmap = page.render(scale=scale, may_draw_forms=True)
        try:
            array = bitmap.to_numpy()
            result.bitmap = np.ascontiguousarray(array[:, :, :3])  # BGR(x) -> BGR, a copy
            result.height, result.width = result.bitmap.shape[:2]
        finally:
            bitmap.close()
    return result


def _text_layer(page: Any, to_box: Any) -> list[Line]:
    """pdfium's lines ("\\r\\n" between them), each boxed by its characters' font boxes
    (the same height for every line of one font size, unlike ink boxes)."""
    textpage = page.get_textpage()
    try:
        count = textpage.count_chars()
        if count <= 0:
            return []
        text = textpage.get_text_range(0, count)
        chars = (
            list(text)
            if len(text) == count
            else [textpage.get_text_range(i, 1) for i in range(count)]
        )
        lines: list[Line] = []
        current: list[str] = []
        bounds: list[float] | None = None
        for i, char in enumerate(chars):
            if char in ("\r", "\n"):
                if bounds is not None and "".join(current).strip():
                    lines.append(Line(_clean("".join(current)), to_box(*bounds)))
                current, bounds = [], None
                continue
            current.append(char)
            if char.strip():
                left, bottom, right, top = textpage.get_charbox(i, loose=True)
                if bounds is None:
                    bounds = [left, bottom, right, top]
                else:
                    bounds = [min(bounds[0], left), min(bounds[1], bottom),
                              max(bounds[2], right), max(bounds[3], top)]  # fmt: skip
        if bounds is not None and "".join(current).strip():
            lines.append(Line(_clean("".join(current)), to_box(*bounds)))
        return lines
    finally:
        textpage.close()


def _clean(text: str) -> str:
    # pdfium marks a hyphen at a line break as U+0002.
    text = text.replace("\x02", "-").replace("\x00", "")
    return " ".join(text.split())


def _unreadable(text: str) -> int:
    return sum(1 for char in text if char == "\ufffd" or "\ue000" <= char <= "\uf8ff")


def _area(box: Box) -> float:
    return max(0.0, box.right - box.left) * max(0.0, box.bottom - box.top)


def _why(message: str) -> str:
    lowered = message.lower()
    if "password" in lowered:
        return "the PDF is encrypted with a password; send it decrypted"
    return f"the PDF cannot be read ({message.rstrip('.')})"
