"""The audit log's Merkle tree against published vectors and against RFC 6962's own definitions.

The reference below is written straight from RFC 6962 section 2.1 (MTH, PATH, PROOF/SUBPROOF),
recursive and over whole leaf lists, so it shares no code or shortcut with the module.
"""

from __future__ import annotations

import hashlib
import random
from collections.abc import Collection, Sequence
from functools import cache

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from doorwarden.formats import merkle
from doorwarden.formats.merkle import (
    EMPTY_ROOT,
    CompactRange,
    Key,
    MemoryNodeStore,
    append_nodes,
    consistency_keys,
    consistency_proof,
    fold,
    inclusion_keys,
    inclusion_proof,
    leaf_hash,
    node_hash,
    perfect_subtrees,
    root,
    root_keys,
    verify_consistency,
    verify_inclusion,
)

# ---------------------------------------------------------------------------------------------
# Published vectors: transparency-dev/merkle, proof/verify_test.go (leaves, roots,
# inclusionProofs, consistencyProofs; the same data as certificate-transparency's C++ tests)
# and rfc6962/rfc6962_test.go (single hashes). Leaf numbers there are 1-based; here 0-based.
# ---------------------------------------------------------------------------------------------
LEAVES = [
    bytes.fromhex(h)
    for h in (
        "", "00", "10", "2021", "3031", "40414243", "5051525354555657",
        "606162636465666768696a6b6c6d6e6f",
    )
]  # fmt: skip
ROOTS = {
    1: "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
    2: "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
    3: "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
    4: "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
    5: "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
    6: "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
    7: "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
    8: "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
}
INCLUSION = [  # (index, size, proof)
    (0, 1, []),
    (0, 8, ["96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4"]),
    (5, 8, ["bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
            "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
            "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7"]),
    (2, 3, ["fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125"]),
    (1, 5, ["6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b"]),
]  # fmt: skip
CONSISTENCY = [  # (size1, size2, proof)
    (1, 1, []),
    (1, 8, ["96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4"]),
    (6, 8, ["0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
            "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
            "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7"]),
    (2, 5, ["5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b"]),
    (6, 7, ["0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
            "b08693ec2e721597130641e8211e7eedccb4c26413963eee6c1e2ed16ffb1a5f",
            "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7"]),
]  # fmt: skip
# Which stored nodes a proof reads, from transparency-dev/merkle proof/proof_test.go
# (TestInclusion, TestConsistency; their NodeID(level, index) is our Key). Compared as sets:
# they list the right-edge pieces in their own rehash order.
INCLUSION_NODES = [  # (index, size, nodes)
    (0, 2, {(0, 1)}),
    (1, 3, {(0, 0), (0, 2)}),
    (0, 7, {(0, 1), (1, 1), (0, 6), (1, 2)}),
    (4, 7, {(0, 5), (0, 6), (2, 0)}),
    (6, 7, {(1, 2), (2, 0)}),
    (3, 5, {(0, 2), (1, 0), (0, 4)}),
    (10, 15, {(0, 11), (1, 4), (0, 14), (1, 6), (3, 0)}),
    (24, 31, {(0, 25), (1, 13), (0, 30), (1, 14), (3, 2), (4, 0)}),
    (81, 95, {(0, 80), (1, 41), (2, 21), (0, 94), (1, 46), (2, 22), (4, 4), (6, 0)}),
]
CONSISTENCY_NODES = [  # (size1, size2, nodes)
    (1, 2, {(0, 1)}),
    (1, 6, {(0, 1), (1, 1), (1, 2)}),
    (2, 8, {(1, 1), (2, 1)}),
    (3, 7, {(0, 2), (0, 3), (1, 0), (0, 6), (1, 2)}),
    (4, 7, {(0, 6), (1, 2)}),
    (5, 7, {(0, 4), (0, 5), (0, 6), (2, 0)}),
    (7, 8, {(0, 6), (0, 7), (1, 2), (2, 0)}),
    (10, 15, {(1, 4), (1, 5), (0, 14), (1, 6), (3, 0)}),
    (24, 31, {(3, 2), (0, 30), (1, 14), (2, 6), (4, 0)}),
    (81, 95, {(0, 80), (0, 81), (1, 41), (2, 21), (0, 94), (1, 46), (2, 22), (4, 4), (6, 0)}),
]


def h(hexes: Sequence[str]) -> list[bytes]:
    return [bytes.fromhex(x) for x in hexes]


