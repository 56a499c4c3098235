"""Tests for signed audit-log checkpoints (``souverain.audit.checkpoint``).

Reference vectors (data only, copied from golang.org/x/mod, repo ``golang/mod``):

* ``sumdb/note/note_test.go`` @ 02c991387e35f9e4c0a9b7ce137717055f8d716d: the PeterNeumann
  skey/vkey pair, the EnochRoot vkey, and the note "If you think cryptography..." with
  both expected signature lines (``TestSign``, ``TestOpen``).
* ``sumdb/tlog/note_test.go`` @ 774e77886cf18ba9e220baec8497d65b0c50373f: the tree note
  of ``TestFormatTree`` (size 123456789012, root = RecordHash("hello world"), which is
  the RFC 6962 leaf hash).
"""

from __future__ import annotations

import base64
import hashlib
import os
import stat
from pathlib import Path

import pytest

from souverain.audit.checkpoint import (
    Checkpoint,
    CheckpointError,
    Signer,
    Verifier,
    key_hash,
    load_or_create_signing_key,
)
from souverain.audit.merkle import leaf_hash, root_from_leaf_hashes

PETER_SKEY = "PRIVATE+KEY+PeterNeumann+c74f20a3+AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz"
PETER_VKEY = "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW"
ENOCH_VKEY = "EnochRoot+af0cfe78+ATtqJ7zOtqQtYqOo0CpvDXNlMhV3HeJDpjrASKGLWdop"
TEXT = b"If you think cryptography is the answer to your problem,\nthen you don't know what your problem is.\n"
PETER_SIG = "— PeterNeumann x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfqdngotpRZb6KE6RyyBwJnAM=\n".encode()
ENOCH_SIG = "— EnochRoot rwz+eBzmZa0SO3NbfRGzPCpDckykFXSdeX+MNtCOXm2/5n2tiOHp+vAF1aGrQ5ovTG01oOTGwnWLox33WWd1RvMc+QQ=\n".encode()
GO_TREE = b"go.sum database tree\n123456789012\nTszzRgjTG6xce+z2AG31kAXYKBgQVtCSCE40HmuwBb0=\n"

ORIGIN = "souverain.example/audit/v1"


def _peter() -> Signer:
    """The reference signer: the skey's payload is 0x01 || 32-byte Ed25519 seed."""
    raw = base64.b64decode(PETER_SKEY.split("+", 4)[4])
    assert raw[0] == 0x01
    return Signer.from_private_bytes("PeterNeumann", raw[1:])


@pytest.fixture(scope="module")
def signer() -> Signer:
    return Signer.generate(ORIGIN)


@pytest.fixture(scope="module")
def checkpoint() -> Checkpoint:
    root = root_from_leaf_hashes([leaf_hash(b"entry %d" % i) for i in range(7)])
    return Checkpoint(origin=ORIGIN, size=7, root=root)


# --------------------------------------------------------------------------- vectors


def test_reference_vkey_parses_and_matches_skey() -> None:
    verifier = Verifier.from_vkey(PETER_VKEY)
    assert verifier.name == "PeterNeumann"
    assert verifier.key_hash == bytes.fromhex("c74f20a3")
    assert _peter().verifier_key() == PETER_VKEY
    assert Verifier.from_vkey(ENOCH_VKEY).key_hash == bytes.fromhex("af0cfe78")


def test_reference_key_hash_computation() -> None:
    pub = base64.b64decode(PETER_VKEY.split("+", 2)[2])[1:]
    expected = hashlib.sha256(b"PeterNeumann\n\x01" + pub).digest()[:4]
    assert key_hash("PeterNeumann", pub) == expected == bytes.fromhex("c74f20a3")
    assert _peter().public_bytes() == pub


def test_reference_signature_is_reproduced_exactly() -> None:
    assert _peter().sign_text(TEXT) == TEXT + b"\n" + PETER_SIG


def test_reference_signatures_verify() -> None:
    note = TEXT + b"\n" + PETER_SIG + ENOCH_SIG
    assert Verifier.from_vkey(PETER_VKEY).verify_note(note) == TEXT
    assert Verifier.from_vkey(ENOCH_VKEY).verify_note(note) == TEXT


def test_reference_tree_note_format() -> None:
    cp = Checkpoint("go.sum database tree", 123456789012, leaf_hash(b"hello world"))
    assert cp.body() == GO_TREE
    assert Checkpoint.parse(GO_TREE) == cp


@pytest.mark.parametrize(
    "vkey",
    [
        PETER_VKEY[:-1],
        PETER_VKEY + "=",
        "PeterNeumann+c74f20a4+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW",  # wrong hash
        "PeterNeumanN+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW",  # wrong name
        "PeterNeumann+cc469956+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TWBADKEY==",
        "PeterNeumann+173116ae+ZRpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW",  # unknown alg
        "PeterNeumann+c74f20a3",
        "+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW",
        "",
    ],
)
def test_mangled_vkeys_are_rejected(vkey: str) -> None:
    with pytest.raises(CheckpointError):
        Verifier.from_vkey(vkey)


