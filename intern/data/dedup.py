"""Deduplicate training rows: exact copies (after normalization) and near duplicates (n-gram Jaccard).

The first row of each group of duplicates is kept, in input order; every later one is
listed with the row it duplicates, so a manifest can say what was removed and why::

    from intern.data.dedup import dedup

    result = dedup([(row["id"], row_text(row)) for row in rows], threshold=0.8)
    kept = [r for r in rows if r["id"] in result.kept]
    result.removed   # [Duplicate(row_id="b", duplicate_of="a", kind="near", similarity=0.91), ...]

Exact duplicates share the hash of their normalized text (:func:`intern.data.decontam.normalize`:
case, punctuation and spacing do not count). Near duplicates have a Jaccard similarity
of word n-gram sets >= ``threshold`` (n-grams are hashed to 64 bits, so collisions are
negligible). Candidates come from MinHash signatures banded
for locality-sensitive hashing (so 100k rows are not compared pairwise), and every
candidate pair is then checked with the exact Jaccard, so nothing is removed on an
estimate. With the defaults (64 hashes in 16 bands of 4) a pair at Jaccard 0.8 becomes
a candidate with probability > 0.999.
"""

from __future__ import annotations

import hashlib
import zlib
from collections import defaultdict
from dataclasses import dataclass, field

import numpy as np

from intern.data.decontam import normalize
from intern.errors import DataError

__all__ = ["DedupResult", "Duplicate", "dedup"]

_PRIME = np.uint64(1_000_003)


@dataclass(frozen=True)
class Duplicate:
    """A removed row and the kept row it duplicates.

    Attributes:
        row_id: The removed row.
        duplicate_of: The kept row (earlier in the input).
        kind: ``exact`` or ``near``.
        similarity: Jaccard similarity of their n-gram sets (1.0 for exact copies).
    """

    row_id: str
    duplicate_of: str
    kind: str
    similarity: float


@dataclass
class DedupResult:
    """What :func:`dedup` kept and removed.

    Attributes:
        kept: Ids of the rows kept, in input order.
        removed: One entry per removed row.
    """

    kept: list[str] = field(default_factory=list)
    removed: list[Duplicate] = field(default_factory=list)

    def counts(self) -> dict[str, int]:
        """``{"kept", "exact", "near"}`` counts, for a manifest."""
        return {"kept": len(self.kept), "exact": sum(d.kind == "exact" for d in self.removed),
                "near": sum(d.kind == "near" for d in self.removed)}


def _shingles(text: str, n: int) -> np.ndarray:
    """Sorted unique 64-bit hashes of the normalized text's word n-grams (one for a text shorter than n)."""
    words = normalize(text).split()
    if not words:
        return np.zeros(0, dtype=np.uint64)
    hashed = np.fromiter((zlib.crc32(w.encode()) for w in words), dtype=np.uint64, count=len(words))
    k = min(n, len(words))
    acc = np.zeros(len(words) - k + 1, dtype=np.uint64)
    with np.errstate(over="ignore"):  # polynomial rolling combination; uint64 wraps as intended
        for j in range(k):
            acc = acc * _PRIME + hashed[j:len(words) - k + 1 + j]
    return np.unique(acc)


def _jaccard(a: np.ndarray, b: np.ndarray) -> float:
    if not len(a) and not len(b):
        return 1.0
    common = len(np.intersect1d(a, b, assume_unique=True))
    return common / (len(a) + len(b) - common)


class _MinHasher:
    """MinHash signatures by multiply-shift hashing (numpy, vectorized)."""

    def __init__(self, num_perm: int, seed: int):
        rng = np.random.default_rng(seed)
        self.a = rng.integers(1, 2**63, size=num_perm, dtype=np.uint64) | np.uint64(1)  # odd multipliers
        self.b = rng.integers(0, 2**63, size=num_perm, dtype=np.uint64)

    def signature(self, shingles: np.ndarray) -> np.ndarray:
        # (a*x + b) mod 2^64, top 32 bits: a universal family; numpy's uint64 arithmetic wraps as intended.
        with np.errstate(over="ignore"):
            mixed = (self.a[:, None] * shingles[None, :] + self.b[:, None]) >> np.uint64(32)
        return mixed.min(axis=1)


def dedup(rows: list[tuple[str, str]], *, near: bool = True, n: int = 5, threshold: float = 0.8,
          num_perm: int = 64, band_size: int = 4, seed: int = 0) -> DedupResult:
    """Finds exact and near-duplicate rows; keeps the first of each group.

    Args:
        rows: ``(id, text)`` per row, in priority order (earlier rows are kept).
        near: Also remove near duplicates (else exact copies only).
        n: Shingle length in words (texts shorter than ``n`` words are one shingle).
        threshold: Remove a row whose Jaccard similarity with a kept row is >= this, in (0, 1].
        num_perm: MinHash signature length; a multiple of ``band_size``.
        band_size: Hashes per LSH band; smaller finds more candidates (all are verified exactly).
        seed: Seed of the hash functions (results do not depend on it, only the work done).

    Raises:
        DataError: On duplicate ids or bad parameters.
    """
    if not 0.0 < threshold <= 1.0:
        raise DataError(f"near-duplicate threshold must be in (0, 1], got {threshold!r}; 0.8 is the usual choice")
    if not isinstance(n, int) or n < 1:
        raise DataError(f"shingle length n must be an int >= 1, got {n!r}; 5 is the usual choice")
    if band_size < 1 or num_perm % band_size:
        raise DataError(f"num_perm ({num_perm}) must be a positive multiple of band_size ({band_size})")
    ids = [row_id for row_id, _ in rows]
    if len(set(ids)) != len(ids):
        raise DataError("row ids must be unique to deduplicate; give every row its own id")
    result = DedupResult()
    by_hash: dict[str, str] = {}
    hasher = _MinHasher(num_perm, seed) if near else None
    buckets: dict[tuple[int, bytes], list[int]] = defaultdict(list)
    kept_shingles: list[np.ndarray] = []
    for row_id, text in rows:
        digest = hashlib.sha256(normalize(text).encode()).hexdigest()
        if digest in by_hash:
            result.removed.append(Duplicate(row_id, by_hash[digest], "exact", 1.0))
            continue
        if hasher is None:
            by_hash[digest] = row_id
            result.kept.append(row_id)
            continue
        shingles = _shingles(text, n)
        signature = hasher.signature(shingles) if len(shingles) else np.zeros(num_perm, dtype=np.uint64)
        bands = [(b, chunk.tobytes()) for b, chunk in enumerate(signature.reshape(-1, band_size))]
        candidates = sorted({k for band in bands for k in buckets.get(band, ())})
        best: tuple[float, int] | None = None
        for k in candidates:
            similarity = _jaccard(shingles, kept_shingles[k])
            if similarity >= threshold and (best is None or similarity > best[0]):
                best = (similarity, k)
        if best is not None:
            result.removed.append(Duplicate(row_id, result.kept[best[1]], "near", round(best[0], 4)))
            continue
        by_hash[digest] = row_id
        for band in bands:
            buckets[band].append(len(result.kept))
        kept_shingles.append(shingles)
        result.kept.append(row_id)
    return result
