"""Connector secrets (HTTP headers, a stdio command's environment) sealed at rest.

The key lives in a 0600 file beside the database (`data_dir/connectors.key`), not in it: a
copy of the database alone does not reveal a connector's credentials. Every replica that
calls connectors needs the same file. The connector's id is the associated data, so a
sealed blob moved onto another row does not open.
"""

from __future__ import annotations

import json
import secrets
from pathlib import Path

from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from ..store.keyfile import load_or_create_key_file

NONCE = 12


class Sealer:
    def __init__(self, key: bytes) -> None:
        self._aead = AESGCM(key)

    @classmethod
    def from_data_dir(cls, data_dir: Path) -> Sealer:
        return cls(load_or_create_key_file(data_dir / "connectors.key", 32))

    def seal(self, connector_id: str, values: dict[str, dict[str, str]]) -> bytes:
        nonce = secrets.token_bytes(NONCE)
        plain = json.dumps(values, separators=(",", ":")).encode()
        return nonce + self._aead.encrypt(nonce, plain, connector_id.encode())

    def open(self, connector_id: str, sealed: bytes) -> dict[str, dict[str, str]]:
        plain = self._aead.decrypt(sealed[:NONCE], sealed[NONCE:], connector_id.encode())
        values: dict[str, dict[str, str]] = json.loads(plain)
        return values
