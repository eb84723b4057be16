"""Products of ternary inputs with a fixed coefficient matrix, in a fixed summation order.

The CLT path needs, for every input row z ∈ {−1, 0, +1}^K, the mean and variance of a column
sum:

    y[b, i] = Σ_j z[b, j] · M[j, i]          (signed sum: :func:`signed_product`)
    v[b, i] = Σ_j z[b, j]² · Q[j, i]         (driven-row sum: :func:`driven_sum`)

A BLAS product would do this at full speed, but its float32 result for a row depends on how many
rows share the call and on the thread count (OpenBLAS picks its kernels and splits by shape),
which would make results depend on chunking. Here every output is computed in one fixed order
that depends only on that row's own inputs, so results are bit-identical for any chunking and
thread count, and the ±1 structure makes it cheaper than a dense product ("four Russians"):

- the K rows are split into groups of four; for every group and every column a 16-entry table
  holds Σ_r s_r M[4g + r, i] for the 16 sign patterns s ∈ {±1}⁴ (and Σ_r c_r Q[4g + r, i] for the
  16 subsets c ∈ {0, 1}⁴), each entry computed in float64 and rounded once to float32;
- a row's product is the sum over groups, in ascending group order, of the entry its pattern
  selects: one float32 addition per group and column instead of four multiply-adds.

Rows with undriven inputs (z = 0, e.g. conv zero padding) are split as z = (s + d)/2 with
s = +1 where z >= 0 and d = +1 where z > 0 (both ±1 vectors), so y = (Σ T[s] + Σ T[d])/2; rows
without zeros take the single sum (the same value: s = d). The variance of a fully driven row is
the column sum Σ_j Q[j, i] (float64, rounded once); other rows use the subset tables.

Precision against a float64 product: the table entries carry one float32 rounding each and the
K/4 group additions one each, so |y − y₆₄| ≲ √(K/4)·2⁻²⁴·max|partial sum|: about 10⁻⁶ of
Σ_j |M_ji| (measured in tests/test_crossbar_products.py). The values feed a Gaussian decision
whose standard deviation is of order √K·|M|, so the relative effect on Φ is below 10⁻⁷.

Memory: the tables hold 16·⌈K/4⌉·N float32 values per matrix (4× a float32 copy of M).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from numba import njit, prange

__all__ = [
    "DrivenTable",
    "InputCodes",
    "SignedTable",
    "driven_sum",
    "driven_table",
    "encode_inputs",
    "signed_product",
    "signed_table",
]

# Columns per block: a block's tables (⌈K/4⌉·16·32 float32, 400 KiB at K = 784) stay in L2.
_COLS = 32
# Batch rows per parallel task (per column block).
_CHUNK = 256


@dataclass(frozen=True, eq=False)
class SignedTable:
    """Tables of a (K, N) coefficient matrix for :func:`signed_product` / :func:`driven_sum`.

    Attributes:
        sign: float32 (n_blocks, n_groups·16, 32): row 16g + p holds Σ_r s_r M[4g + r, i] for
            sign pattern p (bit r of p set: s_r = +1), columns in blocks of 32 (zero-padded).
        shape: (K, N) of the matrix.
    """

    sign: np.ndarray
    shape: tuple[int, int]


@dataclass(frozen=True, eq=False)
class DrivenTable:
    """Tables of a (K, N) non-negative matrix Q for :func:`driven_sum`.

    Attributes:
        subset: float32 (n_blocks, n_groups·16, 32): row 16g + p holds Σ_{r in p} Q[4g + r, i].
        column_sum: float32 (N,): Σ_j Q[j, i] (float64 sum, rounded once): fully driven rows.
        shape: (K, N).
    """

    subset: np.ndarray
    column_sum: np.ndarray
    shape: tuple[int, int]


def _patterns(signed: bool) -> np.ndarray:
    """(16, 4) float64 coefficient of row r in pattern p: ±1 (signed) or 0/1 (subsets)."""
    bits = (np.arange(16)[:, None] >> np.arange(4)[None, :]) & 1
    return (2.0 * bits - 1.0) if signed else bits.astype(np.float64)


def _tables(m: np.ndarray, shift: np.ndarray, signed: bool) -> np.ndarray:
    k, n = m.shape
    n_groups = (k + 3) // 4
    n_blocks = (n + _COLS - 1) // _COLS
    padded = np.zeros((n_groups * 4, n_blocks * _COLS), dtype=np.float64)
    padded[:k, :n] = m
    grouped = padded.reshape(n_groups, 4, n_blocks, _COLS)
    # (16, 4) x (g, 4, blocks, 32) -> (blocks, g, 16, 32), summed in float64
    t = np.einsum("pr,grbc->bgpc", _patterns(signed), grouped, optimize=True)
    # the constant term rides in group 0 (every pattern), so it costs one rounding, no pass
    t[:, 0, :, :] += np.pad(shift, (0, n_blocks * _COLS - n)).reshape(n_blocks, 1, _COLS)
    return np.ascontiguousarray(t, dtype=np.float32).reshape(n_blocks, n_groups * 16, _COLS)


def _as_matrix(name: str, m: np.ndarray) -> np.ndarray:
    arr = np.asarray(m, dtype=np.float64)
    if arr.ndim != 2 or arr.shape[0] < 1 or arr.shape[1] < 1:
        raise ValueError(f"{name} must be a non-empty 2-D (K, N) array, got shape {arr.shape}")
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{name} contains non-finite values (inf or nan)")
    return arr


def _as_shift(shift: Any, n: int) -> np.ndarray:
    arr = np.zeros(n) if shift is None else np.asarray(shift, dtype=np.float64)
    arr = np.broadcast_to(arr, (n,)).astype(np.float64)
    if not np.all(np.isfinite(arr)):
        raise ValueError("shift contains non-finite values (inf or nan)")
    return arr


def signed_table(m: np.ndarray, shift: Any = None) -> SignedTable:
    """Prepare y = shift + z M for :func:`signed_product`.

    Args:
        m: (K, N) coefficients, any real values (e.g. µA per unit input).
        shift: constant term, scalar or (N,) (e.g. comparator offsets, µA), default 0.
    """
    arr = _as_matrix("m", m)
    c = _as_shift(shift, arr.shape[1])
    return SignedTable(sign=_tables(arr, c, True), shape=(int(arr.shape[0]), int(arr.shape[1])))


def driven_table(q: np.ndarray, shift: Any = None) -> DrivenTable:
    """Prepare v = shift + (z∘z) Q for :func:`driven_sum`.

    Args:
        q: (K, N) coefficients (e.g. variances per unit input², µA²).
        shift: constant term, scalar or (N,) (e.g. a comparator noise variance, µA²), default 0.
    """
    arr = _as_matrix("q", q)
    c = _as_shift(shift, arr.shape[1])
    return DrivenTable(
        subset=_tables(arr, c, False),
        column_sum=(arr.sum(axis=0) + c).astype(np.float32),
        shape=(int(arr.shape[0]), int(arr.shape[1])),
    )


@dataclass(frozen=True, eq=False)
class InputCodes:
    """Ternary inputs encoded for the table kernels (see :func:`encode_inputs`).

    Attributes:
        s, d, c: (batch, n_groups) row offsets 16·g + code into a column block's table: the sign
            code (bit r set where z[4g + r] >= 0), the positive code (z > 0), the driven code
            (z != 0); uint16 while 16·n_groups fits, else int32.
        has_zero: bool (batch,): whether the row has an undriven input.
        k: inputs per row (K).
    """

    s: np.ndarray
    d: np.ndarray
    c: np.ndarray
    has_zero: np.ndarray
    k: int


def encode_inputs(z: np.ndarray) -> InputCodes:
    """Encode int8 (batch, K) inputs in {−1, 0, +1} once for :func:`signed_product` and
    :func:`driven_sum` (values are not re-checked: validate them at the boundary)."""
    arr = np.asarray(z)
    if arr.ndim != 2 or arr.shape[1] < 1:
        raise ValueError(f"z must be a 2-D (batch, K) array, got shape {arr.shape}")
    if arr.dtype != np.int8:
        raise TypeError(f"z must be an int8 array of -1/0/+1, got dtype {arr.dtype}")
    k = int(arr.shape[1])
    n_groups = (k + 3) // 4
    if k == 4 * n_groups and arr.flags.c_contiguous:
        padded = arr
    else:  # pad to whole groups with −1: the padding rows have weight 0 in every table
        padded = np.full((arr.shape[0], 4 * n_groups), -1, dtype=np.int8)
        padded[:, :k] = arr
    dtype = np.uint16 if 16 * n_groups <= 1 << 16 else np.int32
    s, d, c, has_zero = _pattern_codes(padded.view(np.uint32), dtype)
    return InputCodes(s=s, d=d, c=c, has_zero=has_zero, k=k)


def _as_codes(z: np.ndarray | InputCodes, k: int) -> InputCodes:
    codes = z if isinstance(z, InputCodes) else encode_inputs(z)
    if codes.k != k:
        raise ValueError(f"z has {codes.k} inputs per row; the table expects {k}")
    return codes


# --------------------------------------------------------------------------- kernels


@njit(cache=True, inline="always")
def _pack4(x):
    """Bits 0, 8, 16, 24 of a uint64 (< 2³²) packed into bits 0-3 (no carries overlap)."""
    return ((x * np.uint64(0x01020408)) >> np.uint64(24)) & np.uint64(15)


@njit(cache=True)
def _pattern_codes(z4, offset_dtype):
    """Row offsets into a block's (n_groups·16, _COLS) table for every (row, group):
    16·g + code, where bit r of the code is input 4g + r's sign bit (s: z >= 0), its
    positive bit (d: z > 0) or its driven bit (c: z != 0); and whether each row has an
    undriven input. ``z4``: the int8 inputs padded with −1 to whole groups, viewed as uint32
    (batch, n_groups), one group per word (little-endian: input 4g + r in byte r)."""
    batch, n_groups = z4.shape
    s = np.empty((batch, n_groups), dtype=offset_dtype)
    d = np.empty((batch, n_groups), dtype=offset_dtype)
    c = np.empty((batch, n_groups), dtype=offset_dtype)
    has_zero = np.zeros(batch, dtype=np.bool_)
    ones = np.uint64(0x01010101)
    for b in range(batch):
        missing = np.uint64(0)
        for g in range(n_groups):
            w = np.uint64(z4[b, g])
            neg = (w >> np.uint64(7)) & ones  # sign bit of each byte: z = −1
            low = w & ones  # low bit: z = ±1
            base = np.uint64(16 * g)
            s[b, g] = base + (np.uint64(15) ^ _pack4(neg))
            d[b, g] = base + _pack4(low & ~neg)
            cc = _pack4(low)
            c[b, g] = base + cc
            missing |= np.uint64(15) ^ cc
        has_zero[b] = missing != np.uint64(0)
    return s, d, c, has_zero


@njit(cache=True, inline="always")
def _rows_sum(t, off, out):
    """out[i, :] = Σ_g t[off[i, g], :] for every row i of ``off``, groups in ascending order.

    Four groups per pass with the partial sum in a register, (((x + t₀) + t₁) + t₂) + t₃: the
    same additions in the same order as one group at a time."""
    n_rows, n_groups = off.shape
    n4 = n_groups - n_groups % 4
    for i in range(n_rows):
        for k in range(_COLS):
            out[i, k] = np.float32(0.0)
    for g in range(0, n4, 4):
        for i in range(n_rows):
            i0 = off[i, g]
            i1 = off[i, g + 1]
            i2 = off[i, g + 2]
            i3 = off[i, g + 3]
            for k in range(_COLS):
                x = out[i, k]
                x += t[i0, k]
                x += t[i1, k]
                x += t[i2, k]
                x += t[i3, k]
                out[i, k] = x
    for g in range(n4, n_groups):
        for i in range(n_rows):
            i0 = off[i, g]
            for k in range(_COLS):
                out[i, k] += t[i0, k]


@njit(cache=True, parallel=True)
def _table_kernel(table, first, second, has_zero, n):
    """float32 (batch, n): Σ_g table[first] per row; where has_zero, when ``second`` is given
    (non-empty), (Σ_g table[first] + Σ_g table[second]) / 2.

    Tasks are (column block, chunk of _CHUNK rows); a row's value never depends on its chunk."""
    n_blocks = table.shape[0]
    batch, n_groups = first.shape
    out = np.empty((batch, n), dtype=np.float32)
    n_chunks = (batch + _CHUNK - 1) // _CHUNK
    two = second.shape[0] > 0
    for task in prange(n_blocks * n_chunks):
        blk = task // n_chunks
        b0 = (task - blk * n_chunks) * _CHUNK
        nr = min(_CHUNK, batch - b0)
        t = table[blk]
        acc = np.empty((nr, _COLS), dtype=np.float32)
        _rows_sum(t, first[b0 : b0 + nr], acc)
        c0 = blk * _COLS
        width = min(_COLS, n - c0)
        for i in range(nr):
            for k in range(width):
                out[b0 + i, c0 + k] = acc[i, k]
        if two:
            rows = np.empty(nr, dtype=np.int64)
            nz = 0
            for i in range(nr):
                if has_zero[b0 + i]:
                    rows[nz] = b0 + i
                    nz += 1
            if nz > 0:
                off2 = np.empty((nz, n_groups), dtype=second.dtype)
                for i in range(nz):
                    off2[i] = second[rows[i]]
                acc2 = np.empty((nz, _COLS), dtype=np.float32)
                _rows_sum(t, off2, acc2)
                for i in range(nz):
                    b = rows[i]
                    for k in range(width):
                        out[b, c0 + k] = np.float32(0.5) * (out[b, c0 + k] + acc2[i, k])
    return out


