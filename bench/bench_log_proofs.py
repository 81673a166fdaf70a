"""Audit log Merkle proofs at 1M and 10M entries: build rate, proof cost, O(log n) scaling.

Builds the stored tree (every perfect subtree, as the database keeps it) with
`merkle.append_nodes` in batches, leaves being 8-byte counters, into a compact in-memory store
(one bytearray per level, node i at offset 32*i: 64 B per leaf instead of ~300 B in a dict).
Then times, for random leaves of the full tree and random older sizes, inclusion and
consistency proof generation (one batch lookup + recomputing the right edge) and verification
(RFC 9162 step by step). Baseline, same run: the hashing floor, i.e. raw SHA-256 of 65-byte
node inputs, as many as the proof has hashes: no verifier can do less. Target from the issue:
proofs generated in under 5 ms at 10,000,000 entries.

Run: .venv/bin/python bench/bench_log_proofs.py [--sizes 1000000 10000000] [--proofs 1000]
"""

from __future__ import annotations

import argparse
import hashlib
import math
import random
import resource
import statistics
import time
from collections.abc import Callable, Collection, Mapping
from typing import TypeVar

from doorwarden.formats import merkle
from doorwarden.formats.merkle import Key

BYTES_PER_LEAF = 64  # ~2 nodes per leaf, 32 B each
T = TypeVar("T")


class LevelStore:
    """A NodeStore holding level l in one bytearray: node (l, i) at [32*i, 32*i + 32)."""

    def __init__(self) -> None:
        self.levels: list[bytearray] = []

    def get(self, keys: Collection[Key]) -> dict[Key, bytes]:
        out = {}
        for level, index in keys:
            if level < len(self.levels) and (index + 1) * 32 <= len(self.levels[level]):
                out[level, index] = bytes(self.levels[level][index * 32 : index * 32 + 32])
        return out

    def put(self, nodes: Mapping[Key, bytes]) -> None:
        for (level, index), digest in nodes.items():
            while level >= len(self.levels):
                self.levels.append(bytearray())
            row = self.levels[level]
            if index * 32 != len(row):  # append-only: a gap would read as a zero hash
                raise ValueError(f"node {(level, index)} is not next on its level")
            row += digest

    def nbytes(self) -> int:
        return sum(len(row) for row in self.levels)


def build(size: int, batch: int) -> tuple[LevelStore, float, float]:
    """The stored tree of `size` leaves; returns (store, compute seconds, total seconds)."""
    store, compute = LevelStore(), 0.0
    begin = time.perf_counter()
    for pos in range(0, size, batch):
        t0 = time.perf_counter()
        leaves = [
            merkle.leaf_hash(i.to_bytes(8, "big")) for i in range(pos, min(pos + batch, size))
        ]
        new = merkle.append_nodes(pos, leaves, store)
        compute += time.perf_counter() - t0
        store.put(new)
    return store, compute, time.perf_counter() - begin


def hash_floor(leaves: int) -> float:
    """Raw SHA-256 for building `leaves` leaves: one 9-byte and one 65-byte input per leaf."""
    sha, leaf, node = hashlib.sha256, b"\x00" + bytes(8), b"\x01" + bytes(64)
    t0 = time.perf_counter()
    for _ in range(leaves):
        sha(leaf).digest()
        sha(node).digest()
    return time.perf_counter() - t0


def clocked(fn: Callable[..., T], *args: object) -> tuple[T, float]:
    """fn(*args) and the milliseconds it took."""
    t0 = time.perf_counter_ns()
    result = fn(*args)
    return result, (time.perf_counter_ns() - t0) / 1e6


def stats(samples: list[float]) -> tuple[float, float]:
    """Median and 95th percentile."""
    return statistics.median(samples), statistics.quantiles(samples, n=20)[-1]


