"""Document ingest under `libraries.limits`: bombs, page counts, OCR budgets, crashes, SIGTERM.

Real `souverain serve` processes on SQLite (one per configuration), and the document
store on SQLite and PostgreSQL. The hostile documents are made here: a DOCX whose
`document.xml` inflates to 120 MB from about 120 KB, one whose ZIP header lies about that
size, one with too many XML elements, a 10,000-page PDF made with pypdfium2, and a
scanned PDF that keeps the OCR busy for long enough to crash or stop its parser.
"""

from __future__ import annotations

import io
import os
import random
import signal
import time
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pypdfium2 as pdfium
import pytest
from sqlalchemy import create_engine, text

from souverain.config import OcrConfig
from souverain.errors import InvalidRequest, PayloadTooLarge
from souverain.library.limits import IngestLimits
from souverain.library.parsers import parse

from .conftest import Server, start_server, stop_server
from .test_library_units import docx_bytes
from .test_ocr_documents import png, scanned_pdf, text_image

pytestmark = pytest.mark.model
MB = 1024 * 1024


# ---- documents ----------------------------------------------------------------------------


def docx_with_body(body_chunks: Iterator[bytes]) -> bytes:
    """A real DOCX (python-docx's template) whose document.xml body is streamed in."""
    template = zipfile.ZipFile(io.BytesIO(docx_bytes()))
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as archive:
        for info in template.infolist():
            if info.filename != "word/document.xml":
                archive.writestr(info, template.read(info))
                continue
            head, tail = template.read(info).split(b"<w:body>")
            with archive.open("word/document.xml", "w") as member:
                member.write(head + b"<w:body>")
                for chunk in body_chunks:
                    member.write(chunk)
                member.write(tail)
    return out.getvalue()


