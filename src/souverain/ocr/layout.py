"""Lines of text with their boxes → blocks (paragraphs, titles, images) → markdown.

Deliberately simple, and the same for OCR'd pages and PDF text layers:

1. **Rows.** OCR lines are first grouped into columns where the page has them
   (columns.py), then sorted top to bottom within each; lines that overlap vertically
   by at least half the smaller height sit on one row (a line the detector split in
   two, or cells of a table row) and are joined left to right with a space. A PDF text
   layer already comes in the order its author wrote it, which is kept (it is usually
   the reading order, multi-column layouts included): each of its lines is a row.
2. **Paragraphs.** A new block starts where the vertical gap before a row is clearly
   larger than the page's usual line gap: more than the usual gap (the lower quartile
   of the gaps; OCR boxes are padded, and those of a skewed scan overlap, so it is
   often negative) plus 0.4 median row heights, and always past 1.5 row heights. A
   row whose height differs from the previous one by a third or more (a heading next
   to body text), or that goes back up the page (a new column), starts a block too.
3. **Titles.** A block of one or two rows at least 1.3 times the median row height is
   a title: `#` from 1.8 times, `##` below.

Rows of one block are joined with a newline, blocks with a blank line; the text is not
escaped. Known limits: tables come out as rows of cells separated by spaces, and
headers, footers, lists and footnotes are not told apart from the body text.
"""

from __future__ import annotations

from dataclasses import dataclass
from itertools import pairwise
from statistics import median

from ..protocol.ocr import Box, PageBlock, PageImage
from . import columns

SAME_ROW_OVERLAP = 0.5
PARAGRAPH_GAP = 0.4  # row heights of space over the usual gap
TITLE_RATIO = 1.3
TOP_TITLE_RATIO = 1.8


@dataclass(frozen=True, slots=True)
class Line:
    text: str
    box: Box
    score: float = 1.0

    @property
    def height(self) -> float:
        return self.box.bottom - self.box.top


@dataclass(slots=True)
class _Row:
    lines: list[Line]
    box: Box

    @property
    def height(self) -> float:
        return self.box.bottom - self.box.top

    @property
    def text(self) -> str:
        return " ".join(line.text for line in sorted(self.lines, key=lambda ln: ln.box.left))


def rows_of(lines: list[Line], *, reorder: bool) -> list[_Row]:
    lines = [line for line in lines if line.text.strip()]
    if not reorder:
        return [_Row([line], line.box) for line in lines]
    rows: list[_Row] = []
    for region in columns.regions(lines):
        first = len(rows)
        for line in sorted(region, key=lambda ln: (ln.box.top, ln.box.left)):
            row = rows[-1] if len(rows) > first else None
            if row is not None and _overlap(row.box, line.box) >= SAME_ROW_OVERLAP * min(
                row.height, line.height
            ):
                row.lines.append(line)
                row.box = _union(row.box, line.box)
            else:
                rows.append(_Row([line], line.box))
    return rows


def blocks_of(lines: list[Line], *, reorder: bool) -> list[PageBlock]:
    """Paragraphs and titles, in reading order."""
    rows = rows_of(lines, reorder=reorder)
    if not rows:
        return []
    typical = median(row.height for row in rows) or 1.0
    gaps = [b.box.top - a.box.bottom for a, b in pairwise(rows)]
    between = sorted(gap for gap in gaps if gap > -typical)  # not the jumps to a new column
    usual = between[len(between) // 4] if between else 0.0
    threshold = min(usual + PARAGRAPH_GAP * typical, 1.5 * typical)

    groups: list[list[_Row]] = [[rows[0]]]
    for (previous, row), gap in zip(pairwise(rows), gaps, strict=True):
        heights = sorted((previous.height, row.height))
        new_block = (
            gap > threshold
            or row.box.bottom < previous.box.top  # back up the page: a new column
            or heights[1] > heights[0] * 1.33
        )
        if new_block:
            groups.append([row])
        else:
            groups[-1].append(row)
    return [_block(group, typical) for group in groups]


def _block(rows: list[_Row], typical: float) -> PageBlock:
    box = rows[0].box
    for row in rows[1:]:
        box = _union(box, row.box)
    scores = [line.score for row in rows for line in row.lines]
    height = median(row.height for row in rows)
    text = "\n".join(row.text for row in rows)
    if len(rows) <= 2 and height >= TITLE_RATIO * typical and len(text) <= 200:
        level = 1 if height >= TOP_TITLE_RATIO * typical else 2
        return PageBlock("title", box, "#" * level + " " + text.replace("\n", " "), scores)
    return PageBlock("text", box, text, scores)


def place_images(blocks: list[PageBlock], images: list[PageImage]) -> list[PageBlock]:
    """Image blocks (`![img-0.jpeg](img-0.jpeg)`) before the first text block below them."""
    placed = list(blocks)
    for image in sorted(images, key=lambda im: im.box.top, reverse=True):
        block = PageBlock("image", image.box, f"![{image.id}]({image.id})", image_id=image.id)
        position = next(
            (i for i, other in enumerate(placed) if other.box.top >= image.box.top),
            len(placed),
        )
        placed.insert(position, block)
    return placed


def markdown_of(blocks: list[PageBlock]) -> str:
    return "\n\n".join(block.content for block in blocks)


def _overlap(a: Box, b: Box) -> float:
    return max(0.0, min(a.bottom, b.bottom) - max(a.top, b.top))


def _union(a: Box, b: Box) -> Box:
    return Box(
        min(a.left, b.left), min(a.top, b.top), max(a.right, b.right), max(a.bottom, b.bottom)
    )