# --------------------------------------------------------------------------- checkpoint body


def test_body_is_three_lines(checkpoint: Checkpoint) -> None:
    root = base64.b64encode(checkpoint.root).decode()
    assert checkpoint.body() == f"{ORIGIN}\n7\n{root}\n".encode()
    assert Checkpoint.parse(checkpoint.body()) == checkpoint


def test_empty_tree_has_size_zero() -> None:
    cp = Checkpoint(ORIGIN, 0, root_from_leaf_hashes([]))
    assert cp.body().split(b"\n")[1] == b"0"
    assert Checkpoint.parse(cp.body()) == cp


@pytest.mark.parametrize(
    "body",
    [
        GO_TREE[:-1],  # no final newline
        GO_TREE + b"ext\n",  # extension line (we use none)
        GO_TREE.replace(b"123456789012", b"0123456789012"),  # leading zero
        GO_TREE.replace(b"123456789012", b"-1"),
        GO_TREE.replace(b"123456789012", b"1_000"),
        GO_TREE.replace(b"123456789012", b"+12"),
        GO_TREE.replace(b"123456789012", "١٢".encode()),  # non-ASCII digits
        GO_TREE.replace(b"123456789012", b""),
        GO_TREE.replace(b"go.sum database tree", b""),  # empty origin
        GO_TREE.replace(b"Bb0=", b"Bb0"),  # unpadded
        GO_TREE.replace(b"Bb0=", b"Bb1="),  # non-canonical trailing bits
        GO_TREE.replace(b"Tszz", b"Ts_z"),  # URL alphabet
        b"x\n1\n" + base64.b64encode(b"\x00" * 31) + b"\n",  # short root
        b"\xff\n1\n" + base64.b64encode(b"\x00" * 32) + b"\n",
    ],
)
def test_parse_is_strict(body: bytes) -> None:
    with pytest.raises(ValueError):
        Checkpoint.parse(body)


def test_constructor_validates() -> None:
    with pytest.raises(ValueError):
        Checkpoint(ORIGIN, -1, b"\x00" * 32)
    with pytest.raises(ValueError):
        Checkpoint(ORIGIN, 1, b"\x00" * 31)
    with pytest.raises(ValueError):
        Checkpoint("a\nb", 1, b"\x00" * 32)


# --------------------------------------------------------------------------- sign / verify


def test_round_trip(signer: Signer, checkpoint: Checkpoint) -> None:
    note = signer.sign(checkpoint)
    assert note.startswith(checkpoint.body() + "\n— ".encode())
    verifier = Verifier.from_vkey(signer.verifier_key())
    assert verifier.verify(note) == checkpoint


def test_private_bytes_round_trip(signer: Signer) -> None:
    again = Signer.from_private_bytes(signer.name, signer.private_bytes())
    assert again.verifier_key() == signer.verifier_key()


def test_other_key_is_rejected(signer: Signer, checkpoint: Checkpoint) -> None:
    other = Signer.generate(ORIGIN)  # same name, different key and key ID
    verifier = Verifier.from_vkey(signer.verifier_key())
    with pytest.raises(CheckpointError):
        verifier.verify(other.sign(checkpoint))


def test_colliding_key_id_with_bad_signature_is_rejected(
    signer: Signer, checkpoint: Checkpoint
) -> None:
    """A line naming our key (name and ID) must verify, else the whole note is rejected."""
    good = signer.sign(checkpoint)
    forged = Signer.generate("x").sign(checkpoint).rsplit(b"\n", 2)[1]
    forged_sig = base64.b64decode(forged.split(b" ")[-1])[4:]
    line = f"— {ORIGIN} {base64.b64encode(signer.key_hash + forged_sig).decode()}\n"
    with pytest.raises(CheckpointError):
        Verifier.from_vkey(signer.verifier_key()).verify(good + line.encode())
    short = f"— {ORIGIN} {base64.b64encode(signer.key_hash + b'x').decode()}\n"
    with pytest.raises(CheckpointError):
        Verifier.from_vkey(signer.verifier_key()).verify(good + short.encode())


@pytest.mark.parametrize("field", ["size", "root", "origin"])
def test_tampered_checkpoint_is_rejected(
    signer: Signer, checkpoint: Checkpoint, field: str
) -> None:
    note = signer.sign(checkpoint)
    body = checkpoint.body()
    if field == "size":
        tampered = body.replace(b"\n7\n", b"\n8\n")
    elif field == "root":
        other = base64.b64encode(bytes(32)).decode().encode()
        tampered = body.replace(base64.b64encode(checkpoint.root), other)
    else:
        tampered = body.replace(ORIGIN.encode(), b"evil.example/audit/v1")
    assert tampered != body
    with pytest.raises(CheckpointError):
        Verifier.from_vkey(signer.verifier_key()).verify(tampered + note[len(body) :])


