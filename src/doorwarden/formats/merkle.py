"""The audit log's Merkle tree (RFC 6962 / RFC 9162, SHA-256): hashing, proofs, checks.

Pure functions, no I/O. Storage keeps only *perfect* subtrees, named by ``(level, index)``:
the subtree covering leaves ``[index * 2**level, (index + 1) * 2**level)``. Such a node never
changes once its last leaf is appended, so a store built for a large tree answers for every
smaller one. Any other subtree a root or proof needs (the right edge of a tree whose size is
not a power of two) is recomputed from its perfect pieces (`perfect_subtrees` + `fold`), so a
proof reads O(log n) stored nodes in one batch and never walks leaves.

Argument policy: the proof *generators* raise `ValueError` for impossible arguments (an index
outside the tree, size1 > size2, negative numbers) because those are caller bugs; the
*verifiers* see hostile input (a proof served by someone else) and answer False, never raise.
"""

from __future__ import annotations

import hashlib
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol

# (level, index): the perfect subtree covering leaves [index * 2**level, (index + 1) * 2**level).
Key = tuple[int, int]

HASH_SIZE = 32
EMPTY_ROOT = hashlib.sha256(b"").digest()
_LEAF_PREFIX = b"\x00"
_NODE_PREFIX = b"\x01"


class NodeStore(Protocol):
    """Where perfect-subtree hashes live; storage answers a whole proof in one query."""

    def get(self, keys: Collection[Key]) -> Mapping[Key, bytes]:
        """Return the stored hashes among `keys`; keys not stored are absent."""
        ...


def leaf_hash(data: bytes) -> bytes:
    """RFC 6962 leaf hash; the 0x00 prefix keeps a leaf from passing for an inner node."""
    return hashlib.sha256(_LEAF_PREFIX + data).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    """RFC 6962 interior node hash."""
    return hashlib.sha256(_NODE_PREFIX + left + right).digest()


def _split(n: int) -> int:
    """The largest power of two smaller than n (n > 1): where MTH splits a list of n leaves."""
    return 1 << ((n - 1).bit_length() - 1)


def perfect_subtrees(start: int, end: int) -> list[Key]:
    """The perfect subtrees that exactly cover leaves [start, end), left to right.

    Each piece is the largest aligned power-of-two block that starts where the previous one
    ended and fits. When [start, end) is a subtree of some MTH (start is a multiple of the
    smallest power of two >= end - start, as every range a root or proof needs is), this is
    exactly how MTH splits it: largest power of two first, then the remainder recursively.
    """
    if not 0 <= start <= end:
        raise ValueError(f"bad leaf range [{start}, {end})")
    keys: list[Key] = []
    while start < end:
        # Alignment bounds the block from the left, the remaining length from the right.
        size = start & -start if start else 1 << (end.bit_length() - 1)
        while size > end - start:
            size >>= 1
        level = size.bit_length() - 1
        keys.append((level, start >> level))
        start += size
    return keys


def root_keys(size: int) -> list[Key]:
    """The perfect subtrees whose hashes make the root of a tree of `size` leaves."""
    return perfect_subtrees(0, size)


def fold(hashes: Sequence[bytes]) -> bytes:
    """Combine perfect-subtree hashes, in `perfect_subtrees` order, into their MTH.

    MTH splits off the largest perfect block on the left and recurses to the right, so the
    pieces combine right to left. An empty list is the empty tree.
    """
    if not hashes:
        return EMPTY_ROOT
    acc = hashes[-1]
    for h in reversed(hashes[:-1]):
        acc = node_hash(h, acc)
    return acc


def _fetch(nodes: NodeStore, keys: list[Key]) -> Mapping[Key, bytes]:
    """One batch lookup; a missing node means the store is behind or damaged: fail loudly."""
    if not keys:
        return {}
    found = nodes.get(keys)
    missing = [k for k in keys if k not in found]
    if missing:
        raise KeyError(f"Merkle nodes missing from the store: {missing[:8]}")
    return found


def _hash_ranges(ranges: list[tuple[int, int]], nodes: NodeStore) -> list[bytes]:
    """MTH of each leaf range, all fetched in one batch."""
    groups = [perfect_subtrees(a, b) for a, b in ranges]
    found = _fetch(nodes, [k for g in groups for k in g])
    return [fold([found[k] for k in g]) for g in groups]


def root(size: int, nodes: NodeStore) -> bytes:
    """MTH of the first `size` leaves (EMPTY_ROOT for 0)."""
    return _hash_ranges([(0, size)], nodes)[0]


