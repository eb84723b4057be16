"""Column moments: from a tile's read arrays to the mean and variance of a neuron's analog sum.

A row-tile t of column-tile c reads, per neuron i (docs/crossbar.md §4), the value
u_i = I_s,i + a_i I_d,i: the stochastic read plus the gain a_i times the deterministic read.
Given the inputs z (±1, or 0 for an undriven row) its conditional moments are linear in z and
z∘z::

    E[u_i | z]   = Σ_j z_j  M_ji       M = V (m_s + a m_d)                  (µA per unit input)
    Var[u_i | z] = Σ_j z_j² Q_ji       Q = V² (v_el + v_rd + a² v_d)        (µA² per unit input)

with the per-weight coefficient arrays of :class:`~crossbar.tile.TileArrays` (m_s, v_el, v_rd,
m_d, v_d in µS and µS²) and V the row read voltage. :func:`column_moments` is the one place
these coefficients are formed: the periphery calibration, the CLT read and
:meth:`~crossbar.HardwareLayer.effective_parameters` all take them from here, and so can the
learning code (the same mean weight vector μ_i = M_:,i).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from .tile import TileArrays

__all__ = ["column_moments", "layer_moments", "stack_coefficients"]


def column_moments(
    arrays: TileArrays | Sequence[TileArrays], gain: Any, v_read_v: float
) -> tuple[np.ndarray, np.ndarray]:
    """Mean and variance coefficients (M, Q) of u = I_s + a I_d for the tiles of one column.

    Args:
        arrays: one tile's :class:`~crossbar.tile.TileArrays`, or the row-tiles of one
            column-tile top to bottom (all with the same number of columns ``width``).
        gain: a_i, the gain of the deterministic read, (width,) or a scalar (dimensionless;
            0 for a stochastic read alone, as without a deterministic phase).
        v_read_v: the row read voltage V (V). ``v_read_v=1`` gives the coefficients per volt
            (µS, µS²), for callers that sum over inputs before scaling by V and V².

    Returns:
        M = V (m_s + a m_d) in µA per unit input and Q = V² (v_el + v_rd + a² v_d) in µA² per
        unit input, float64 (rows, width) each, the row-tiles stacked (rows = Σ tile rows):
        E[u | z] = z M and Var[u | z] = (z∘z) Q for inputs z (batch, rows).
    """
    tiles = [arrays] if isinstance(arrays, TileArrays) else list(arrays)
    a = np.asarray(gain, dtype=np.float64)
    v = float(v_read_v)
    m = v * np.vstack([ta.m_s + a * ta.m_d for ta in tiles])
    q = v**2 * np.vstack([ta.v_el + ta.v_rd + a**2 * ta.v_d for ta in tiles])
    return m, q


def layer_moments(
    arrays: Sequence[Sequence[TileArrays]], gain: Any, v_read_v: float
) -> tuple[np.ndarray, np.ndarray]:
    """:func:`column_moments` over a whole layer, float64 (fan_in, fan_out) each.

    ``arrays[row_tile][column_tile]`` is the layer's grid of tile arrays; ``gain`` is a_i for
    every neuron, (fan_out,) or a scalar. Units as :func:`column_moments`.
    """
    a = np.asarray(gain, dtype=np.float64)
    ms, qs = [], []
    start = 0
    for c in range(len(arrays[0])):
        col = [row[c] for row in arrays]
        width = col[0].m_s.shape[1]
        m, q = column_moments(col, a if a.ndim == 0 else a[start : start + width], v_read_v)
        ms.append(m)
        qs.append(q)
        start += width
    return np.hstack(ms), np.hstack(qs)


def stack_coefficients(arrays: Sequence[Sequence[TileArrays]], name: str) -> np.ndarray:
    """One coefficient (``"m_s"``, ``"v_el"``, ``"v_rd"``, ``"m_d"`` or ``"v_d"``) over a whole
    layer: the tiles' (r, c) arrays placed as the layer's (fan_in, fan_out) matrix, from the
    grid ``arrays[row_tile][column_tile]`` (µS or µS²)."""
    return np.block([[getattr(ta, name) for ta in row] for row in arrays])