def measure(store: LevelStore, size: int, proofs: int, rng: random.Random) -> dict[str, float]:
    top = merkle.root(size, store)
    rows: dict[str, list[float]] = {
        k: [] for k in ("inc_gen", "inc_ver", "inc_len", "inc_floor", "con_gen", "con_ver",
                        "con_len", "con_floor", "keys")
    }  # fmt: skip
    node = b"\x01" + bytes(64)

    def floor(count: int) -> list[bytes]:
        return [hashlib.sha256(node).digest() for _ in range(count)]

    for _ in range(proofs):
        index = rng.randrange(size)
        leaf = merkle.leaf_hash(index.to_bytes(8, "big"))
        proof, ms = clocked(merkle.inclusion_proof, index, size, store)
        rows["inc_gen"].append(ms)
        ok, ms = clocked(merkle.verify_inclusion, leaf, index, size, proof, top)
        assert ok
        rows["inc_ver"].append(ms)
        rows["inc_len"].append(len(proof))
        rows["inc_floor"].append(clocked(floor, len(proof))[1])
        rows["keys"].append(len(merkle.inclusion_keys(index, size)))

        size1 = rng.randrange(1, size)
        old = merkle.root(size1, store)
        cons, ms = clocked(merkle.consistency_proof, size1, size, store)
        rows["con_gen"].append(ms)
        ok, ms = clocked(merkle.verify_consistency, size1, size, cons, old, top)
        assert ok
        rows["con_ver"].append(ms)
        rows["con_len"].append(len(cons))
        rows["con_floor"].append(clocked(floor, len(cons))[1])
    out: dict[str, float] = {}
    for name, samples in rows.items():
        out[name], out[name + "_p95"] = stats(samples)
        out[name + "_max"] = max(samples)
    return out


def available_bytes() -> int:
    with open("/proc/meminfo") as meminfo:
        for line in meminfo:
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    return 0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[1_000_000, 10_000_000])
    parser.add_argument("--proofs", type=int, default=1000)
    parser.add_argument("--batch", type=int, default=1 << 16)
    parser.add_argument("--seed", type=int, default=6962)
    args = parser.parse_args()
    rng = random.Random(args.seed)  # noqa: S311 - picks leaves to prove, nothing secret

    floor_leaves = 500_000
    floor_rate = floor_leaves / hash_floor(floor_leaves)
    print(f"baseline: raw SHA-256, one leaf + one node hash per leaf: {floor_rate:,.0f} leaves/s")
    print()
    results: dict[int, dict[str, float]] = {}
    for size in args.sizes:
        # The store itself plus a batch in flight; Python objects add well under 2x.
        if size * BYTES_PER_LEAF * 2 > available_bytes():
            print(f"{size:,} leaves: skipped, needs ~{size * BYTES_PER_LEAF * 2 >> 20} MiB")
            continue
        store, compute, total = build(size, args.batch)
        print(
            f"{size:,} leaves: built in {total:.1f} s; leaf_hash + append_nodes "
            f"{size / compute:,.0f} appends/s ({size / compute / floor_rate:.2f}x the raw-hash "
            f"floor), with storing {size / total:,.0f}/s; store {store.nbytes() >> 20} MiB, "
            f"peak RSS {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss >> 10} MiB"
        )
        results[size] = measure(store, size, args.proofs, rng)
        del store

    print()
    print(f"{args.proofs} random proofs per size (ms; median / p95; floor = raw SHA-256 of the")
    print("proof's node count, the least a verifier must hash)")
    print(f"{'leaves':>12} {'case':<22} {'median':>8} {'p95':>8} {'max':>8} ", end="")
    print(f"{'floor':>7} {'hashes':>7}")
    for size, r in results.items():
        for label, key, length, fl in (
            ("inclusion generate", "inc_gen", "inc_len", "inc_floor"),
            ("inclusion verify", "inc_ver", "inc_len", "inc_floor"),
            ("consistency generate", "con_gen", "con_len", "con_floor"),
            ("consistency verify", "con_ver", "con_len", "con_floor"),
        ):
            print(
                f"{size:>12,} {label:<22} {r[key]:>8.3f} {r[key + '_p95']:>8.3f} "
                f"{r[key + '_max']:>8.3f} {r[fl]:>7.3f} {r[length]:>5.0f}/{r[length + '_max']:.0f}"
            )
        print(f"{size:>12,} {'stored nodes read':<22} {r['keys']:>8.0f} (max {r['keys_max']:.0f})")

    if len(results) >= 2:
        small, large = min(results), max(results)
        log_ratio = math.log2(large) / math.log2(small)
        print()
        print(f"scaling {large:,} vs {small:,} leaves ({large / small:.0f}x):", end=" ")
        print(f"log2 ratio {log_ratio:.3f}")
        for label, key in (
            ("inclusion generate", "inc_gen"), ("inclusion verify", "inc_ver"),
            ("consistency generate", "con_gen"), ("consistency verify", "con_ver"),
            ("inclusion proof hashes", "inc_len"), ("consistency proof hashes", "con_len"),
        ):  # fmt: skip
            print(f"  {label:<26} median ratio {results[large][key] / results[small][key]:.3f}")
        target = results[large]["inc_gen_p95"], results[large]["con_gen_p95"]
        verdict = "met" if max(target) < 5 else "NOT met"
        print(f"target (< 5 ms to generate at {large:,}): p95 {max(target):.3f} ms, {verdict}")


if __name__ == "__main__":
    main()
