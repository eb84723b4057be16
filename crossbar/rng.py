"""Keys and the counter-based generator behind the crossbar's sampling kernels.

Every random word the kernels use is a pure function of a 128-bit key and the word's *coordinates*
(global sample index s, global batch index b, counter n inside that read):

    seed(s, b) = mix64( mix64(k0 + (s + 1)·γ) ^ (k1 + (b + 1)·δ) )
    word(s, b, n) = mix64( seed(s, b) + (n + 1)·γ )

with γ = 0x9E3779B97F4A7C15 (the 64-bit golden-ratio increment) and mix64 the SplitMix64 output
function (Steele, Lea & Flood, "Fast splittable pseudorandom number generators", OOPSLA 2014;
constants from D. Stafford's "Mix13" variant, the ones java.util.SplittableRandom uses). Within one
read (s, b) the words are SplitMix64's own output sequence started at ``seed(s, b)``, a generator
that passes TestU01's BigCrush. Because no word depends on how samples or batch rows are grouped or
on which thread runs them, results are bit-identical for any chunking and any thread count.

Two reads can only share words if their seeds happen to lie within L·γ of each other (L = words per
read), which has probability < N²·L/2⁶⁴ for N reads: about 3·10⁻⁵ for N = 10⁵ reads of a 784×300
layer with 16-bit probabilities (L ≈ 6·10⁴), and even then it correlates two reads out of N.

The numba versions of these functions live in :mod:`crossbar._kernels` (one module, so numba's
on-disk cache sees every change); this module holds the key derivation and a plain numpy reference
implementation that the tests compare the compiled kernels against bit for bit.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from devices.fields import check_int

__all__ = ["DELTA", "GAMMA", "SamplerKey", "mix64", "random_words", "read_seed", "sampler_key"]

MASK64 = (1 << 64) - 1
GAMMA = 0x9E3779B97F4A7C15  # 2^64 / golden ratio, odd: SplitMix64's Weyl increment (Steele 2014)
DELTA = 0xD1B54A32D192ED03  # a second odd constant (2^64 / plastic number, R2 sequence) for b
_C1 = 0xBF58476D1CE4E5B9  # Stafford Mix13 multipliers (SplitMix64 finaliser)
_C2 = 0x94D049BB133111EB


@dataclass(frozen=True)
class SamplerKey:
    """The 128-bit key of the crossbar's counter-based generator (two unsigned 64-bit halves)."""

    k0: int
    k1: int

    def __post_init__(self) -> None:
        for name in ("k0", "k1"):
            check_int(f"SamplerKey.{name}", getattr(self, name), ge=0, le=MASK64)

    @property
    def words(self) -> tuple[np.uint64, np.uint64]:
        """The key as two numpy uint64 scalars (the form the kernels take)."""
        return np.uint64(self.k0), np.uint64(self.k1)


def sampler_key(seed: int | np.random.SeedSequence | np.random.Generator) -> SamplerKey:
    """Derive a :class:`SamplerKey`.

    ``seed`` may be a non-negative int or a ``numpy.random.SeedSequence`` (the key is its
    ``generate_state(2, uint64)``; use ``SeedSequence.spawn`` for independent streams), or a
    ``numpy.random.Generator`` (two uint64 words are drawn from it, advancing it).
    """
    if isinstance(seed, np.random.Generator):
        k = seed.integers(0, 2**64, size=2, dtype=np.uint64, endpoint=False)
        return SamplerKey(int(k[0]), int(k[1]))
    if isinstance(seed, (int, np.integer)) and not isinstance(seed, bool):
        seed = np.random.SeedSequence(check_int("seed", seed, ge=0))
    if not isinstance(seed, np.random.SeedSequence):
        raise TypeError(
            f"seed={seed!r} must be a non-negative int, a numpy.random.SeedSequence or a "
            "numpy.random.Generator"
        )
    k = seed.generate_state(2, dtype=np.uint64)
    return SamplerKey(int(k[0]), int(k[1]))


def mix64(x: np.ndarray) -> np.ndarray:
    """SplitMix64 finaliser on uint64 arrays (numpy reference; arithmetic wraps mod 2⁶⁴)."""
    x = np.asarray(x, dtype=np.uint64)
    with np.errstate(over="ignore"):
        x = (x ^ (x >> np.uint64(30))) * np.uint64(_C1)
        x = (x ^ (x >> np.uint64(27))) * np.uint64(_C2)
    return x ^ (x >> np.uint64(31))


def read_seed(key: SamplerKey, s: np.ndarray | int, b: np.ndarray | int) -> np.ndarray:
    """seed(s, b) for global sample index ``s`` and batch index ``b`` (broadcast), uint64."""
    s = np.asarray(s, dtype=np.uint64)
    b = np.asarray(b, dtype=np.uint64)
    one = np.uint64(1)
    with np.errstate(over="ignore"):
        hs = mix64(np.uint64(key.k0) + (s + one) * np.uint64(GAMMA))
        return mix64(hs ^ (np.uint64(key.k1) + (b + one) * np.uint64(DELTA)))


def random_words(
    key: SamplerKey, s: np.ndarray | int, b: np.ndarray | int, n: np.ndarray | int
) -> np.ndarray:
    """word(s, b, n): the n-th random 64-bit word of read (s, b) (numpy reference, broadcast)."""
    n = np.asarray(n, dtype=np.uint64)
    with np.errstate(over="ignore"):
        return mix64(read_seed(key, s, b) + (n + np.uint64(1)) * np.uint64(GAMMA))
