"""Retained request/response bodies: encrypted per data subject, erasable on request.

Each subject (the request's `user`, or `metadata.subject`, else the API key) gets a
random data key, stored only wrapped (AES-GCM) under a master key that lives in a file
outside the database. A body is sealed with AES-GCM under its subject's data key; the
audit leaf holds only the ciphertext's SHA-256. Erasure deletes the subject's data key
and ciphertexts (crypto-shredding) and appends a tombstone leaf: the log still verifies.
Subjects are stored as keyed pseudonyms, never as given.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from pathlib import Path

from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from sqlalchemy import Connection, Engine, delete, select

from ..store.keyfile import load_or_create_key_file
from ..store.tables import audit_payloads, audit_subject_keys

NONCE = 12


def load_or_create_master_key(path: Path) -> bytes:
    return load_or_create_key_file(path, 32)


class PayloadVault:
    def __init__(self, database: Engine, master_key: bytes) -> None:
        self.database = database
        self._master = AESGCM(master_key)
        self._pseudonym_key = hmac.new(master_key, b"subject pseudonyms", hashlib.sha256).digest()

    def pseudonym(self, subject: str) -> str:
        return hmac.new(self._pseudonym_key, subject.encode(), hashlib.sha256).hexdigest()[:32]

    def seal(self, conn: Connection, pseudonym: str, body: bytes) -> bytes:
        """Encrypt `body` for this subject (creating its data key in this transaction)."""
        data_key = self._data_key(conn, pseudonym)
        nonce = secrets.token_bytes(NONCE)
        return nonce + AESGCM(data_key).encrypt(nonce, body, pseudonym.encode())

    def open(self, subject: str, ciphertext: bytes) -> bytes:
        pseudonym = self.pseudonym(subject)
        with self.database.connect() as conn:
            wrapped = conn.scalar(
                select(audit_subject_keys.c.wrapped_key).where(
                    audit_subject_keys.c.subject == pseudonym
                )
            )
        if wrapped is None:
            raise KeyError("no data key for this subject (erased, or never stored)")
        data_key = self._unwrap(pseudonym, wrapped)
        return AESGCM(data_key).decrypt(ciphertext[:NONCE], ciphertext[NONCE:], pseudonym.encode())

    def erase(self, subject: str) -> tuple[str, int]:
        """Destroy the subject's key and ciphertexts; returns (pseudonym, bodies erased)."""
        pseudonym = self.pseudonym(subject)
        with self.database.begin() as conn:
            erased = conn.execute(
                delete(audit_payloads).where(audit_payloads.c.subject == pseudonym)
            ).rowcount
            conn.execute(
                delete(audit_subject_keys).where(audit_subject_keys.c.subject == pseudonym)
            )
        return pseudonym, int(erased or 0)

    def purge(self, tenant: str, retention_days: int) -> int:
        cutoff = time.time() - retention_days * 86400
        with self.database.begin() as conn:
            result = conn.execute(
                delete(audit_payloads).where(
                    audit_payloads.c.tenant == tenant, audit_payloads.c.at < cutoff
                )
            )
        return int(result.rowcount or 0)

    def _data_key(self, conn: Connection, pseudonym: str) -> bytes:
        wrapped = conn.scalar(
            select(audit_subject_keys.c.wrapped_key).where(
                audit_subject_keys.c.subject == pseudonym
            )
        )
        if wrapped is not None:
            return self._unwrap(pseudonym, wrapped)
        data_key = secrets.token_bytes(32)
        nonce = secrets.token_bytes(NONCE)
        wrapped = nonce + self._master.encrypt(nonce, data_key, pseudonym.encode())
        conn.execute(
            audit_subject_keys.insert().values(
                subject=pseudonym, wrapped_key=wrapped, at=time.time()
            )
        )
        return data_key

    def _unwrap(self, pseudonym: str, wrapped: bytes) -> bytes:
        return self._master.decrypt(wrapped[:NONCE], wrapped[NONCE:], pseudonym.encode())
