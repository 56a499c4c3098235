"""Normalized views of a text, with offsets back to the original.

Copy-paste from PDFs and web pages (and anyone avoiding a guard) spells identifiers in ways
the detectors' patterns do not: full-width or Arabic-Indic digits, a zero-width space or a
soft hyphen inside, a no-break space or a tab between groups, a lower-case IBAN. Detectors
run on views where those spellings are undone, and each finding is mapped back to the span
of the original text that holds the whole spelled value, so the transform replaces it all.

Every view is built as a "marked" string of the original's length: each character is mapped
to exactly one character, and the ones the view drops become MARK. The view is the marked
string without its marks, so a view offset maps back by counting marks, which str.count does
at C speed: building a view and mapping findings back stay linear in the text, with no
per-character Python code (a hostile 8 MiB body must not cost seconds).

- `plain`: NFKC where it gives one character (full-width letters, digits and at sign), every
  decimal digit of any script as ASCII, every space and tab as " ", dashes as "-", and
  format characters (Unicode Cf: zero-width space and joiner, soft hyphen, word joiner, BOM)
  and invisible fillers dropped. Identical to the text for ASCII without tabs (no view then).
- `compact`: `plain` without any separator (whitespace, ".", "/", "_", "-") and in upper
  case, for the identifiers whose own checks are strong enough to be searched with no
  separators and no word boundaries (IBAN, card, NIR, AWS and GitHub token shapes).
"""

from __future__ import annotations

import re
import unicodedata
from bisect import bisect_right
from collections.abc import Iterable
from functools import cache
from typing import NamedTuple

from souverain.dlp import budget

MARK = "\x00"  # stands in the marked string for a character the view drops
_ASTRAL = re.compile("[\U00010000-\U0010ffff]")
_NOT_MARK = re.compile("[^\x00]")
_DASHES = "\u2010\u2011\u2012\u2013\u2014\u2015\u2212\ufe58\ufe63\uff0d"
# Invisible characters that are not Cf but render as nothing (fillers, variation selectors).
_INVISIBLE = "\u034f\u115f\u1160\u3164\uffa0" + "".join(map(chr, range(0xFE00, 0xFE10)))
_SEPARATORS = " \t\n\r\x0b\x0c._/-"


@cache
def _plain_table() -> dict[int, int | None]:
    """Code point -> ASCII-ish replacement, for every character `plain` changes (built once,
    on the first non-ASCII text; about 0.1 s)."""
    # NUL drops like a format character: MARK is NUL, so the byte tables keep it as is.
    table: dict[int, int | None] = {0: 0, 9: ord(" "), 0x0B: ord(" "), 0x0C: ord(" ")}
    planes = [range(0x80, 0x10000), range(0x1D400, 0x1D800), range(0xE0000, 0xE0080)]
    for block in planes:
        for cp in block:
            c = chr(cp)
            category = unicodedata.category(c)
            if category == "Cf" or c in _INVISIBLE:
                table[cp] = 0  # MARK
            elif c in "\u2028\u2029\x85":
                table[cp] = ord("\n")
            elif c.isspace():
                table[cp] = ord(" ")
            elif c in _DASHES:
                table[cp] = ord("-")
            elif category == "Nd":
                table[cp] = ord("0") + unicodedata.decimal(c)
            else:
                folded = unicodedata.normalize("NFKC", c)
                if len(folded) == 1 and folded.isascii():  # only what detectors read
                    table[cp] = ord(folded)
    return table


class _Tables(NamedTuple):
    wide: re.Pattern[str]  # a character past Latin-1 that `plain` changes (most texts: none)
    any_wide: re.Pattern[str]  # either
    astral: re.Pattern[str]  # the same past the BMP (kept apart: sre makes a bitmap of BMP ones)
    changed_bmp: re.Pattern[str]  # any character of the BMP that `plain` changes (tab, NBSP...)
    full: list[int]  # the whole table: translate reads a list without a dict's miss cost
    latin1: bytes  # `plain` on Latin-1 bytes
    compact: bytes  # `compact` on Latin-1 bytes


@cache
def _tables() -> _Tables:
    table = _plain_table()
    full = list(range(0x110000))
    for cp, to in table.items():
        full[cp] = to or 0
    latin1 = bytes(full[b] for b in range(0x100))
    return _Tables(
        wide=_class(cp for cp in table if 0xFF < cp <= 0xFFFF),
        astral=_class(cp for cp in table if cp > 0xFFFF),
        any_wide=_class(cp for cp in table if cp > 0xFF),
        changed_bmp=_class(cp for cp in table if cp <= 0xFFFF),
        full=full,
        latin1=latin1,
        compact=bytes(_compact_code(c) for c in latin1),
    )


