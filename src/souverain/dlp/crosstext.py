"""Findings across the texts of one request: a value split over two messages, two content
parts or two strings of tool arguments is still one value.

Each text is scanned alone; then the junctions between consecutive texts are scanned as if
the texts were one string (up to REACH characters on each side of a junction, and every
text in between when they are short). A finding that crosses a junction is reported in each
text it touches, as the part of its span inside that text, so the transform replaces every
part: the upstream sees no piece of the value.

Cost: one extra scan of at most 2 x REACH characters per junction, and never more than the
texts' total length (junction windows that overlap are scanned once, as one window).
"""

from __future__ import annotations

import re
from bisect import bisect_right
from collections.abc import Sequence
from typing import Any, Protocol

from souverain.dlp.detectors import Finding, merge

REACH = 160  # characters read on each side of a junction: any value but a long secret
# Which texts count as neighbours: consecutive ones, and every other one, because a JSON
# object's strings come key, value, key, value: two halves of a value sit two texts apart.
_STRIDES = ((0, 1), (0, 2), (1, 2))


# A JSON key or a field name: a short identifier not in capitals (AKIA... halves are).
_KEY = re.compile(r"(?=.*[a-z])[A-Za-z_][A-Za-z0-9_\-]{0,39}")


class _Scanner(Protocol):
    def scan(self, text: str) -> Sequence[Any]: ...


def scan_texts(scanner: _Scanner, texts: Sequence[str]) -> list[list[Any]]:
    """Per text, its findings, including its parts of findings that cross into its neighbours."""
    per_text: list[list[Any]] = [list(scanner.scan(text)) for text in texts]
    crossing: list[list[Finding]] = [[] for _ in texts]
    for first, stride in _STRIDES:
        indices = range(first, len(texts), stride)
        if len(indices) > 1:
            _junctions(scanner, texts, indices, crossing)
    for index, parts in enumerate(crossing):
        if parts:
            per_text[index] = merge([*per_text[index], *parts])
    return per_text


def _junctions(
    scanner: _Scanner,
    texts_at: Sequence[str],
    indices: range,
    crossing: list[list[Finding]],
) -> None:
    """Adds to `crossing` the parts of findings across the junctions of `texts` (the texts
    at `indices` of the request, in order)."""
    texts = [texts_at[i] for i in indices]
    starts = _starts(texts)
    for low, high in _windows(texts, starts):
        window = _slice(texts, starts, low, high)
        for f in scanner.scan(window):
            start, end = low + f.start, low + f.end
            first = bisect_right(starts, start) - 1
            last = bisect_right(starts, end - 1) - 1
            if first == last:
                continue  # inside one text: that text's own scan has the final word on it
            parts = []
            for position in range(first, last + 1):
                text, offset = texts[position], starts[position]
                s, e = max(start - offset, 0), min(end - offset, len(text))
                while s < e and text[s].isspace():  # a junction's spaces stay as they are
                    s += 1
                while e > s and text[e - 1].isspace():
                    e -= 1
                if s < e:
                    parts.append((indices[position], Finding(s, e, f.type, text[s:e])))
            for index, part in _without_glued_keys(parts, texts_at):
                crossing[index].append(part)


def _without_glued_keys(
    parts: list[tuple[int, Finding]], texts: Sequence[str]
) -> list[tuple[int, Finding]]:
    """Texts joined with nothing between them glue a JSON key to its value ("email" +
    "jeanne@example.fr" reads as one address, "example.fr" + "x" as a longer one): whole
    texts shaped like a key are dropped from the ends of a finding, and a finding that
    still holds one inside, or no longer crosses a junction, is that artefact."""

    def glued_key(index: int, part: Finding) -> bool:
        whole = part.start == 0 and part.end == len(texts[index])
        return whole and _KEY.fullmatch(part.value) is not None

    while parts and glued_key(*parts[0]):
        parts = parts[1:]
    while parts and glued_key(*parts[-1]):
        parts = parts[:-1]
    if len(parts) < 2 or any(glued_key(*part) for part in parts):
        return []
    return parts


def _starts(texts: Sequence[str]) -> list[int]:
    starts, position = [], 0
    for text in texts:
        starts.append(position)
        position += len(text)
    return starts


def _windows(texts: Sequence[str], starts: list[int]) -> list[tuple[int, int]]:
    """Spans of the joined texts around each junction between two non-empty texts, merged
    where they overlap."""
    total = starts[-1] + len(texts[-1]) if texts else 0
    windows: list[tuple[int, int]] = []
    previous_nonempty = False
    for text, start in zip(texts, starts, strict=True):
        if not text:
            continue
        if previous_nonempty:
            low, high = max(0, start - REACH), min(total, start + REACH)
            if windows and low <= windows[-1][1]:
                windows[-1] = (windows[-1][0], high)
            else:
                windows.append((low, high))
        previous_nonempty = True
    return windows


def _slice(texts: Sequence[str], starts: list[int], low: int, high: int) -> str:
    """The joined texts' characters low..high, without joining all of them."""
    first = bisect_right(starts, low) - 1
    pieces = []
    index = first
    while index < len(texts) and starts[index] < high:
        text, offset = texts[index], starts[index]
        pieces.append(text[max(low - offset, 0) : high - offset])
        index += 1
    return "".join(pieces)