@njit(cache=True, parallel=True)
def _fill_column_sum(out, column_sum, has_zero):
    """Rows without undriven inputs: out[b] = column_sum (their driven sum is every row)."""
    for b in prange(out.shape[0]):
        if not has_zero[b]:
            for i in range(out.shape[1]):
                out[b, i] = column_sum[i]


# --------------------------------------------------------------------------- public API


def signed_product(z: np.ndarray | InputCodes, table: SignedTable) -> np.ndarray:
    """y = shift + z M in a fixed order, float32 (batch, N) (see the module docstring).

    Args:
        z: int8 (batch, K) inputs in {−1, 0, +1}, or their :func:`encode_inputs`.
        table: from :func:`signed_table`.
    """
    k, n = table.shape
    codes = _as_codes(z, k)
    second = codes.d if codes.has_zero.any() else codes.d[:0]
    return _table_kernel(table.sign, codes.s, second, codes.has_zero, np.int64(n))


def driven_sum(z: np.ndarray | InputCodes, table: DrivenTable) -> np.ndarray:
    """v = shift + (z∘z) Q in a fixed order, float32 (batch, N) (see the module docstring).

    Args:
        z: int8 (batch, K) inputs in {−1, 0, +1}, or their :func:`encode_inputs`.
        table: from :func:`driven_table`.
    """
    k, n = table.shape
    codes = _as_codes(z, k)
    batch = codes.c.shape[0]
    if not codes.has_zero.any():
        return np.broadcast_to(table.column_sum, (batch, n)).copy()
    zero_rows = np.flatnonzero(codes.has_zero)
    c = codes.c
    out = np.empty((batch, n), dtype=np.float32)
    out[zero_rows] = _table_kernel(table.subset, c[zero_rows], c[:0], codes.has_zero, np.int64(n))
    _fill_column_sum(out, table.column_sum, codes.has_zero)
    return out
