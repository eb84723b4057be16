"""One tile: programming a block of differential pairs, and its effective arrays at read time t.

Layout: weight row j of the block is a differential pair on two physical rows of the tile, G⁺
driven at +z_j·V and G⁻ at −z_j·V, both on neuron i's bit line, so the bit line sums
V z_j (G⁺_ji − G⁻_ji) in the analog domain (no current subtraction circuit). Physically the
pair's rows are adjacent (row 2j: G⁺, row 2j+1: G⁻); that order matters only for IR drop.
The sampling kernels see the rows stacked, [G⁺; G⁻] with inputs [z, −z].

Stochastic elements: ``per_cell`` — one element per cell, independent draws (programmed on the
stacked (2r, cols) array); ``per_row`` — one stochastic driver per input j gating the input pulse of
both rows of its pair (the authors' per-input noise, docs/model.md §3), programmed on (r, cols), so
ξ_j multiplies G⁺_ji − G⁻_ji for every neuron i.

Read phases (docs/hardware-model.md §4): the *stochastic* phase at the sampling voltage (elements
draw ξ) and the *deterministic* phase at a voltage where every element conducts (ξ = 1; for a
Gaussian element its multiplicative noise is bypassed). Each phase's read noise is the
conductance model's ``read_sigma`` at t, independent between phases and reads. A Bernoulli cell
that does not conduct carries no current and no read noise; a Gaussian element's noise and the
read noise add.

The periphery sees each tile through per-weight coefficient matrices (r, cols), in µS and µS²
(currents follow by V Σ_j z_j m_ji and variances by V² Σ_j z_j² v_ji):

    m_s   mean of the stochastic read        (p⁺G⁺ − p⁻G⁻ per cell; p_j(G⁺ − G⁻) per row)
    v_el  variance from the elements         (p⁺(1−p⁺)G⁺² + p⁻(1−p⁻)G⁻²; σ²G²; ...)
    v_rd  expected read-noise variance of the stochastic read (p⁺σ_r⁺² + p⁻σ_r⁻², ...)
    m_d, v_d  mean and read-noise variance of the deterministic read (G⁺ − G⁻, σ_r⁺² + σ_r⁻²)

IR drop (``r_wire_ohm`` > 0): the fast mode of :mod:`crossbar.ir_drop` — a per-cell attenuation
solved once per phase for the mean conducting pattern (p·G in the stochastic phase, G in the
deterministic one) of the physical (interleaved) layout, folded into the effective conductances
and read-noise standard deviations.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from devices import ConductanceState

from .ir_drop import ir_attenuation
from .probability import DEFAULT_BITS, ProbabilityPlanes, quantise_probability
from .sampling import CellArray, prepare_cells

#: element structure x noise -> how a tile is read
READ_KINDS = ("bernoulli_cell", "bernoulli_row", "gaussian_cell", "gaussian_row", "deterministic")


@dataclass(frozen=True, eq=False)
class Tile:
    """A programmed tile: inputs ``rows`` x neurons ``cols`` of the layer (slices).

    g_plus, g_minus: the programmed conductance states, (r, c) each.
    element: the stochastic elements' programmed state (None when the layer only reads
        deterministically: output and sign layers).
    """

    rows: slice
    cols: slice
    g_plus: ConductanceState
    g_minus: ConductanceState
    element: Any

    @property
    def shape(self) -> tuple[int, int]:
        """(weight rows, neurons) of the block."""
        return self.g_plus.shape  # type: ignore[return-value]


def program_tile(
    target_plus_us: np.ndarray,
    target_minus_us: np.ndarray,
    *,
    rows: slice,
    cols: slice,
    conductance: Any,
    element: Any | None,
    rng: np.random.Generator,
    element_state: Any | None = None,
) -> Tile:
    """Program one tile (once): both devices of every pair, then the stochastic elements.

    Each part draws from its own child of ``rng`` (G⁺, G⁻, elements), so that changing one
    effect in a sweep leaves the others' draws unchanged. ``element_state``: an element state
    programmed elsewhere that this tile shares (the per-row drivers of a row-tile, one per
    input row for every column-tile; see :func:`crossbar.build.program_tiles`).
    """
    rng_plus, rng_minus, rng_element = rng.spawn(3)
    g_plus = conductance.program(target_plus_us, rng=rng_plus)
    g_minus = conductance.program(target_minus_us, rng=rng_minus)
    state = element_state
    if element is not None and state is None:
        r, c = target_plus_us.shape
        shape = (2 * r, c) if element.structure == "per_cell" else (r, c)
        state = element.program(shape, rng=rng_element)
    return Tile(rows=rows, cols=cols, g_plus=g_plus, g_minus=g_minus, element=state)


@dataclass(frozen=True, eq=False)
class TileArrays:
    """A tile's effective arrays at one read time (see the module docstring for the symbols).

    kind: one of :data:`READ_KINDS`. m_s, v_el, v_rd, m_d, v_d: float64 (r, c).
    stacked: per-cell Bernoulli — (G [G⁺; G⁻] (2r, c), p planes, read variances or None), from
        which :attr:`cells` prepares the exact sampler's array on first use.
    row_g, row_var, row_planes: per-row Bernoulli — (G⁺ − G⁻) (r, c), read variances summed
        over the pair (or None), p per input as planes of shape (1, r).
    row_sigma: per-row Gaussian — σ per input (r,).
    """

    kind: str
    m_s: np.ndarray
    v_el: np.ndarray
    v_rd: np.ndarray
    m_d: np.ndarray
    v_d: np.ndarray
    stacked: tuple[np.ndarray, ProbabilityPlanes, np.ndarray | None] | None = None
    row_g: np.ndarray | None = None
    row_var: np.ndarray | None = None
    row_planes: ProbabilityPlanes | None = None
    row_sigma: np.ndarray | None = None
    _cells: list = field(default_factory=list, repr=False)

    @property
    def cells(self) -> CellArray:
        """The per-cell Bernoulli array prepared for the exact sampler (built once)."""
        if self.stacked is None:
            raise ValueError(f"a {self.kind} tile has no per-cell sampler array")
        if not self._cells:
            g, planes, var = self.stacked
            self._cells.append(prepare_cells(g, planes, read_var=var, differential=True))
        return self._cells[0]


def scale_arrays(ta: TileArrays, gain: float) -> TileArrays:
    """``ta`` read through a noiseless gain (a global drift compensation factor α applied to the
    column signal before the comparator / ADC): means x α, variances x α², probabilities and
    relative σ unchanged. ``gain == 1`` returns ``ta`` itself."""
    if gain == 1.0:
        return ta
    g2 = gain * gain
    stacked = None
    if ta.stacked is not None:
        g, planes, var = ta.stacked
        stacked = (g * gain, planes, None if var is None else var * g2)
    return TileArrays(
        ta.kind,
        ta.m_s * gain,
        ta.v_el * g2,
        ta.v_rd * g2,
        ta.m_d * gain,
        ta.v_d * g2,
        stacked=stacked,
        row_g=None if ta.row_g is None else (ta.row_g * np.float32(gain)).astype(np.float32),
        row_var=None if ta.row_var is None else (ta.row_var * np.float32(g2)).astype(np.float32),
        row_planes=ta.row_planes,
        row_sigma=ta.row_sigma,
    )


def _interleave(a_plus: np.ndarray, a_minus: np.ndarray) -> np.ndarray:
    out = np.empty((2 * a_plus.shape[0], a_plus.shape[1]))
    out[0::2] = a_plus
    out[1::2] = a_minus
    return out


def _attenuation(
    g_plus: np.ndarray,
    g_minus: np.ndarray,
    w_plus: np.ndarray,
    w_minus: np.ndarray,
    r_wire_ohm: float,
) -> tuple[np.ndarray, np.ndarray]:
    """Fast IR-drop attenuation of both devices of each pair for mean conducting weights w."""
    if r_wire_ohm == 0.0:
        ones = np.ones_like(g_plus)
        return ones, ones
    mean = _interleave(np.maximum(g_plus, 0.0) * w_plus, np.maximum(g_minus, 0.0) * w_minus)
    att = ir_attenuation(mean, r_wire_ohm)
    return att[0::2], att[1::2]


def read_arrays(
    tile: Tile,
    *,
    conductance: Any,
    element: Any | None,
    t_s: float,
    r_wire_ohm: float,
    bits: int = DEFAULT_BITS,
) -> TileArrays:
    """The tile's effective arrays ``t_s`` seconds after programming.

    ``element`` None: deterministic reads only (m_s = v_el = v_rd = 0). Bernoulli probabilities
    are quantised to ``bits`` bits exactly as the sampler realises them, so both modes use the
    same p.
    """
    g_p = conductance.mean(tile.g_plus, t_s)
    g_m = conductance.mean(tile.g_minus, t_s)
    s_p = conductance.read_sigma(tile.g_plus, t_s)
    s_m = conductance.read_sigma(tile.g_minus, t_s)
    r = g_p.shape[0]
    ones = np.ones_like(g_p)

    # Deterministic phase: every element conducts.
    att_p, att_m = _attenuation(g_p, g_m, ones, ones, r_wire_ohm)
    m_d = g_p * att_p - g_m * att_m
    v_d = np.square(s_p * att_p) + np.square(s_m * att_m)
    zeros = np.zeros_like(g_p)
    if element is None:
        return TileArrays("deterministic", zeros, zeros, zeros, m_d, v_d)

    structure = element.structure
    if element.noise == "bernoulli":
        p_dev = np.asarray(element.p(tile.element), dtype=np.float64)
        if structure == "per_cell":
            planes = quantise_probability(p_dev, p_dev.shape, bits=bits)
            p = planes.quantised()
            p_p, p_m = p[:r], p[r:]
        else:
            planes = quantise_probability(p_dev.reshape(1, -1), (1, r), bits=bits)
            p_p = p_m = np.broadcast_to(planes.quantised()[0][:, None], g_p.shape)
        att_p, att_m = _attenuation(g_p, g_m, p_p, p_m, r_wire_ohm)
        gs_p, gs_m = g_p * att_p, g_m * att_m
        vr_p, vr_m = np.square(s_p * att_p), np.square(s_m * att_m)
        if structure == "per_cell":
            m_s = p_p * gs_p - p_m * gs_m
            v_el = p_p * (1 - p_p) * gs_p**2 + p_m * (1 - p_m) * gs_m**2
            v_rd = p_p * vr_p + p_m * vr_m
            var = np.vstack([vr_p, vr_m])
            stacked = (np.vstack([gs_p, gs_m]), planes, var if var.any() else None)
            return TileArrays("bernoulli_cell", m_s, v_el, v_rd, m_d, v_d, stacked=stacked)
        w = gs_p - gs_m
        var = vr_p + vr_m
        return TileArrays(
            "bernoulli_row",
            p_p * w,
            p_p * (1 - p_p) * w**2,
            p_p * var,
            m_d,
            v_d,
            row_g=w.astype(np.float32),
            row_var=var.astype(np.float32) if var.any() else None,
            row_planes=planes,
        )

    # Gaussian elements: ξ ~ N(1, σ²) multiplies the conductance; read noise adds on top.
    sigma = np.asarray(element.sigma(tile.element), dtype=np.float64)
    if structure == "per_cell":
        sig_p, sig_m = sigma[:r], sigma[r:]
    else:
        sig_p = sig_m = np.broadcast_to(sigma[:, None], g_p.shape)
    # Its mean conducting pattern is G itself: the deterministic phase's attenuation applies.
    gs_p, gs_m = g_p * att_p, g_m * att_m
    v_rd = v_d
    w = m_d
    if structure == "per_cell":
        v_el = (sig_p * gs_p) ** 2 + (sig_m * gs_m) ** 2
        return TileArrays("gaussian_cell", w, v_el, v_rd, m_d, v_d)
    return TileArrays(
        "gaussian_row",
        w,
        (sig_p * w) ** 2,
        v_rd,
        m_d,
        v_d,
        row_g=w.astype(np.float32),
        row_sigma=np.asarray(sigma, dtype=np.float64),
    )