def test_unknown_signature_lines_are_ignored(signer: Signer, checkpoint: Checkpoint) -> None:
    note = signer.sign(checkpoint)
    witness = Signer.generate("witness.example/w1").sign(checkpoint)
    witness_line = witness[len(checkpoint.body()) + 1 :]
    same_name_other_id = f"— {ORIGIN} {base64.b64encode(b'abcd' + bytes(64)).decode()}\n"
    our_line = note[len(checkpoint.body()) + 1 :]
    before = checkpoint.body() + b"\n" + witness_line + our_line
    for extra in (before, note + witness_line):
        assert Verifier.from_vkey(signer.verifier_key()).verify(extra) == checkpoint
    noisy = note + same_name_other_id.encode() + ENOCH_SIG
    assert Verifier.from_vkey(signer.verifier_key()).verify(noisy) == checkpoint


def test_note_without_our_signature_is_rejected(checkpoint: Checkpoint) -> None:
    note = checkpoint.body() + b"\n" + ENOCH_SIG
    with pytest.raises(CheckpointError):
        Verifier.from_vkey(PETER_VKEY).verify(note)


def test_verified_text_that_is_no_checkpoint_is_rejected() -> None:
    with pytest.raises(CheckpointError):
        Verifier.from_vkey(PETER_VKEY).verify(TEXT + b"\n" + PETER_SIG)


def _malformed(note: bytes) -> list[bytes]:
    body, sigs = note.split(b"\n\n", 1)
    body += b"\n"
    name_end = sigs.index(b" ", 4)
    return [
        body + sigs,  # missing blank line
        body + b"\n",  # no signature lines
        body + b"\n" + sigs[:-1],  # unterminated signature line
        body + b"\n" + sigs.replace("—".encode(), b"-", 1),  # ASCII hyphen
        body + b"\n" + sigs.replace("—".encode(), "\u2013".encode(), 1),  # en dash
        body + b"\n" + sigs[: name_end + 1] + b"!!" + sigs[name_end + 3 :],  # bad base64
        body + b"\n" + sigs[:-3] + b"\n",  # truncated base64
        body + b"\n" + sigs + b"trailing data\n",
        body + b"\n" + sigs + b"trailing",
        body + b"\n" + sigs + b"\n",
        body.replace(b"\n7\n", b"\n07\n") + b"\n" + sigs,  # leading zero
        b"\x01" + body + b"\n" + sigs,  # control character
        body + b"\n" + sigs * 101,  # too many signatures
    ]


def test_malformed_notes_raise(signer: Signer, checkpoint: Checkpoint) -> None:
    verifier = Verifier.from_vkey(signer.verifier_key())
    note = signer.sign(checkpoint)
    assert verifier.verify(note) == checkpoint
    for bad in _malformed(note):
        with pytest.raises(CheckpointError):
            verifier.verify(bad)


def test_leading_zero_size_signed_is_still_rejected(signer: Signer) -> None:
    """Even correctly signed, a non-canonical body is no checkpoint."""
    body = f"{ORIGIN}\n007\n{base64.b64encode(bytes(32)).decode()}\n".encode()
    with pytest.raises(CheckpointError):
        Verifier.from_vkey(signer.verifier_key()).verify(signer.sign_text(body))


def test_invalid_key_names_are_refused() -> None:
    for name in ("", "a b", "a+b", "a\tb", "a\u00a0b"):
        with pytest.raises(ValueError):
            Signer.generate(name)


# --------------------------------------------------------------------------- key file


def test_key_file_created_0600_and_reloads(tmp_path: Path) -> None:
    path = tmp_path / "keys" / "audit.key"
    first = load_or_create_signing_key(path, ORIGIN)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert path.read_bytes().startswith(b"-----BEGIN PRIVATE KEY-----")
    again = load_or_create_signing_key(path, ORIGIN)
    assert again.public_bytes() == first.public_bytes()
    assert again.verifier_key() == first.verifier_key()


def test_key_file_created_0600_despite_permissive_umask(tmp_path: Path) -> None:
    old = os.umask(0)
    try:
        load_or_create_signing_key(tmp_path / "k.pem", ORIGIN)
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "k.pem").stat().st_mode) == 0o600


@pytest.mark.parametrize("mode", [0o644, 0o640, 0o604, 0o660])
def test_loose_key_file_is_refused(tmp_path: Path, mode: int) -> None:
    path = tmp_path / "audit.key"
    load_or_create_signing_key(path, ORIGIN)
    path.chmod(mode)
    with pytest.raises(PermissionError):
        load_or_create_signing_key(path, ORIGIN)


def test_read_only_key_file_is_accepted(tmp_path: Path) -> None:
    path = tmp_path / "audit.key"
    first = load_or_create_signing_key(path, ORIGIN)
    path.chmod(0o400)
    assert load_or_create_signing_key(path, ORIGIN).public_bytes() == first.public_bytes()


def test_non_ed25519_key_file_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "audit.key"
    path.write_bytes(b"not a pem\n")
    path.chmod(0o600)
    with pytest.raises(ValueError):
        load_or_create_signing_key(path, ORIGIN)
