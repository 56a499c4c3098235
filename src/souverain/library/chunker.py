"""A document's pages → one text, and chunks with their provenance (page, offsets).

The document's text is its pages joined by a blank line (`text_content` returns it);
`page_starts[i]` is where page i+1 begins. A chunk never crosses a page, so it has one
page number (1-based; None for formats without pages), and `text[start:end]` is
exactly its text: a citation can point at it.

Chunks are at most `size` characters, cut at the best boundary in their second half:
a blank line (paragraph), else a line end, else a sentence end, else a space, else
anywhere. The next chunk starts `overlap` characters before the cut (at a word start),
so a sentence cut in two is whole in one of them.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

PAGE_SEPARATOR = "\n\n"
_BOUNDARIES = (
    re.compile(r"\n\s*\n"),  # paragraphs
    re.compile(r"\n"),
    re.compile(r"(?<=[.!?;:])\s"),  # sentences
    re.compile(r"\s"),
)


@dataclass(frozen=True, slots=True)
class Chunk:
    text: str
    page: int | None
    start: int  # in the document's text
    end: int


def assemble(pages: list[str]) -> tuple[str, list[int]]:
    starts, position = [], 0
    for page in pages:
        starts.append(position)
        position += len(page) + len(PAGE_SEPARATOR)
    return PAGE_SEPARATOR.join(pages), starts


def page_range(text: str, starts: list[int], first: int | None, last: int | None) -> str:
    """Pages `first`..`last` (1-based, inclusive) of a document's text."""
    if not starts:
        return text
    first = max(1, first or 1)
    last = min(len(starts), last or len(starts))
    if first > last:
        return ""
    end = starts[last] - len(PAGE_SEPARATOR) if last < len(starts) else len(text)
    return text[starts[first - 1] : end]


def chunk_pages(pages: list[str], *, paged: bool, size: int, overlap: int) -> list[Chunk]:
    _, starts = assemble(pages)
    chunks = []
    for index, (page, offset) in enumerate(zip(pages, starts, strict=True)):
        for start, end in split(page, size=size, overlap=overlap):
            chunks.append(
                Chunk(page[start:end], index + 1 if paged else None, offset + start, offset + end)
            )
    return chunks


def split(text: str, *, size: int, overlap: int) -> list[tuple[int, int]]:
    """(start, end) spans of at most `size` characters covering the text's words."""
    overlap = min(overlap, size // 4)  # each chunk moves on by at least a quarter
    spans: list[tuple[int, int]] = []
    start = _skip_space(text, 0)
    while start < len(text):
        end = len(text) if len(text) - start <= size else _cut(text, start, start + size)
        trimmed = len(text[start:end].rstrip())
        if trimmed:
            spans.append((start, start + trimmed))
        if end >= len(text):
            break
        following = _skip_space(text, end)
        if overlap:
            back = _word_start(text, max(start + 1, end - overlap), end)
            following = min(following, back) if back > start else following
        start = max(following, start + 1)
    return spans


def _cut(text: str, start: int, limit: int) -> int:
    """The end of a chunk starting at `start`: the best boundary in (midpoint, limit]."""
    low = start + (limit - start) // 2
    window = text[low:limit]
    for boundary in _BOUNDARIES:
        last = None
        for match in boundary.finditer(window):
            last = match
        if last is not None:
            return low + last.start()
    return limit


def _skip_space(text: str, position: int) -> int:
    while position < len(text) and text[position].isspace():
        position += 1
    return position


def _word_start(text: str, position: int, end: int) -> int:
    """The first word start at or after `position`, before `end` (else `end`)."""
    if position > 0 and not text[position - 1].isspace():
        while position < end and not text[position].isspace():
            position += 1
    return _skip_space(text, position) if position < end else end
