"""Reading a multipart upload as it streams in: the file part to a temporary file on disk,
its bytes counted, and the request refused the moment it passes the limit.

Starlette's `request.form()` spools a file to disk too, but only after reading the whole
body, with no limit on a file's size: a 50 GB upload would be written out in full before
anyone could say no. Here the parser (python-multipart, the one Starlette uses) is fed
the body chunk by chunk; a file over `max_file_bytes` raises 413 while the rest of the
body is still on the wire, and nothing past the limit is ever read or written.

The temporary file is unlinked as it is created (`TemporaryFile`), in the gateway's
private data folder: a crash leaves nothing behind, and nothing else can open it.
"""

from __future__ import annotations

import asyncio
import codecs
import tempfile
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

from python_multipart.exceptions import FormParserError
from python_multipart.multipart import MultipartParser, parse_options_header

from ..errors import InvalidRequest, SouverainError
from .store import file_too_large

FILE_FIELD = "file"
MAX_PARTS = 64  # the fields read are a handful; others are skipped, but counted
MAX_FIELD_BYTES = 4096  # a form field's value (not the file)
MAX_PART_HEADER_BYTES = 16 * 1024  # one part's headers together


@dataclass
class ReceivedUpload:
    """What the form held: its text fields and its one file, on disk, read from 0."""

    fields: dict[str, str]
    file: BinaryIO
    filename: str | None
    content_type: str | None
    size: int


@dataclass
class _Part:
    name: str = ""
    is_file: bool = False
    skipped: bool = False  # a field this upload does not read: its bytes are dropped
    filename: str | None = None
    content_type: str | None = None
    value: bytearray = field(default_factory=bytearray)


class _FormReader:
    """python-multipart's callbacks: they only record; the caller writes to disk."""

    def __init__(self, max_file_bytes: int, fields: frozenset[str]) -> None:
        self.max_file_bytes = max_file_bytes
        self.known = fields
        self.fields: dict[str, str] = {}
        self.part = _Part()
        self.file_part: _Part | None = None
        self.file_size = 0
        self.pending: list[bytes] = []  # file bytes parsed but not yet written
        self.header_name = bytearray()
        self.header_value = bytearray()
        self.headers: dict[bytes, bytes] = {}
        self.header_bytes = 0
        self.parts = 0

    def on_part_begin(self) -> None:
        self.parts += 1
        if self.parts > MAX_PARTS:
            raise InvalidRequest(f"the form has more than {MAX_PARTS} parts")
        self.part, self.headers, self.header_bytes = _Part(), {}, 0

    def on_header_field(self, data: bytes, start: int, end: int) -> None:
        self._count_header(end - start)
        self.header_name += data[start:end]

    def on_header_value(self, data: bytes, start: int, end: int) -> None:
        self._count_header(end - start)
        self.header_value += data[start:end]

    def _count_header(self, size: int) -> None:
        self.header_bytes += size
        if self.header_bytes > MAX_PART_HEADER_BYTES:
            raise InvalidRequest(f"a form part's headers pass {MAX_PART_HEADER_BYTES} bytes")

    def on_header_end(self) -> None:
        self.headers[bytes(self.header_name).lower()] = bytes(self.header_value)
        self.header_name, self.header_value = bytearray(), bytearray()

    def on_headers_finished(self) -> None:
        disposition, options = parse_options_header(self.headers.get(b"content-disposition"))
        if disposition != b"form-data" or b"name" not in options:
            raise InvalidRequest("each form part needs Content-Disposition: form-data; name=...")
        part = self.part
        part.name = _text(options[b"name"], "a form field's name")
        if b"filename" in options:
            if part.name != FILE_FIELD:
                raise InvalidRequest(f"a file was sent in the field {part.name!r}; send it "
                                     f"in the field {FILE_FIELD!r}", param=part.name)  # fmt: skip
            if self.file_part is not None:
                raise InvalidRequest("send one file per upload", param=FILE_FIELD)
            part.is_file = True
            part.filename = _text(options[b"filename"], "the file name", lenient=True)
            content_type = self.headers.get(b"content-type")
            part.content_type = _text(content_type, "the file's Content-Type", lenient=True)[
                :200
            ] if content_type else None  # fmt: skip
            self.file_part = part
        elif part.name == FILE_FIELD:
            raise InvalidRequest(
                f"the field {FILE_FIELD!r} must be a file part (with a filename)", param=FILE_FIELD
            )
        else:
            part.skipped = part.name not in self.known  # unknown fields are ignored

    def on_part_data(self, data: bytes, start: int, end: int) -> None:
        part = self.part
        if part.is_file:
            self.file_size += end - start
            if self.file_size > self.max_file_bytes:
                raise file_too_large(self.max_file_bytes)
            self.pending.append(data[start:end])
            return
        if part.skipped:
            return
        part.value += data[start:end]
        if len(part.value) > MAX_FIELD_BYTES:
            raise InvalidRequest(f"the field {part.name!r} passes {MAX_FIELD_BYTES} bytes",
                                 param=part.name)  # fmt: skip

    def on_part_end(self) -> None:
        part = self.part
        if part.is_file or part.skipped:
            return
        if part.name in self.fields:
            raise InvalidRequest(f"the field {part.name!r} is sent twice", param=part.name)
        self.fields[part.name] = _text(bytes(part.value), f"the field {part.name!r}")


