"""OCR accuracy and speed on generated pages whose text is known (docs/ocr.md).

Pages are A4 at 150 dpi, drawn with DejaVu Sans in French, German, English, Italian,
Dutch and Spanish, then sent through Souverain's OCR service exactly as the endpoint
runs it (decode, text layer or render, OCR, layout, markdown):

  * dense       - a title and ~40 lines of 11 pt sans-serif in paragraphs, a PNG;
  * small-serif - the page full of 9 pt DejaVu Serif (~70 lines), a PNG;
  * fine-print  - the page full of 7 pt sans-serif (~90 lines), a PNG;
  * two-column  - 9 pt sans-serif in two columns, a PNG (reading order: left column first);
  * sparse      - a title and two short lines on an otherwise empty page, a PNG;
  * lone        - one short line of 11 pt text in the middle of an empty page, a PNG;
  * scan        - the dense page as a scanner makes it: 300 dpi, rotated 0.4 degrees, grey
                  noise, slight blur, JPEG quality 60, in an image-only PDF (rendered back
                  at 150 dpi);
  * scan-rough  - the same at 200 dpi, rotated 1.2 degrees, heavier noise and blur, JPEG 35;
  * textlayer   - the dense text in a PDF with a text layer (read, not OCR'd).

Character accuracy = 1 - Levenshtein distance / length of the expected text, after
collapsing whitespace and dropping markdown heading marks. "paragraphs" = blocks found
in the markdown / paragraphs drawn. Time is per page, after a warm-up page, best of
`--repeat`.

Run:  .venv/bin/python bench/ocr_accuracy.py [--repeat 2] [--threads 2] [--json out.json]
      .venv/bin/python bench/ocr_accuracy.py --det '{"Det.limit_type": "min"}'  # compare
"""

from __future__ import annotations

import argparse
import io
import json
import os
import random
import re
import time
from typing import Any

import numpy as np
from PIL import Image, ImageDraw, ImageFilter, ImageFont

from souverain.config import OcrConfig
from souverain.ocr.service import OcrOptions, OcrService

DPI = 150
A4 = (round(8.27 * DPI), round(11.69 * DPI))
MARGIN = round(0.8 * DPI)
FONT = "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf"
SERIF = "/usr/share/fonts/truetype/dejavu/DejaVuSerif.ttf"

PARAGRAPHS = [
    "Conformément à l'article 12 du contrat, la facture n° 2026-118 doit être réglée avant "
    "le 15 mars. Passé ce délai, des pénalités de retard égales à trois fois le taux "
    "d'intérêt légal seront appliquées, ainsi qu'une indemnité forfaitaire de 40 euros.",
    "Die Größe der Straße in München wurde neu vermessen. Für die Häuser Nr. 12 bis 18 gilt "
    "ab dem 1. Juli eine geänderte Grundsteuer; Rückfragen beantwortet das Bürgerbüro "
    "montags bis freitags von 8 bis 12 Uhr.",
    "The quarterly report covers revenue, operating costs and the headcount of each "
    "department. Figures are unaudited and may change; the final statement will be "
    "published on 30 April together with the auditor's opinion.",
    "La riunione del consiglio di amministrazione è fissata per giovedì alle ore 15. "
    "All'ordine del giorno: approvazione del bilancio, nomina dei revisori e varie ed "
    "eventuali. Si prega di confermare la partecipazione entro lunedì.",
    "De gemeente heeft de aanvraag voor een omgevingsvergunning ontvangen. Binnen acht "
    "weken ontvangt u een besluit; tegen dat besluit kunt u binnen zes weken bezwaar "
    "maken bij het college van burgemeester en wethouders.",
    "El paciente ingresó en urgencias con fiebre de 39 °C y dolor abdominal. Se solicitó "
    "una analítica completa y una ecografía; el tratamiento con paracetamol se mantendrá "
    "durante cinco días, según la evolución clínica.",
    "Le présent avenant prend effet à la date de sa signature. Toutes les autres clauses "
    "du contrat initial demeurent inchangées et continuent de produire leurs effets entre "
    "les parties, qui en reconnaissent expressément l'application.",
    "Bitte überweisen Sie den Betrag von 1.240,50 € unter Angabe der Rechnungsnummer auf "
    "das unten genannte Konto. Bei Fragen zur Abrechnung erreichen Sie uns unter der "
    "Telefonnummer 089 123 456 78.",
]


def wrap(text: str, font: ImageFont.FreeTypeFont, width: int) -> list[str]:
    lines, current = [], ""
    for word in text.split():
        candidate = f"{current} {word}".strip()
        if font.getlength(candidate) <= width or not current:
            current = candidate
        else:
            lines.append(current)
            current = word
    return [*lines, current] if current else lines


