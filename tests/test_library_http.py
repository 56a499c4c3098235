"""Document libraries end to end: a real `souverain serve` (embedded e5 model, local OCR),
the official mistralai SDK as the client, on SQLite and on PostgreSQL.

Documents are made here: a PDF with a text layer written by hand, a DOCX by
python-docx, HTML, Markdown, and a PNG drawn with Pillow (OCR'd, SQLite run only).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from click.testing import CliRunner, Result
from mistralai.client import Mistral
from mistralai.client.errors import SDKError
from sqlalchemy import create_engine, text

from souverain.cli import cli

from .conftest import Server, start_server, stop_server
from .databases import server_database
from .test_library_units import docx_bytes
from .test_ocr_documents import INVOICE, TextPage, png, text_image, text_pdf

pytestmark = pytest.mark.model
CONFIG = {"libraries": {"max_upload_bytes": 300_000, "chunk_chars": 400, "chunk_overlap": 60}}
HTML = (
    "<html><head><title>Accès au bâtiment</title><script>var secret=1;</script></head><body>"
    "<h1>Accès</h1><p>Le badge est obligatoire après 19 heures.</p>"
    "<p>Les visiteurs signent le registre à l'accueil.</p></body></html>"
).encode()
MARKDOWN = (
    b"# Reisekosten\n\nDie Erstattung der Reisekosten erfolgt binnen 30 Tagen.\n\n"
    b"Belege werden elektronisch eingereicht.\n"
)


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def server(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Server]:
    tmp = tmp_path_factory.mktemp(f"library-{request.param}")
    with server_database(request.param, tmp) as url:
        server = start_server(tmp, CONFIG, env={"SOUVERAIN_DATABASE_URL": url})
        server.database_url = url  # type: ignore[attr-defined]
        try:
            yield server
        finally:
            stop_server(server)


@pytest.fixture(scope="module")
def client(server: Server) -> Mistral:
    return Mistral(api_key=server.key, server_url=server.url)


def wait_processed(client: Mistral, library_id: str, document_id: str, timeout: float = 180) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        status = client.beta.libraries.documents.status(
            library_id=library_id, document_id=document_id
        )
        if status.process_status not in ("todo", "in_progress"):
            return status
        assert time.monotonic() < deadline, f"document {document_id} still {status.process_status}"
        time.sleep(0.2)


def upload(client: Mistral, library_id: str, name: str, data: bytes) -> Any:
    return client.beta.libraries.documents.upload(
        library_id=library_id, file={"file_name": name, "content": data}
    )


def search(server: Server, query: str, key: str | None = None, **body: Any) -> httpx.Response:
    return httpx.post(
        server.url + "/v1/libraries/search",
        headers={"Authorization": f"Bearer {key or server.key}"},
        json={"query": query, **body},
        timeout=60,
    )


def error_of(caught: pytest.ExceptionInfo[SDKError]) -> dict[str, Any]:
    body: dict[str, Any] = httpx.Response(200, content=caught.value.body).json()["error"]
    return body


def test_documents_in_every_format_are_processed_searched_and_deleted(
    server: Server, client: Mistral
) -> None:
    library = client.beta.libraries.create(name="handbook", description="policies")
    assert library.nb_documents == 0 and library.owner_type == "User"
    pdf = text_pdf([INVOICE, TextPage([["Conditions : pénalités de retard de 3 % par mois."]])])
    uploads = {
        "invoice.pdf": pdf,
        "rules.docx": docx_bytes(),
        "access.html": HTML,
        "travel.md": MARKDOWN,
    }
    documents = {name: upload(client, library.id, name, data) for name, data in uploads.items()}
    assert all(doc.process_status in ("todo", "in_progress") for doc in documents.values())
    for doc in documents.values():
        status = wait_processed(client, library.id, doc.id)
        assert (status.process_status, status.processing_status) == ("done", "Completed")

    texts = {
        name: client.beta.libraries.documents.text_content(
            library_id=library.id, document_id=doc.id
        ).text
        for name, doc in documents.items()
    }
    assert texts["invoice.pdf"].startswith("# Facture F-2026-118")
    assert "Échéance : 15 mars 2026" in texts["invoice.pdf"]
    assert "Lundi | 9h-17h" in texts["rules.docx"]
    assert "badge est obligatoire" in texts["access.html"] and "secret" not in texts["access.html"]
    assert texts["travel.md"] == MARKDOWN.decode().strip()
    page_two = client.beta.libraries.documents.text_content(
        library_id=library.id, document_id=documents["invoice.pdf"].id, page_start=2, page_end=2
    ).text
    assert page_two == "Conditions : pénalités de retard de 3 % par mois."
    pdf_doc = client.beta.libraries.documents.get(
        library_id=library.id, document_id=documents["invoice.pdf"].id
    )
    assert (pdf_doc.number_of_pages, pdf_doc.mime_type, pdf_doc.extension) == (
        2,
        "application/pdf",
        "pdf",
    )
    assert pdf_doc.tokens_processing_total > 0

    # Search: the right chunk, with its document and page, in French, German and English.
    for query, name, page in [
        ("pénalités de retard", "invoice.pdf", 2),
        ("Wann werden Reisekosten erstattet?", "travel.md", None),
        ("when is a badge required?", "access.html", None),
        ("echeance de la facture", "invoice.pdf", 1),
    ]:
        response = search(server, query, library_ids=[library.id], top_k=3)
        assert response.status_code == 200, response.text
        best = response.json()["data"][0]
        assert (best["document_name"], best["page"]) == (name, page), (query, best)
        assert best["document_id"] == documents[name].id and best["library_id"] == library.id
        full = texts[name]
        assert full[best["char_start"] : best["char_end"]] == best["text"]

    listed = client.beta.libraries.documents.list(library_id=library.id, page_size=3, page=1)
    assert listed.pagination.total_items == 4 and len(listed.data) == 1
    renamed = client.beta.libraries.documents.update(
        library_id=library.id, document_id=documents["travel.md"].id, name="reisen.md"
    )
    assert renamed.name == "reisen.md"
    assert client.beta.libraries.get(library_id=library.id).nb_documents == 4

    # Delete: the document, its text, chunks, vectors and keyword entries are gone.
    gone = documents["invoice.pdf"].id
    assert rows_of(server, gone, "penalites")["keyword"] == 1
    client.beta.libraries.documents.delete(library_id=library.id, document_id=gone)
    with pytest.raises(SDKError) as caught:
        client.beta.libraries.documents.get(library_id=library.id, document_id=gone)
    assert caught.value.status_code == 404
    assert rows_of(server, gone, "penalites") == {"documents": 0, "chunks": 0, "keyword": 0}
    hits = search(server, "pénalités de retard facture", library_ids=[library.id]).json()["data"]
    assert all(hit["document_id"] != gone for hit in hits)

    deleted = client.beta.libraries.delete(library_id=library.id)
    assert deleted.id == library.id
    with pytest.raises(SDKError) as caught:
        client.beta.libraries.get(library_id=library.id)
    assert caught.value.status_code == 404
    for name, word in [("rules.docx", "lundi"), ("access.html", "badge"), ("travel.md", "belege")]:
        assert rows_of(server, documents[name].id, word) == {
            "documents": 0,
            "chunks": 0,
            "keyword": 0,
        }


def rows_of(server: Server, document_id: str, word: str) -> dict[str, int]:
    """What the database still holds of a document: its row, its chunks (text and
    vectors), and keyword-index entries for a word only it contained."""
    engine = create_engine(server.database_url)  # type: ignore[attr-defined]
    one = {"id": document_id, "word": word}
    try:
        with engine.begin() as conn:
            counts = {
                "documents": conn.execute(
                    text("SELECT count(*) FROM library_documents WHERE id = :id"), one
                ).scalar_one(),
                "chunks": conn.execute(
                    text("SELECT count(*) FROM library_chunks WHERE document_id = :id"), one
                ).scalar_one(),
            }
            if engine.dialect.name == "sqlite":
                # The index agrees with the chunks (raises otherwise), and has no entry left.
                conn.execute(
                    text(
                        "INSERT INTO library_chunks_fts(library_chunks_fts) VALUES ('integrity-check')"
                    )
                )
                match = (
                    "SELECT count(*) FROM library_chunks_fts WHERE library_chunks_fts MATCH :word"
                )
            else:
                match = (
                    "SELECT count(*) FROM library_chunks WHERE tsv @@ to_tsquery('simple', :word)"
                )
            counts["keyword"] = conn.execute(text(match), one).scalar_one()
        return counts
    finally:
        engine.dispose()


def test_grounded_chat_on_the_embedded_model_with_the_sdk(server: Server, client: Mistral) -> None:
    """The mistralai SDK's `document_library` tool on a plain chat, answered by the
    embedded SmolLM2: the right page is retrieved and cited, whole and streamed."""
    library = client.beta.libraries.create(name="factures")
    pdf = text_pdf([INVOICE, TextPage([["Conditions : pénalités de retard de 3 % par mois."]])])
    document = upload(client, library.id, "facture.pdf", pdf)
    assert wait_processed(client, library.id, document.id).process_status == "done"
    tools = [{"type": "document_library", "library_ids": [library.id]}]
    question = [{"role": "user", "content": "Quelles sont les pénalités de retard ?"}]
    answer = client.chat.complete(
        model="smollm2-135m-instruct", messages=question, tools=tools, max_tokens=24
    )
    assert answer.choices[0].message.content  # the SDK parses the grounded answer
    body = {"model": "smollm2-135m-instruct", "messages": question, "tools": tools,
            "max_tokens": 8}  # fmt: skip
    headers = {"Authorization": f"Bearer {server.key}"}
    whole = httpx.post(server.v1 + "/chat/completions", json=body, headers=headers, timeout=120)
    assert whole.status_code == 200, whole.text
    first = whole.json()["citations"][0]
    assert (first["document_id"], first["document_name"], first["page"]) == (
        document.id,
        "facture.pdf",
        2,
    )
    assert whole.json()["usage"]["prompt_tokens"] > 40  # the sources are in the prompt
    streamed = []
    for event in client.chat.stream(
        model="smollm2-135m-instruct", messages=question, tools=tools, max_tokens=8
    ):
        streamed.append(event.data)
    assert streamed[-1].choices[0].finish_reason in ("stop", "length")
    client.beta.libraries.delete(library_id=library.id)


def test_bad_uploads_fail_clearly(server: Server, client: Mistral) -> None:
    library = client.beta.libraries.create(name="bad-uploads")
    corrupt = upload(client, library.id, "broken.pdf", b"%PDF-1.7\n" + b"\x00garbage" * 50)
    status = wait_processed(client, library.id, corrupt.id)
    assert (status.process_status, status.processing_status) == ("error", "Failed")
    document = client.beta.libraries.documents.get(library_id=library.id, document_id=corrupt.id)
    assert document.summary and "PDF cannot be read" in document.summary
    with pytest.raises(SDKError) as caught:
        client.beta.libraries.documents.text_content(library_id=library.id, document_id=corrupt.id)
    assert caught.value.status_code == 400

    with pytest.raises(SDKError) as caught:
        upload(client, library.id, "big.txt", b"a" * 400_000)
    assert caught.value.status_code == 413 and "max_upload_bytes" in error_of(caught)["message"]
    for name, data, words in [
        (
            "tool.exe",
            b"MZ\x90\x00\x03\x00\x00\x00" + bytes(range(256)),
            "unsupported document type",
        ),
        ("sheet.xlsx", _zip({"xl/workbook.xml": "<w/>"}), "Excel or PowerPoint"),
        ("empty.txt", b"", "empty"),
    ]:
        with pytest.raises(SDKError) as caught:
            upload(client, library.id, name, data)
        assert caught.value.status_code == 400, name
        assert words in error_of(caught)["message"]

    blank = upload(client, library.id, "blank.md", b"   \n\n  ")
    assert wait_processed(client, library.id, blank.id).process_status == "missing_content"
    with pytest.raises(SDKError) as caught:
        client.beta.libraries.documents.get_signed_url(library_id=library.id, document_id=blank.id)
    assert caught.value.status_code == 501 and "text_content" in error_of(caught)["message"]
    # Reprocessing a failed document runs it again (and fails again, the same way).
    client.beta.libraries.documents.reprocess(library_id=library.id, document_id=corrupt.id)
    assert wait_processed(client, library.id, corrupt.id).process_status == "error"


def _zip(files: dict[str, str]) -> bytes:
    import io
    import zipfile

    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, content in files.items():
            archive.writestr(name, content)
    return buffer.getvalue()


def test_image_is_read_by_ocr(server: Server, client: Mistral) -> None:
    if "postgresql" in server.database_url:  # type: ignore[attr-defined]
        pytest.skip("OCR is the same on both databases; once is enough (slow)")
    library = client.beta.libraries.create(name="scans")
    image = png(text_image(["Procès-verbal du 3 avril", "Budget voté : 48 000 euros"]))
    document = upload(client, library.id, "pv.png", image)
    assert wait_processed(client, library.id, document.id).process_status == "done"
    found = client.beta.libraries.documents.text_content(
        library_id=library.id, document_id=document.id
    )
    assert "Budget" in found.text and "48 000" in found.text
    best = search(server, "budget voté", library_ids=[library.id]).json()["data"][0]
    assert (best["document_name"], best["page"]) == ("pv.png", 1)


def test_libraries_list_update_share_and_paginate(server: Server, client: Mistral) -> None:
    created = [client.beta.libraries.create(name=f"page-{i}") for i in range(3)]
    first = client.beta.libraries.list(page_size=2, page=0)
    assert len(first.data) == 2 and first.pagination.has_more
    names = {lib.name for lib in client.beta.libraries.list(search="page-").data}
    assert names == {"page-0", "page-1", "page-2"}
    token_page = httpx.get(
        server.url + "/v1/libraries",
        params={"page_size": 2, "search": "page-"},
        headers={"Authorization": f"Bearer {server.key}"},
    ).json()
    following = client.beta.libraries.list(
        page_size=2, page_token=token_page["next_page_token"], search="page-"
    )
    assert len(following.data) == 1 and following.next_page_token is None
    updated = client.beta.libraries.update(
        library_id=created[0].id, name="renamed", description="new"
    )
    assert (updated.name, updated.description) == ("renamed", "new")
    # Sharing with the organization (the tenant) shows in the library.
    org = created[0].model_dump()
    tenant_id = httpx.get(
        server.url + f"/v1/libraries/{org['id']}", headers={"Authorization": f"Bearer {server.key}"}
    ).json()["tenant_id"]
    share = client.beta.libraries.accesses.update_or_create(
        library_id=created[0].id, level="Viewer", share_with_uuid=tenant_id, share_with_type="Org"
    )
    assert (share.role, share.share_with_type, share.org_id) == ("Viewer", "Org", tenant_id)
    assert client.beta.libraries.get(library_id=created[0].id).org_sharing_role == "Viewer"
    roles = [
        (s.role, s.share_with_type)
        for s in client.beta.libraries.accesses.list(library_id=created[0].id).data
    ]
    assert roles == [("Owner", "User"), ("Viewer", "Org")]
    client.beta.libraries.accesses.delete(
        library_id=created[0].id, share_with_uuid=tenant_id, share_with_type="Org"
    )
    with pytest.raises(SDKError) as caught:
        client.beta.libraries.accesses.update_or_create(
            library_id=created[0].id,
            level="Editor",
            share_with_uuid="999999",
            share_with_type="User",
        )
    assert caught.value.status_code == 400 and "within their tenant" in error_of(caught)["message"]


def test_cli_ingest_follows_processing(server: Server, tmp_path: Path) -> None:
    folder = tmp_path / "docs"
    (folder / "sub").mkdir(parents=True)
    (folder / "a.md").write_text("# Astreinte\n\nL'astreinte du week-end est payée double.")
    (folder / "sub" / "b.txt").write_text("Parking: level -2 is reserved for visitors.")
    (folder / ".hidden").write_text("not uploaded")
    (folder / "c.bin").write_bytes(b"\x00\x01\x02 binary")

    def run(*args: str) -> Result:
        return CliRunner().invoke(cli, [*args, "--url", server.url, "--key", server.key])

    result = run("library", "ingest", str(folder), "--library", "cli-lib")
    assert result.exit_code == 1, result.output  # c.bin is refused, the others processed
    assert "2 of 3 files processed" in result.output
    assert "c.bin: 400" in result.output
    found = run("library", "search", "astreinte week-end", "--library", "cli-lib")
    assert found.exit_code == 0 and "a.md" in found.output.splitlines()[0], found.output
