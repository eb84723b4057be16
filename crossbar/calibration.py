"""Calibrating a programmed layer's periphery, and what the calibrated chip realises.

:func:`calibrate` reads the chip's *programmed* state at the calibration time (the tile arrays
of :meth:`crossbar.HardwareLayer.read_arrays`) and sets, per neuron (docs/crossbar.md §4):

- the gain a_i of the deterministic read (:func:`crossbar.periphery.solve_gain`) that realises
  the trained β_i, quantised to ``gain_bits`` on the layer's grid (``gain_grid``: ``"fitted"``
  to the a_i this layer needs, :func:`crossbar.periphery.fitted_gain_grid`, or ``"fixed"``);
  ±1 (comparator polarity) for sign layers;
- the comparator threshold θ_i that realises the trained bias
  (:func:`crossbar.periphery.bias_threshold`);
- a gain error drawn once (two_phase analog gain only), and the full scale of every ADC on the
  layer's readout path (:func:`adc_full_scales`).

:func:`effective_parameters` inverts the map: the β, b̃ and direction the chip realises at any
read time. Both take the column coefficients from :func:`crossbar.moments.column_moments`.
Units: µS, V, µA.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from . import periphery
from .moments import column_moments, layer_moments, stack_coefficients
from .tile import TileArrays

if TYPE_CHECKING:  # the layer imports this module
    from .layer import HardwareLayer

Grid = list[list[TileArrays]]
Coef = Callable[[list[TileArrays], np.ndarray], tuple[np.ndarray, np.ndarray]]


@dataclass(frozen=True)
class Calibration:
    """The periphery settings of a layer, (fan_out,) float64 arrays.

    gain_set: a_i as the mapper set it (after quantisation). gain: a_i as realised (with the
    gain error). threshold_ua: comparator threshold θ_i (µA). adc_full_scale_ua: the full scale
    (µA) of every ADC of the readout path, by phase (``"u"``, ``"s"``, ``"d"``): (fan_out,)
    for one ADC per column, (row_tiles, fan_out) for one per tile. gain_grid: the layer's
    fitted gain grid (:func:`crossbar.periphery.fitted_gain_grid`), None for a fixed or
    continuous gain and for output / sign layers.
    """

    gain_set: np.ndarray
    gain: np.ndarray
    threshold_ua: np.ndarray
    adc_full_scale_ua: dict[str, np.ndarray]
    gain_grid: periphery.GainGrid | None = None


@dataclass(frozen=True)
class EffectiveParameters:
    """What the chip realises per neuron, (fan_out,) arrays (binary layers).

    beta: effective gain, E[u|z] projected on ŵ over √(2 Var u) (trained β on an ideal chip).
    bias_tilde: effective normalised bias (comparator offset included), as b̃ of docs/model.md §1.
    alignment: cosine between the realised mean-weight vector μ_i and the trained w_i
        (1 = the direction is preserved; programming noise, faults, p spread lower it).
    gain: the realised a_i.
    """

    beta: np.ndarray
    bias_tilde: np.ndarray
    alignment: np.ndarray
    gain: np.ndarray


def _unit_columns(weight: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(‖w_i‖, ŵ_i): the trained columns' norms and directions (zero columns stay zero)."""
    norm = np.linalg.norm(weight, axis=0)
    return norm, weight / np.where(norm > 0, norm, 1.0)


def calibrate(layer: HardwareLayer, rng: np.random.Generator) -> Calibration:
    """The periphery of ``layer`` calibrated at ``layer.t_cal_s``; ``rng`` draws the gain
    errors (one standard normal per neuron, always drawn so that the stream does not depend on
    the path)."""
    per = layer.chip.periphery
    v = layer.chip.v_read_v
    arrays = layer.read_arrays(layer.t_cal_s)
    # The stochastic read alone (a = 0) and the deterministic read alone, per volt: the gain
    # solver weighs the two phases against each other.
    m_s, q_s = layer_moments(arrays, 0.0, 1.0)
    m_d = stack_coefficients(arrays, "m_d")
    var_s = v**2 * q_s.sum(axis=0)
    var_d = v**2 * stack_coefficients(arrays, "v_d").sum(axis=0)
    norm, w_hat = _unit_columns(layer.weight)
    fallback = -layer.bias * layer.kappa_us * v

    grid = None
    if layer.kind == "output":
        a_set = np.zeros(layer.fan_out)
        theta = np.zeros(layer.fan_out)
    elif not layer.stochastic:  # sign layer: polarity ±1 (swap the comparator's inputs)
        a_set = np.where(layer.beta < 0, -1.0, 1.0)
        with np.errstate(divide="ignore"):
            theta = np.where(
                layer.beta != 0,
                fallback / np.abs(np.where(layer.beta != 0, layer.beta, 1.0)),
                np.where(layer.bias >= 0, -np.inf, np.inf),
            )
    else:
        if per.beta_mode == "none":
            a_set = np.zeros(layer.fan_out)
        else:
            big_a = v * np.sum(m_s * w_hat, axis=0)
            big_b = v * np.sum(m_d * w_hat, axis=0)
            a = periphery.solve_gain(big_a, big_b, var_s, var_d, layer.beta)
            if per.gain_grid == "fitted":
                # Offset at the cancellation point: a_i of β = 0 is −A_i/B_i (the stochastic
                # read's mean relative to the deterministic one), its median over the layer.
                usable = big_b > 0
                offset = float(np.median(big_a[usable] / big_b[usable])) if usable.any() else 0.0
                a_set, grid = periphery.quantise_gain_fitted(
                    a, per.gain_bits, per.gain_range, offset
                )
            else:
                a_set = periphery.quantise_gain(a, per.gain_bits, per.gain_range)
        theta = periphery.bias_threshold(
            layer.bias, layer.noise_scale, norm, var_s + a_set**2 * var_d, fallback
        )
    gain_error = rng.standard_normal(layer.fan_out) * per.gain_error_sigma
    analog_gain = layer.stochastic and per.beta_mode == "two_phase"
    gain = a_set * (1.0 + gain_error) if analog_gain else a_set.copy()
    return Calibration(
        gain_set=a_set,
        gain=gain,
        threshold_ua=theta,
        adc_full_scale_ua=adc_full_scales(layer, arrays, a_set),
        gain_grid=grid,
    )