# ---------------------------------------------------------------------------------------------
# RFC 6962 section 2.1, as written: lists of leaf data, recursion, no storage.
# ---------------------------------------------------------------------------------------------
def ref_mth(d: Sequence[bytes]) -> bytes:
    n = len(d)
    if n == 0:
        return hashlib.sha256(b"").digest()
    if n == 1:
        return hashlib.sha256(b"\x00" + d[0]).digest()
    k = 1
    while k * 2 < n:
        k *= 2
    return hashlib.sha256(b"\x01" + ref_mth(d[:k]) + ref_mth(d[k:])).digest()


def ref_k(n: int) -> int:
    k = 1
    while k * 2 < n:
        k *= 2
    return k


def ref_path(m: int, d: Sequence[bytes]) -> list[bytes]:
    n = len(d)
    if n == 1:
        return []
    k = ref_k(n)
    if m < k:
        return [*ref_path(m, d[:k]), ref_mth(d[k:])]
    return [*ref_path(m - k, d[k:]), ref_mth(d[:k])]


def ref_subproof(m: int, d: Sequence[bytes], b: bool) -> list[bytes]:
    n = len(d)
    if m == n:
        return [] if b else [ref_mth(d)]
    k = ref_k(n)
    if m <= k:
        return [*ref_subproof(m, d[:k], b), ref_mth(d[k:])]
    return [*ref_subproof(m - k, d[k:], False), ref_mth(d[:k])]


def ref_proof(m: int, d: Sequence[bytes]) -> list[bytes]:
    return ref_subproof(m, d, True)


def path_shape(m: int, n: int) -> list[str]:
    """Which side each PATH(m, D[n]) sibling is on (the recursion above, with sizes only)."""
    if n == 1:
        return []
    k = ref_k(n)
    return [*path_shape(m, k), "R"] if m < k else [*path_shape(m - k, n - k), "L"]


def proof_shape(m: int, n: int, b: bool = True) -> list[str]:
    """PROOF(m, D[n])'s structure: sibling sides, and whether the old subtree's root is sent."""
    if m == n:
        return [] if b else ["old"]
    k = ref_k(n)
    return [*proof_shape(m, k, b), "R"] if m <= k else [*proof_shape(m - k, n - k, False), "L"]


# Leaf data for the cross-checks: distinct, of varied lengths (including empty).
DATA = [b"" if i == 0 else i.to_bytes(1 + i % 5, "big") for i in range(70)]


@cache
def mth(n: int) -> bytes:
    return ref_mth(DATA[:n])


class CountingStore(MemoryNodeStore):
    """A real MemoryNodeStore that also records each batch lookup, to prove one query each."""

    def __init__(self) -> None:
        super().__init__()
        self.calls: list[list[Key]] = []

    def get(self, keys: Collection[Key]) -> dict[Key, bytes]:
        self.calls.append(list(keys))
        return super().get(keys)


def build(data: Sequence[bytes], rng: random.Random, max_batch: int = 9) -> CountingStore:
    """A store filled by append_nodes in random batch sizes."""
    store, pos = CountingStore(), 0
    while pos < len(data):
        batch = [leaf_hash(x) for x in data[pos : pos + rng.randint(1, max_batch)]]
        store.put(append_nodes(pos, batch, store))
        pos += len(batch)
    store.calls.clear()
    return store


@pytest.fixture(scope="module")
def store70() -> CountingStore:
    return build(DATA, random.Random(6962))


@pytest.fixture(scope="module")
def store8() -> CountingStore:
    return build(LEAVES, random.Random(9162), max_batch=3)


# --- hashing and vectors ---------------------------------------------------------------------
def test_hashes_match_rfc6962_vectors() -> None:
    # transparency-dev/merkle rfc6962/rfc6962_test.go
    assert EMPTY_ROOT.hex() == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
    assert leaf_hash(b"").hex() == ROOTS[1]
    assert (
        leaf_hash(b"L123456").hex()
        == "395aa064aa4c29f7010acfe3f25db9485bbd4b91897b6ad7ad547639252b4d56"
    )
    assert (
        node_hash(b"N123", b"N456").hex()
        == "aa217fe888e47007fa15edab33c2b492a722cb106c64667fc2b044444de66bbb"
    )


def test_roots_match_published_vectors(store8: CountingStore) -> None:
    assert root(0, store8) == EMPTY_ROOT
    for size, want in ROOTS.items():
        assert root(size, store8).hex() == want
        assert ref_mth(LEAVES[:size]).hex() == want  # the reference is right, too


