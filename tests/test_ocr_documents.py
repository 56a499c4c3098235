"""Documents for the OCR tests, made here: PNGs drawn with Pillow, scanned PDFs (pages that
are only an image) saved by Pillow, and PDFs with a text layer written by hand.

The tests at the bottom check that the documents are what the OCR tests take them for.
"""

from __future__ import annotations

import base64
import io
from dataclasses import dataclass

import pypdfium2 as pdfium
import pytest
from PIL import Image, ImageDraw, ImageFont

FONT_NAMES = ("DejaVuSans.ttf", "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf")

# Short lines in three languages, with the letters OCR engines get wrong most often.
FR_DE_EN = [
    "Facture n° 2026-118 : échéance le 15 mars",
    "Größe der Straße in München: 12 Häuser",
    "The quick brown fox jumps over the lazy dog",
]


def font(size: int = 28) -> ImageFont.FreeTypeFont:
    """DejaVu Sans (Debian's fonts-dejavu-core): Pillow's own font lacks é, ß, ü."""
    for name in FONT_NAMES:
        try:
            return ImageFont.truetype(name, size)
        except OSError:
            continue
    pytest.skip("no DejaVu Sans font (apt-get install fonts-dejavu-core)")


def text_image(lines: list[str], *, size: int = 28, width: int = 900) -> Image.Image:
    """Black text on white, one paragraph per blank-line-separated group."""
    step = int(size * 1.6)
    image = Image.new("L", (width, 40 + step * len(lines)), 255)
    draw = ImageDraw.Draw(image)
    face = font(size)
    for row, line in enumerate(lines):
        draw.text((30, 20 + step * row), line, font=face, fill=0)
    return image


def png(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def jpeg(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.convert("RGB").save(buffer, format="JPEG", quality=90)
    return buffer.getvalue()


def scanned_pdf(pages: list[Image.Image], dpi: int = 150) -> bytes:
    """A PDF whose pages are only images: no text layer, as a scanner makes them."""
    buffer = io.BytesIO()
    first, *rest = [page.convert("RGB") for page in pages]
    first.save(buffer, format="PDF", save_all=True, append_images=rest, resolution=dpi)
    return buffer.getvalue()


def data_url(data: bytes, mime: str) -> str:
    return f"data:{mime};base64," + base64.b64encode(data).decode("ascii")


@dataclass
class Figure:
    """A JPEG placed on a page: PDF points from the bottom-left corner."""

    jpeg: bytes
    width_px: int
    height_px: int
    x: float
    y: float
    w: float
    h: float


@dataclass
class TextPage:
    paragraphs: list[list[str] | None]  # None: 120 points of room (for a figure)
    title: str | None = None
    figure: Figure | None = None


def text_pdf(pages: list[TextPage]) -> bytes:
    """A PDF with a real text layer (Helvetica, WinAnsi: French and German letters),
    written object by object with a correct cross-reference table."""
    objects: dict[int, bytes] = {1: b"<< /Type /Catalog /Pages 2 0 R >>"}
    font_id = 3
    objects[font_id] = (
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica /Encoding /WinAnsiEncoding >>"
    )
    next_id = 4
    kids = []
    for page in pages:
        page_id, content_id = next_id, next_id + 1
        next_id += 2
        ops = [b"BT"]
        y = 770
        if page.title:
            ops.append(b"/F1 22 Tf 72 %d Td (%s) Tj ET BT" % (y, _pdf_text(page.title)))
            y -= 44
        ops.append(b"/F1 12 Tf 16 TL 72 %d Td" % y)
        for paragraph in page.paragraphs:
            if paragraph is None:  # room for a figure
                ops.append(b"0 -120 Td")
                continue
            for line in paragraph:
                ops.append(b"(" + _pdf_text(line) + b") Tj T*")
            ops.append(b"T*")
        ops.append(b"ET")
        resources = b"/Font << /F1 %d 0 R >>" % font_id
        if page.figure is not None:
            fig = page.figure
            image_id = next_id
            next_id += 1
            objects[image_id] = (
                b"<< /Type /XObject /Subtype /Image /Width %d /Height %d /ColorSpace /DeviceRGB "
                b"/BitsPerComponent 8 /Filter /DCTDecode /Length %d >>\nstream\n"
                % (fig.width_px, fig.height_px, len(fig.jpeg))
                + fig.jpeg
                + b"\nendstream"
            )
            resources += b" /XObject << /Im1 %d 0 R >>" % image_id
            ops.append(b"q %.2f 0 0 %.2f %.2f %.2f cm /Im1 Do Q" % (fig.w, fig.h, fig.x, fig.y))
        stream = b"\n".join(ops)
        objects[content_id] = b"<< /Length %d >>\nstream\n" % len(stream) + stream + b"\nendstream"
        objects[page_id] = (
            b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] /Resources << %s >> "
            b"/Contents %d 0 R >>" % (resources, content_id)
        )
        kids.append(b"%d 0 R" % page_id)
    objects[2] = b"<< /Type /Pages /Kids [%s] /Count %d >>" % (b" ".join(kids), len(kids))
    out = bytearray(b"%PDF-1.4\n")
    offsets = {}
    for number in sorted(objects):
        offsets[number] = len(out)
        out += b"%d 0 obj\n" % number + objects[number] + b"\nendobj\n"
    xref = len(out)
    size = max(objects) + 1
    out += b"xref\n0 %d\n0000000000 65535 f \n" % size
    for number in range(1, size):
        out += b"%010d 00000 n \n" % offsets[number]
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (size, xref)
    return bytes(out)


def _pdf_text(text: str) -> bytes:
    raw = text.encode("cp1252")
    return raw.replace(b"\\", b"\\\\").replace(b"(", b"\\(").replace(b")", b"\\)")


INVOICE = TextPage(
    title="Facture F-2026-118",
    paragraphs=[
        ["Fournisseur : Atelier Durand SARL, 12 rue des Lilas, Lyon", "Client : Müller GmbH"],
        ["Montant total : 1240,50 EUR", "Échéance : 15 mars 2026"],
    ],
)


def figure_page() -> TextPage:
    chart = Image.new("RGB", (200, 100), (30, 90, 200))
    ImageDraw.Draw(chart).rectangle((20, 20, 180, 80), fill=(240, 200, 40))
    return TextPage(
        paragraphs=[["Above the figure."], None, ["Below the figure, a caption."]],
        figure=Figure(jpeg(chart), 200, 100, x=72, y=650, w=200, h=100),
    )


# ---- the documents are what the tests take them for ----------------------------------


def test_text_pdf_has_a_text_layer() -> None:
    pdf = pdfium.PdfDocument(text_pdf([INVOICE, TextPage([["Page two."]])]))
    assert len(pdf) == 2
    text = pdf[0].get_textpage().get_text_range()
    assert "Müller GmbH" in text and "Échéance : 15 mars 2026" in text


def test_scanned_pdf_has_no_text_layer() -> None:
    pdf = pdfium.PdfDocument(scanned_pdf([text_image(FR_DE_EN)]))
    assert pdf[0].get_textpage().count_chars() == 0


def test_font_has_accents() -> None:
    face = font(40)
    assert face.getbbox("é")[1] < face.getbbox("e")[1]  # the accent reaches higher