def adc_full_scales(
    layer: HardwareLayer, arrays: Grid, a: np.ndarray, rule: str | None = None
) -> dict[str, np.ndarray]:
    """Full scales (µA) for every ADC of ``layer.path``, from the tile arrays at calibration and
    the gains ``a`` (fan_out,) the mapper set (fixed after calibration), by ``rule`` (default
    ``periphery.adc_range``): ``"fixed"``, or ``"rms"`` (which also stands in for
    ``"calibrated"`` until :meth:`crossbar.HardwareLayer.calibrate_adcs` has data)."""
    per = layer.chip.periphery
    v = layer.chip.v_read_v
    row_slices, col_slices = layer.row_slices, layer.col_slices
    rule = per.adc_range if rule is None else rule

    def full_scale(m: np.ndarray, var: np.ndarray) -> np.ndarray:
        if rule == "fixed":
            return np.full(m.shape[1], per.adc_full_scale_ua)
        return periphery.rms_full_scale(m, var, v, per.adc_range_sigmas)

    def per_tile(coef: Coef) -> np.ndarray:  # one ADC per row-tile and column
        out = np.empty((len(row_slices), layer.fan_out))
        for t, row in enumerate(arrays):
            for c, ta in enumerate(row):
                out[t, col_slices[c]] = full_scale(*coef([ta], a[col_slices[c]]))
        return out

    def whole(coef: Coef) -> np.ndarray:  # one ADC per column, after the analog tile sum
        out = np.empty(layer.fan_out)
        for c, cs in enumerate(col_slices):
            out[cs] = full_scale(*coef([row[c] for row in arrays], a[cs]))
        return out

    # Per volt (the full scale applies V): u = I_s + a I_d, the stochastic read alone (a = 0),
    # the deterministic read alone.
    def u_coef(col: list[TileArrays], ac: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return column_moments(col, ac, 1.0)

    def s_coef(col: list[TileArrays], ac: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return column_moments(col, 0.0, 1.0)

    def d_coef(col: list[TileArrays], ac: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return np.vstack([ta.m_d for ta in col]), np.vstack([ta.v_d for ta in col])

    path = layer.path
    if path == "tile_adc":
        return {"u": per_tile(u_coef)}
    if path == "digital_sum":
        return {"s": whole(s_coef), "d": whole(d_coef)}
    if path == "digital_tile":
        return {"s": per_tile(s_coef), "d": per_tile(d_coef)}
    if path == "output_analog":
        return {"d": whole(d_coef)}
    if path == "output_tile":
        return {"d": per_tile(d_coef)}
    return {}


def effective_parameters(
    arrays: Grid,
    *,
    weight: np.ndarray,
    gain: np.ndarray,
    threshold_ua: np.ndarray,
    offsets_ua: np.ndarray,
    noise_sigma_ua: float,
    v_read_v: float,
) -> EffectiveParameters:
    """The β, b̃ and direction realised by tile arrays ``arrays`` (see
    :class:`EffectiveParameters`).

    With μ_i = V (m^s_i + a_i m^d_i) (the mean weight vector, µA per unit input) and
    Var_i = V² Σ_j (v_el + v_rd + a_i² v_d)_ji + σ_n²: β_i = μ_i·ŵ_i/√(2 Var_i),
    b̃_i = (offset_i − θ_i)/√(2 Var_i), alignment = μ̂_i·ŵ_i. ``offsets_ua`` and
    ``noise_sigma_ua`` are the comparator's (zeros and 0 when the decision is digital).
    """
    v = v_read_v
    m, q = layer_moments(arrays, gain, 1.0)  # per volt: V and V² applied after the sums
    mu = v * m
    var = v**2 * q.sum(axis=0) + noise_sigma_ua**2
    _, w_hat = _unit_columns(weight)
    proj = np.sum(mu * w_hat, axis=0)
    mu_norm = np.linalg.norm(mu, axis=0)
    scale = np.sqrt(2.0 * var)
    with np.errstate(divide="ignore", invalid="ignore"):
        # A noiseless neuron (sign layers, p = 1) has an infinite gain; 0/0 (an all-zero
        # column) realises no gain and no bias: report 0 rather than nan.
        beta = np.where(scale > 0, proj / scale, np.sign(proj) * np.inf)
        bias = offsets_ua - threshold_ua
        bias = np.where(scale > 0, bias / scale, np.sign(bias) * np.inf)
        align = np.where(mu_norm > 0, proj / mu_norm, 0.0)
    beta = np.nan_to_num(beta, nan=0.0, posinf=np.inf, neginf=-np.inf)
    bias = np.nan_to_num(bias, nan=0.0, posinf=np.inf, neginf=-np.inf)
    return EffectiveParameters(beta=beta, bias_tilde=bias, alignment=align, gain=gain.copy())
