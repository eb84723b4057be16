"""A layer's read terms prepared for the fixed-order products of :mod:`crossbar.products`.

Two sets of tables per column-tile c and read (t_s, read_gain), cached on the layer:

- :func:`moment_tables` — the CLT moments of the analog comparator input,
  E = offset + z M and Var = σ_n² + (z∘z) Q with (M, Q) of
  :meth:`~crossbar.HardwareLayer.moment_coefficients` (µA, µA² per unit input);
- :func:`deterministic_tables` — the sample-invariant terms when the stochastic read is drawn
  (exact mode): offset + z M_d and σ_n² + (z∘z) Q_d with M_d = V a m_d and Q_d = V² a² v_d
  stacked over the row-tiles (a = 0 without a deterministic read);
- :func:`tile_mean_table` / :func:`tile_var_table` — one row-tile's V·m (a mean coefficient)
  and V²·Σ v (variance coefficients) for the per-tile reads of the ADC paths and the output
  layer.

The offsets and the comparator noise variance σ_n² ride as the tables' constant terms.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from .products import DrivenTable, SignedTable, driven_table, signed_table

if TYPE_CHECKING:
    from .layer import HardwareLayer

__all__ = ["deterministic_tables", "moment_tables", "tile_mean_table", "tile_var_table"]

# Read conditions (t_s, read_gain) whose tables are kept, as the layer's other read caches.
_READS_CACHED = 4
# Tables per read condition and tile at most (column moments, deterministic terms, per-tile
# means and variances).
_TABLES_PER_TILE = 6


def _cached(layer: HardwareLayer, key: tuple, build):
    cache = layer._table_cache
    if key not in cache:
        n_tiles = len(layer.row_slices) * len(layer.col_slices)
        if len(cache) >= _READS_CACHED * _TABLES_PER_TILE * n_tiles:
            cache.pop(next(iter(cache)))
        cache[key] = build()
    return cache[key]


def _with_constants(
    layer: HardwareLayer, c: int, m: np.ndarray, q: np.ndarray
) -> tuple[SignedTable, DrivenTable]:
    cs = layer.col_slices[c]
    return (
        signed_table(m, layer.offsets_ua[cs]),
        driven_table(q, layer.neuron.config.noise_sigma_ua**2),
    )


def moment_tables(
    layer: HardwareLayer, t_s: float, c: int, read_gain: float = 1.0
) -> tuple[SignedTable, DrivenTable]:
    """(E, Var) tables of column-tile ``c``'s analog comparator input (module docstring)."""
    key = ("clt", float(t_s), int(c), float(read_gain))

    def build():
        m, q = layer.moment_coefficients(t_s, c, read_gain)
        return _with_constants(layer, c, m, q)

    return _cached(layer, key, build)


def deterministic_tables(
    layer: HardwareLayer, t_s: float, c: int, read_gain: float = 1.0
) -> tuple[SignedTable, DrivenTable]:
    """The exact mode's sample-invariant terms of column-tile ``c`` (module docstring)."""
    key = ("exact", float(t_s), int(c), float(read_gain))

    def build():
        cs = layer.col_slices[c]
        a = layer.gain[cs] if layer.reads_deterministic else np.zeros(cs.stop - cs.start)
        col = [row[c] for row in layer.read_arrays(t_s, read_gain)]
        v = layer.chip.v_read_v
        m_d = v * np.vstack([a * ta.m_d for ta in col])
        q_d = v**2 * np.vstack([a**2 * ta.v_d for ta in col])
        return _with_constants(layer, c, m_d, q_d)

    return _cached(layer, key, build)


def tile_mean_table(
    layer: HardwareLayer, t_s: float, read_gain: float, t: int, c: int, name: str
) -> SignedTable:
    """V times coefficient ``name`` (``"m_s"`` or ``"m_d"``, µS) of row-tile t, column-tile c:
    z @ table is that read's mean current (µA)."""
    key = ("mean", float(t_s), float(read_gain), int(t), int(c), name)

    def build():
        ta = layer.read_arrays(t_s, read_gain)[t][c]
        return signed_table(layer.chip.v_read_v * getattr(ta, name))

    return _cached(layer, key, build)


def tile_var_table(
    layer: HardwareLayer, t_s: float, read_gain: float, t: int, c: int, names: tuple[str, ...]
) -> DrivenTable:
    """V² times the sum of the variance coefficients ``names`` (µS²) of row-tile t, column-tile
    c: (z∘z) @ table is that read's variance (µA²)."""
    key = ("var", float(t_s), float(read_gain), int(t), int(c), tuple(names))

    def build():
        ta = layer.read_arrays(t_s, read_gain)[t][c]
        return driven_table(layer.chip.v_read_v**2 * sum(getattr(ta, n) for n in names))

    return _cached(layer, key, build)
