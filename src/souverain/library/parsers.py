"""Documents to text, page by page: PDF, DOCX, HTML, Markdown, plain text, images.

`detect()` runs at upload, on the first bytes (a declared MIME type is not trusted,
the file name's extension only tells text formats apart): what is not one of these
formats is refused at once (400). `parse()` runs in the ingest worker's child process
(library/sandbox.py) under `libraries.limits` (library/limits.py); a corrupt file or
one over a limit raises `InvalidRequest`, which becomes the document's error status.

    PDF     pdfium's text layer, page by page, laid out in paragraphs and titles as
            /v1/ocr does (ocr/layout.py); a page without a usable text layer (a scan)
            is rendered and OCR'd. At most `max_pages` pages.
    images  PNG, JPEG, WebP, TIFF: OCR, one page per frame (at most `max_pages`).
    DOCX    paragraphs (headings as Markdown titles) and tables (rows of cells), in
            document order; one page (Word files have no fixed pages). The ZIP and its
            XML are checked for size and element count first (library/archive.py).
    HTML    the text, without scripts, styles and markup; blocks on their own lines.
    text    Markdown and plain text as they are (UTF-8, UTF-16 with a BOM, else cp1252).
"""

from __future__ import annotations

import io
import re
import zipfile
from dataclasses import dataclass
from html.parser import HTMLParser
from pathlib import PurePath
from typing import Literal, Protocol

import numpy as np

from ..config import OcrConfig
from ..errors import InvalidRequest, PayloadTooLarge
from ..ocr.images import ImageReader
from ..ocr.layout import Line, blocks_of, markdown_of
from ..ocr.pdf import PdfReader
from .archive import inflate_checked
from .limits import IngestLimits

Kind = Literal["pdf", "docx", "html", "markdown", "text", "image"]
SUPPORTED = "PDF, Word (.docx), HTML, Markdown, plain text, and PNG, JPEG, WebP or TIFF images"
MIME_TYPES: dict[str, str] = {
    "pdf": "application/pdf",
    "docx": "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
    "html": "text/html",
    "markdown": "text/markdown",
    "text": "text/plain",
}
IMAGE_MAGIC = (
    (b"\x89PNG\r\n\x1a\n", "image/png"),
    (b"\xff\xd8\xff", "image/jpeg"),
    (b"II*\x00", "image/tiff"),
    (b"MM\x00*", "image/tiff"),
)
HTML_EXTENSIONS = {".html", ".htm", ".xhtml"}
MARKDOWN_EXTENSIONS = {".md", ".markdown", ".mdown", ".mkd"}


@dataclass(frozen=True, slots=True)
class Detected:
    kind: Kind
    mime_type: str
    extension: str | None


class Recognizer(Protocol):
    """The OCR engine as the parsers use it (ocr/engine.py; budgeted in library/sandbox.py)."""

    def recognize(self, bitmap: np.ndarray) -> list[Line]: ...


@dataclass(slots=True)
class Parsed:
    pages: list[str]
    paged: bool  # PDF and images: the page numbers mean something


def unsupported(why: str) -> InvalidRequest:
    return InvalidRequest(
        f"unsupported document type: {why}; send {SUPPORTED}",
        param="file",
        code="unsupported_document_type",
    )


def detect(data: bytes, filename: str) -> Detected:
    suffix = PurePath(filename).suffix.lower()
    extension = suffix[1:] or None if suffix and len(suffix) <= 16 else None
    if not data:
        raise InvalidRequest("the file is empty", param="file")
    if b"%PDF-" in data[:1024]:
        return Detected("pdf", MIME_TYPES["pdf"], extension)
    for magic, mime_type in IMAGE_MAGIC:
        if data.startswith(magic):
            return Detected("image", mime_type, extension)
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return Detected("image", "image/webp", extension)
    if data[:4] == b"PK\x03\x04":
        return Detected(_zip_kind(data), MIME_TYPES["docx"], extension)
    if data[:8] == b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1":
        raise unsupported("an old Office file (.doc, .xls, .ppt); save it as .docx or PDF")
    text = decode_text(data[:65536], strict=True)
    if text is None:
        raise unsupported("binary data that is none of the formats Souverain reads")
    head = text[:2048].lstrip().lower()
    if suffix in HTML_EXTENSIONS or head.startswith(("<!doctype html", "<html")):
        return Detected("html", MIME_TYPES["html"], extension)
    if suffix in MARKDOWN_EXTENSIONS:
        return Detected("markdown", MIME_TYPES["markdown"], extension)
    return Detected("text", MIME_TYPES["text"], extension)


def _zip_kind(data: bytes) -> Kind:
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            names = set(archive.namelist())
    except (zipfile.BadZipFile, ValueError):
        raise unsupported("a damaged ZIP archive") from None
    if "word/document.xml" in names:
        return "docx"
    if "xl/workbook.xml" in names or "ppt/presentation.xml" in names:
        raise unsupported("an Excel or PowerPoint file; export it as PDF")
    raise unsupported("a ZIP archive that is not a Word document")


def decode_text(data: bytes, *, strict: bool = False) -> str | None:
    """UTF-8 (with or without BOM), UTF-16 with a BOM, else cp1252; None for binary."""
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        try:
            return data.decode("utf-16")
        except UnicodeDecodeError:
            return None
    if b"\x00" in data:
        return None
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        if strict and exc.start >= len(data) - 4:  # a character cut by the sample's end
            return data[: exc.start].decode("utf-8-sig")
    try:
        text = data.decode("cp1252")
    except UnicodeDecodeError:
        return None
    controls = sum(1 for char in text if ord(char) < 32 and char not in "\t\n\r\f")
    return None if controls > len(text) // 100 else text


