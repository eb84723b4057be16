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
⌈K/4⌉ group additions one each, so |y − y₆₄| <= (K/4 + 2)·2⁻²⁴·(Σ_j |M_ji| + |shift_i|)
(asserted in tests/test_crossbar_products.py). On the engine's CLT moments (784 and 300 inputs,
ideal and rram-selector chips) the measured error of the mean is 4·10⁻⁷ of the standard
deviation √Var rms and 5.5·10⁻⁶ at most, against 3·10⁻⁷ at most for a float64 product rounded
to float32 once; a decision U >= Φ(t) changes with probability of order 10⁻⁷.

Layout and speed: a table is one (16·⌈K/4⌉, N₁₆) float32 array (N₁₆: N rounded up to 16),
4× a float32 copy of M; a row's sum walks it eight groups at a time, each step adding whole
table rows, so the loop is long, contiguous and vectorised. One thread: about 1.1–1.8× the speed
of numpy's float32 product z @ M of the same shape (OpenBLAS, 784×300 and 256×256, batch 1000).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from numba import njit, parallel_chunksize, prange

__all__ = [
    "DrivenTable",
    "InputCodes",
    "SignedTable",
    "all_ternary",
    "driven_sum",
    "driven_table",
    "encode_inputs",
    "signed_product",
    "signed_table",
]

# Table rows are padded to whole 16-float vectors (one AVX-512 register).
_LANES = 16
# Batch rows per parallel task.
_CHUNK = 64


@dataclass(frozen=True, eq=False)
class SignedTable:
    """Tables of a (K, N) coefficient matrix for :func:`signed_product` / :func:`driven_sum`.

    Attributes:
        sign: float32 (n_groups·16, n_pad): row 16g + p holds Σ_r s_r M[4g + r, :] for sign
            pattern p (bit r of p set: s_r = +1), plus the shift in group 0; columns
            zero-padded to n_pad, a multiple of 16.
        shape: (K, N) of the matrix.
    """

    sign: np.ndarray
    shape: tuple[int, int]