def append_nodes(start: int, leaf_hashes: Sequence[bytes], nodes: NodeStore) -> dict[Key, bytes]:
    """The nodes that appending `leaf_hashes` at positions start.. completes.

    Level 0 is the leaf hashes; above it, every perfect subtree whose last leaf is among the
    new ones. A new subtree whose left half is old needs that half from `nodes` (they are the
    left siblings on the right edge of the tree of `start` leaves): all are fetched in one call.
    """
    if start < 0:
        raise ValueError(f"negative start {start}")
    if any(len(h) != HASH_SIZE for h in leaf_hashes):
        raise ValueError("leaf hashes must be 32 bytes (leaf_hash(data), not the data)")
    end = start + len(leaf_hashes)
    # At level l the new nodes are indices [start >> l, end >> l); when the first one is odd,
    # its left sibling is old and its parent (if complete) needs it.
    needed: list[Key] = []
    level = 0
    while (start >> (level + 1)) < (end >> (level + 1)):
        if (start >> level) & 1:
            needed.append((level, (start >> level) - 1))
        level += 1
    old = _fetch(nodes, needed)

    out: dict[Key, bytes] = {(0, start + i): h for i, h in enumerate(leaf_hashes)}
    row, lo, level = list(leaf_hashes), start, 0
    while (lo >> 1) < (end >> (level + 1)):
        if lo & 1:
            row.insert(0, old[(level, lo - 1)])
            lo -= 1
        count = (end >> (level + 1)) - (lo >> 1)
        row = [node_hash(row[2 * j], row[2 * j + 1]) for j in range(count)]
        lo, level = lo >> 1, level + 1
        out.update(((level, lo + j), h) for j, h in enumerate(row))
    return out


def _inclusion_ranges(index: int, size: int) -> list[tuple[int, int]]:
    """The leaf ranges whose MTHs form PATH(index, D[size]), in the RFC's order (leaf up)."""
    if not 0 <= index < size:
        raise ValueError(f"leaf index {index} is not in a tree of {size} leaves")
    lo, hi, siblings = 0, size, []
    while hi - lo > 1:
        k = _split(hi - lo)
        if index - lo < k:  # PATH(m, D[0:k]) : MTH(D[k:n])
            siblings.append((lo + k, hi))
            hi = lo + k
        else:  # PATH(m - k, D[k:n]) : MTH(D[0:k])
            siblings.append((lo, lo + k))
            lo += k
    return siblings[::-1]  # the recursion emits the deepest sibling first


def _consistency_ranges(size1: int, size2: int) -> list[tuple[int, int]]:
    """The leaf ranges whose MTHs form PROOF(size1, D[size2]), in the RFC's order.

    Size 0 is consistent with every tree and size1 == size2 needs nothing: both give [].
    """
    if not 0 <= size1 <= size2:
        raise ValueError(f"no consistency proof from size {size1} to size {size2}")
    if size1 in (0, size2):
        return []
    lo, hi, whole, siblings = 0, size2, True, []
    while size1 != hi:  # SUBPROOF(m, D[lo:hi], whole)
        k = _split(hi - lo)
        if size1 - lo <= k:
            siblings.append((lo + k, hi))
            hi = lo + k
        else:
            siblings.append((lo, lo + k))
            lo, whole = lo + k, False
    # Ending with whole=True means the old tree is itself a perfect subtree: the verifier
    # already holds its root, so the RFC leaves it out.
    return ([] if whole else [(lo, hi)]) + siblings[::-1]


def _keys(ranges: list[tuple[int, int]]) -> list[Key]:
    return [k for a, b in ranges for k in perfect_subtrees(a, b)]


def inclusion_keys(index: int, size: int) -> list[Key]:
    """The stored nodes `inclusion_proof(index, size)` reads (at most ~2 log2(size))."""
    return _keys(_inclusion_ranges(index, size))


def inclusion_proof(index: int, size: int, nodes: NodeStore) -> list[bytes]:
    """RFC 6962 section 2.1.1 PATH(index, D[size]): sibling hashes from the leaf up."""
    return _hash_ranges(_inclusion_ranges(index, size), nodes)


def consistency_keys(size1: int, size2: int) -> list[Key]:
    """The stored nodes `consistency_proof(size1, size2)` reads."""
    return _keys(_consistency_ranges(size1, size2))


def consistency_proof(size1: int, size2: int, nodes: NodeStore) -> list[bytes]:
    """RFC 6962 section 2.1.2 PROOF(size1, D[size2]).

    Defined by the RFC for 0 < size1 < size2. Beyond that: size1 == size2 gives [] (RFC 9162
    2.1.4), and size1 == 0 gives [] too, since the empty tree is a prefix of every tree (so a
    verifier starting from nothing needs no special case). size1 > size2 is a ValueError.
    """
    return _hash_ranges(_consistency_ranges(size1, size2), nodes)


def _is_hash(value: object) -> bool:
    return isinstance(value, bytes | bytearray | memoryview) and len(value) == HASH_SIZE


def verify_inclusion(
    leaf: bytes, index: int, size: int, proof: Sequence[bytes], root: bytes
) -> bool:
    """RFC 9162 section 2.1.3.2: is `leaf` (the leaf *hash*) at `index` in the tree `root`?

    False for anything malformed; never raises.
    """
    if not (_is_hash(leaf) and _is_hash(root) and all(_is_hash(p) for p in proof)):
        return False
    # 1. The index must be inside the tree.
    if not 0 <= index < size:
        return False
    # 2-3. fn walks the leaf's position up the tree, sn the last leaf's.
    fn, sn, r = index, size - 1, bytes(leaf)
    for p in proof:  # 4.
        if sn == 0:  # a. the path is longer than the tree is tall
            return False
        if fn & 1 or fn == sn:  # b. p is a left sibling
            r = node_hash(p, r)
            # On the right edge, levels where this node has no right sibling are skipped.
            while fn and not fn & 1:
                fn, sn = fn >> 1, sn >> 1
        else:
            r = node_hash(r, p)
        fn, sn = fn >> 1, sn >> 1  # c.
    # 5. The path must reach the top, and land on the root.
    return sn == 0 and r == root