# ---- parsing (in the ingest worker) ---------------------------------------------------------


def parse(
    data: bytes,
    kind: str,
    *,
    ocr: Recognizer | None,
    config: OcrConfig,
    limits: IngestLimits | None = None,
) -> Parsed:
    limits = limits or IngestLimits()
    if kind == "pdf":
        return Parsed(_pdf(data, ocr, config, limits), paged=True)
    if kind == "image":
        return Parsed(_image(data, ocr, config, limits), paged=True)
    if kind == "docx":
        inflate_checked(data, limits)
        return Parsed([_docx(data)], paged=False)
    text = decode_text(data)
    if text is None:
        raise InvalidRequest("the file is not text in a known encoding", param="file")
    if kind == "html":
        text = html_text(text)
    return Parsed([normalize(text)], paged=False)


def _pdf(data: bytes, ocr: Recognizer | None, config: OcrConfig, limits: IngestLimits) -> list[str]:
    reader = PdfReader(data)
    try:
        _check_pages(reader.page_count, limits)
        pages = []
        for index in range(reader.page_count):
            page = reader.read(
                index, dpi=config.render_dpi, max_pixels=config.max_image_pixels, render=False
            )
            lines = page.lines
            if not lines and page.bitmap is not None and ocr is not None:
                lines = ocr.recognize(page.bitmap)
            pages.append(markdown_of(blocks_of(lines, reorder=not page.lines)))
        return pages
    finally:
        reader.close()


def _image(
    data: bytes, ocr: Recognizer | None, config: OcrConfig, limits: IngestLimits
) -> list[str]:
    if ocr is None:
        raise InvalidRequest("images need OCR, which is off (libraries.ocr)", param="file")
    reader = ImageReader(data, max_pixels=config.max_image_pixels)
    try:
        _check_pages(reader.page_count, limits)
        pages = []
        for index in range(reader.page_count):
            lines = ocr.recognize(reader.read(index).bitmap)
            pages.append(markdown_of(blocks_of(lines, reorder=True)))
        return pages
    finally:
        reader.close()


def _check_pages(count: int, limits: IngestLimits) -> None:
    if count > limits.max_pages:
        raise PayloadTooLarge(
            f"the document has {count} pages; at most {limits.max_pages} are read "
            "(libraries.limits.max_pages): split it",
            param="file",
        )


def _docx(data: bytes) -> str:
    import docx
    from docx.table import Table
    from docx.text.paragraph import Paragraph

    try:
        document = docx.Document(io.BytesIO(data))
        blocks: list[str] = []
        for block in document.iter_inner_content():
            if isinstance(block, Paragraph):
                blocks.append(_docx_paragraph(block))
            elif isinstance(block, Table):
                rows = [" | ".join(cell.text.strip() for cell in row.cells) for row in block.rows]
                blocks.append("\n".join(row for row in rows if row.strip(" |")))
    except Exception as exc:  # python-docx raises many kinds (zip, XML, missing parts)
        raise InvalidRequest(
            f"the Word document cannot be read ({type(exc).__name__}: {exc})", param="file"
        ) from None
    return normalize("\n\n".join(block for block in blocks if block.strip()))


def _docx_paragraph(paragraph: object) -> str:
    text = str(getattr(paragraph, "text", "")).strip()
    style = getattr(getattr(paragraph, "style", None), "name", "") or ""
    match = re.fullmatch(r"Heading (\d)", style)
    if text and (match or style == "Title"):
        return "#" * (int(match.group(1)) if match else 1) + " " + text
    return text


class _HtmlText(HTMLParser):
    SKIP = {"script", "style", "noscript", "template", "svg", "head"}
    BLOCKS = {
        "p", "div", "section", "article", "header", "footer", "main", "aside", "nav",
        "ul", "ol", "table", "tr", "blockquote", "pre", "form", "figure", "dl", "dt", "dd",
    }  # fmt: skip

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self.skipping = 0
        self.title: list[str] = []
        self.in_title = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in self.SKIP:
            self.skipping += 1
        elif tag == "title":
            self.in_title = True
        elif tag in self.BLOCKS:
            self.parts.append("\n\n")
        elif len(tag) == 2 and tag[0] == "h" and tag[1] in "123456":
            self.parts.append("\n\n" + "#" * int(tag[1]) + " ")
        elif tag == "br":
            self.parts.append("\n")
        elif tag == "li":
            self.parts.append("\n- ")
        elif tag in ("td", "th"):
            self.parts.append(" | ")

    def handle_endtag(self, tag: str) -> None:
        if tag in self.SKIP:
            self.skipping = max(0, self.skipping - 1)
        elif tag == "title":
            self.in_title = False
        elif tag in self.BLOCKS or (len(tag) == 2 and tag[0] == "h" and tag[1] in "123456"):
            self.parts.append("\n\n")

    def handle_data(self, data: str) -> None:
        if self.in_title:
            self.title.append(data)
        elif not self.skipping:
            self.parts.append(data)


def html_text(html: str) -> str:
    parser = _HtmlText()
    parser.feed(html)
    parser.close()
    lines = [" ".join(line.split()) for line in "".join(parser.parts).split("\n")]
    lines = [line.removeprefix("| ").strip() for line in lines]
    body = "\n".join(lines)
    title = " ".join("".join(parser.title).split())
    if title and title not in body[: len(title) + 200]:
        body = f"# {title}\n\n{body}"
    return normalize(body)


def normalize(text: str) -> str:
    """Unix line ends, no NUL or trailing spaces, at most one blank line in a row."""
    text = text.replace("\r\n", "\n").replace("\r", "\n").replace("\x00", "")
    text = re.sub(r"[ \t]+\n", "\n", text)
    return re.sub(r"\n{3,}", "\n\n", text).strip()