@dataclass(frozen=True, eq=False)
class DrivenTable:
    """Tables of a (K, N) non-negative matrix Q for :func:`driven_sum`.

    Attributes:
        subset: float32 (n_groups·16, n_pad): row 16g + p holds Σ_{r in p} Q[4g + r, :] (plus
            the shift in group 0).
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
    n_pad = (n + _LANES - 1) // _LANES * _LANES
    padded = np.zeros((n_groups * 4, n_pad), dtype=np.float64)
    padded[:k, :n] = m
    # (16, 4) x (g, 4, cols) -> (g, 16, cols), summed in float64
    t = np.einsum("pr,grc->gpc", _patterns(signed), padded.reshape(n_groups, 4, n_pad))
    # the constant term rides in group 0 (every pattern): one rounding, no extra pass
    t[0, :, :n] += shift
    return np.ascontiguousarray(t, dtype=np.float32).reshape(n_groups * 16, n_pad)


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
        s, d, c: (batch, n_groups) row offsets 16·g + code into a table: the sign
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
    batch = arr.shape[0]
    s, d, c = (np.empty((batch, n_groups), dtype=dtype) for _ in range(3))
    has_zero = np.empty(batch, dtype=np.bool_)
    _pattern_codes(padded.view(np.uint32), s, d, c, has_zero)
    return InputCodes(s=s, d=d, c=c, has_zero=has_zero, k=k)


def all_ternary(z: np.ndarray) -> bool:
    """Whether an int8 array holds only −1, 0 and +1 (one pass over the data, no temporaries:
    the check :func:`encode_inputs`' callers do at their boundary)."""
    arr = np.ascontiguousarray(z)
    if arr.dtype != np.int8:
        raise TypeError(f"z must be an int8 array, got dtype {arr.dtype}")
    return bool(_all_ternary(arr))


def _as_codes(z: np.ndarray | InputCodes, k: int) -> InputCodes:
    codes = z if isinstance(z, InputCodes) else encode_inputs(z)
    if codes.k != k:
        raise ValueError(f"z has {codes.k} inputs per row; the table expects {k}")
    return codes


# --------------------------------------------------------------------------- kernels


@njit(cache=True)
def _all_ternary(z):
    """Whether every int8 of the C-contiguous array is −1, 0 or +1 (one pass, no temporaries)."""
    flat = z.reshape(-1)
    ok = True
    for i in range(flat.size):
        x = flat[i]
        ok &= (x >= -1) & (x <= 1)
    return ok


@njit(cache=True, inline="always")
def _pack4(x):
    """Bits 0, 8, 16, 24 of a uint64 (< 2³²) packed into bits 0-3 (no carries overlap)."""
    return ((x * np.uint64(0x01020408)) >> np.uint64(24)) & np.uint64(15)


@njit(cache=True)
def _pattern_codes(z4, s, d, c, has_zero):
    """Row offsets into an (n_groups·16, n_pad) table for every (row, group):
    16·g + code, where bit r of the code is input 4g + r's sign bit (s: z >= 0), its
    positive bit (d: z > 0) or its driven bit (c: z != 0); and whether each row has an
    undriven input, written into s, d, c (batch, n_groups) and has_zero (batch,). ``z4``: the
    int8 inputs padded with −1 to whole groups, viewed as uint32 (batch, n_groups), one group
    per word (little-endian: input 4g + r in byte r)."""
    batch, n_groups = z4.shape
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


@njit(cache=True, inline="always")
def _row_sum(t, off, acc):
    """acc[:] = Σ_g t[off[g], :], groups in ascending order, eight per pass with the partial sum
    in registers: ((x + t₀) + t₁) + … + t₇, the same additions in the same order as one group
    at a time. Whole table rows (every column) per step keep the loop long and its loads
    contiguous."""
    n_groups = off.shape[0]
    n_cols = acc.shape[0]
    n8 = n_groups - n_groups % 8
    for k in range(n_cols):
        acc[k] = np.float32(0.0)
    for g in range(0, n8, 8):
        t0 = t[off[g]]
        t1 = t[off[g + 1]]
        t2 = t[off[g + 2]]
        t3 = t[off[g + 3]]
        t4 = t[off[g + 4]]
        t5 = t[off[g + 5]]
        t6 = t[off[g + 6]]
        t7 = t[off[g + 7]]
        for k in range(n_cols):
            x = acc[k]
            x += t0[k]
            x += t1[k]
            x += t2[k]
            x += t3[k]
            x += t4[k]
            x += t5[k]
            x += t6[k]
            x += t7[k]
            acc[k] = x
    for g in range(n8, n_groups):
        t0 = t[off[g]]
        for k in range(n_cols):
            acc[k] += t0[k]


@njit(cache=True, parallel=True)
def _table_kernel(table, first, second, has_zero, n):
    """float32 (batch, n): Σ_g table[first[b, g]] per row b; where has_zero, when ``second``
    is given (non-empty), (Σ_g table[first] + Σ_g table[second]) / 2.

    Tasks are chunks of _CHUNK rows; a row's value never depends on its chunk or thread."""
    batch = first.shape[0]
    n_pad = table.shape[1]
    out = np.empty((batch, n), dtype=np.float32)
    n_chunks = (batch + _CHUNK - 1) // _CHUNK
    two = second.shape[0] > 0
    for task in prange(n_chunks):
        acc = np.empty(n_pad, dtype=np.float32)
        acc2 = np.empty(n_pad, dtype=np.float32)
        for b in range(task * _CHUNK, min(batch, (task + 1) * _CHUNK)):
            _row_sum(table, first[b], acc)
            if two and has_zero[b]:
                _row_sum(table, second[b], acc2)
                for k in range(n):
                    out[b, k] = np.float32(0.5) * (acc[k] + acc2[k])
            else:
                for k in range(n):
                    out[b, k] = acc[k]
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
    with parallel_chunksize(1):  # dynamic schedule, as crossbar.sampling.sample_cells
        return _table_kernel(table.sign, codes.s, second, codes.has_zero, np.int64(n))


def driven_sum(z: np.ndarray | InputCodes, table: DrivenTable) -> np.ndarray:
    """v = shift + (z∘z) Q in a fixed order, float32 (batch, N) (see the module docstring);
    when every row is fully driven, a read-only view of the one row they share.

    Args:
        z: int8 (batch, K) inputs in {−1, 0, +1}, or their :func:`encode_inputs`.
        table: from :func:`driven_table`.
    """
    k, n = table.shape
    codes = _as_codes(z, k)
    batch = codes.c.shape[0]
    if not codes.has_zero.any():  # every row fully driven: one row for all (read-only view)
        return np.broadcast_to(table.column_sum, (batch, n))
    zero_rows = np.flatnonzero(codes.has_zero)
    c = codes.c
    out = np.empty((batch, n), dtype=np.float32)
    with parallel_chunksize(1):
        part = _table_kernel(table.subset, c[zero_rows], c[:0], codes.has_zero, np.int64(n))
    out[zero_rows] = part
    _fill_column_sum(out, table.column_sum, codes.has_zero)
    return out
