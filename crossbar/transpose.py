"""Transposed reads: columns driven, rows sensed (the backward pass of in-situ learning).

A crossbar that stores W as differential pairs G⁺ − G⁻ (rows = inputs j, columns = neurons i)
computes zᵀW in the forward read (rows driven by ±V, column currents summed). Driving the
*columns* with voltages V·δ_i and sensing the *row* currents (virtual ground on the rows, the
G⁻ row's current subtracted from the G⁺ row's) gives the transposed product on the same arrays::

    e_j = V Σ_i (G⁺_ji − G⁻_ji) δ_i  (+ read noise: each cell's conductance read once)

The read noise of a cell is Gaussian with the conductance model's per-read std σ_ji (µS), so
Var e_j = V² Σ_i (σ⁺_ji² + σ⁻_ji²) δ_i² per input (independent per read). Units: µS, V, µA.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from devices.fields import check_array, check_real

from .moments import stack_coefficients


def transposed_read(
    g_plus_us: np.ndarray,
    g_minus_us: np.ndarray,
    delta: np.ndarray,
    *,
    v_read_v: float,
    read_sigma_plus_us: np.ndarray | None = None,
    read_sigma_minus_us: np.ndarray | None = None,
    rng: np.random.Generator | None = None,
) -> np.ndarray:
    """Row currents (µA), float64 (batch, rows), for column drives ``delta`` (batch, cols)
    (dimensionless, applied as V·δ_i).

    ``read_sigma_*_us``: per-cell read-noise std (µS, (rows, cols)); when given, ``rng``
    draws one Gaussian per row current (the sum of independent cell noises is Gaussian).
    """
    gp = check_array("g_plus_us", g_plus_us, ndim=2)
    gm = check_array("g_minus_us", g_minus_us, shape=gp.shape)
    d = check_array("delta", delta, ndim=2)
    if d.shape[1] != gp.shape[1]:
        raise ValueError(f"delta has shape {d.shape}; expected (batch, {gp.shape[1]})")
    v_read_v = check_real("v_read_v", v_read_v, gt=0.0, unit="V")
    e = v_read_v * (d @ (gp - gm).T)
    if read_sigma_plus_us is None and read_sigma_minus_us is None:
        return e
    if not isinstance(rng, np.random.Generator):
        raise TypeError(f"rng={rng!r} must be a numpy.random.Generator when read noise is given")
    var = np.zeros_like(gp)
    for s in (read_sigma_plus_us, read_sigma_minus_us):
        if s is not None:
            var = var + np.square(np.broadcast_to(np.asarray(s, dtype=np.float64), gp.shape))
    std = v_read_v * np.sqrt(np.square(d) @ var.T)
    return e + std * rng.standard_normal(e.shape)


def layer_transposed_read(
    layer: Any, delta: np.ndarray, *, t_s: float = 0.0, rng: np.random.Generator | None = None
) -> np.ndarray:
    """Transposed read of a programmed :class:`~crossbar.layer.HardwareLayer`'s deterministic
    phase at ``t_s``: (batch, fan_in) µA for column drives ``delta`` (batch, fan_out).

    Uses the same per-tile mean coefficients (drift, IR attenuation of the forward read) and
    read-noise variances as the forward deterministic read; with ``rng=None`` noise-free.
    On an ideal chip this is V·δ (κ∘W)ᵀ, κ_i the column scale (µS per weight unit).
    """
    d = np.asarray(delta, dtype=np.float64)
    if d.ndim != 2 or d.shape[1] != layer.fan_out:
        raise ValueError(f"delta has shape {d.shape}; expected (batch, {layer.fan_out})")
    arrays = layer.read_arrays(float(t_s))
    m_d = stack_coefficients(arrays, "m_d")  # (fan_in, fan_out): E[I_d]/V per unit input
    v_d = stack_coefficients(arrays, "v_d")  # read variance per weight, µS²
    v = layer.chip.v_read_v
    e = v * (d @ m_d.T)
    if rng is None:
        return e
    return e + v * np.sqrt(np.square(d) @ v_d.T) * rng.standard_normal(e.shape)


def tiled_transposed_read(
    layer: Any,
    delta: np.ndarray,
    *,
    t_s: float = 0.0,
    rng: np.random.Generator | None = None,
    adc_bits: int | None = None,
    adc_sigmas: float | None = None,
) -> np.ndarray:
    """Transposed read through a programmed layer's tiles: (batch, fan_in) float64, µA.

    Every tile (t, c) is driven on its columns with V·δ (``delta`` (batch, fan_out)) and its
    rows are sensed: e = V δ_c m_dᵀ + read noise (the deterministic phase's coefficients at
    ``t_s``: drift, the wire attenuation of the forward read — the transposed drive's own IR
    pattern is not solved —, variance V² δ² v_dᵀ, one Gaussian per sensed row and read from
    ``rng``; None = noise-free). Each tile's sensed rows pass a converter of ``adc_bits``
    (default the chip's ``periphery.adc_bits``; 0 = ideal) whose full scale is ``adc_sigmas``
    (default ``periphery.adc_range_sigmas``) times the rms over the batch of the row's
    noise-free signal (an auto-ranging gradient converter); the column-tiles' row values are
    summed digitally. On an ideal chip this is V δ (stacked m_d)ᵀ.
    """
    from .periphery import adc_convert

    d = np.asarray(delta, dtype=np.float64)
    if d.ndim != 2 or d.shape[1] != layer.fan_out:
        raise ValueError(f"delta has shape {d.shape}; expected (batch, {layer.fan_out})")
    per = layer.chip.periphery
    bits = per.adc_bits if adc_bits is None else int(adc_bits)
    sigmas = per.adc_range_sigmas if adc_sigmas is None else float(adc_sigmas)
    v = layer.chip.v_read_v
    arrays = layer.read_arrays(float(t_s))
    out = np.zeros((d.shape[0], layer.fan_in))
    for t, rs in enumerate(layer.row_slices):
        for c, cs in enumerate(layer.col_slices):
            ta = arrays[t][c]
            dc = d[:, cs]
            mean = v * (dc @ ta.m_d.T)
            e = mean
            if rng is not None:
                std = v * np.sqrt(np.square(dc) @ ta.v_d.T)
                e = mean + std * rng.standard_normal(mean.shape)
            if bits:
                fs = sigmas * np.sqrt(np.mean(np.square(mean), axis=0))
                fs = np.where(fs > 0, fs, 1.0)
                e = np.asarray(adc_convert(e, fs, bits)[0], dtype=np.float64)
            out[:, rs] += e
    return out
