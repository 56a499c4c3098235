"""A DOCX is a ZIP of XML parts: how much it may expand, checked before python-docx reads it.

Two passes, both bounded:

1. `check_declared` reads only the ZIP's central directory (no inflating): too many
   members, members that together declare more than `max_unpacked_bytes`, or a large
   member compressed more than `max_compression_ratio` times (a zip bomb) are refused.
   It runs at upload too, so the uploader hears it at once.
2. `inflate_checked` then inflates every member as a stream, 64 KiB at a time, counting
   what really comes out (a member whose header lies is cut at the cap, and its CRC then
   fails), and feeds the XML parts (by name, or by their first byte: python-docx finds
   parts through relationships, not names) to expat, which counts elements (at most
   `max_xml_elements`) and refuses any DOCTYPE (entity expansion, external entities).

Only then does python-docx build its tree, from an archive known to be small enough.
"""

from __future__ import annotations

import io
import zipfile
from xml.parsers import expat

from ..errors import InvalidRequest, PayloadTooLarge
from .limits import MIB, IngestLimits

MAX_MEMBERS = 10_000
RATIO_FROM_BYTES = MIB  # smaller members may compress as much as they like
CHUNK = 65536
XML_SUFFIXES = (".xml", ".rels")


class _TooManyElements(Exception):
    pass


class _Doctype(Exception):
    pass


def check_declared(data: bytes, limits: IngestLimits) -> None:
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            members = archive.infolist()
    except (zipfile.BadZipFile, ValueError, OSError) as exc:
        raise InvalidRequest(
            f"the Word document cannot be read (a damaged ZIP archive: {exc})", param="file"
        ) from None
    if len(members) > MAX_MEMBERS:
        raise PayloadTooLarge(
            f"the Word document holds {len(members)} parts; at most {MAX_MEMBERS} are read",
            param="file",
        )
    declared = sum(member.file_size for member in members)
    if declared > limits.max_unpacked_bytes:
        raise _too_large(limits)
    for member in members:
        ratio = member.file_size / max(member.compress_size, 1)
        if member.file_size > RATIO_FROM_BYTES and ratio > limits.max_compression_ratio:
            raise PayloadTooLarge(
                f"the Word document's part {member.filename[:200]!r} is compressed "
                f"{ratio:.0f} times (a zip bomb?); at most {limits.max_compression_ratio:g} "
                "(libraries.limits.max_compression_ratio)",
                param="file",
            )


def inflate_checked(data: bytes, limits: IngestLimits) -> None:
    check_declared(data, limits)
    total = 0
    elements = [0]
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            for member in archive.infolist():
                parser: expat.XMLParserType | None = None
                with archive.open(member) as stream:
                    first = True
                    while chunk := stream.read(CHUNK):
                        if first and _looks_xml(member.filename, chunk):
                            parser = _xml_counter(elements, limits)
                        first = False
                        total += len(chunk)
                        if total > limits.max_unpacked_bytes:
                            raise _too_large(limits)
                        if parser is not None:
                            parser.Parse(chunk, False)
                if parser is not None:
                    parser.Parse(b"", True)
    except _TooManyElements:
        raise PayloadTooLarge(
            f"the Word document has more than {limits.max_xml_elements} XML elements "
            "(libraries.limits.max_xml_elements)",
            param="file",
        ) from None
    except _Doctype:
        raise InvalidRequest(
            "the Word document's XML declares a DOCTYPE, which Word never writes; refused "
            "(entity expansion)",
            param="file",
        ) from None
    except (zipfile.BadZipFile, zipfile.LargeZipFile, EOFError, OSError, ValueError) as exc:
        raise InvalidRequest(
            f"the Word document cannot be read (a damaged ZIP archive: {exc})", param="file"
        ) from None
    except expat.ExpatError as exc:
        raise InvalidRequest(
            f"the Word document's XML is malformed ({exc})", param="file"
        ) from None


def _xml_counter(elements: list[int], limits: IngestLimits) -> expat.XMLParserType:
    parser = expat.ParserCreate()
    cap = limits.max_xml_elements

    def start(name: str, attributes: object) -> None:
        elements[0] += 1
        if elements[0] > cap:
            raise _TooManyElements

    def doctype(*args: object) -> None:
        raise _Doctype

    parser.StartElementHandler = start
    parser.StartDoctypeDeclHandler = doctype
    parser.buffer_text = True
    return parser


def _looks_xml(name: str, first: bytes) -> bool:
    """An XML part, whatever its name: python-docx finds parts through the package's
    relationships, so a main document called `word/x.bin` is still parsed as XML.
    SVG images are XML too, but python-docx keeps them as bytes."""
    lowered = name.lower()
    if lowered.endswith(XML_SUFFIXES):
        return True
    return not lowered.endswith(".svg") and first.lstrip(b"\xef\xbb\xbf \t\r\n").startswith(b"<")


def _too_large(limits: IngestLimits) -> PayloadTooLarge:
    return PayloadTooLarge(
        f"the Word document expands to more than {limits.max_unpacked_bytes} bytes once "
        "unpacked (libraries.limits.max_unpacked_bytes)",
        param="file",
    )
