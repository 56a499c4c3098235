"""Tests for the RFC 9162 Merkle tree core of the audit log (``souverain.audit.merkle``).

Reference data (copied as data only, see ``tests/data/merkle/README.md``):

* ``rfc6962_reference.json``: the RFC 6962 test leaves and the roots of sizes 0..8, from
  transparency-dev/merkle ``proof/verify_test.go`` @ 02194e9afb6c1d95b5381350007963aa70fff472,
  and the hasher vectors of ``rfc6962/rfc6962_test.go`` @ 78493b07ef9b552e3379abf9e23d4da26fbe797c.
* ``transparency-dev/{inclusion,consistency}/``: proof probes from transparency-dev/merkle
  ``testdata/`` (generated there by ``cmd/proofgen``); each file's commit is in the README.

Beyond the vectors, every happy-path vector is mutated here (bit flips in every proof
byte, dropped/inserted/duplicated/reordered elements, wrong index/sizes/roots) and all
mutants must be rejected; property tests cover every tree up to 64 leaves against an
oracle written straight from the RFC's recursive definitions.

As in the newest transparency-dev/merkle, a consistency proof from size 0 never verifies
(not even 0 -> 0), and equal sizes need an empty proof and equal roots.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator, Sequence
from functools import cache
from pathlib import Path
from typing import Any

import pytest

from souverain.audit.merkle import (
    EMPTY_ROOT,
    CompactRange,
    consistency_proof,
    inclusion_proof,
    leaf_hash,
    node_hash,
    root_from_leaf_hashes,
    verify_consistency,
    verify_inclusion,
)

DATA = Path(__file__).parent / "data" / "merkle"
UPSTREAM = DATA / "transparency-dev"
REFERENCE = json.loads((DATA / "rfc6962_reference.json").read_text())
REF_LEAF_HASHES = [leaf_hash(bytes.fromhex(x)) for x in REFERENCE["leaves"]]
SOME_HASH = bytes.fromhex("abacaba000000000000000000000000000000000000000000060061e00123456")


# ------------------------------------------------------------------- vector loading


def _b64(value: str | None) -> bytes:
    return base64.b64decode(value or "")


def _probe_files(kind: str) -> list[Path]:
    return sorted((UPSTREAM / kind).rglob("*.json"))


def _probe_id(path: Path) -> str:
    return str(path.relative_to(UPSTREAM))


def _load(path: Path) -> dict[str, Any]:
    raw: dict[str, Any] = json.loads(path.read_text())
    return raw


def _inclusion_args(raw: dict[str, Any]) -> tuple[bytes, int, int, list[bytes], bytes]:
    index = raw["leafIdx"] if "leafIdx" in raw else raw["leafIndex"]  # both spellings upstream
    proof = [_b64(p) for p in raw["proof"] or []]
    return _b64(raw["leafHash"]), index, raw["treeSize"], proof, _b64(raw["root"])


def _consistency_args(raw: dict[str, Any]) -> tuple[int, int, bytes, bytes, list[bytes]]:
    proof = [_b64(p) for p in raw["proof"] or []]
    return raw["size1"], raw["size2"], _b64(raw["root1"]), _b64(raw["root2"]), proof


INCLUSION_FILES = _probe_files("inclusion")
CONSISTENCY_FILES = _probe_files("consistency")
INCLUSION_HAPPY = sorted(UPSTREAM.glob("inclusion/[0-9]/happy-path.json"))
CONSISTENCY_HAPPY = sorted(UPSTREAM.glob("consistency/[0-9]/happy-path.json"))


def test_vector_set_is_complete() -> None:
    assert len(INCLUSION_HAPPY) == 5
    assert len(CONSISTENCY_HAPPY) == 5
    assert len(INCLUSION_FILES) == 5 + 4 + 12 + 17
    assert len(CONSISTENCY_FILES) == 5 + 14 + 20


# ---------------------------------------------------------------- RFC 9162 oracle
# Written directly from the recursive definitions of RFC 9162 §2.1.1, §2.1.3.1 and §2.1.4.1,
# deliberately naive, to cross-check the iterative implementation.


def _k(n: int) -> int:
    k = 1
    while k * 2 < n:
        k *= 2
    return k


def _mth(d: Sequence[bytes]) -> bytes:
    if len(d) == 0:
        return EMPTY_ROOT
    if len(d) == 1:
        return d[0]
    k = _k(len(d))
    return node_hash(_mth(d[:k]), _mth(d[k:]))


def _path(m: int, d: Sequence[bytes]) -> list[bytes]:
    if len(d) == 1:
        return []
    k = _k(len(d))
    if m < k:
        return [*_path(m, d[:k]), _mth(d[k:])]
    return [*_path(m - k, d[k:]), _mth(d[:k])]


def _subproof(m: int, d: Sequence[bytes], b: bool) -> list[bytes]:
    if m == len(d):
        return [] if b else [_mth(d)]
    k = _k(len(d))
    if m <= k:
        return [*_subproof(m, d[:k], b), _mth(d[k:])]
    return [*_subproof(m - k, d[k:], False), _mth(d[:k])]


@cache
def _leaves(n: int) -> tuple[bytes, ...]:
    return tuple(leaf_hash(b"audit entry %d" % i) for i in range(n))


# -------------------------------------------------------------- reference vectors


def test_hasher_reference_vectors() -> None:
    hasher = REFERENCE["hasher"]
    assert EMPTY_ROOT.hex() == REFERENCE["roots_by_size"]["0"]
    assert leaf_hash(b"").hex() == hasher["empty_leaf"]
    assert leaf_hash(b"L123456").hex() == hasher["leaf_L123456"]
    assert node_hash(b"N123", b"N456").hex() == hasher["node_N123_N456"]


@pytest.mark.parametrize("size", range(9))
def test_reference_roots(size: int) -> None:
    expected = REFERENCE["roots_by_size"][str(size)]
    assert root_from_leaf_hashes(REF_LEAF_HASHES[:size]).hex() == expected
    compact = CompactRange()
    compact.extend(REF_LEAF_HASHES[:size])
    assert compact.root().hex() == expected


@pytest.mark.parametrize("path", INCLUSION_FILES, ids=_probe_id)
def test_upstream_inclusion_probe(path: Path) -> None:
    raw = _load(path)
    assert verify_inclusion(*_inclusion_args(raw)) is (not raw["wantErr"])


@pytest.mark.parametrize("path", CONSISTENCY_FILES, ids=_probe_id)
def test_upstream_consistency_probe(path: Path) -> None:
    raw = _load(path)
    assert verify_consistency(*_consistency_args(raw)) is (not raw["wantErr"])


@pytest.mark.parametrize("path", INCLUSION_HAPPY, ids=_probe_id)
def test_inclusion_proof_matches_upstream(path: Path) -> None:
    leaf, index, size, proof, root = _inclusion_args(_load(path))
    tree = REF_LEAF_HASHES[:size]
    assert tree[index] == leaf
    assert root_from_leaf_hashes(tree) == root
    assert inclusion_proof(tree, index) == proof


@pytest.mark.parametrize("path", CONSISTENCY_HAPPY, ids=_probe_id)
def test_consistency_proof_matches_upstream(path: Path) -> None:
    old_size, new_size, old_root, new_root, proof = _consistency_args(_load(path))
    assert root_from_leaf_hashes(REF_LEAF_HASHES[:old_size]) == old_root
    assert root_from_leaf_hashes(REF_LEAF_HASHES[:new_size]) == new_root
    assert consistency_proof(REF_LEAF_HASHES[:new_size], old_size) == proof


# ------------------------------------------------------------------ mutated vectors


def _flip(data: bytes, bit: int) -> bytes:
    out = bytearray(data)
    out[bit // 8] ^= 0x80 >> (bit % 8)
    return bytes(out)


def _proof_mutants(proof: list[bytes], extra: Sequence[bytes]) -> Iterator[tuple[str, list[bytes]]]:
    """Every single-bit flip, every drop, insertion, duplication and adjacent swap."""
    for i, element in enumerate(proof):
        for bit in range(len(element) * 8):
            yield f"flip proof[{i}] bit {bit}", [*proof[:i], _flip(element, bit), *proof[i + 1 :]]
        yield f"drop proof[{i}]", proof[:i] + proof[i + 1 :]
        yield f"duplicate proof[{i}]", [*proof[: i + 1], element, *proof[i + 1 :]]
        if i + 1 < len(proof) and proof[i] != proof[i + 1]:
            yield (
                f"swap proof[{i}] and [{i + 1}]",
                [*proof[:i], proof[i + 1], element, *proof[i + 2 :]],
            )
    for i in range(len(proof) + 1):
        for name, junk in [("random", SOME_HASH), ("empty", b""), ("short", SOME_HASH[:31])]:
            yield f"insert {name} at {i}", [*proof[:i], junk, *proof[i:]]
        for j, known in enumerate(extra):
            yield f"insert extra[{j}] at {i}", [*proof[:i], known, *proof[i:]]
    if len(proof) > 1 and proof != proof[::-1]:
        yield "reversed", proof[::-1]
    if proof:
        yield "empty proof", []
        yield "truncated hashes", [p[:16] for p in proof]


@pytest.mark.parametrize("path", INCLUSION_HAPPY, ids=_probe_id)
def test_mutated_inclusion_vectors_are_rejected(path: Path) -> None:
    leaf, index, size, proof, root = _inclusion_args(_load(path))
    assert verify_inclusion(leaf, index, size, proof, root)
    mutants: list[tuple[str, tuple[bytes, int, int, list[bytes], bytes]]] = [
        (f"proof: {name}", (leaf, index, size, bad, root))
        for name, bad in _proof_mutants(proof, [root, leaf])
    ]
    mutants += [
        ("index - 1", (leaf, index - 1, size, proof, root)),
        ("index + 1", (leaf, index + 1, size, proof, root)),
        ("index ^ 2", (leaf, index ^ 2, size, proof, root)),
        # Sizes change the tree height: x2 and //2 always break the path. (A nearby size with
        # the same path shape, e.g. 5 -> 6 for leaf 1, recomputes the same root; the root is
        # what binds the size, as in a signed tree head.)
        ("size * 2", (leaf, index, size * 2, proof, root)),
        ("size // 2", (leaf, index, size // 2, proof, root)),
        ("size 0", (leaf, index, 0, proof, root)),
        ("leaf and root swapped", (root, index, size, proof, leaf)),
        ("raw data as leaf", (b"WrongLeaf", index, size, proof, root)),
        ("empty-tree root", (leaf, index, size, proof, EMPTY_ROOT)),
        ("random root", (leaf, index, size, proof, SOME_HASH)),
        ("short root", (leaf, index, size, proof, root[:31])),
    ]
    mutants += [(f"leaf bit {b}", (_flip(leaf, b), index, size, proof, root)) for b in range(256)]
    mutants += [(f"root bit {b}", (leaf, index, size, proof, _flip(root, b))) for b in range(256)]
    if size == 1:  # a one-leaf tree's root is its leaf hash; keep that pairing valid
        mutants = [m for m in mutants if m[0] != "leaf and root swapped"]
    accepted = [name for name, args in mutants if verify_inclusion(*args) is not False]
    assert accepted == []


@pytest.mark.parametrize("path", CONSISTENCY_HAPPY, ids=_probe_id)
def test_mutated_consistency_vectors_are_rejected(path: Path) -> None:
    old_size, new_size, old_root, new_root, proof = _consistency_args(_load(path))
    assert verify_consistency(old_size, new_size, old_root, new_root, proof)
    mutants: list[tuple[str, tuple[int, int, bytes, bytes, list[bytes]]]] = [
        (f"proof: {name}", (old_size, new_size, old_root, new_root, bad))
        for name, bad in _proof_mutants(proof, [old_root, new_root])
    ]
    mutants += [
        ("old_size - 1", (old_size - 1, new_size, old_root, new_root, proof)),
        ("old_size + 1", (old_size + 1, new_size, old_root, new_root, proof)),
        ("old_size ^ 2", (old_size ^ 2, new_size, old_root, new_root, proof)),
        ("new_size * 2", (old_size, new_size * 2, old_root, new_root, proof)),
        ("new_size // 2", (old_size, new_size // 2, old_root, new_root, proof)),
        ("sizes swapped", (new_size, old_size, old_root, new_root, proof)),
        ("old_size 0", (0, new_size, old_root, new_root, proof)),
        ("roots swapped", (old_size, new_size, new_root, old_root, proof)),
        ("old root wrong", (old_size, new_size, SOME_HASH, new_root, proof)),
        ("new root wrong", (old_size, new_size, old_root, SOME_HASH, proof)),
        ("old root raw", (old_size, new_size, b"WrongRoot", new_root, proof)),
        ("new root empty tree", (old_size, new_size, old_root, EMPTY_ROOT, proof)),
    ]
    for b in range(256):
        mutants.append(
            (f"old root bit {b}", (old_size, new_size, _flip(old_root, b), new_root, proof))
        )
        mutants.append(
            (f"new root bit {b}", (old_size, new_size, old_root, _flip(new_root, b), proof))
        )
    if old_size == new_size:  # equal sizes and roots: swaps are no-ops, and no proof is valid
        mutants = [m for m in mutants if m[0] not in ("sizes swapped", "roots swapped")]
    accepted = [name for name, args in mutants if verify_consistency(*args) is not False]
    assert accepted == []


# --------------------------------------------------------------- malformed inputs

GOOD_LEAF = REF_LEAF_HASHES[0]
ROOT_2 = bytes.fromhex(REFERENCE["roots_by_size"]["2"])
ROOT_4 = bytes.fromhex(REFERENCE["roots_by_size"]["4"])
ROOT_8 = bytes.fromhex(REFERENCE["roots_by_size"]["8"])

MALFORMED_INCLUSION: list[tuple[str, tuple[Any, ...]]] = [
    ("index == size", (GOOD_LEAF, 1, 1, [], GOOD_LEAF)),
    ("index > size", (GOOD_LEAF, 5, 2, [REF_LEAF_HASHES[1]], ROOT_2)),
    ("size 0", (GOOD_LEAF, 0, 0, [], EMPTY_ROOT)),
    ("negative index", (GOOD_LEAF, -1, 1, [], GOOD_LEAF)),
    ("negative size", (GOOD_LEAF, 0, -1, [], GOOD_LEAF)),
    ("bool index", (REF_LEAF_HASHES[1], True, 2, [GOOD_LEAF], ROOT_2)),
    ("float size", (GOOD_LEAF, 0, 1.0, [], GOOD_LEAF)),
    ("str leaf", ("x" * 32, 0, 1, [], GOOD_LEAF)),
    ("bytearray leaf", (bytearray(GOOD_LEAF), 0, 1, [], GOOD_LEAF)),
    ("None root", (GOOD_LEAF, 0, 1, [], None)),
    ("33-byte leaf", (GOOD_LEAF + b"\x00", 0, 1, [], GOOD_LEAF + b"\x00")),
    ("None in proof", (GOOD_LEAF, 0, 2, [None], ROOT_2)),
    ("int in proof", (GOOD_LEAF, 0, 2, [7], ROOT_2)),
    ("proof too long", (GOOD_LEAF, 0, 2, [REF_LEAF_HASHES[1], GOOD_LEAF], ROOT_2)),
    ("proof too short", (GOOD_LEAF, 0, 4, [REF_LEAF_HASHES[1]], ROOT_4)),
    ("huge size", (GOOD_LEAF, 0, 2**64, [REF_LEAF_HASHES[1]], ROOT_2)),
]

MALFORMED_CONSISTENCY: list[tuple[str, tuple[Any, ...]]] = [
    ("old > new", (2, 1, ROOT_2, GOOD_LEAF, [])),
    ("both sizes 0", (0, 0, EMPTY_ROOT, EMPTY_ROOT, [])),
    ("old 0, empty proof", (0, 2, EMPTY_ROOT, ROOT_2, [])),
    ("old 0, root as proof", (0, 2, EMPTY_ROOT, ROOT_2, [ROOT_2])),
    ("negative old", (-1, 2, EMPTY_ROOT, ROOT_2, [])),
    ("negative new", (1, -2, GOOD_LEAF, ROOT_2, [])),
    ("bool sizes", (True, True, GOOD_LEAF, GOOD_LEAF, [])),
    ("equal sizes, roots differ", (2, 2, ROOT_2, ROOT_4, [])),
    ("equal sizes, proof given", (2, 2, ROOT_2, ROOT_2, [ROOT_2])),
    ("empty proof", (2, 4, ROOT_2, ROOT_4, [])),
    ("None root", (2, 4, None, ROOT_4, [ROOT_2])),
    ("str root", (2, 2, "r", "r", [])),
    ("None in proof", (2, 4, ROOT_2, ROOT_4, [None])),
    ("short proof hash", (2, 4, ROOT_2, ROOT_4, [ROOT_2[:31]])),
    ("proof too long", (4, 8, ROOT_4, ROOT_8, [ROOT_4, ROOT_4, ROOT_4])),
    ("huge new size", (1, 2**70, GOOD_LEAF, ROOT_2, [REF_LEAF_HASHES[1]])),
]


@pytest.mark.parametrize(
    "args", [a for _, a in MALFORMED_INCLUSION], ids=[n for n, _ in MALFORMED_INCLUSION]
)
def test_verify_inclusion_rejects_malformed_input(args: tuple[Any, ...]) -> None:
    assert verify_inclusion(*args) is False


@pytest.mark.parametrize(
    "args", [a for _, a in MALFORMED_CONSISTENCY], ids=[n for n, _ in MALFORMED_CONSISTENCY]
)
def test_verify_consistency_rejects_malformed_input(args: tuple[Any, ...]) -> None:
    assert verify_consistency(*args) is False


def test_equal_size_consistency_needs_only_equal_roots() -> None:
    for n in range(1, 9):
        root = root_from_leaf_hashes(REF_LEAF_HASHES[:n])
        assert consistency_proof(REF_LEAF_HASHES[:n], n) == []
        assert verify_consistency(n, n, root, root, [])


def test_proof_builders_reject_impossible_requests() -> None:
    tree = list(_leaves(5))
    for index in (-1, 5, 6):
        with pytest.raises(ValueError):
            inclusion_proof(tree, index)
    with pytest.raises(ValueError):
        inclusion_proof([], 0)
    for old_size in (-1, 0, 6):
        with pytest.raises(ValueError):
            consistency_proof(tree, old_size)


# -------------------------------------------------------------- property tests

MAX_N = 64


def test_roots_match_rfc_definition() -> None:
    for n in range(MAX_N + 1):
        assert root_from_leaf_hashes(_leaves(n)) == _mth(_leaves(n)), n


def test_every_inclusion_proof_verifies() -> None:
    for n in range(1, MAX_N + 1):
        tree = _leaves(n)
        root = root_from_leaf_hashes(tree)
        for i in range(n):
            proof = inclusion_proof(tree, i)
            assert proof == _path(i, tree), (n, i)
            assert verify_inclusion(tree[i], i, n, proof, root), (n, i)
            for j in {i - 1, i + 1, i ^ 1, i ^ 2, n - 1 - i} - {i}:
                assert not verify_inclusion(tree[i], j, n, proof, root), (n, i, j)
            if n > 1:
                other = tree[(i + 1) % n]
                assert not verify_inclusion(other, i, n, proof, root), (n, i)


def test_every_consistency_proof_verifies() -> None:
    for n in range(1, MAX_N + 1):
        tree = _leaves(n)
        new_root = root_from_leaf_hashes(tree)
        for m in range(1, n + 1):
            old_root = root_from_leaf_hashes(tree[:m])
            proof = consistency_proof(tree, m)
            assert proof == _subproof(m, tree, True), (m, n)
            assert verify_consistency(m, n, old_root, new_root, proof), (m, n)
            assert not verify_consistency(m, n, _flip(old_root, 7), new_root, proof), (m, n)
            assert not verify_consistency(m, n, old_root, _flip(new_root, 7), proof), (m, n)
            if m < n:
                assert not verify_consistency(m, n, new_root, old_root, proof), (m, n)
                assert not verify_consistency(m, n, old_root, new_root, proof[:-1]), (m, n)
                assert not verify_consistency(m, n, old_root, new_root, [*proof, SOME_HASH])
        with pytest.raises(ValueError):
            consistency_proof(tree, 0)
        assert not verify_consistency(0, n, EMPTY_ROOT, new_root, [])


def test_consistency_proof_rejects_a_rewritten_history() -> None:
    for n in range(2, 33):
        honest = list(_leaves(n))
        for m in range(1, n):
            for changed in (0, m - 1):  # rewrite an entry the old tree already committed to
                forged = honest.copy()
                forged[changed] = leaf_hash(b"forged")
                old_root = root_from_leaf_hashes(honest[:m])
                proof = consistency_proof(forged, m)
                assert not verify_consistency(m, n, old_root, root_from_leaf_hashes(forged), proof)


def test_compact_range_root_at_every_size() -> None:
    tree = _leaves(300)
    compact = CompactRange()
    assert compact.root() == EMPTY_ROOT
    for n, h in enumerate(tree, start=1):
        compact.append(h)
        assert compact.size == n
        assert len(compact.peaks) == n.bit_count()
        assert compact.root() == root_from_leaf_hashes(tree[:n]), n


def test_compact_range_resumes_from_saved_state() -> None:
    tree = _leaves(100)
    first = CompactRange()
    first.extend(tree[:37])
    resumed = CompactRange.from_state(first.size, first.peaks)
    resumed.extend(tree[37:])
    assert resumed.size == 100
    assert resumed.root() == root_from_leaf_hashes(tree)


@pytest.mark.parametrize(
    ("size", "peaks"),
    [(-1, []), (3, [SOME_HASH]), (1, [SOME_HASH, SOME_HASH]), (1, [b"short"]), (0, [SOME_HASH])],
)
def test_compact_range_rejects_invalid_state(size: int, peaks: list[bytes]) -> None:
    with pytest.raises(ValueError):
        CompactRange.from_state(size, peaks)


def test_compact_range_rejects_non_hash_leaf() -> None:
    compact = CompactRange()
    with pytest.raises(ValueError):
        compact.append(b"raw leaf data, not a hash")
    assert compact.size == 0


# ---------------------------------------------------------------------- sanity


def test_hundred_thousand_leaves() -> None:
    """Just that a realistic log size runs; speed itself belongs in benchmarks."""
    tree = [leaf_hash(i.to_bytes(8, "big")) for i in range(100_000)]
    root = root_from_leaf_hashes(tree)
    compact = CompactRange()
    compact.extend(tree)
    assert compact.root() == root
    index = 65_432
    assert verify_inclusion(tree[index], index, len(tree), inclusion_proof(tree, index), root)
    old_root = root_from_leaf_hashes(tree[:77_777])
    proof = consistency_proof(tree, 77_777)
    assert verify_consistency(77_777, len(tree), old_root, root, proof)
