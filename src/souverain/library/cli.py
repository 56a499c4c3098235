"""`souverain library`: fill a document library from files, over the HTTP API.

    souverain library ingest ./contracts ./memo.pdf --library Contracts

uploads every file (folders recursively; hidden files skipped), then follows their
processing with a progress bar until each is done or failed. Any key that may use the
`libraries` endpoints works: the documents are processed as that key.
"""

from __future__ import annotations

import mimetypes
import secrets
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode

import click

from ..cli_options import admin_request, send, server_options, with_options

POLL_S = 0.5
PENDING = ("todo", "in_progress")


@click.group()
def library() -> None:
    """Document libraries: ingest files, list libraries, search."""


@library.command()
@with_options(server_options)
@click.argument("paths", nargs=-1, required=True, type=click.Path(exists=True))
@click.option("--library", "name", required=True, help="The library's name (or id).")
@click.option(
    "--create/--no-create",
    default=True,
    show_default=True,
    help="Create the library when no library of that name exists.",
)
@click.option(
    "--wait/--no-wait",
    default=True,
    show_default=True,
    help="Follow the processing until every document is done.",
)
@click.option("--timeout", type=float, default=3600, show_default=True, help="Seconds to wait.")
def ingest(
    url: str, key: str, paths: tuple[str, ...], name: str, create: bool, wait: bool, timeout: float
) -> None:
    """Upload files to a library and follow their processing.

    Example: souverain library ingest ./docs --library Handbook
    """
    library_id = _library_id(url, key, name, create)
    files = sorted(set(_files(paths)))
    if not files:
        raise click.ClickException("no files to upload")
    uploaded: dict[str, str] = {}  # document id -> file
    refused: list[str] = []
    with click.progressbar(files, label="Uploading ", item_show_func=_short) as bar:
        for path in bar:
            try:
                document = _upload(url, key, library_id, path)
            except click.ClickException as exc:
                refused.append(f"{path}: {exc.message}")
                continue
            uploaded[document["id"]] = str(path)
    failed = _follow(url, key, library_id, uploaded, timeout) if wait and uploaded else []
    done = len(uploaded) - len(failed)
    click.echo(
        f"{done if wait else len(uploaded)} of {len(files)} files "
        f"{'processed' if wait else 'uploaded'} into library {library_id}"
    )
    for line in refused + failed:
        click.echo(f"  failed: {line}", err=True)
    if refused or failed:
        raise SystemExit(1)


@library.command("list")
@with_options(server_options)
def list_libraries(url: str, key: str) -> None:
    """The libraries this key may read."""
    listed = admin_request(url, key, "GET", "/v1/libraries?page_size=1000")
    for item in listed["data"]:
        click.echo(f"{item['id']}  {item['nb_documents']:>5} docs  {item['name']}")


@library.command()
@with_options(server_options)
@click.argument("query")
@click.option("--library", "names", multiple=True, help="Only these libraries (name or id).")
@click.option("--top-k", type=int, default=5, show_default=True)
def search(url: str, key: str, query: str, names: tuple[str, ...], top_k: int) -> None:
    """Hybrid search (keywords and meaning) in the libraries this key may read."""
    body: dict[str, Any] = {"query": query, "top_k": top_k}
    if names:
        body["library_ids"] = [_library_id(url, key, name, False) for name in names]
    hits = admin_request(url, key, "POST", "/v1/libraries/search", body)["data"]
    for hit in hits:
        page = f" p.{hit['page']}" if hit["page"] else ""
        click.echo(
            f"[{hit['score']:.4f}] {hit['document_name']}{page}: "
            + " ".join(hit["text"].split())[:200]
        )


# ---- helpers -----------------------------------------------------------------------------------


def _library_id(url: str, key: str, name: str, create: bool) -> str:
    listed = admin_request(url, key, "GET", "/v1/libraries?" + urlencode({"page_size": 1000}))
    for item in listed["data"]:
        if name in (item["id"], item["name"]):
            return str(item["id"])
    if not create:
        raise click.ClickException(f"no library named {name!r} that this key may read")
    created = admin_request(url, key, "POST", "/v1/libraries", {"name": name})
    click.echo(f"created library {name!r} ({created['id']})")
    return str(created["id"])


def _files(paths: tuple[str, ...]) -> Iterator[Path]:
    for raw in paths:
        path = Path(raw)
        if path.is_file():
            yield path
            continue
        for child in path.rglob("*"):
            parts = child.relative_to(path).parts
            if child.is_file() and not any(part.startswith(".") for part in parts):
                yield child


def _upload(url: str, key: str, library_id: str, path: Path) -> Any:
    boundary = "souverain-" + secrets.token_hex(12)
    mime = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
    filename = path.name.replace('"', "_")
    head = (
        f'--{boundary}\r\nContent-Disposition: form-data; name="file"; '
        f'filename="{filename}"\r\nContent-Type: {mime}\r\n\r\n'
    ).encode()
    body = head + path.read_bytes() + f"\r\n--{boundary}--\r\n".encode()
    request = urllib.request.Request(
        url.rstrip("/") + f"/v1/libraries/{quote(library_id)}/documents",
        data=body,
        method="POST",
        headers={
            "Authorization": f"Bearer {key}",
            "Content-Type": f"multipart/form-data; boundary={boundary}",
        },
    )
    return send(request, timeout=300)


def _follow(
    url: str, key: str, library_id: str, uploaded: dict[str, str], timeout: float
) -> list[str]:
    """Poll until every document is processed; the failures, as lines to print."""
    pending = dict(uploaded)
    failed: list[str] = []
    deadline = time.monotonic() + timeout
    with click.progressbar(length=len(uploaded), label="Processing") as bar:
        while pending and time.monotonic() < deadline:
            for document_id in list(pending):
                path = f"/v1/libraries/{quote(library_id)}/documents/{quote(document_id)}/status"
                status = admin_request(url, key, "GET", path)
                if status["process_status"] in PENDING:
                    continue
                if status["process_status"] != "done":
                    failed.append(f"{pending[document_id]}: {status.get('process_error')}")
                del pending[document_id]
                bar.update(1)
            if pending:
                time.sleep(POLL_S)
    failed += [f"{name}: still processing after {timeout:.0f} s" for name in pending.values()]
    return failed


def _short(path: Path | None) -> str:
    return "" if path is None else path.name[-40:]
