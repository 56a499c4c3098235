"""Signed checkpoints (tree heads) for the tamper-evident audit log.

A checkpoint commits to the audit log's Merkle tree (:mod:`souverain.audit.merkle`) at one
size. It is encoded and signed exactly as the C2SP specifications say, so that standard
tooling (``golang.org/x/mod/sumdb/note``, transparency-dev witnesses) can check it:

* https://c2sp.org/tlog-checkpoint - the note text is three lines, each ending in ``\\n``:
  the origin (the log identity, e.g. ``souverain.example/audit/v1``), the tree size in
  decimal without leading zeros, and the RFC 6962 root hash in standard base64. Extension
  lines are allowed by the spec but not recommended; this log emits none, and
  :meth:`Checkpoint.parse` rejects them.
* https://c2sp.org/signed-note - the text, a blank line, then signature lines
  ``"— <key name> <base64(key ID || signature)>\\n"`` (U+2014 EM DASH, space). For Ed25519
  (signature type ``0x01``) the key ID is ``SHA-256(name || 0x0A || 0x01 || pubkey)[:4]``
  and the signature is RFC 8032 Ed25519 over the note text, final newline included.
  Verifier keys are written ``<name>+<8 hex key ID>+<base64(0x01 || pubkey)>``.

Verification follows the spec: signature lines from unknown keys (name or key ID differs)
are ignored; a failing signature from *our* key rejects the whole note; a note with no
verified signature from our key is rejected.

The private key lives outside the database, in a file of its own created with mode 0600
(see :func:`load_or_create_signing_key`); it holds the key as an unencrypted PKCS#8 PEM
(``-----BEGIN PRIVATE KEY-----``), readable by ``openssl pkey``.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import os
import re
import stat
from dataclasses import dataclass
from pathlib import Path

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import (
    Ed25519PrivateKey,
    Ed25519PublicKey,
)

from souverain.audit.merkle import HASH_SIZE

__all__ = [
    "ALG_ED25519",
    "MAX_SIGNATURES",
    "Checkpoint",
    "CheckpointError",
    "Signer",
    "Verifier",
    "key_hash",
    "load_or_create_signing_key",
]

ALG_ED25519 = 0x01
"""signed-note signature type identifier of Ed25519."""

MAX_SIGNATURES = 100
"""Most signature lines a note may carry (the spec requires accepting at least 16)."""

_SIG_PREFIX = "\u2014 "
_KEY_SIZE = 32
_SIG_SIZE = 64
_SIZE_RE = re.compile(r"0|[1-9][0-9]*")
_HEX8_RE = re.compile(r"[0-9a-fA-F]{8}")
_KEY_FILE_MODE = 0o600


class CheckpointError(ValueError):
    """A signed checkpoint is malformed or carries no valid signature by the expected key."""


# --------------------------------------------------------------------------- helpers


def _b64decode(text: str) -> bytes:
    """Strict standard base64 (RFC 4648 §4): padded, canonical, no stray characters."""
    try:
        raw = base64.b64decode(text.encode("ascii"), validate=True)
    except (UnicodeEncodeError, binascii.Error) as exc:
        raise ValueError(f"invalid base64 {text!r}") from exc
    if base64.b64encode(raw).decode("ascii") != text:
        raise ValueError(f"non-canonical base64 {text!r}")
    return raw


def _b64encode(raw: bytes) -> str:
    return base64.b64encode(raw).decode("ascii")


def _is_valid_key_name(name: str) -> bool:
    """signed-note key names: non-empty, no Unicode spaces, no ``+``, no control chars."""
    return (
        bool(name)
        and "+" not in name
        and not any(c.isspace() or ord(c) < 0x20 or ord(c) == 0x7F for c in name)
    )


def _check_key_name(name: str) -> None:
    if not _is_valid_key_name(name):
        raise ValueError(f"invalid signed-note key name {name!r}")


def key_hash(name: str, public_key: bytes) -> bytes:
    """The 4-byte Ed25519 key ID: ``SHA-256(name || 0x0A || 0x01 || public_key)[:4]``."""
    if len(public_key) != _KEY_SIZE:
        raise ValueError(f"Ed25519 public key must be {_KEY_SIZE} bytes")
    material = name.encode("utf-8") + b"\n" + bytes([ALG_ED25519]) + public_key
    return hashlib.sha256(material).digest()[:4]


def _raw_public(key: Ed25519PublicKey) -> bytes:
    return key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


# --------------------------------------------------------------------------- checkpoint


@dataclass(frozen=True)
class Checkpoint:
    """A tlog-checkpoint note text: the log ``origin``, tree ``size`` and Merkle ``root``."""

    origin: str
    size: int
    root: bytes

    def __post_init__(self) -> None:
        _check_origin(self.origin)
        if isinstance(self.size, bool) or not isinstance(self.size, int) or self.size < 0:
            raise ValueError(f"tree size must be a non-negative int, got {self.size!r}")
        if not isinstance(self.root, bytes) or len(self.root) != HASH_SIZE:
            raise ValueError(f"root hash must be {HASH_SIZE} bytes")

    def body(self) -> bytes:
        """The note text: ``origin\\nsize\\nbase64(root)\\n`` in UTF-8."""
        return f"{self.origin}\n{self.size}\n{_b64encode(self.root)}\n".encode()

    @classmethod
    def parse(cls, body: bytes) -> Checkpoint:
        """Parse a note text of exactly three lines; raise ``ValueError`` on any deviation."""
        try:
            text = body.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise ValueError("checkpoint is not valid UTF-8") from exc
        if not text.endswith("\n"):
            raise ValueError("checkpoint must end with a newline")
        lines = text[:-1].split("\n")
        if len(lines) != 3:
            raise ValueError(f"checkpoint must have exactly 3 lines, got {len(lines)}")
        origin, size_text, root_text = lines
        if not _SIZE_RE.fullmatch(size_text):
            raise ValueError(f"invalid tree size {size_text!r}")
        return cls(origin=origin, size=int(size_text), root=_b64decode(root_text))


def _check_origin(origin: object) -> None:
    """The origin is one non-empty line without control characters (and no edge spaces)."""
    if not isinstance(origin, str) or not origin:
        raise ValueError("origin must be a non-empty str")
    if any(ord(c) < 0x20 or ord(c) == 0x7F for c in origin) or origin != origin.strip():
        raise ValueError(f"invalid origin {origin!r}")


# --------------------------------------------------------------------------- signing


class Signer:
    """Signs checkpoints as signed notes with one named Ed25519 key."""

    def __init__(self, name: str, private_key: Ed25519PrivateKey) -> None:
        _check_key_name(name)
        self._name = name
        self._key = private_key
        self._public = _raw_public(private_key.public_key())
        self._hash = key_hash(name, self._public)

    @classmethod
    def generate(cls, name: str) -> Signer:
        """A signer with a fresh random key."""
        return cls(name, Ed25519PrivateKey.generate())

    @classmethod
    def from_private_bytes(cls, name: str, raw: bytes) -> Signer:
        """A signer from the 32-byte RFC 8032 private key (seed)."""
        if len(raw) != _KEY_SIZE:
            raise ValueError(f"Ed25519 private key must be {_KEY_SIZE} bytes")
        return cls(name, Ed25519PrivateKey.from_private_bytes(raw))

    @property
    def name(self) -> str:
        return self._name

    @property
    def key_hash(self) -> bytes:
        """The 4-byte key ID that prefixes every signature."""
        return self._hash

    def private_bytes(self) -> bytes:
        """The 32-byte private key (seed). Keep it secret."""
        return self._key.private_bytes(
            serialization.Encoding.Raw,
            serialization.PrivateFormat.Raw,
            serialization.NoEncryption(),
        )

    def public_bytes(self) -> bytes:
        """The 32-byte Ed25519 public key."""
        return self._public

    def verifier_key(self) -> str:
        """The vkey string ``<name>+<hex key ID>+<base64(0x01 || pubkey)>``."""
        encoded = _b64encode(bytes([ALG_ED25519]) + self._public)
        return f"{self._name}+{self._hash.hex()}+{encoded}"

    def sign_text(self, text: bytes) -> bytes:
        """Sign any note text (which must end in a newline) into a one-signature note."""
        if not text.endswith(b"\n"):
            raise ValueError("note text must end with a newline")
        signature = _b64encode(self._hash + self._key.sign(text))
        return text + b"\n" + f"{_SIG_PREFIX}{self._name} {signature}\n".encode()

    def sign(self, checkpoint: Checkpoint) -> bytes:
        """The full signed note of ``checkpoint``."""
        return self.sign_text(checkpoint.body())


# --------------------------------------------------------------------------- verifying


@dataclass(frozen=True)
class _SignatureLine:
    name: str
    key_hash: bytes
    signature: bytes


class Verifier:
    """Checks signed checkpoints against one trusted Ed25519 verifier key."""

    def __init__(self, name: str, public_key: bytes) -> None:
        _check_key_name(name)
        self._name = name
        self._hash = key_hash(name, public_key)
        self._key = Ed25519PublicKey.from_public_bytes(public_key)

    @classmethod
    def from_vkey(cls, vkey: str) -> Verifier:
        """Parse ``<name>+<hex key ID>+<base64(0x01 || pubkey)>``; ``CheckpointError`` if bad."""
        parts = vkey.split("+", 2)
        if len(parts) != 3 or not _HEX8_RE.fullmatch(parts[1]):
            raise CheckpointError("malformed verifier key")
        name, hash_hex, key_b64 = parts
        try:
            key = _b64decode(key_b64)
        except ValueError as exc:
            raise CheckpointError("malformed verifier key") from exc
        if len(key) != 1 + _KEY_SIZE or key[0] != ALG_ED25519 or not _is_valid_key_name(name):
            raise CheckpointError("unsupported or malformed verifier key")
        verifier = cls(name, key[1:])
        if verifier.key_hash != bytes.fromhex(hash_hex):
            raise CheckpointError("verifier key hash does not match the key")
        return verifier

    @property
    def name(self) -> str:
        return self._name

    @property
    def key_hash(self) -> bytes:
        return self._hash

    def verify_note(self, note: bytes) -> bytes:
        """Check a signed note; return its text (final newline included) if our key signed it.

        Lines from other keys are ignored; a bad signature from our key rejects the note.
        """
        text, lines = _split_note(note)
        verified = False
        for line in lines:
            if line.name != self._name or line.key_hash != self._hash:
                continue
            try:
                self._key.verify(line.signature, text)
            except InvalidSignature as exc:
                raise CheckpointError(f"invalid signature by {self._name}") from exc
            verified = True
        if not verified:
            raise CheckpointError(f"no signature by {self._name}+{self._hash.hex()}")
        return text

    def verify(self, note: bytes) -> Checkpoint:
        """Verify a signed checkpoint and return it; ``CheckpointError`` otherwise."""
        text = self.verify_note(note)
        try:
            return Checkpoint.parse(text)
        except ValueError as exc:
            raise CheckpointError(f"malformed checkpoint: {exc}") from exc


def _split_note(note: bytes) -> tuple[bytes, list[_SignatureLine]]:
    """Split a signed note into its text and parsed signature lines (signed-note §Format)."""
    _check_note_chars(note)
    split = note.rfind(b"\n\n")
    if split < 0:
        raise CheckpointError("malformed note: no blank line before the signatures")
    text, block = note[: split + 1], note[split + 2 :]
    if not block or not block.endswith(b"\n"):
        raise CheckpointError("malformed note: missing or unterminated signature lines")
    raw_lines = block[:-1].split(b"\n")
    if len(raw_lines) > MAX_SIGNATURES:
        raise CheckpointError("malformed note: too many signatures")
    return text, [_parse_signature_line(raw.decode("utf-8")) for raw in raw_lines]


def _check_note_chars(note: bytes) -> None:
    """Notes are valid UTF-8 without ASCII control characters other than newline."""
    try:
        decoded = note.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise CheckpointError("malformed note: not valid UTF-8") from exc
    if any(ord(c) < 0x20 and c != "\n" for c in decoded):
        raise CheckpointError("malformed note: control character")


def _parse_signature_line(line: str) -> _SignatureLine:
    """Parse ``— <name> <base64(key ID || signature)>`` (without its newline)."""
    if not line.startswith(_SIG_PREFIX):
        raise CheckpointError(f"malformed signature line {line!r}")
    name, _, encoded = line[len(_SIG_PREFIX) :].partition(" ")
    try:
        raw = _b64decode(encoded)
    except ValueError as exc:
        raise CheckpointError(f"malformed signature line {line!r}") from exc
    if not _is_valid_key_name(name) or len(raw) < 5:
        raise CheckpointError(f"malformed signature line {line!r}")
    return _SignatureLine(name=name, key_hash=raw[:4], signature=raw[4:])


# --------------------------------------------------------------------------- key file


def load_or_create_signing_key(path: Path, name: str) -> Signer:
    """Load the signing key kept in ``path``, creating it (mode 0600) if it is missing.

    The file holds an unencrypted PKCS#8 PEM Ed25519 key and must be a regular file that
    neither group nor others can access; anything looser raises ``PermissionError`` so a
    misconfigured key is noticed rather than silently used.
    """
    if not path.exists():
        try:
            return _create_key_file(path, name)
        except FileExistsError:
            pass  # lost a race with a concurrent creator: load theirs
    return _load_key_file(path, name)


def _create_key_file(path: Path, name: str) -> Signer:
    key = Ed25519PrivateKey.generate()
    signer = Signer(name, key)  # validates the name before anything touches the disk
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, _KEY_FILE_MODE)
    try:
        os.fchmod(fd, _KEY_FILE_MODE)
        os.write(fd, pem)
        os.fsync(fd)
    finally:
        os.close(fd)
    return signer


def _load_key_file(path: Path, name: str) -> Signer:
    info = os.stat(path)
    if not stat.S_ISREG(info.st_mode):
        raise PermissionError(f"signing key {path} is not a regular file")
    if info.st_mode & 0o077:
        mode = stat.S_IMODE(info.st_mode)
        raise PermissionError(f"signing key {path} has mode {mode:04o}; it must be 0600")
    key = serialization.load_pem_private_key(path.read_bytes(), password=None)
    if not isinstance(key, Ed25519PrivateKey):
        raise ValueError(f"signing key {path} is not an Ed25519 private key")
    return Signer(name, key)