def verify_consistency(
    size1: int, size2: int, proof: Sequence[bytes], root1: bytes, root2: bytes
) -> bool:
    """RFC 9162 section 2.1.4.2: is the tree (size1, root1) a prefix of (size2, root2)?

    Edge cases the RFC leaves to the caller: size1 == size2 holds iff the proof is empty and
    the roots are equal; size1 == 0 holds iff the proof is empty and root1 is EMPTY_ROOT.
    False for anything malformed; never raises.
    """
    if not (_is_hash(root1) and _is_hash(root2) and all(_is_hash(p) for p in proof)):
        return False
    if not 0 <= size1 <= size2:
        return False
    if size1 == 0:
        return not proof and root1 == EMPTY_ROOT
    if size1 == size2:
        return not proof and root1 == root2
    # 1. 0 < size1 < size2 always needs at least one hash.
    if not proof:
        return False
    path = list(proof)
    # 2. An old tree that is a perfect subtree is not sent: the verifier has its root.
    if size1 & (size1 - 1) == 0:
        path.insert(0, bytes(root1))
    # 3-4. Start at the lowest node on the old tree's right edge that is a left child (or root).
    fn, sn = size1 - 1, size2 - 1
    while fn & 1:
        fn, sn = fn >> 1, sn >> 1
    fr = sr = bytes(path[0])  # 5. that node's hash, common to both trees
    for c in path[1:]:  # 6.
        if sn == 0:  # a.
            return False
        if fn & 1 or fn == sn:  # b. c is a left sibling: part of both trees
            fr, sr = node_hash(c, fr), node_hash(c, sr)
            while fn and not fn & 1:
                fn, sn = fn >> 1, sn >> 1
        else:  # c holds only new leaves
            sr = node_hash(sr, c)
        fn, sn = fn >> 1, sn >> 1  # c.
    # 7.
    return sn == 0 and fr == root1 and sr == root2


class MemoryNodeStore:
    """A dict-backed NodeStore: for tests, benchmarks and the offline verifier."""

    def __init__(self, nodes: Mapping[Key, bytes] | None = None) -> None:
        self.nodes: dict[Key, bytes] = dict(nodes or {})

    def get(self, keys: Collection[Key]) -> dict[Key, bytes]:
        found = self.nodes
        return {k: found[k] for k in keys if k in found}

    def put(self, nodes: Mapping[Key, bytes]) -> None:
        self.nodes.update(nodes)

    def __len__(self) -> int:
        return len(self.nodes)


@dataclass
class CompactRange:
    """The right edge of a tree: the hashes of `root_keys(size)`, left to right.

    Enough to compute the root and to keep appending without the rest of the tree, so the
    offline verifier saves one beside each checkpoint and checks later entries incrementally.
    """

    size: int = 0
    hashes: list[bytes] = field(default_factory=list)

    def __post_init__(self) -> None:
        if self.size < 0 or len(self.hashes) != self.size.bit_count():
            raise ValueError(f"{len(self.hashes)} edge hashes do not fit a tree of {self.size}")
        if not all(_is_hash(h) for h in self.hashes):
            raise ValueError("edge hashes must be 32 bytes")
        self.hashes = [bytes(h) for h in self.hashes]

    @classmethod
    def load(cls, size: int, nodes: NodeStore) -> CompactRange:
        """The compact range of the first `size` leaves of a stored tree (one batch get)."""
        keys = root_keys(size)
        found = _fetch(nodes, keys)
        return cls(size, [found[k] for k in keys])

    def append(self, leaf_hashes: Sequence[bytes]) -> None:
        """Add leaves (their hashes) on the right."""
        for h in leaf_hashes:
            if not _is_hash(h):
                raise ValueError("leaf hashes must be 32 bytes (leaf_hash(data), not the data)")
            # Each trailing 1 bit of the size is a perfect subtree the new leaf completes.
            size, acc = self.size, bytes(h)
            while size & 1:
                acc = node_hash(self.hashes.pop(), acc)
                size >>= 1
            self.hashes.append(acc)
            self.size += 1

    def root(self) -> bytes:
        """MTH of the tree so far."""
        return fold(self.hashes)

    def to_hex(self) -> list[str]:
        """The edge hashes as hex strings (the size is stored beside them)."""
        return [h.hex() for h in self.hashes]

    @classmethod
    def from_hex(cls, size: int, hashes: Sequence[str]) -> CompactRange:
        """Rebuild from `to_hex()` output; ValueError if it does not fit `size`."""
        return cls(size, [bytes.fromhex(h) for h in hashes])