def draw_page(
    title: str,
    paragraphs: list[str],
    *,
    scale: float = 1.0,
    points: float = 11,
    font: str = FONT,
    columns: int = 1,
) -> tuple[Image.Image, str]:
    """An A4 page; the text returned is what was drawn, in reading order (column by column)."""
    size = (round(A4[0] * scale), round(A4[1] * scale))
    body = ImageFont.truetype(font, round(points / 72 * DPI * scale))
    head = ImageFont.truetype(font, round(18 / 72 * DPI * scale))
    image = Image.new("L", size, 255)
    draw = ImageDraw.Draw(image)
    margin = round(MARGIN * scale)
    gutter = round(0.3 * DPI * scale)
    width = (size[0] - 2 * margin - (columns - 1) * gutter) // columns
    draw.text((margin, margin), title, font=head, fill=0)
    top = margin + round(head.size * 2.2)
    written = [title]
    step = round(body.size * 1.35)
    column, y = 0, top
    for paragraph in paragraphs:
        lines = wrap(paragraph, body, width)
        if y + step * len(lines) > size[1] - margin:
            column, y = column + 1, top
            if column == columns:
                break
        x = margin + column * (width + gutter)
        for line in lines:
            draw.text((x, y), line, font=body, fill=0)
            y += step
        written.append(paragraph)
        y += step  # a blank line between paragraphs
    return image, "\n\n".join(written)


def scanned(
    image: Image.Image, *, angle: float, noise: float, blur: float, quality: int
) -> Image.Image:
    rotated = image.rotate(angle, resample=Image.Resampling.BICUBIC, fillcolor=255)
    grain = np.random.default_rng(7).normal(0, noise, (rotated.height, rotated.width))
    noisy = np.clip(np.asarray(rotated, dtype=np.float32) + grain, 0, 255).astype(np.uint8)
    softened = Image.fromarray(noisy).filter(ImageFilter.GaussianBlur(blur))
    buffer = io.BytesIO()
    softened.save(buffer, format="JPEG", quality=quality)
    return Image.open(io.BytesIO(buffer.getvalue()))


