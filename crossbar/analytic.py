"""Analytic views of a programmed layer: probabilities without sampling.

- :func:`ideal_probability`: the ideal NSM unit's P(z_i = +1 | z) from the *trained* (weight,
  β, bias, p or σ) (:mod:`crossbar.unit`; docs/model.md), what the chip should realise;
- :func:`hardware_probability`: the P(z_i = +1 | z) the *programmed* chip realises at a read
  time, Φ((E[u_i|z] − θ_i)/√Var[u_i|z]) from the exact mean and variance of the value compared
  with the threshold (:func:`crossbar.moments.column_moments` per column-tile, plus the
  comparator's offset and noise on the analog path). ADC quantisation and clipping are not
  Gaussian and are left out (the sampler includes them).

Shapes: ``z`` (batch, fan_in) ±1 states (0 = undriven row); results float64 (batch, fan_out).
Units: µA and µA² for the moments, time s.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
from scipy.special import ndtr

from devices.conductance import check_time
from devices.fields import check_real

from . import unit
from .readout import check_states

if TYPE_CHECKING:  # the layer imports this module
    from .layer import HardwareLayer

__all__ = ["comparator_moments", "hardware_probability", "ideal_probability"]


def _binary_only(layer: HardwareLayer, what: str) -> None:
    if layer.kind != "binary":
        raise ValueError(f"{what} is defined for kind='binary' layers only")


def ideal_probability(layer: HardwareLayer, z: Any) -> np.ndarray:
    """½[1 + erf(β_i m_i/n_i + b_i/(c n_i))], m = zᵀW, n_i = √Σ_j z_j² w_ji², from the trained
    parameters; sign layers: 1[β_i m_i + b_i >= 0]."""
    _binary_only(layer, "firing_probability")
    zf = check_states(z, layer.fan_in).astype(np.float64)
    m = zf @ layer.weight
    if not layer.stochastic:
        return (layer.beta * m + layer.bias >= 0).astype(np.float64)
    n = np.sqrt(np.square(zf) @ np.square(layer.weight))
    s = unit.normalised_preactivation(m, n, layer.beta, layer.bias, layer.noise_scale)
    return unit.firing_probability(s)


def comparator_moments(
    layer: HardwareLayer, z8: np.ndarray, t_s: float, read_gain: float = 1.0
) -> tuple[np.ndarray, np.ndarray]:
    """E and Var (µA, µA²) of the value compared with θ, without ADCs, (batch, fan_out), for
    checked int8 states ``z8`` and column signals read through the gain ``read_gain``."""
    zf = z8.astype(np.float64)
    z2 = np.square(zf)
    mean = np.empty((z8.shape[0], layer.fan_out))
    var = np.empty_like(mean)
    for c, cs in enumerate(layer.col_slices):
        m, q = layer.moment_coefficients(t_s, c, read_gain)
        mean[:, cs] = zf @ m
        var[:, cs] = z2 @ q
    if layer.analog_comparator:
        mean += layer.offsets_ua
        var += layer.neuron.config.noise_sigma_ua**2
    return mean, var


def hardware_probability(
    layer: HardwareLayer, z: Any, t_s: float = 0.0, read_gain: float = 1.0
) -> np.ndarray:
    """Φ((E[u_i|z] + offset_i − θ_i)/√(Var[u_i|z] + σ_n²)) of the programmed layer at ``t_s``
    (a zero variance gives the step 1[E >= θ])."""
    _binary_only(layer, "hardware_probability")
    gain = check_real("read_gain", read_gain, gt=0.0)
    mean, var = comparator_moments(layer, check_states(z, layer.fan_in), check_time(t_s), gain)
    x = mean - layer.threshold_ua
    with np.errstate(divide="ignore", invalid="ignore"):
        p = ndtr(x / np.sqrt(var))
    return np.where(var > 0, p, (x >= 0).astype(np.float64))
