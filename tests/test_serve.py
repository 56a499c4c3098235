"""`souverain serve` itself: first start, the bootstrap key, the data directory."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from .conftest import free_port
from .processes import answers

pytestmark = pytest.mark.model


def serve(data_dir: Path, log: Path) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if k != "SOUVERAIN_ADMIN_KEY"}
    process = subprocess.Popen(
        [sys.executable, "-m", "souverain", "serve", "--port", str(port), "--data-dir", str(data_dir)],
        stdout=log.open("wb"), stderr=subprocess.STDOUT, env=env,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    if answers(process, url + "/readyz"):
        return process, url
    process.kill()
    raise RuntimeError(log.read_text())


def test_first_start_prints_a_key_once_and_stores_only_its_hash(tmp_path: Path) -> None:
    data = tmp_path / "data"
    process, url = serve(data, tmp_path / "first.log")
    try:
        keys = re.findall(r"sk-sv-[A-Za-z0-9]{40}", (tmp_path / "first.log").read_text())
        assert len(keys) == 1
        key = keys[0]
        response = httpx.get(url + "/v1/models", headers={"Authorization": f"Bearer {key}"})
        assert response.status_code == 200
    finally:
        process.terminate()
        process.wait(timeout=30)
    assert (data / "souverain.db").exists()
    stored = b"".join(path.read_bytes() for path in data.iterdir() if path.is_file())
    assert key.encode() not in stored  # hashed, never stored as is
    assert key[14:].encode() not in stored  # not even the secret part

    process, url = serve(data, tmp_path / "second.log")
    try:
        assert "sk-sv-" not in (tmp_path / "second.log").read_text()  # shown once only
        response = httpx.get(url + "/v1/models", headers={"Authorization": f"Bearer {key}"})
        assert response.status_code == 200  # and it still works after a restart
    finally:
        process.terminate()
        process.wait(timeout=30)