def png_bytes(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def image_pdf(image: Image.Image, dpi: int) -> bytes:
    buffer = io.BytesIO()
    image.convert("RGB").save(buffer, format="PDF", resolution=dpi)
    return buffer.getvalue()


def text_layer_pdf(title: str, paragraphs: list[str]) -> bytes:
    """Helvetica, WinAnsi; the same wrapping as the drawn page (measured with DejaVu)."""
    body = ImageFont.truetype(FONT, 11)

    def escape(text: str) -> bytes:
        raw = text.encode("cp1252", errors="replace")
        return raw.replace(b"\\", b"\\\\").replace(b"(", b"\\(").replace(b")", b"\\)")

    ops = [b"BT /F1 18 Tf 58 770 Td (" + escape(title) + b") Tj ET BT /F1 11 Tf 15 TL 58 735 Td"]
    for paragraph in paragraphs:
        for line in wrap(paragraph, body, 595 - 2 * 58):
            ops.append(b"(" + escape(line) + b") Tj T*")
        ops.append(b"T*")
    ops.append(b"ET")
    stream = b"\n".join(ops)
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] "
        b"/Resources << /Font << /F1 5 0 R >> >> /Contents 4 0 R >>",
        b"<< /Length %d >>\nstream\n" % len(stream) + stream + b"\nendstream",
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica /Encoding /WinAnsiEncoding >>",
    ]
    out, offsets = bytearray(b"%PDF-1.4\n"), []
    for number, body_bytes in enumerate(objects, start=1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % number + body_bytes + b"\nendobj\n"
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    out += b"".join(b"%010d 00000 n \n" % offset for offset in offsets)
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (
        len(objects) + 1,
        xref,
    )
    return bytes(out)


def normalize(text: str) -> str:
    text = re.sub(r"^#+ ", "", text, flags=re.MULTILINE)
    return " ".join(text.split())


def levenshtein(a: str, b: str) -> int:
    """Row by row with numpy: fast enough for pages of a few thousand characters."""
    if not a:
        return len(b)
    codes_b = np.frombuffer(b.encode("utf-32-le"), dtype=np.uint32)
    previous = np.arange(len(b) + 1, dtype=np.int32)
    for i, char in enumerate(a, start=1):
        substitute = previous[:-1] + (codes_b != ord(char))
        current = np.empty_like(previous)
        current[0] = i
        current[1:] = np.minimum(previous[1:] + 1, substitute)
        # insertions run left to right: a cumulative minimum with the running offset
        offsets = np.arange(len(b) + 1, dtype=np.int32)
        current = np.minimum.accumulate(current - offsets) + offsets
        previous = current
    return int(previous[-1])


def blocks(text: str) -> int:
    return text.count("\n\n") + 1


def accuracy(expected: str, got: str) -> float:
    want, have = normalize(expected), normalize(got)
    return 1 - levenshtein(want, have) / max(1, len(want))


def cases() -> dict[str, tuple[bytes, str]]:
    random.seed(3)
    order = random.sample(PARAGRAPHS, len(PARAGRAPHS)) * 2
    title = "Rapport annuel / Jahresbericht 2026"
    dense, dense_text = draw_page(title, order)
    small, small_text = draw_page(title, order * 2, points=9, font=SERIF)
    fine, fine_text = draw_page(title, order * 3, points=7)
    columns, columns_text = draw_page(title, order * 2, points=9, columns=2)
    sparse, sparse_text = draw_page(
        "Avis de passage", ["Colis à retirer au bureau de poste.", "Bitte Ausweis mitbringen."]
    )
    lone = Image.new("L", A4, 255)
    lone_text = "Seite 2 von 3 - page 2 sur 3"
    face = ImageFont.truetype(FONT, round(11 / 72 * DPI))
    ImageDraw.Draw(lone).text((MARGIN, A4[1] // 2), lone_text, font=face, fill=0)
    at_300, _ = draw_page(title, order, scale=2.0)
    at_200, _ = draw_page(title, order, scale=200 / DPI)
    clean_scan = scanned(at_300, angle=0.4, noise=12, blur=0.6, quality=60)
    rough_scan = scanned(at_200, angle=1.2, noise=28, blur=1.0, quality=35)
    kept = dense_text.split("\n\n")
    return {
        "dense": (png_bytes(dense), dense_text),
        "small-serif": (png_bytes(small), small_text),
        "fine-print": (png_bytes(fine), fine_text),
        "two-column": (png_bytes(columns), columns_text),
        "sparse": (png_bytes(sparse), sparse_text),
        "lone": (png_bytes(lone), lone_text),
        "scan": (image_pdf(clean_scan, dpi=2 * DPI), dense_text),
        "scan-rough": (image_pdf(rough_scan, dpi=200), dense_text),
        "textlayer": (text_layer_pdf(kept[0], kept[1:]), dense_text),
    }


def run(
    repeat: int, threads: int | None, det: dict[str, Any], only: list[str]
) -> list[dict[str, Any]]:
    service = OcrService(OcrConfig(threads=threads))
    service.engine.params.update(det)
    started = time.perf_counter()
    service.engine.load()
    load_s = time.perf_counter() - started
    documents = cases()
    service.process(documents["sparse"][0], OcrOptions())  # warm-up
    if only:
        documents = {name: documents[name] for name in only}
    rows = []
    for name, (data, expected) in documents.items():
        best, pages = float("inf"), []
        for _ in range(repeat):
            started = time.perf_counter()
            pages = service.process(data, OcrOptions())
            best = min(best, time.perf_counter() - started)
        markdown = pages[0].markdown
        rows.append(
            {
                "case": name,
                "source": pages[0].source,
                "chars": len(normalize(expected)),
                "accuracy": round(accuracy(expected, markdown), 4),
                "paragraphs": f"{blocks(markdown)}/{blocks(expected)}",
                "seconds_per_page": round(best, 3),
                "pages_per_s": round(1 / best, 3),
            }
        )
    rows.append({"case": "engine load", "seconds_per_page": round(load_s, 3)})
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument("--threads", type=int, default=None, help="ONNX Runtime threads")
    parser.add_argument("--det", default="{}", help="extra RapidOCR params, as JSON")
    parser.add_argument("--only", default="", help="comma-separated cases")
    parser.add_argument("--json", help="write the rows here too")
    args = parser.parse_args()
    only = [name for name in args.only.split(",") if name]
    rows = run(args.repeat, args.threads, json.loads(args.det), only)
    print(
        f"cpus={os.cpu_count()} load={os.getloadavg()[0]:.2f} threads={args.threads} det={args.det}"
    )
    print("| case | source | chars | char accuracy | paragraphs | s/page | pages/s |")
    print("|---|---|---|---|---|---|---|")
    for row in rows:
        print(
            f"| {row['case']} | {row.get('source', '')} | {row.get('chars', '')} | "
            f"{row.get('accuracy', '')} | {row.get('paragraphs', '')} | "
            f"{row['seconds_per_page']} | {row.get('pages_per_s', '')} |"
        )
    if args.json:
        with open(args.json, "w", encoding="utf-8") as out:
            json.dump(rows, out, indent=2, ensure_ascii=False)


if __name__ == "__main__":
    main()
