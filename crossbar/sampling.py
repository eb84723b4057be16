"""Exact samplers of a crossbar read: every stochastic element drawn for every read.

Per-cell stochastic elements (one selector per cell), for MC sample s, batch row b, column i:

    I[s, b, i] = Σ_j ξ[s, b, j, i] · G[j, i] · z[b, j]
    V[s, b, i] = Σ_j ξ[s, b, j, i] · R[j, i] · z[b, j]²        (optional, R = σ_read²)

with ξ ~ Bernoulli(p_ji) independent over (s, b, j, i). V lets the caller add the cycle-to-cycle
read noise of the conducting cells exactly, as one Gaussian per column: given the mask, a sum of
independent Gaussians is Gaussian with variance V, so I + √V·N(0, 1) has the exact distribution.

Per-row stochastic elements (one stochastic driver per row, ξ[s, b, j] shared by the row's cells):
the inputs are masked, then one dense product.

Units: the kernels are unit-agnostic. With G in µS and inputs applied as z·V_read (V), the column
current in µA is V_read × I (and V_read² × V for the read-noise variance in µA²).

Differential pairs: a weight stored as G⁺ − G⁻ is passed as the stacked (2·rows, cols) matrix
[G⁺; G⁻] with inputs [z, −z] (see :func:`stack_differential`), so each device of the pair has its
own stochastic element, as on the chip.

Precision: float32 accumulation in a fixed order (rows in ascending order, four at a time). float32
doubles the SIMD width of float64 and its rounding error (≈ √rows·2⁻²⁴ of Σ|G|, ~10⁻⁶ relative) is
five orders of magnitude below the sampling spread (≈ 1/√rows relative). The order never depends on
chunking or threads, so results are bit-identical for any split of samples/batch and thread count
(set with ``numba.set_num_threads``).

Randomness: a counter-based generator keyed by a :class:`~crossbar.rng.SamplerKey` (see
:mod:`crossbar.rng`); pass ``sample_offset``/``batch_offset`` (the global index of the first sample
and batch row of this call) when splitting a run into chunks.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from numba import parallel_chunksize

from . import _kernels
from .probability import DEFAULT_BITS, ProbabilityPlanes, pack_bits, quantise_probability
from .products import driven_sum, driven_table, encode_inputs, signed_product, signed_table
from .rng import SamplerKey, sampler_key

__all__ = [
    "CellArray",
    "prepare_cells",
    "sample_cell_currents",
    "sample_cells",
    "sample_row_currents",
    "stack_differential",
]

# Bound on the masked-input buffer of the per-row sampler (float32 values), ≈ 64 MiB.
_ROW_CHUNK_VALUES = 16 * 2**20


@dataclass(frozen=True, eq=False)
class CellArray:
    """A programmed array of cells ready for repeated exact reads (see :func:`prepare_cells`).

    Attributes:
        g: float32 (rows', n_words·64) conductances as the kernel reads them, columns
            zero-padded to a multiple of 64: the cells themselves, or for merged differential
            pairs one row per pair (G⁺ − G⁻, see :func:`prepare_cells`).
        read_var: float32 like ``g`` (per-cell read-noise variance), or None.
        probability: the cells' conducting probabilities as bit planes (every cell, stacked).
        shape: (rows, cols) of the cells.
        pairs: 0 plain; 1 differential pairs [G⁺; G⁻] read with inputs [z, −z]; 2 the same,
            merged (no pair has two cells that can carry current in one column).
        select: uint64 (rows/2 · n_words,) for merged pairs: bit set where the G⁺ cell is the
            pair's active cell (an empty array otherwise).
    """

    g: np.ndarray
    read_var: np.ndarray | None
    probability: ProbabilityPlanes
    shape: tuple[int, int]
    pairs: int = 0
    select: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.uint64))

    @property
    def inputs(self) -> int:
        """Inputs per read: rows, or rows/2 for differential pairs."""
        return self.shape[0] // 2 if self.pairs else self.shape[0]


def _as_matrix(name: str, a: np.ndarray, shape: tuple[int, int] | None = None) -> np.ndarray:
    arr = np.asarray(a)
    if arr.ndim != 2:
        raise ValueError(f"{name} must be a 2-D (rows, cols) array, got shape {arr.shape}")
    if shape is not None and arr.shape != shape:
        raise ValueError(f"{name} has shape {arr.shape}, expected {shape}")
    if not np.issubdtype(arr.dtype, np.number) or np.iscomplexobj(arr):
        raise TypeError(f"{name} must be a real numeric array, got dtype {arr.dtype}")
    arr = arr.astype(np.float32)
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{name} contains non-finite values (inf or nan, or beyond float32 range)")
    return arr


def _padded(a: np.ndarray) -> np.ndarray:
    rows, cols = a.shape
    out = np.zeros((rows, (cols + 63) // 64 * 64), dtype=np.float32)
    out[:, :cols] = a
    return out


def _as_inputs(z: np.ndarray, rows: int) -> np.ndarray:
    arr = np.asarray(z)
    if arr.ndim != 2 or arr.shape[1] != rows:
        raise ValueError(f"z must have shape (batch, {rows}), got {arr.shape}")
    if not (np.issubdtype(arr.dtype, np.integer) or np.issubdtype(arr.dtype, np.floating)):
        raise TypeError(f"z must be an integer or float array of -1/0/+1, got dtype {arr.dtype}")
    ok = (arr == -1) | (arr == 0) | (arr == 1)
    if not np.all(ok):
        raise ValueError(f"z contains {arr[~ok].ravel()[0].item()!r}: inputs must be -1, 0 or +1")
    return np.ascontiguousarray(arr, dtype=np.int8)


def _as_key(key: SamplerKey | int | np.random.SeedSequence) -> SamplerKey:
    if isinstance(key, SamplerKey):
        return key
    if isinstance(key, np.random.Generator):
        raise TypeError(
            "key must be a SamplerKey, int or SeedSequence; derive one from a Generator once with "
            "crossbar.rng.sampler_key(rng) and reuse it for every chunk of the same run"
        )
    return sampler_key(key)


def _check_count(name: str, value: int) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 0:
        raise ValueError(f"{name}={value!r} must be a non-negative integer")
    return int(value)


def _as_planes(
    p: float | np.ndarray | ProbabilityPlanes, shape: tuple[int, int], bits: int
) -> ProbabilityPlanes:
    if isinstance(p, ProbabilityPlanes):
        if p.shape != shape:
            raise ValueError(f"p is prepared for cells of shape {p.shape}, expected {shape}")
        return p
    return quantise_probability(p, shape, bits=bits)


def prepare_cells(
    g: np.ndarray,
    p: float | np.ndarray | ProbabilityPlanes,
    *,
    read_var: np.ndarray | None = None,
    bits: int = DEFAULT_BITS,
    differential: bool = False,
) -> CellArray:
    """Prepare conductances and probabilities for :func:`sample_cells` (do it once per programming).

    Args:
        g: (rows, cols) effective conductances, any sign (e.g. µS), finite.
        p: conducting probability: scalar, per-cell (rows, cols) array, or prepared planes.
        read_var: optional (rows, cols) per-cell read-noise variance σ_read² (e.g. µS²), ≥ 0.
        bits: k, the resolution of p (|error| ≤ 2^-(k+1)); ignored for prepared planes.
        differential: ``g`` (and ``p``, ``read_var``) are the stacked differential pairs
            [G⁺; G⁻] of rows/2 inputs (see :func:`stack_differential`): :func:`sample_cells`
            then takes z of shape (batch, rows/2) and reads G⁺ with z and G⁻ with −z. Where no
            pair has both cells able to carry current in a column (G or read variance nonzero;
            e.g. g_min = 0 and exact programming: one device of every pair is at 0), the pairs
            are merged: one row per pair holds G⁺ − G⁻ and its cell conducts with the active
            device's own draw ξ⁺ or ξ⁻. The draws, and so the distribution and the random
            stream, are those of the two rows; only the float32 summation order differs (the
            pair's one nonzero term is added in the pair's place), and half the cells are read.
    """
    g32 = _as_matrix("g", g)
    shape = (int(g32.shape[0]), int(g32.shape[1]))
    r32 = None
    if read_var is not None:
        r32 = _as_matrix("read_var", read_var, shape)
        if r32.min() < 0:
            raise ValueError(f"read_var contains {float(r32.min())!r}: variances must be >= 0")
    planes = _as_planes(p, shape, bits)
    if not differential:
        var = None if r32 is None else _padded(r32)
        return CellArray(g=_padded(g32), read_var=var, probability=planes, shape=shape)
    if shape[0] % 2:
        raise ValueError(f"g has {shape[0]} rows; differential pairs need an even number")
    r = shape[0] // 2
    active = g32 != 0
    if r32 is not None:
        active |= r32 != 0
    plus, minus = active[:r], active[r:]
    if np.any(plus & minus):  # some pair has two current-carrying cells: read both rows
        var = None if r32 is None else _padded(r32)
        return CellArray(g=_padded(g32), read_var=var, probability=planes, shape=shape, pairs=1)
    merged_var = None if r32 is None else _padded(r32[:r] + r32[r:])
    return CellArray(
        g=_padded(g32[:r] - g32[r:]),  # exact: one of the two is 0
        read_var=merged_var,
        probability=planes,
        shape=shape,
        pairs=2,
        select=pack_bits(plus),
    )


def sample_cells(
    cells: CellArray,
    z: np.ndarray,
    *,
    samples: int,
    key: SamplerKey | int | np.random.SeedSequence,
    sample_offset: int = 0,
    batch_offset: int = 0,
    scale: float = 1.0,
    out: np.ndarray | tuple[np.ndarray, np.ndarray] | None = None,
) -> np.ndarray | tuple[np.ndarray, np.ndarray]:
    """Exact per-cell reads of a prepared array.

    Args:
        cells: from :func:`prepare_cells`.
        z: (batch, inputs) inputs in {-1, 0, +1} (0: row not driven, e.g. conv zero padding);
            inputs = rows, or rows/2 for differential cells.
        samples: number of MC samples (independent reads of every cell).
        key: generator key (a SamplerKey, or an int / SeedSequence to derive one).
        sample_offset, batch_offset: global indices of the first sample and batch row, so that a
            run split into chunks gives the same numbers as one call.
        scale: a factor s applied to the reads in float32 (e.g. the read voltage): I·s and
            V·s² (the same numbers as multiplying the results afterwards).
        out: arrays to add the (scaled) reads into, in float32, instead of returning new ones:
            I, or (I, V) with read_var, each C-contiguous float32 (samples, batch, cols)
            (out += s·I: the same numbers as ``out + s * I``). Returned.

    Returns:
        I float32 (samples, batch, cols); with read_var also V float32 (samples, batch, cols).
    """
    cols = cells.shape[1]
    z8 = _as_inputs(z, cells.inputs)
    n_samples = _check_count("samples", samples)
    s0 = _check_count("sample_offset", sample_offset)
    b0 = _check_count("batch_offset", batch_offset)
    k0, k1 = _as_key(key).words
    pl = cells.probability
    with_var = cells.read_var is not None
    read_var = cells.read_var if with_var else np.zeros((1, 1), dtype=np.float32)
    want = (n_samples, z8.shape[0], cols)
    add = out is not None
    if out is None:
        currents = np.empty(want, dtype=np.float32)
        variances = np.empty(want if with_var else (0, 0, 0), dtype=np.float32)
    else:
        currents, variances = out if with_var else (out, np.empty((0, 0, 0), np.float32))
        for name, arr in (("out", currents), ("out variances", variances))[: 1 + with_var]:
            if not (
                isinstance(arr, np.ndarray)
                and arr.dtype == np.float32
                and arr.shape == want
                and arr.flags.c_contiguous
            ):
                raise ValueError(f"{name} must be a C-contiguous float32 array of shape {want}")
    v = np.float32(scale)
    # Tasks handed out one at a time (a dynamic schedule): on a busy machine a descheduled
    # thread holds back one task, not a fixed share of the range. Results do not depend on it.
    with parallel_chunksize(1):
        _kernels.exact_cell_kernel(
            cells.g,
            z8,
            read_var,
            with_var,
            pl.planes,
            pl.always,
            pl.has_always,
            np.int64(pl.last_plane),
            np.int64(pl.bits),
            k0,
            k1,
            np.int64(s0),
            np.int64(b0),
            np.int64(n_samples),
            np.int64(cols),
            np.int64(cells.pairs),
            cells.select,
            currents,
            variances,
            v,
            v * v,
            add,
        )
    return (currents, variances) if with_var else currents


def sample_cell_currents(
    g: np.ndarray,
    z: np.ndarray,
    p: float | np.ndarray | ProbabilityPlanes,
    *,
    samples: int,
    key: SamplerKey | int | np.random.SeedSequence,
    read_var: np.ndarray | None = None,
    bits: int = DEFAULT_BITS,
    sample_offset: int = 0,
    batch_offset: int = 0,
) -> np.ndarray | tuple[np.ndarray, np.ndarray]:
    """Exact per-cell reads: :func:`prepare_cells` then :func:`sample_cells` (see both)."""
    cells = prepare_cells(g, p, read_var=read_var, bits=bits)
    return sample_cells(
        cells, z, samples=samples, key=key, sample_offset=sample_offset, batch_offset=batch_offset
    )


def sample_row_currents(
    g: np.ndarray,
    z: np.ndarray,
    p: float | np.ndarray | ProbabilityPlanes,
    *,
    samples: int,
    key: SamplerKey | int | np.random.SeedSequence,
    read_var: np.ndarray | None = None,
    bits: int = DEFAULT_BITS,
    sample_offset: int = 0,
    batch_offset: int = 0,
) -> np.ndarray | tuple[np.ndarray, np.ndarray]:
    """Exact reads with per-row stochastic elements (one driver per row, shared by its cells).

        I[s, b, i] = Σ_j ξ[s, b, j] · G[j, i] · z[b, j],   ξ[s, b, j] ~ Bernoulli(p_j)

    The masked inputs ξ·z ∈ {−1, 0, +1} are drawn with the same counter-based generator (word
    q = j // 64 of read (s, b)), then multiplied by G in the fixed summation order of
    :func:`crossbar.products.signed_product` (each row's sum depends on its own inputs only, so
    the result is bit-identical for any split of the samples or the batch, unlike a BLAS
    product whose float32 rows change with the rows per call). Columns are correlated:
    Cov(I_i, I_k) = Σ_j p_j(1 − p_j) G_ji G_jk z_j².

    Args:
        g: (rows, cols) conductances; z: (batch, rows) inputs in {-1, 0, +1}.
        p: scalar or per-row (rows,) probabilities, or planes prepared for shape (1, rows).
        read_var: optional (rows, cols) read-noise variances; then V = (ξ·z²) @ R is returned too.
        Other arguments as in :func:`sample_cells`.

    Returns:
        I float32 (samples, batch, cols) [and V float32 (samples, batch, cols)].
    """
    g32 = _as_matrix("g", g)
    rows, cols = g32.shape
    z8 = _as_inputs(z, rows)
    batch = z8.shape[0]
    n_samples = _check_count("samples", samples)
    s0 = _check_count("sample_offset", sample_offset)
    b0 = _check_count("batch_offset", batch_offset)
    k0, k1 = _as_key(key).words
    if isinstance(p, ProbabilityPlanes):
        pl = _as_planes(p, (1, rows), bits)
    else:
        p_arr = np.asarray(p, dtype=np.float64)
        if p_arr.ndim > 1 or (p_arr.ndim == 1 and p_arr.shape[0] != rows):
            raise ValueError(f"p must be a scalar or a per-row ({rows},) array, got {p_arr.shape}")
        pl = quantise_probability(
            p_arr.reshape(1, -1) if p_arr.ndim else p_arr, (1, rows), bits=bits
        )
    r32 = None
    if read_var is not None:
        r32 = _as_matrix("read_var", read_var, (rows, cols))
        if r32.min() < 0:
            raise ValueError(f"read_var contains {float(r32.min())!r}: variances must be >= 0")
    currents = np.empty((n_samples, batch, cols), dtype=np.float32)
    variances = np.empty_like(currents) if r32 is not None else None
    g_table = signed_table(g32)
    r_table = driven_table(r32) if r32 is not None else None
    chunk = max(1, _ROW_CHUNK_VALUES // max(1, batch * rows))
    for c0 in range(0, n_samples, chunk):
        n = min(chunk, n_samples - c0)
        masked = _kernels.row_mask_kernel(
            z8,
            pl.planes,
            pl.always,
            pl.has_always,
            np.int64(pl.last_plane),
            np.int64(pl.bits),
            k0,
            k1,
            np.int64(s0 + c0),
            np.int64(b0),
            np.int64(n),
        )
        codes = encode_inputs(np.ascontiguousarray(masked.reshape(n * batch, rows), np.int8))
        currents[c0 : c0 + n].reshape(n * batch, cols)[:] = signed_product(codes, g_table)
        if r_table is not None:
            variances[c0 : c0 + n].reshape(n * batch, cols)[:] = driven_sum(codes, r_table)
    return (currents, variances) if r32 is not None else currents


def stack_differential(
    g_plus: np.ndarray, g_minus: np.ndarray, z: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray | None]:
    """Stack a differential pair for the samplers: G = [G⁺; G⁻] (2·rows, cols), inputs [z, −z].

    Each device then has its own stochastic element (per-cell p and read_var must be stacked the
    same way, e.g. ``np.vstack([p_plus, p_minus])``). Returns (G, stacked z or None).
    """
    gp = np.asarray(g_plus)
    gm = np.asarray(g_minus)
    if gp.shape != gm.shape or gp.ndim != 2:
        raise ValueError(f"g_plus {gp.shape} and g_minus {gm.shape} must be 2-D of equal shape")
    stacked_z = None
    if z is not None:
        z_arr = np.asarray(z)
        if z_arr.ndim != 2 or z_arr.shape[1] != gp.shape[0]:
            raise ValueError(f"z must have shape (batch, {gp.shape[0]}), got {z_arr.shape}")
        stacked_z = np.concatenate([z_arr, -z_arr], axis=1)
    return np.vstack([gp, gm]), stacked_z
