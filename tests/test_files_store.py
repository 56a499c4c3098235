"""The file store as batches use it (files/store.py), on real databases: the tenant quota
holds under concurrent uploads (SQLite and PostgreSQL), a file reads back line by line
across its chunks, and `souverain audit erase --subject` deletes a subject's files."""

from __future__ import annotations

import io
import json
import threading
from pathlib import Path

import pytest
from click.testing import CliRunner
from sqlalchemy import select

from souverain.cli import cli
from souverain.config import load_settings
from souverain.context import Principal
from souverain.errors import ConfigError, StorageQuotaExceeded
from souverain.files.settings import FilesConfig
from souverain.files.store import CHUNK_BYTES, FileStore, iter_lines
from souverain.store.database import open_database, upgrade
from souverain.store.work_tables import file_chunks

LINES = b'{"custom_id": "a", "body": {"x": 1}}\n{"custom_id": "b", "body": {"x": 2}}\n'


def _principal(key_id: int, tenant: str = "acme") -> Principal:
    return Principal(key_id=key_id, name=f"k{key_id}", role="user", tenant=tenant,
                     subject=f"key:{key_id}")  # fmt: skip


def test_uploads_at_once_cannot_pass_the_quota_together(database_url: str) -> None:
    """Eight uploads at once, room for one: exactly one is stored, on SQLite and PostgreSQL
    (the sum is read after the new row, under the tenant's lock)."""
    engine = open_database(database_url)
    upgrade(engine)
    store = FileStore(engine, FilesConfig(max_file_bytes=2048, tenant_quota_bytes=3000))
    outcomes: list[str] = []

    def add(key_id: int) -> None:
        try:
            store.add(_principal(key_id), "batch", "a.bin", io.BytesIO(b"x" * 2000))
            outcomes.append("stored")
        except StorageQuotaExceeded:
            outcomes.append("refused")

    threads = [threading.Thread(target=add, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(outcomes) == ["refused"] * 7 + ["stored"]
    assert store.usage("acme") == 2000
    engine.dispose()


def test_a_file_is_read_back_line_by_line_across_chunks(tmp_path: Path) -> None:
    engine = open_database(f"sqlite:///{tmp_path / 'files.db'}")
    upgrade(engine)
    store = FileStore(engine, FilesConfig())
    lines = [
        f'{{"custom_id": "{n}", "pad": "{"p" * (n * 7 % 9000)}"}}\n'.encode() for n in range(900)
    ]
    lines[-1] = lines[-1].rstrip(b"\n")  # a last line without its newline
    record = store.add(_principal(1), "batch", "in.jsonl", io.BytesIO(b"".join(lines)))
    assert record.num_lines == 900 and record.bytes > 2 * CHUNK_BYTES
    assert list(iter_lines(store.read(record.id))) == lines
    engine.dispose()


def test_cli_erase_deletes_the_subjects_files(tmp_path: Path) -> None:
    """`souverain audit erase --subject` deletes that subject's files, no one else's."""
    data = tmp_path / "data"
    data.mkdir()
    engine = open_database(f"sqlite:///{data / 'souverain.db'}")
    upgrade(engine)
    store = FileStore(engine, FilesConfig())
    erin, bob = _principal(7), _principal(8)
    gone = store.add(erin, "batch", "erin.jsonl", io.BytesIO(LINES))
    kept = store.add(bob, "batch", "bob.jsonl", io.BytesIO(LINES))
    result = CliRunner().invoke(cli, ["audit", "erase", "--subject", "key:7", "--data-dir",
                                      str(data)])  # fmt: skip
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["files_deleted"] == 1
    assert store.get(erin, gone.id) is None and store.get(bob, kept.id) == kept
    with engine.connect() as conn:  # the chunks went with the row
        left = conn.execute(select(file_chunks.c.file_id).distinct()).scalars().all()
    assert left == [kept.id]
    engine.dispose()


def test_the_files_settings_are_checked_at_start_up() -> None:
    env = {"SOUVERAIN_FILES__MAX_FILE_BYTES": "4096", "SOUVERAIN_FILES__TENANT_QUOTA_BYTES": "8192"}
    files = load_settings(environ=env).files
    assert (files.max_file_bytes, files.tenant_quota_bytes) == (4096, 8192)
    with pytest.raises(ConfigError, match=r"files: .*max_file_bytes is larger than tenant_quota"):
        load_settings(environ={**env, "SOUVERAIN_FILES__MAX_FILE_BYTES": "10000"})
    with pytest.raises(ConfigError, match=r"files: .*'homework' is not one of"):
        load_settings(overrides={"files.purposes": ["batch", "homework"]}, environ={})
