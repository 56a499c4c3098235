"""Reading an input file line by line from its stored chunks, never whole.

A line longer than the limit is not gathered: the reader reports it as too long and
skips to its end, so one huge line costs no more memory than the limit. Blank lines are
skipped (a trailing newline, or blank lines between requests): they are not requests.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class RawLine:
    number: int  # 1-based, in its file, counting blank lines
    offset: int  # where the line starts in its file (bytes)
    data: bytes | None  # None: longer than the limit


def read_lines(chunks: Iterable[bytes], max_line_bytes: int, start: int = 0) -> Iterator[RawLine]:
    """Non-blank lines of a file given as chunks; `start` skips that many bytes first
    (the offset of a line), and line numbers then count from that line as 1."""
    buffer = bytearray()
    skip = start
    number = 1
    base = start  # the file offset of the current chunk's first byte
    line_start = start
    too_long = False
    for chunk in chunks:
        if skip:
            if len(chunk) <= skip:
                skip -= len(chunk)
                continue
            chunk, skip = chunk[skip:], 0
        position = 0
        while position < len(chunk):
            end = chunk.find(b"\n", position)
            piece = chunk[position:] if end < 0 else chunk[position:end]
            if not too_long:
                if len(buffer) + len(piece) > max_line_bytes:
                    too_long = True
                    buffer.clear()
                else:
                    buffer += piece
            if end < 0:
                break
            line = _ended(number, line_start, buffer, too_long)
            if line is not None:
                yield line
            number += 1
            line_start = base + end + 1
            buffer.clear()
            too_long = False
            position = end + 1
        base += len(chunk)
    line = _ended(number, line_start, buffer, too_long)
    if line is not None:
        yield line


def _ended(number: int, offset: int, buffer: bytearray, too_long: bool) -> RawLine | None:
    if too_long:
        return RawLine(number, offset, None)
    if not bytes(buffer).strip():
        return None
    return RawLine(number, offset, bytes(buffer))
