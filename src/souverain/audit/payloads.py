"""Retained request/response bodies: encrypted per data subject, erasable on request.

Each subject (the request's `user`, or `metadata.subject`, else the API key) gets a
random data key, stored only wrapped (AES-GCM) under a master key that lives in a file
outside the database. A body is sealed with AES-GCM under its subject's data key; the
audit leaf holds only the ciphertext's SHA-256. Erasure deletes the subject's data key
and ciphertexts (crypto-shredding) and appends a tombstone leaf: the log still verifies.
Subjects are stored as keyed pseudonyms, never as given.

A subject belongs to a tenant: "alice" in one tenant and "alice" in another are two
subjects, with two pseudonyms and two data keys, so that a tenant's erasure (or its log)
never touches or links the other's. Only the platform owner erases across tenants.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from dataclasses import dataclass
from pathlib import Path

from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from sqlalchemy import Connection, Engine, delete, select

from ..store.keyfile import load_or_create_key_file
from ..store.tables import audit_payloads, audit_subject_keys, tenants
from .columns import DEFAULT_TENANT

NONCE = 12


@dataclass(frozen=True, slots=True)
class Erasure:
    """What an erasure destroyed in one tenant: the subject's pseudonym there, and how
    many retained bodies (its data key too)."""

    tenant: str
    subject: str
    payloads_erased: int


def load_or_create_master_key(path: Path) -> bytes:
    return load_or_create_key_file(path, 32)


class PayloadVault:
    def __init__(self, database: Engine, master_key: bytes) -> None:
        self.database = database
        self._master = AESGCM(master_key)
        self._pseudonym_key = hmac.new(master_key, b"subject pseudonyms", hashlib.sha256).digest()

    def pseudonym(self, tenant: str, subject: str) -> str:
        """The keyed pseudonym of a tenant's data subject (one tenant's never links to
        another's)."""
        message = f"{len(tenant)}:{tenant}:{subject}".encode()  # the split is unambiguous
        return hmac.new(self._pseudonym_key, message, hashlib.sha256).hexdigest()[:32]

    def _legacy_pseudonym(self, subject: str) -> str:
        """The pseudonym bodies stored before subjects were per tenant were sealed under."""
        return hmac.new(self._pseudonym_key, subject.encode(), hashlib.sha256).hexdigest()[:32]

    def seal(self, conn: Connection, pseudonym: str, body: bytes) -> bytes:
        """Encrypt `body` for this subject (creating its data key in this transaction)."""
        data_key = self._data_key(conn, pseudonym)
        nonce = secrets.token_bytes(NONCE)
        return nonce + AESGCM(data_key).encrypt(nonce, body, pseudonym.encode())

    def open(self, tenant: str, subject: str, ciphertext: bytes) -> bytes:
        pseudonym = self.pseudonym(tenant, subject)
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

    def erase(self, subject: str, tenant: str | None) -> list[Erasure]:
        """Destroy the subject's keys and ciphertexts in `tenant` (None: in every tenant,
        for the platform owner); one `Erasure` per tenant where something was destroyed."""
        legacy = self._legacy_pseudonym(subject)
        done = []
        with self.database.begin() as conn:
            for name in [tenant] if tenant is not None else self._tenants(conn):
                pseudonym = self.pseudonym(name, subject)
                erased = conn.execute(
                    delete(audit_payloads).where(
                        audit_payloads.c.tenant == name,
                        audit_payloads.c.subject.in_((pseudonym, legacy)),
                    )
                ).rowcount
                keys = conn.execute(
                    delete(audit_subject_keys).where(audit_subject_keys.c.subject == pseudonym)
                ).rowcount
                if erased or keys:
                    done.append(Erasure(name, pseudonym, int(erased or 0)))
            # A key from before per-tenant subjects may still seal another tenant's bodies:
            # it goes once none is left (at once when the owner erases everywhere).
            still_used = conn.scalar(
                select(audit_payloads.c.id).where(audit_payloads.c.subject == legacy).limit(1)
            )
            if still_used is None:
                conn.execute(
                    delete(audit_subject_keys).where(audit_subject_keys.c.subject == legacy)
                )
        return done

    @staticmethod
    def _tenants(conn: Connection) -> list[str]:
        """Every tenant a subject may have bodies or a key in: the directory's, and any
        named by a stored body (a tenant deleted since, or the built-in default)."""
        names = set(conn.scalars(select(tenants.c.name))) | {DEFAULT_TENANT}
        names |= set(conn.scalars(select(audit_payloads.c.tenant).distinct()))
        return sorted(names)

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