@pytest.mark.parametrize(("index", "size", "proof"), INCLUSION)
def test_inclusion_proofs_match_published_vectors(
    store8: CountingStore, index: int, size: int, proof: list[str]
) -> None:
    assert inclusion_proof(index, size, store8) == h(proof)
    assert verify_inclusion(leaf_hash(LEAVES[index]), index, size, h(proof), h([ROOTS[size]])[0])


@pytest.mark.parametrize(("size1", "size2", "proof"), CONSISTENCY)
def test_consistency_proofs_match_published_vectors(
    store8: CountingStore, size1: int, size2: int, proof: list[str]
) -> None:
    assert consistency_proof(size1, size2, store8) == h(proof)
    r1, r2 = h([ROOTS[size1], ROOTS[size2]])
    assert verify_consistency(size1, size2, h(proof), r1, r2)


@pytest.mark.parametrize(("index", "size", "nodes"), INCLUSION_NODES)
def test_inclusion_reads_the_published_nodes(index: int, size: int, nodes: set[Key]) -> None:
    keys = inclusion_keys(index, size)
    assert len(keys) == len(nodes) and set(keys) == nodes


@pytest.mark.parametrize(("size1", "size2", "nodes"), CONSISTENCY_NODES)
def test_consistency_reads_the_published_nodes(size1: int, size2: int, nodes: set[Key]) -> None:
    keys = consistency_keys(size1, size2)
    assert len(keys) == len(nodes) and set(keys) == nodes


# --- structure -------------------------------------------------------------------------------
@cache
def fewest_blocks(start: int, end: int) -> int:
    """By exhaustive search: the fewest aligned power-of-two blocks that tile [start, end)."""
    if start == end:
        return 0
    sizes = (1 << lvl for lvl in range(8) if start % (1 << lvl) == 0 and start + (1 << lvl) <= end)
    return 1 + min(fewest_blocks(start + size, end) for size in sizes)


def test_perfect_subtrees_tile_the_range_with_the_fewest_aligned_blocks() -> None:
    assert root_keys(0) == [] and root_keys(1) == [(0, 0)]
    assert root_keys(7) == [(2, 0), (1, 2), (0, 6)]
    assert perfect_subtrees(3, 13) == [(0, 3), (2, 1), (2, 2), (0, 12)]
    for start in range(40):
        for end in range(start, 70):
            pos = start
            keys = perfect_subtrees(start, end)
            for level, index in keys:
                assert index << level == pos  # contiguous, aligned by construction
                pos += 1 << level
            assert pos == end
            assert len(keys) == fewest_blocks(start, end)
    with pytest.raises(ValueError, match="bad leaf range"):
        perfect_subtrees(5, 4)


def test_fold_is_mth_of_the_pieces() -> None:
    assert fold([]) == EMPTY_ROOT
    for n in range(71):
        keys = root_keys(n)
        pieces = [mth((i + 1) << lvl) if i == 0 else ref_mth(DATA[i << lvl : (i + 1) << lvl])
                  for lvl, i in keys]  # fmt: skip
        assert fold(pieces) == mth(n)


def test_append_nodes_stores_exactly_the_perfect_subtrees(store70: CountingStore) -> None:
    want = {
        (lvl, i): ref_mth(DATA[i << lvl : (i + 1) << lvl])
        for lvl in range(7)
        for i in range(70 >> lvl)
    }
    assert store70.nodes == want


def test_append_nodes_fetches_left_siblings_in_one_call() -> None:
    data = DATA[:23]
    full = build(data, random.Random(1))
    # Restart from 11 leaves (binary 1011: three left siblings on the edge) and add 12.
    store = CountingStore()
    store.put({k: v for k, v in full.nodes.items() if (k[1] + 1) << k[0] <= 11})
    new = append_nodes(11, [leaf_hash(x) for x in data[11:]], store)
    assert store.calls == [[(0, 10), (1, 4), (3, 0)]]
    store.put(new)
    assert store.nodes == full.nodes
    # An aligned start needs nothing old, and asks for nothing.
    store.calls.clear()
    append_nodes(16, [leaf_hash(b"x")] * 3, store)
    assert store.calls == []


