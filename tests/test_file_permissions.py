"""The data directory is its owner's alone: the folder 0700, every file in it 0600.

Checked on a real `souverain serve` under the most permissive umask (0): the database
(documents in plain text, the audit log), SQLite's -wal and -shm files, the key pepper,
the DLP key and the audit keys. A data directory left readable by an older release is
tightened at start, with a warning in the log.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
from click.testing import CliRunner

from souverain.cli import cli

from .conftest import ADMIN_KEY, Server, start_server, stop_server
from .recording_upstream import RecordingUpstream

EXPECTED = {
    "souverain.db",
    "souverain.db-wal",
    "souverain.db-shm",
    "souverain.db.upgrade-lock",
    "pepper",
    "dlp.key",
    "audit-signing.key",
    "audit-master.key",
}


@contextmanager
def umask(mask: int) -> Iterator[None]:
    """The server process inherits this umask: 0 lets every default mode through."""
    previous = os.umask(mask)
    try:
        yield
    finally:
        os.umask(previous)


def modes(folder: Path) -> dict[str, int]:
    """Every path under `folder` (itself as "."), with its permission bits."""
    found = {".": stat.S_IMODE(folder.stat().st_mode)}
    for path in folder.rglob("*"):
        found[str(path.relative_to(folder))] = stat.S_IMODE(path.lstat().st_mode)
    return found


def assert_private(folder: Path) -> None:
    for name, mode in modes(folder).items():
        is_dir = name == "." or (folder / name).is_dir()
        assert mode == (0o700 if is_dir else 0o600), f"{name} is {mode:o}"


def busy_day(server: Server, upstream: RecordingUpstream) -> None:
    """Identities, a model call (usage row, audit leaf), a library with a document."""

    def ok(method: str, path: str, key: str = ADMIN_KEY, **kwargs: object) -> dict[str, object]:
        headers = {"Authorization": f"Bearer {key}"}
        response = httpx.request(method, server.url + path, headers=headers, timeout=30, **kwargs)  # type: ignore[arg-type]
        assert response.status_code in (200, 201), (path, response.text)
        return dict(response.json())

    ok("POST", "/admin/v1/tenants", json={"name": "acme"})
    user = ok("POST", "/admin/v1/users", json={"name": "ada", "role": "admin", "tenant": "acme"})
    key = str(ok("POST", "/admin/v1/keys", json={"name": "k", "user_id": user["id"]})["key"])
    body = {"model": "cloud", "messages": [{"role": "user", "content": "Bonjour"}]}
    ok("POST", "/v1/chat/completions", key, json=body)
    library = ok("POST", "/v1/libraries", key, json={"name": "contrats"})
    files = {"file": ("bail.md", b"# Bail\n\nLoyer : 900 EUR.\n", "text/markdown")}
    ok("POST", f"/v1/libraries/{library['id']}/documents", key, files=files)


def config(upstream: RecordingUpstream) -> dict[str, object]:
    deployment = {"engine": "openai", "base_url": upstream.url, "jurisdiction": "FR"}
    return {
        "models": [
            {"id": "cloud", "deployments": [deployment]},
            {"id": "emb", "type": "embeddings", "deployments": [deployment]},
        ]
    }


def test_a_fresh_data_directory_and_every_file_in_it_are_private(
    tmp_path: Path, upstream: RecordingUpstream
) -> None:
    data = tmp_path / "data"
    with umask(0):
        server = start_server(tmp_path, config(upstream))
    try:
        busy_day(server, upstream)
        assert set(modes(data)) >= EXPECTED, sorted(modes(data))
        assert_private(data)  # while running: the -wal and -shm files exist now
    finally:
        stop_server(server)
    assert_private(data)


def test_a_data_directory_readable_by_others_is_tightened_at_start(
    tmp_path: Path, upstream: RecordingUpstream
) -> None:
    data = tmp_path / "data"
    data.mkdir(mode=0o755)
    os.chmod(data, 0o755)
    with umask(0):  # as an older release left it: world-readable files in a 0755 folder
        (data / "pepper").write_text("ab" * 32)
        (data / "souverain.db").touch()  # an empty file is an empty SQLite database
        (data / "souverain.db-wal").touch()
        for name in ("pepper", "souverain.db", "souverain.db-wal"):
            os.chmod(data / name, 0o644)
        server = start_server(tmp_path, config(upstream))
    try:
        busy_day(server, upstream)
        assert_private(data)
    finally:
        stop_server(server)
    log = server.log.read_text()
    assert "open to other users" in log and "pepper" in log, log


def test_db_upgrade_makes_a_private_data_directory(tmp_path: Path) -> None:
    data = tmp_path / "fresh"
    with umask(0):
        result = CliRunner().invoke(cli, ["db", "upgrade", "--data-dir", str(data)])
    assert result.exit_code == 0, result.output
    assert {"souverain.db", "souverain.db.upgrade-lock"} <= set(modes(data))
    assert_private(data)


def test_a_configured_sqlite_path_outside_the_data_directory_is_private(
    tmp_path: Path, upstream: RecordingUpstream
) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    os.chmod(elsewhere, 0o755)  # not ours to change: only the database files are
    url = f"sqlite:///{elsewhere / 'gateway.db'}"
    with umask(0):
        server = start_server(tmp_path, config(upstream), env={"SOUVERAIN_DATABASE_URL": url})
    try:
        busy_day(server, upstream)
        files = {name: mode for name, mode in modes(elsewhere).items() if name != "."}
        assert {"gateway.db", "gateway.db-wal", "gateway.db-shm"} <= set(files), files
        assert all(mode == 0o600 for mode in files.values()), files
    finally:
        stop_server(server)