async def receive_upload(
    headers_content_type: str,
    body: AsyncIterator[bytes],
    max_file_bytes: int,
    spool: Path,
    fields: frozenset[str],
) -> ReceivedUpload:
    """Parse a multipart/form-data body as it arrives; refuse a file over the limit at once.
    Text fields named in `fields` are read (each once); others are skipped unread."""
    media_type, options = parse_options_header(headers_content_type)
    if media_type != b"multipart/form-data":
        raise InvalidRequest(f"send the file as multipart/form-data, in a field named {FILE_FIELD}")
    boundary = options.get(b"boundary")
    if not boundary or len(boundary) > 200:
        raise InvalidRequest("the multipart Content-Type has no usable boundary")
    reader = _FormReader(max_file_bytes, fields)
    parser = MultipartParser(boundary, {
        "on_part_begin": reader.on_part_begin, "on_part_data": reader.on_part_data,
        "on_part_end": reader.on_part_end, "on_header_field": reader.on_header_field,
        "on_header_value": reader.on_header_value, "on_header_end": reader.on_header_end,
        "on_headers_finished": reader.on_headers_finished,
    }, max_header_size=MAX_PART_HEADER_BYTES)  # fmt: skip
    file = await asyncio.to_thread(_spool_file, spool)
    try:
        async for chunk in body:
            _feed(parser, chunk)
            if reader.pending:
                data, reader.pending = b"".join(reader.pending), []
                await asyncio.to_thread(file.write, data)  # disk writes off the event loop
        _finish(parser)
        if reader.file_part is None:
            raise InvalidRequest(f"the form has no file part named {FILE_FIELD!r}",
                                 param=FILE_FIELD)  # fmt: skip
        file.seek(0)
        part = reader.file_part
        return ReceivedUpload(reader.fields, file, part.filename, part.content_type,
                              reader.file_size)  # fmt: skip
    except BaseException:
        file.close()
        raise


def _spool_file(spool: Path) -> BinaryIO:
    """An unnamed file in the private spool folder (gone when closed, or on a crash)."""
    spool.mkdir(mode=0o700, parents=True, exist_ok=True)
    return tempfile.TemporaryFile(dir=spool)  # closed by the caller


def _feed(parser: MultipartParser, chunk: bytes) -> None:
    try:
        parser.write(chunk)
    except SouverainError:
        raise
    except (FormParserError, ValueError) as exc:
        raise InvalidRequest(f"the multipart body cannot be read: {exc}") from None


def _finish(parser: MultipartParser) -> None:
    try:
        parser.finalize()
    except (FormParserError, ValueError) as exc:
        raise InvalidRequest(f"the multipart body cannot be read: {exc}") from None
    if parser.state.name != "END":  # the body stopped before its closing boundary
        raise InvalidRequest("the multipart body ends before its closing boundary")


def _text(raw: bytes, what: str, *, lenient: bool = False) -> str:
    """UTF-8 text; a name may be lenient (replacement characters) since it is cleaned."""
    try:
        value = codecs.decode(raw, "utf-8", "replace" if lenient else "strict")
    except UnicodeDecodeError:
        raise InvalidRequest(f"{what} is not UTF-8 text") from None
    if "\x00" in value and not lenient:
        raise InvalidRequest(f"{what} contains a NUL character")
    return value