def test_append_nodes_refuses_a_store_that_lacks_a_sibling() -> None:
    store = MemoryNodeStore({(0, 0): leaf_hash(b"a")})  # size 3 would need (1, 0) as well
    store.put({(0, 2): leaf_hash(b"c")})
    with pytest.raises(KeyError, match=r"missing from the store: \[\(1, 0\)\]"):
        append_nodes(3, [leaf_hash(b"d")], store)
    with pytest.raises(ValueError, match="32 bytes"):
        append_nodes(0, [b"raw data, not a hash"], MemoryNodeStore())
    assert append_nodes(5, [], MemoryNodeStore()) == {}


def test_proofs_refuse_a_store_that_lacks_a_node(store70: CountingStore) -> None:
    partial = MemoryNodeStore({k: v for k, v in store70.nodes.items() if k != (2, 0)})
    with pytest.raises(KeyError, match=r"missing from the store: \[\(2, 0\)\]"):
        inclusion_proof(5, 8, partial)
    with pytest.raises(KeyError, match="missing from the store"):
        root(7, partial)


# --- every size and pair against the RFC's definitions ---------------------------------------
def test_roots_for_every_size(store70: CountingStore) -> None:
    for n in range(71):
        assert root(n, store70) == mth(n)
        assert CompactRange.load(n, store70).root() == mth(n)


def test_every_inclusion_proof_matches_the_rfc(store70: CountingStore) -> None:
    for n in range(1, 71):
        for m in range(n):
            store70.calls.clear()
            proof = inclusion_proof(m, n, store70)
            assert proof == ref_path(m, DATA[:n]), (m, n)
            assert len(store70.calls) <= 1
            assert all((i + 1) << lvl <= n for lvl, i in inclusion_keys(m, n))  # no future nodes
            assert verify_inclusion(leaf_hash(DATA[m]), m, n, proof, mth(n))


def test_every_consistency_proof_matches_the_rfc(store70: CountingStore) -> None:
    for n in range(1, 71):
        for m in range(1, n + 1):
            store70.calls.clear()
            proof = consistency_proof(m, n, store70)
            assert proof == ref_proof(m, DATA[:n]), (m, n)
            assert len(store70.calls) <= 1
            assert all((i + 1) << lvl <= n for lvl, i in consistency_keys(m, n))
            assert verify_consistency(m, n, proof, mth(m), mth(n))
        assert consistency_proof(0, n, store70) == []
        assert verify_consistency(0, n, [], EMPTY_ROOT, mth(n))
    assert verify_consistency(0, 0, [], EMPTY_ROOT, EMPTY_ROOT)


def test_proofs_read_logarithmically_many_nodes_for_any_tree() -> None:
    for size in (10**6, 10**7, 2**40 - 1, 10**12 + 12345):
        bound = 2 * size.bit_length()
        rng = random.Random(size)
        for _ in range(200):
            index, size1 = rng.randrange(size), rng.randrange(1, size)
            assert len(inclusion_keys(index, size)) <= bound
            assert len(consistency_keys(size1, size)) <= bound
    assert len(inclusion_keys(0, 2**40)) == 40  # a perfect tree: exactly its height