def warm_up() -> None:
    """Builds the tables now (about 0.4 s), not on the first request with non-ASCII text."""
    _tables()


def _class(code_points: Iterable[int]) -> re.Pattern[str]:
    """A regex character class of these code points, as ranges (compiled to a bitmap)."""
    ranges: list[list[int]] = []
    for cp in sorted(code_points):
        if ranges and ranges[-1][1] == cp - 1:
            ranges[-1][1] = cp
        else:
            ranges.append([cp, cp])
    members = "".join(f"{re.escape(chr(a))}-{re.escape(chr(b))}" for a, b in ranges)
    return re.compile(f"[{members}]")


def _compact_code(code: int) -> int:
    if chr(code) in _SEPARATORS:
        return 0
    return code - 32 if ord("a") <= code <= ord("z") else code


class View:
    """A view of a text and the way back: `original_span(s, e)` of any span of `text`."""

    __slots__ = ("_origin", "marked", "text")

    def __init__(self, marked: str) -> None:
        self.marked = marked
        self.text = marked.replace(MARK, "") if MARK in marked else marked
        # Checkpoints (view offset, original offset) every so often: mapping a span starts
        # from the nearest one, so findings can be mapped in any order in bounded time.
        self._origin: tuple[list[int], list[int]] | None = None

    @property
    def identity(self) -> bool:
        return len(self.text) == len(self.marked)

    def original_span(self, start: int, end: int) -> tuple[int, int]:
        if self.identity:
            return start, end
        return self._original(start), self._original(end - 1) + 1

    def _original(self, position: int) -> int:
        views, origins = self._checkpoints()
        at = bisect_right(views, position) - 1
        return self._advance(origins[at], position - views[at])

    def _advance(self, origin: int, count: int) -> int:
        """The original offset of the character `count` view characters after the one at
        `origin` (itself not a mark): gallop over the marks with str.count."""
        marked = self.marked
        q = origin + count
        skipped = marked.count(MARK, origin, q)
        while skipped:
            low, q = q, q + skipped
            skipped = marked.count(MARK, low, q)
        landing = _NOT_MARK.search(marked, q)
        assert landing is not None  # `position` is inside the view
        return landing.start()

    def _checkpoints(self) -> tuple[list[int], list[int]]:
        if self._origin is None:
            step = 4096
            views, origins = [0], [self._advance(0, 0)] if self.text else [0]
            for position in range(step, len(self.text), step):
                origins.append(self._advance(origins[-1], step))
                views.append(position)
            self._origin = (views, origins)
        return self._origin


def _latin1(text: str, table: bytes) -> str:
    # Characters past Latin-1 pass through as "?" (one each: offsets hold). Only used when
    # none of them is one the view changes, and no detector reads "?" as part of a value.
    return text.encode("latin-1", "replace").translate(table).decode("latin-1")


_prepared_cache: tuple[str, str, bool] = ("", "", False)


def _prepared(text: str) -> tuple[str, bool]:
    """(`text` with the characters past Latin-1 that `plain` changes already mapped, whether
    `plain` changes anything at all). One regex pass finds out for most texts; the mapping
    is a callback per character where they are few, the whole table where many. A one-entry
    cache serves both views of one scan (it holds the text, so `is` is safe)."""
    global _prepared_cache
    if _prepared_cache[0] is text:
        return _prepared_cache[1], _prepared_cache[2]
    tables = _tables()
    mapped = text
    if text.isascii():
        changed = any(c in text for c in "\t\x00\x0b\x0c")
    else:
        first = tables.changed_bmp.search(text)
        astral = _ASTRAL.search(text) is not None
        wide = first is not None and tables.wide.search(text, first.start()) is not None
        wide = wide or (astral and tables.astral.search(text) is not None)
        changed = first is not None or wide
        if wide and len(text) > 65_536:  # the whole table: 30-100 ns a character
            budget.charge(len(text) * budget.PER_TRANSLATED_CHAR)
            mapped = text.translate(tables.full)
        elif wide:  # a callback per changed character: cheaper on a prompt with a few
            full = tables.full
            mapped = tables.any_wide.sub(lambda m: chr(full[ord(m.group())]), text)
    _prepared_cache = (text, mapped, changed)
    return mapped, changed


def plain(text: str) -> View | None:
    """The `plain` view, or None when it would equal the text."""
    mapped, changed = _prepared(text)
    return View(_latin1(mapped, _tables().latin1)) if changed else None


def compact(text: str) -> View:
    """The `compact` view: `plain`, then no separators and upper case."""
    return View(_latin1(_prepared(text)[0], _tables().compact))
