"""Merkle tree hashing and proofs for the tamper-evident audit log.

This is the Merkle Tree of RFC 9162 §2.1 (Certificate Transparency v2), which is the
same tree as RFC 6962 §2.1:

* leaf hash ``SHA-256(0x00 || leaf)``, interior node hash ``SHA-256(0x01 || left || right)``;
* the tree over ``n > 1`` leaves splits at ``k``, the largest power of two strictly
  smaller than ``n``; the root of the empty tree is ``SHA-256("")``.

Provided here:

* :func:`root_from_leaf_hashes` - the Merkle Tree Hash (MTH, §2.1.1) over leaf hashes;
* :func:`inclusion_proof` / :func:`verify_inclusion` - §2.1.3.1 and §2.1.3.2;
* :func:`consistency_proof` / :func:`verify_consistency` - §2.1.4.1 and §2.1.4.2;
* :class:`CompactRange` - an append-only accumulator keeping O(log n) hashes.

Proof builders take the log's leaf hashes and raise ``ValueError`` on impossible
requests. Verifiers never raise on bad input: any malformed or wrong proof gives
``False``. Edge cases follow transparency-dev/merkle: a consistency proof between equal
sizes is empty and only needs equal roots; a consistency proof from the empty tree
(``old_size == 0``) is meaningless and never verifies.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterable, Sequence

__all__ = [
    "EMPTY_ROOT",
    "HASH_SIZE",
    "CompactRange",
    "consistency_proof",
    "inclusion_proof",
    "leaf_hash",
    "node_hash",
    "root_from_leaf_hashes",
    "verify_consistency",
    "verify_inclusion",
]

HASH_SIZE = 32
"""Size in bytes of every hash in the tree (SHA-256)."""

EMPTY_ROOT = hashlib.sha256(b"").digest()
"""MTH({}) = SHA-256 of the empty string."""

_LEAF_PREFIX = b"\x00"
_NODE_PREFIX = b"\x01"


def leaf_hash(data: bytes) -> bytes:
    """Hash a leaf: ``SHA-256(0x00 || data)``."""
    return hashlib.sha256(_LEAF_PREFIX + data).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    """Hash an interior node: ``SHA-256(0x01 || left || right)``."""
    return hashlib.sha256(_NODE_PREFIX + left + right).digest()


def _split(n: int) -> int:
    """The largest power of two strictly smaller than ``n`` (requires ``n > 1``)."""
    return 1 << ((n - 1).bit_length() - 1)


# --------------------------------------------------------------------------- roots


def root_from_leaf_hashes(hashes: Sequence[bytes]) -> bytes:
    """The Merkle Tree Hash of a list of leaf hashes, in O(n) time.

    Hashes level by level; an unpaired last node moves up unchanged, which yields
    exactly the left-balanced tree of RFC 9162 §2.1.1.
    """
    if not hashes:
        return EMPTY_ROOT
    level = list(hashes)
    while len(level) > 1:
        paired = [node_hash(level[i], level[i + 1]) for i in range(0, len(level) - 1, 2)]
        if len(level) % 2:
            paired.append(level[-1])
        level = paired
    return level[0]


# ----------------------------------------------------------------------- inclusion


def inclusion_proof(hashes: Sequence[bytes], index: int) -> list[bytes]:
    """The audit path PATH(index, D[n]) of RFC 9162 §2.1.3.1, leaf side first.

    Raises ``ValueError`` unless ``0 <= index < len(hashes)``.
    """
    if not 0 <= index < len(hashes):
        raise ValueError(f"leaf index {index} outside a tree of size {len(hashes)}")
    path: list[bytes] = []
    lo, hi = 0, len(hashes)
    while hi - lo > 1:
        mid = lo + _split(hi - lo)
        if index < mid:
            path.append(root_from_leaf_hashes(hashes[mid:hi]))
            hi = mid
        else:
            path.append(root_from_leaf_hashes(hashes[lo:mid]))
            lo = mid
    path.reverse()
    return path


def verify_inclusion(
    leaf_hash: bytes, index: int, size: int, proof: Sequence[bytes], root: bytes
) -> bool:
    """Check an inclusion proof with the algorithm of RFC 9162 §2.1.3.2."""
    if not (_is_size(index) and _is_size(size) and index < size):
        return False
    if not (_is_hash(leaf_hash) and _is_hash(root) and _all_hashes(proof)):
        return False
    fn, sn, r = index, size - 1, leaf_hash
    for p in proof:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            r = node_hash(p, r)
            fn, sn = _drop_right_border(fn, sn)
        else:
            r = node_hash(r, p)
        fn, sn = fn >> 1, sn >> 1
    return sn == 0 and hmac.compare_digest(r, root)


# --------------------------------------------------------------------- consistency


def consistency_proof(hashes: Sequence[bytes], old_size: int) -> list[bytes]:
    """The consistency proof PROOF(old_size, D[n]) of RFC 9162 §2.1.4.1.

    Empty when ``old_size == len(hashes)``. Raises ``ValueError`` unless
    ``0 < old_size <= len(hashes)``: a proof from the empty tree is meaningless.
    """
    if not 0 < old_size <= len(hashes):
        raise ValueError(f"old size {old_size} outside 1..{len(hashes)}")
    proof: list[bytes] = []
    lo, hi, m = 0, len(hashes), old_size  # SUBPROOF(m, D[lo:hi], b); m counts from lo
    whole_old_tree = True  # b: is D[lo:lo+m] the whole old tree?
    while m < hi - lo:
        mid = lo + _split(hi - lo)
        if lo + m <= mid:
            proof.append(root_from_leaf_hashes(hashes[mid:hi]))
            hi = mid
        else:
            proof.append(root_from_leaf_hashes(hashes[lo:mid]))
            m -= mid - lo
            lo = mid
            whole_old_tree = False
    if not whole_old_tree:
        proof.append(root_from_leaf_hashes(hashes[lo:hi]))
    proof.reverse()
    return proof


def verify_consistency(
    old_size: int, new_size: int, old_root: bytes, new_root: bytes, proof: Sequence[bytes]
) -> bool:
    """Check a consistency proof with the algorithm of RFC 9162 §2.1.4.2.

    ``old_size == new_size`` verifies only with an empty proof and equal roots;
    ``old_size == 0`` never verifies (as in transparency-dev/merkle).
    """
    if not (_is_size(old_size) and _is_size(new_size) and 0 < old_size <= new_size):
        return False
    if not (isinstance(old_root, bytes) and isinstance(new_root, bytes)):
        return False
    if old_size == new_size:
        return len(proof) == 0 and hmac.compare_digest(old_root, new_root)
    if not (proof and _all_hashes(proof) and _is_hash(old_root) and _is_hash(new_root)):
        return False
    path = list(proof)
    if old_size & (old_size - 1) == 0:  # the old tree is a complete subtree: its root seeds
        path.insert(0, old_root)
    fn, sn = old_size - 1, new_size - 1
    while fn & 1:
        fn, sn = fn >> 1, sn >> 1
    fr = sr = path[0]
    for c in path[1:]:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            fr, sr = node_hash(c, fr), node_hash(c, sr)
            fn, sn = _drop_right_border(fn, sn)
        else:
            sr = node_hash(sr, c)
        fn, sn = fn >> 1, sn >> 1
    return sn == 0 and hmac.compare_digest(fr, old_root) and hmac.compare_digest(sr, new_root)


# --------------------------------------------------------------------- accumulator


class CompactRange:
    """Append-only Merkle accumulator holding one hash per set bit of the size.

    ``peaks`` are the roots of the perfect subtrees covering leaves ``[0, size)``, largest
    first. Appending costs amortised O(1) hashes; :meth:`root` costs O(log n). The state
    (``size``, ``peaks``) can be stored and restored with :meth:`from_state`, so a log can
    resume appending without re-reading its leaves.
    """

    __slots__ = ("_peaks", "_size")

    def __init__(self) -> None:
        self._size = 0
        self._peaks: list[bytes] = []

    @classmethod
    def from_state(cls, size: int, peaks: Iterable[bytes]) -> CompactRange:
        """Rebuild a range from a saved ``size`` and ``peaks``; ``ValueError`` if invalid."""
        peak_list = list(peaks)
        if not _is_size(size):
            raise ValueError(f"invalid size {size!r}")
        if len(peak_list) != size.bit_count() or not _all_hashes(peak_list):
            raise ValueError(f"size {size} needs {size.bit_count()} peaks of {HASH_SIZE} bytes")
        compact = cls()
        compact._size = size
        compact._peaks = peak_list
        return compact

    @property
    def size(self) -> int:
        """Number of leaves appended so far."""
        return self._size

    @property
    def peaks(self) -> tuple[bytes, ...]:
        """Roots of the perfect subtrees covering the range, largest first."""
        return tuple(self._peaks)

    def append(self, leaf_hash: bytes) -> None:
        """Append one leaf hash (not raw leaf data: hash it with :func:`leaf_hash`)."""
        if not _is_hash(leaf_hash):
            raise ValueError(f"a leaf hash is {HASH_SIZE} bytes")
        node, size = leaf_hash, self._size
        while size & 1:  # each trailing 1-bit is a peak of equal height: merge it
            node = node_hash(self._peaks.pop(), node)
            size >>= 1
        self._peaks.append(node)
        self._size += 1

    def extend(self, leaf_hashes: Iterable[bytes]) -> None:
        """Append several leaf hashes in order."""
        for h in leaf_hashes:
            self.append(h)

    def root(self) -> bytes:
        """The Merkle Tree Hash of the leaves appended so far."""
        if not self._peaks:
            return EMPTY_ROOT
        root = self._peaks[-1]
        for peak in reversed(self._peaks[:-1]):
            root = node_hash(peak, root)
        return root


# ------------------------------------------------------------------------- helpers


def _drop_right_border(fn: int, sn: int) -> tuple[int, int]:
    """Shift both indices right while ``fn`` is even and non-zero (RFC 9162 §2.1.3.2)."""
    while fn and not fn & 1:
        fn, sn = fn >> 1, sn >> 1
    return fn, sn


def _is_size(value: object) -> bool:
    """A tree size or index: a non-negative ``int`` (``bool`` excluded)."""
    return type(value) is int and value >= 0


def _is_hash(value: object) -> bool:
    return isinstance(value, bytes) and len(value) == HASH_SIZE


def _all_hashes(values: Iterable[object]) -> bool:
    return all(_is_hash(v) for v in values)
