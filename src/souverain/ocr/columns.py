"""Reading order for OCR'd pages with columns: a gutter-finding pass before the rows.

Lines are cut into horizontal bands (runs of lines that overlap vertically). A band's
widest empty vertical strip is a candidate gutter; consecutive bands whose own strips
overlap it, or whose lines stay on one side of it, belong to one section, and a band
that crosses it (a title or a paragraph across the whole width) closes the section.
A section is read as columns, left then right (each side looked at again, for three
columns), only if both sides look like running text: at least three lines each, of a
median width of at least a quarter of the page's text width. A form or a table, whose
cells are short, is read row by row instead, which keeps each label next to its value.
"""

from __future__ import annotations

from statistics import median
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .layout import Line

MIN_COLUMN_LINES = 3
MIN_COLUMN_WIDTH = 0.25  # of the page's text width, median line
MAX_DEPTH = 3

Gap = tuple[float, float]


def regions(lines: list[Line], depth: int = 0) -> list[list[Line]]:
    """Groups of lines in reading order; each group is then read top to bottom."""
    if len(lines) < 2 * MIN_COLUMN_LINES or depth >= MAX_DEPTH:
        return [lines]
    width = max(ln.box.right for ln in lines) - min(ln.box.left for ln in lines)
    min_gap = 0.5 * median(ln.box.bottom - ln.box.top for ln in lines)
    ordered: list[list[Line]] = []
    section: list[Line] = []
    gutter: Gap | None = None
    for band in _bands(lines):
        gap = _widest_gap(band, min_gap)
        if gutter is not None and gap is not None and _overlaps(gap, gutter):
            section += band
            gutter = (max(gap[0], gutter[0]), min(gap[1], gutter[1]))
        elif gutter is not None and not _crosses(band, gutter):
            section += band  # a line on one side only
        elif gutter is None and gap is not None and not _crosses(section, gap):
            section += band
            gutter = gap
        else:
            ordered += _read(section, gutter, width, depth)
            section, gutter = list(band), gap
    ordered += _read(section, gutter, width, depth)
    return [group for group in ordered if group]


def _read(section: list[Line], gutter: Gap | None, width: float, depth: int) -> list[list[Line]]:
    if gutter is None:
        return [section]
    split = (gutter[0] + gutter[1]) / 2
    left = [ln for ln in section if ln.box.right <= split]
    right = [ln for ln in section if ln.box.right > split]
    if not (_running_text(left, width) and _running_text(right, width)):
        return [section]
    return [*regions(left, depth + 1), *regions(right, depth + 1)]


def _running_text(lines: list[Line], width: float) -> bool:
    return (
        len(lines) >= MIN_COLUMN_LINES
        and median(ln.box.right - ln.box.left for ln in lines) >= MIN_COLUMN_WIDTH * width
    )


def _bands(lines: list[Line]) -> list[list[Line]]:
    bands: list[list[Line]] = []
    bottom = float("-inf")
    for line in sorted(lines, key=lambda ln: ln.box.top):
        if bands and line.box.top < bottom:
            bands[-1].append(line)
            bottom = max(bottom, line.box.bottom)
        else:
            bands.append([line])
            bottom = line.box.bottom
    return bands


def _widest_gap(band: list[Line], min_gap: float) -> Gap | None:
    spans = sorted((ln.box.left, ln.box.right) for ln in band)
    best: Gap | None = None
    reach = spans[0][1]
    for left, right in spans[1:]:
        if left - reach >= min_gap and (best is None or left - reach > best[1] - best[0]):
            best = (reach, left)
        reach = max(reach, right)
    return best


def _crosses(lines: list[Line], gap: Gap) -> bool:
    return any(ln.box.left < gap[1] - 1 and ln.box.right > gap[0] + 1 for ln in lines)


def _overlaps(a: Gap, b: Gap) -> bool:
    return min(a[1], b[1]) > max(a[0], b[0])
