"""Conducting probabilities quantised to k bits and stored as bit planes (bit-sliced Bernoulli).

A cell with probability p conducts on a read when U < q, where q = round(p·2^k) and U is a uniform
k-bit integer whose bits come from k random 64-bit words, one bit per cell. Comparing U with q
most-significant bit first decides 64 cells per word operation, so P(ξ = 1) = q/2^k exactly:
the only error is the rounding of p, |q/2^k − p| ≤ 2^−(k+1), and every p that is a multiple of
2^−k (0.5, 0.25, 0.375, ...) is realised exactly. p = 1 (q = 2^k) is kept in a separate
``always`` plane, so it is exact too.

Layout: cell (j, i) of a (rows, cols) array sits at bit i mod 64 of word j·n_words + i // 64,
where n_words = ceil(cols / 64); padding bits have p = 0. Plane m holds bit (k − 1 − m) of q.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass

import numpy as np

__all__ = ["DEFAULT_BITS", "MAX_BITS", "ProbabilityPlanes", "pack_bits", "quantise_probability"]

DEFAULT_BITS = 16  # |p error| ≤ 2^-17 ≈ 7.6e-6; costs ≈ 9 random words per 64 cells on average
MAX_BITS = 32


@dataclass(frozen=True, eq=False)
class ProbabilityPlanes:
    """p for a (rows, cols) array of cells, quantised to ``bits`` bits, as packed bit planes.

    Attributes:
        planes: uint64 (bits, rows·n_words), plane 0 = most significant bit of q = round(p·2^bits).
        always: uint64 (rows·n_words,), bits of the cells with p = 1.
        last_plane: index of the last plane that holds a 1 bit (−1 if every p is 0 or 1); the
            sampler draws no words beyond it.
        bits: k, the number of bits of q.
        shape: (rows, cols) of the cells.
    """

    planes: np.ndarray
    always: np.ndarray
    last_plane: int
    bits: int
    shape: tuple[int, int]

    @property
    def n_words(self) -> int:
        """64-bit words per row of cells."""
        return (self.shape[1] + 63) // 64

    @property
    def has_always(self) -> bool:
        """Whether any cell has p = 1."""
        return bool(self.always.any())

    def quantised(self) -> np.ndarray:
        """The probabilities the sampler realises exactly, float64 (rows, cols)."""
        rows, cols = self.shape
        q = np.zeros((rows, cols), dtype=np.float64)
        for m in range(self.bits):
            q += unpack_bits(self.planes[m], rows, cols) * 2.0 ** (-(m + 1))
        q[unpack_bits(self.always, rows, cols)] = 1.0
        return q


def pack_bits(mask: np.ndarray) -> np.ndarray:
    """Pack a bool (rows, cols) array into uint64 (rows·ceil(cols/64),), bit i%64 of word i//64."""
    if sys.byteorder != "little":  # the uint8 -> uint64 view below assumes little-endian words
        raise RuntimeError("crossbar bit planes need a little-endian machine")
    rows, cols = mask.shape
    n_words = (cols + 63) // 64
    padded = np.zeros((rows, n_words * 64), dtype=bool)
    padded[:, :cols] = mask
    packed = np.packbits(padded, axis=1, bitorder="little")
    return np.ascontiguousarray(packed).view(np.uint64).reshape(rows * n_words)


def unpack_bits(words: np.ndarray, rows: int, cols: int) -> np.ndarray:
    """Inverse of :func:`pack_bits`: uint64 (rows·n_words,) -> bool (rows, cols)."""
    n_words = (cols + 63) // 64
    as_bytes = (
        np.ascontiguousarray(words, dtype=np.uint64).view(np.uint8).reshape(rows, n_words * 8)
    )
    return np.unpackbits(as_bytes, axis=1, bitorder="little")[:, :cols].astype(bool)


def quantise_probability(
    p: float | np.ndarray, shape: tuple[int, int], *, bits: int = DEFAULT_BITS
) -> ProbabilityPlanes:
    """Quantise conducting probabilities to ``bits`` bits and pack them as bit planes.

    Args:
        p: a scalar (every cell) or an array broadcastable to ``shape`` (e.g. per-cell (rows, cols)
            from a selector's device-to-device spread), values in [0, 1].
        shape: (rows, cols) of the cells.
        bits: k in [1, 32]; p is rounded to the nearest multiple of 2^-k.
    """
    if isinstance(bits, bool) or not isinstance(bits, (int, np.integer)):
        raise TypeError(f"bits={bits!r} must be an integer in [1, {MAX_BITS}]")
    if not 1 <= bits <= MAX_BITS:
        raise ValueError(f"bits={bits} is out of range: allowed [1, {MAX_BITS}]")
    rows, cols = (int(shape[0]), int(shape[1]))
    if rows < 1 or cols < 1:
        raise ValueError(f"shape={shape} must have rows >= 1 and cols >= 1")
    p_arr = np.asarray(p, dtype=np.float64)
    try:
        p_arr = np.broadcast_to(p_arr, (rows, cols))
    except ValueError:
        raise ValueError(
            f"p has shape {np.shape(p)}, which does not broadcast to the cells' shape "
            f"{(rows, cols)}"
        ) from None
    if not np.all(np.isfinite(p_arr)) or p_arr.min() < 0.0 or p_arr.max() > 1.0:
        bad = p_arr[~(np.isfinite(p_arr) & (p_arr >= 0.0) & (p_arr <= 1.0))].ravel()[0]
        raise ValueError(f"p contains {float(bad)!r}: conducting probabilities must lie in [0, 1]")
    scale = 2**bits
    q = np.rint(p_arr * scale).astype(np.int64)  # round half to even; exact for dyadic p
    always = q >= scale
    q[always] = 0
    planes = np.empty((bits, rows * ((cols + 63) // 64)), dtype=np.uint64)
    last_plane = -1
    for m in range(bits):
        plane_bits = ((q >> (bits - 1 - m)) & 1).astype(bool)
        planes[m] = pack_bits(plane_bits)
        if plane_bits.any():
            last_plane = m
    return ProbabilityPlanes(
        planes=planes,
        always=pack_bits(always),
        last_plane=last_plane,
        bits=int(bits),
        shape=(rows, cols),
    )