def zip_bomb(megabytes: int = 120) -> bytes:
    paragraph = b"<w:p><w:r><w:t>" + b"A" * 4000 + b"</w:t></w:r></w:p>"
    return docx_with_body(paragraph for _ in range(megabytes * MB // len(paragraph)))


def lying_header(data: bytes, name: str, claimed: int) -> bytes:
    """The same ZIP, its local and central headers saying `name` inflates to `claimed`."""
    patched = bytearray(data)
    encoded = name.encode()
    local = patched.find(b"PK\x03\x04")
    while local != -1:
        if patched[local + 30 : local + 30 + len(encoded)] == encoded:
            patched[local + 22 : local + 26] = claimed.to_bytes(4, "little")
        local = patched.find(b"PK\x03\x04", local + 4)
    central = patched.find(b"PK\x01\x02")
    while central != -1:
        if patched[central + 46 : central + 46 + len(encoded)] == encoded:
            patched[central + 24 : central + 28] = claimed.to_bytes(4, "little")
        central = patched.find(b"PK\x01\x02", central + 4)
    return bytes(patched)


def many_elements(count: int) -> bytes:
    words = random.Random(7)  # barely compressible: the ratio check does not catch it
    return docx_with_body(
        b"".join(b'<w:p w:rsidR="%08X"/>' % words.getrandbits(32) for _ in range(1000))
        for _ in range(count // 1000)
    )


def renamed_body(data: bytes) -> bytes:
    """The same DOCX with its main part stored as `word/body.bin`, found through the
    package's relationships (python-docx reads it as XML all the same)."""
    source = zipfile.ZipFile(io.BytesIO(data))
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as archive:
        for info in source.infolist():
            content = source.read(info)
            if info.filename in ("[Content_Types].xml", "_rels/.rels"):
                content = content.replace(b"word/document.xml", b"word/body.bin")
            name = info.filename.replace("document.xml", "body.bin")
            archive.writestr(name, content)
    return out.getvalue()


def blank_pdf(pages: int) -> bytes:
    pdf = pdfium.PdfDocument.new()
    for _ in range(pages):
        pdf.new_page(595, 842).close()
    buffer = io.BytesIO()
    pdf.save(buffer)
    pdf.close()
    return buffer.getvalue()


def slow_scan(pages: int = 20) -> bytes:
    """Pages that are only images of text: each one rendered and OCR'd (seconds each)."""
    lines = [f"Line {n} of a scanned page that is slow to read, with words" for n in range(8)]
    return scanned_pdf([text_image([f"Page {page}", *lines]) for page in range(pages)])


# ---- the parsers, in this process -----------------------------------------------------------


def test_a_zip_bomb_is_refused_before_it_is_inflated() -> None:
    bomb = zip_bomb()
    assert len(bomb) < 2 * MB
    with pytest.raises(PayloadTooLarge, match="max_unpacked_bytes"):
        parse(bomb, "docx", ocr=None, config=OcrConfig())
    # Its header claims 900 KB: the stream is cut there and the CRC does not match.
    liar = lying_header(bomb, "word/document.xml", 900_000)
    with pytest.raises(InvalidRequest, match="cannot be read"):
        parse(liar, "docx", ocr=None, config=OcrConfig())
    strict = IngestLimits(max_compression_ratio=20)
    with pytest.raises(PayloadTooLarge, match="max_compression_ratio"):
        parse(zip_bomb(4), "docx", ocr=None, config=OcrConfig(), limits=strict)


def test_xml_elements_are_counted_and_doctypes_refused() -> None:
    limits = IngestLimits(max_xml_elements=40_000)  # python-docx's template has 18,680
    with pytest.raises(PayloadTooLarge, match="max_xml_elements"):
        parse(many_elements(30_000), "docx", ocr=None, config=OcrConfig(), limits=limits)
    assert parse(many_elements(10_000), "docx", ocr=None, config=OcrConfig(), limits=limits)
    hidden = renamed_body(many_elements(30_000))  # not named .xml, parsed as XML anyway
    assert parse(hidden, "docx", ocr=None, config=OcrConfig())  # python-docx reads it
    with pytest.raises(PayloadTooLarge, match="max_xml_elements"):
        parse(hidden, "docx", ocr=None, config=OcrConfig(), limits=limits)
    archive = zipfile.ZipFile(io.BytesIO(docx_bytes()))
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as rebuilt:
        for info in archive.infolist():
            data = archive.read(info)
            if info.filename == "word/document.xml":
                data = data.replace(
                    b"?>", b'?><!DOCTYPE w [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;">]>', 1
                )
            rebuilt.writestr(info, data)
    with pytest.raises(InvalidRequest, match="DOCTYPE"):
        parse(out.getvalue(), "docx", ocr=None, config=OcrConfig())


def test_pages_are_capped() -> None:
    with pytest.raises(PayloadTooLarge, match="max_pages"):
        parse(blank_pdf(30), "pdf", ocr=None, config=OcrConfig(), limits=IngestLimits(max_pages=20))


# ---- attempts, in the stores: tests/test_ingest_jobs.py (the library.ingest job kind) -----------


# ---- through the gateway ----------------------------------------------------------------


class Gateway:
    def __init__(self, server: Server) -> None:
        self.server = server
        self.http = server.client()
        self.library = self.ok("POST", "/v1/libraries", json={"name": "ingest"})["id"]

    def ok(self, method: str, path: str, **kwargs: Any) -> Any:
        response = self.http.request(method, path, **kwargs)
        assert response.status_code in (200, 201), response.text
        return response.json()

    def upload(self, name: str, data: bytes) -> httpx.Response:
        return self.http.post(
            f"/v1/libraries/{self.library}/documents", files={"file": (name, data)}
        )

    def status(self, document_id: str) -> dict[str, Any]:
        path = f"/v1/libraries/{self.library}/documents/{document_id}/status"
        result: dict[str, Any] = self.ok("GET", path)
        return result

    def processed(self, document_id: str, timeout: float = 120) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while (status := self.status(document_id))["process_status"] in ("todo", "in_progress"):
            assert time.monotonic() < deadline, status
            time.sleep(0.2)
        return status


def parse_children(server: Server) -> list[int]:
    """The parser processes: children of the server's forkserver (its grandchildren)."""
    parents: dict[int, int] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                stat = Path(f"/proc/{entry}/stat").read_text()
            except OSError:
                continue
            fields = stat.rsplit(")", 1)[1].split()
            if fields[0] != "Z":
                parents[int(entry)] = int(fields[1])
    children = {pid for pid, parent in parents.items() if parent == server.process.pid}
    return [pid for pid, parent in parents.items() if parent in children]


def wait_for_parser(server: Server, other_than: set[int] = frozenset(), timeout: float = 60) -> int:  # type: ignore[assignment]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = [pid for pid in parse_children(server) if pid not in other_than]
        if found:
            return found[0]
        time.sleep(0.02)
    raise AssertionError("no parser process appeared")


def cpu_seconds(pid: int) -> float:
    """User plus system time of a process (0 once it is gone)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def wait_until_busy(pid: int, seconds: float = 0.3, timeout: float = 30) -> None:
    """Until the parser has worked `seconds` of CPU: it has read its document and parses."""
    deadline = time.monotonic() + timeout
    while cpu_seconds(pid) < seconds and time.monotonic() < deadline:
        time.sleep(0.02)


def gone(pid: int, timeout: float = 10) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            return True
        if state == "Z":
            return True
        time.sleep(0.05)
    return False


@pytest.fixture(scope="module")
def gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gateway]:
    config = {"libraries": {"limits": {"max_attempts": 2}}}
    server = start_server(tmp_path_factory.mktemp("ingest-limits"), config)
    yield Gateway(server)
    stop_server(server)


def test_a_docx_bomb_is_refused_at_upload(gateway: Gateway) -> None:
    answer = gateway.upload("bomb.docx", zip_bomb())
    assert answer.status_code == 413, answer.text
    assert "max_unpacked_bytes" in answer.json()["error"]["message"]
    assert gateway.ok("GET", "/readyz") is not None


def test_a_ten_thousand_page_pdf_is_refused_unread(gateway: Gateway) -> None:
    pdf = blank_pdf(10_000)
    document = gateway.ok("POST", f"/v1/libraries/{gateway.library}/documents",
                          files={"file": ("blank.pdf", pdf)})  # fmt: skip
    status = gateway.processed(document["id"], timeout=60)
    assert status["process_status"] == "error"
    assert "10000 pages; at most 500" in status["process_error"]


def test_a_parser_that_keeps_crashing_ends_in_error(gateway: Gateway) -> None:
    """The parser is killed twice while it works (as the OOM killer or a native crash
    would): the document is retried once, then `error`, and the server is unharmed."""
    server = gateway.server
    document = gateway.ok("POST", f"/v1/libraries/{gateway.library}/documents",
                          files={"file": ("scan.pdf", slow_scan())})  # fmt: skip
    killed: set[int] = set()
    for _ in range(2):
        pid = wait_for_parser(server, other_than=killed)
        wait_until_busy(pid)  # killed before it had read the document is the next test
        assert gateway.ok("GET", "/readyz") is not None  # responsive while it parses
        os.kill(pid, signal.SIGKILL)
        killed.add(pid)
    status = gateway.processed(document["id"])
    assert status["process_status"] == "error"
    error = status["process_error"]
    assert "killed by signal 9 (SIGKILL)" in error and "gave up after 2 attempts" in error
    assert server.process.poll() is None


def test_a_parser_killed_as_it_starts_is_a_crash_too(gateway: Gateway) -> None:
    """Killed the moment it appears, the child may not have read its document yet: the
    gateway's write to it breaks (a BrokenPipeError, once a final `processing failed`).
    That is a crash like any other: retried, then `error`."""
    server = gateway.server
    document = gateway.ok("POST", f"/v1/libraries/{gateway.library}/documents",
                          files={"file": ("scan.pdf", slow_scan())})  # fmt: skip
    killed: set[int] = set()
    for _ in range(2):
        pid = wait_for_parser(server, other_than=killed)
        os.kill(pid, signal.SIGKILL)
        killed.add(pid)
    error = gateway.processed(document["id"])["process_error"]
    assert "the parser stopped" in error and "gave up after 2 attempts" in error
    assert server.process.poll() is None


def test_sigterm_during_a_parse_stops_the_server_and_its_parser(
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    tmp = tmp_path_factory.mktemp("ingest-sigterm")
    server = start_server(tmp)
    gateway = Gateway(server)
    document = gateway.ok("POST", f"/v1/libraries/{gateway.library}/documents",
                          files={"file": ("scan.pdf", slow_scan())})  # fmt: skip
    parser = wait_for_parser(server)
    server.process.send_signal(signal.SIGTERM)
    try:
        server.process.wait(timeout=25)  # the OCR alone would take a minute or more
    except Exception:
        stop_server(server)
        raise
    assert gone(parser)  # no parser outlives the server
    # The document was given back for the next start, the stopped attempt not counted.
    with create_engine(f"sqlite:///{tmp / 'data' / 'souverain.db'}").connect() as conn:
        row = conn.execute(
            text("SELECT status, attempts FROM library_documents WHERE id = :id"),
            {"id": document["id"]},
        ).one()
    assert (row.status, row.attempts) == ("todo", 0)


def test_the_parser_dies_with_a_killed_server(tmp_path_factory: pytest.TempPathFactory) -> None:
    server = start_server(tmp_path_factory.mktemp("ingest-sigkill"))
    gateway = Gateway(server)
    gateway.ok("POST", f"/v1/libraries/{gateway.library}/documents",
               files={"file": ("scan.pdf", slow_scan())})  # fmt: skip
    parser = wait_for_parser(server)
    server.process.kill()  # no shutdown code runs: the kernel and the forkserver see to it
    server.process.wait()
    assert gone(parser)


def test_the_ocr_budget_of_a_tenant(tmp_path_factory: pytest.TempPathFactory) -> None:
    config = {"libraries": {"limits": {"ocr_seconds_per_hour": 0.001}}}
    server = start_server(tmp_path_factory.mktemp("ingest-budget"), config)
    try:
        gateway = Gateway(server)
        image = png(text_image(["Budget test"]))
        first = gateway.ok("POST", f"/v1/libraries/{gateway.library}/documents",
                           files={"file": ("one.png", image)})  # fmt: skip
        assert gateway.processed(first["id"])["process_status"] == "done"
        second = gateway.ok("POST", f"/v1/libraries/{gateway.library}/documents",
                            files={"file": ("two.png", image)})  # fmt: skip
        status = gateway.processed(second["id"])
        assert status["process_status"] == "error"
        assert "ocr_seconds_per_hour" in status["process_error"]
        # Another tenant has its own budget.
        gateway.ok("POST", "/admin/v1/tenants", json={"name": "other"})
        key = gateway.ok("POST", "/admin/v1/keys",
                         json={"name": "k", "tenant": "other", "role": "admin"})["key"]  # fmt: skip
        other = Gateway(Server(server.url, key, server.process, server.log))
        third = other.ok("POST", f"/v1/libraries/{other.library}/documents",
                         files={"file": ("three.png", image)})  # fmt: skip
        assert other.processed(third["id"])["process_status"] == "done"
    finally:
        stop_server(server)