# --- hostile and impossible input ------------------------------------------------------------
def flips(proof: list[bytes], rng: random.Random) -> list[list[bytes]]:
    """The proof with one bit flipped, for every element and a spread of bit positions."""
    out = []
    for i, node in enumerate(proof):
        for bit in {0, 7, 255, rng.randrange(256)}:
            bad = bytearray(node)
            bad[bit // 8] ^= 1 << (bit % 8)
            out.append([*proof[:i], bytes(bad), *proof[i + 1 :]])
    return out


def mangled(proof: list[bytes], extra: bytes) -> list[list[bytes]]:
    """The proof with an element dropped (each one) or added (front, middle, end)."""
    out = [proof[:i] + proof[i + 1 :] for i in range(len(proof))]
    for at in {0, len(proof) // 2, len(proof)}:
        out.append([*proof[:at], extra, *proof[at:]])
    return out


def test_every_bit_of_the_published_proofs_matters(store8: CountingStore) -> None:
    for index, size, proof in INCLUSION:
        good, leaf, top = h(proof), leaf_hash(LEAVES[index]), h([ROOTS[size]])[0]
        for i in range(len(good)):
            for bit in range(256):
                bad = bytearray(good[i])
                bad[bit // 8] ^= 1 << (bit % 8)
                assert not verify_inclusion(leaf, index, size, [*good[:i], bytes(bad)], top)
    for size1, size2, proof in CONSISTENCY:
        good, r1, r2 = h(proof), *h([ROOTS[size1], ROOTS[size2]])
        for i in range(len(good)):
            for bit in range(256):
                bad = bytearray(good[i])
                bad[bit // 8] ^= 1 << (bit % 8)
                tampered = [*good[:i], bytes(bad), *good[i + 1 :]]
                assert not verify_consistency(size1, size2, tampered, r1, r2)


def test_tampered_inclusion_proofs_fail(store70: CountingStore) -> None:
    rng, other = random.Random(2), leaf_hash(b"someone else")
    for n in range(1, 40):
        for m in range(n):
            proof, leaf, top = inclusion_proof(m, n, store70), leaf_hash(DATA[m]), mth(n)
            for bad in [*flips(proof, rng), *mangled(proof, other), *mangled(proof, top)]:
                assert not verify_inclusion(leaf, m, n, bad, top)
            assert not verify_inclusion(other, m, n, proof, top)  # wrong leaf
            assert not verify_inclusion(leaf, m, n, proof, mth(n - 1))  # wrong root
            assert not verify_inclusion(leaf_hash(DATA[m + 1]), m, n, proof, top)  # neighbour
            for wrong in range(n + 3):  # wrong index, including past the end
                if wrong != m:
                    assert not verify_inclusion(leaf, wrong, n, proof, top)
            assert not verify_inclusion(leaf, -1, n, proof, top)


def test_wrong_size_inclusion_fails_unless_the_path_has_the_same_shape(
    store70: CountingStore,
) -> None:
    """RFC 9162 binds a proof to a root, not to a size: a size whose path has exactly the
    same shape (e.g. leaf 0 of 3 and of 4) computes the same root, which is why checkpoints
    sign the size with the root. Every other wrong size must fail."""
    passed = 0
    for n in range(1, 34):
        for m in range(n):
            proof, leaf = inclusion_proof(m, n, store70), leaf_hash(DATA[m])
            for wrong in {*range(m + 1, 2 * n + 2), n // 2, 0, -n} - {n}:
                same = wrong > m and path_shape(m, wrong) == path_shape(m, n)
                assert verify_inclusion(leaf, m, wrong, proof, mth(n)) == same, (m, n, wrong)
                passed += same
    assert passed  # the exception is real, and covered


def test_tampered_consistency_proofs_fail(store70: CountingStore) -> None:
    rng = random.Random(3)
    for n in range(2, 40):
        for m in range(1, n):
            proof, r1, r2 = consistency_proof(m, n, store70), mth(m), mth(n)
            for bad in [*flips(proof, rng), *mangled(proof, r1), *mangled(proof, r2), []]:
                assert not verify_consistency(m, n, bad, r1, r2)
            assert not verify_consistency(m, n, proof, r2, r1)  # swapped roots
            assert not verify_consistency(m, n, proof, mth(m - 1), r2)
            assert not verify_consistency(m, n, proof, r1, mth(n - 1))
            assert not verify_consistency(n, m, proof, r2, r1)  # size1 > size2
            assert not verify_consistency(m, n, [], r1, r1)


def test_wrong_sizes_for_a_consistency_proof_fail_unless_the_shape_is_the_same(
    store70: CountingStore,
) -> None:
    passed = 0
    for n in range(2, 34):
        for m in range(1, n):
            proof, shape = consistency_proof(m, n, store70), proof_shape(m, n)
            for m2, n2 in {(m - 1, n), (m + 1, n), (m ^ 2, n), (m, n + 1), (m, 2 * n), (m, n // 2),
                           (m, n - 1), (0, n), (n, n), (m, m)} - {(m, n)}:  # fmt: skip
                same = 0 < m2 < n2 and proof_shape(m2, n2) == shape
                assert verify_consistency(m2, n2, proof, mth(m), mth(n)) == same, (m, n, m2, n2)
                passed += same
    assert passed


def test_edge_sizes_in_consistency() -> None:
    r, other = mth(5), mth(6)
    assert verify_consistency(5, 5, [], r, r)
    assert not verify_consistency(5, 5, [], r, other)
    assert not verify_consistency(5, 5, [r], r, r)  # equal sizes take an empty proof
    assert not verify_consistency(0, 5, [], r, r)  # the empty tree has one root
    assert not verify_consistency(0, 5, [EMPTY_ROOT], EMPTY_ROOT, r)
    assert not verify_consistency(-1, 5, [], EMPTY_ROOT, r)
    assert not verify_consistency(6, 5, [], other, r)


def test_malformed_input_is_false_not_an_exception() -> None:
    leaf, top = leaf_hash(DATA[0]), mth(1)
    assert verify_inclusion(leaf, 0, 1, [], top)
    assert not verify_inclusion(leaf, 0, 0, [], top)
    assert not verify_inclusion(b"", 0, 1, [], b"")
    assert not verify_inclusion(leaf, 0, 1, [], top[:31])
    assert not verify_inclusion(leaf, 0, 2, [b"short"], top)
    assert not verify_inclusion(DATA[3], 0, 1, [], leaf_hash(DATA[3]))  # data is not a hash
    assert not verify_consistency(1, 2, [b"short"], top, mth(2))
    assert not verify_consistency(1, 2, [leaf_hash(DATA[1])], b"x" * 33, mth(2))


def test_impossible_requests_are_value_errors(store70: CountingStore) -> None:
    for index, size in ((0, 0), (5, 5), (6, 5), (-1, 5)):
        with pytest.raises(ValueError, match="not in a tree"):
            inclusion_keys(index, size)
        with pytest.raises(ValueError, match="not in a tree"):
            inclusion_proof(index, size, store70)
    for size1, size2 in ((6, 5), (1, 0), (-1, 3)):
        with pytest.raises(ValueError, match="no consistency proof"):
            consistency_proof(size1, size2, store70)
    with pytest.raises(ValueError, match="bad leaf range"):
        root(-1, store70)
    with pytest.raises(ValueError, match="negative start"):
        append_nodes(-1, [], store70)


# --- CompactRange ----------------------------------------------------------------------------
def test_compact_range_follows_the_tree_and_round_trips(store70: CountingStore) -> None:
    rng, edge = random.Random(4), CompactRange()
    assert edge.root() == EMPTY_ROOT and edge.to_hex() == []
    while edge.size < 70:
        edge.append([leaf_hash(x) for x in DATA[edge.size : edge.size + rng.randint(0, 6)]])
        assert edge.root() == mth(edge.size) == root(edge.size, store70)
        assert edge.hashes == [store70.nodes[k] for k in root_keys(edge.size)]
        again = CompactRange.from_hex(edge.size, edge.to_hex())
        assert again == edge
        assert all(len(x) == 64 and int(x, 16) >= 0 for x in edge.to_hex())


def test_compact_range_refuses_what_does_not_fit() -> None:
    hexes = CompactRange.load(7, build(DATA[:7], random.Random(5))).to_hex()
    assert len(hexes) == 3
    for size, edge in ((6, hexes), (7, hexes[:2]), (-1, [])):
        with pytest.raises(ValueError, match="edge hashes"):
            CompactRange.from_hex(size, edge)
    with pytest.raises(ValueError, match="32 bytes"):
        CompactRange.from_hex(1, ["abcd"])
    with pytest.raises(ValueError, match="32 bytes"):
        CompactRange().append([b"data"])


# --- properties ------------------------------------------------------------------------------
@settings(max_examples=60, deadline=None)
@given(
    leaves=st.lists(st.binary(max_size=12), min_size=1, max_size=300),
    batches=st.lists(st.integers(1, 64), min_size=1, max_size=20),
    data=st.data(),
)
def test_proofs_round_trip_for_any_tree(
    leaves: list[bytes], batches: list[int], data: st.DataObject
) -> None:
    n = len(leaves)
    store, edge, pos, turn = MemoryNodeStore(), CompactRange(), 0, 0
    while pos < n:
        batch = [leaf_hash(x) for x in leaves[pos : pos + batches[turn % len(batches)]]]
        store.put(append_nodes(pos, batch, store))
        edge.append(batch)
        pos, turn = pos + len(batch), turn + 1
    assert edge.root() == root(n, store) == ref_mth(leaves)

    size = data.draw(st.integers(1, n), label="size")
    index = data.draw(st.integers(0, size - 1), label="index")
    size1 = data.draw(st.integers(0, size), label="size1")
    top, old = root(size, store), root(size1, store)
    proof = inclusion_proof(index, size, store)
    assert verify_inclusion(leaf_hash(leaves[index]), index, size, proof, top)
    assert len(proof) <= size.bit_length()
    cons = consistency_proof(size1, size, store)
    assert verify_consistency(size1, size, cons, old, top)
    assert len(cons) <= 2 * size.bit_length()
    assert merkle.CompactRange.from_hex(edge.size, edge.to_hex()).root() == root(n, store)
