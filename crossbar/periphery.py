"""The periphery's arithmetic: the β gain a_i, its quantisation, the bias threshold, the ADCs.

Notation (per neuron i, currents in µA; docs/crossbar.md has the derivation). For ±1 inputs the
pre-comparator value u_i = I_s + a_i·I_d has

    E[u_i | z] = Σ_j z_j μ_ij,       μ_ij = V (m^s_ij + a_i m^d_ij)
    Var[u_i]   = V_s + a_i² R_d       (independent of z when z_j² = 1)

where m^s is the stochastic phase's mean conductance per weight (e.g. p⁺G⁺ − p⁻G⁻), m^d the
deterministic phase's (G⁺ − G⁻), V_s the stochastic phase's variance (element + read noise) and
R_d the deterministic read's noise variance. Projected on the trained direction ŵ_i:

    A_i = V Σ_j m^s_ij ŵ_ij,   B_i = V Σ_j m^d_ij ŵ_ij,   E[u_i | z] ≈ (A_i + a_i B_i) ŵ_i·z

so the realised gain is β_i = (A_i + a_i B_i)/√(2 (V_s + a_i² R_d)). :func:`solve_gain` inverts
this for a_i. With uniform p, g_min = 0 and no read noise it is the a = β√(2p(1−p)) − p of
docs/model.md §1.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any

import numpy as np


def _solve_one(A: float, B: float, var_s: float, var_d: float, beta: float) -> float:
    if B <= 0.0:  # a column with no usable deterministic signal: the gain cannot act
        return 0.0
    if beta == 0.0:
        return -A / B
    if var_d <= 0.0:  # linear: A + aB = β √(2 V_s)
        return (beta * math.sqrt(2.0 * var_s) - A) / B
    # (A + aB)² = 2β²(V_s + a² R_d), keeping roots with sign(A + aB) = sign(β).
    q2 = B * B - 2.0 * beta * beta * var_d
    q1 = 2.0 * A * B
    q0 = A * A - 2.0 * beta * beta * var_s
    if abs(q2) <= 1e-12 * B * B:
        roots = [-q0 / q1] if q1 != 0.0 else []
    else:
        disc = q1 * q1 - 4.0 * q2 * q0
        if disc < 0.0:
            roots = []
        else:
            sq = math.sqrt(disc)
            roots = [(-q1 - sq) / (2.0 * q2), (-q1 + sq) / (2.0 * q2)]
    valid = [a for a in roots if (A + a * B) * beta > 0.0]
    if valid:
        return min(valid, key=abs)  # the smaller gain amplifies the deterministic read's noise less
    # |β| beyond reach: the ratio (A + aB)/√(2(V_s + a²R_d)) peaks at a* = B V_s/(A R_d) (A > 0);
    # otherwise it only approaches its bound as a → ±∞ (clipped to the gain range later).
    if beta > 0.0 and A > 0.0:
        return B * var_s / (A * var_d)
    return math.copysign(math.inf, beta)


def solve_gain(
    A: np.ndarray, B: np.ndarray, var_s: np.ndarray, var_d: np.ndarray, beta: np.ndarray
) -> np.ndarray:
    """The gain a_i with (A_i + a_i B_i)/√(2 (V_s,i + a_i² R_d,i)) = β_i (see module docstring).

    Args (all (n,)): A, B in µA; var_s (V_s), var_d (R_d) in µA²; beta dimensionless.
    Where β_i is out of reach (|β_i| >= B_i/√(2 R_d,i) when the deterministic read is noisy) the
    a_i of the largest reachable |β| is returned (possibly ±inf; :func:`quantise_gain` clips).
    """
    arrays = np.broadcast_arrays(
        *(np.asarray(x, dtype=np.float64) for x in (A, B, var_s, var_d, beta))
    )
    return np.array(
        [_solve_one(*map(float, v)) for v in zip(*(x.ravel() for x in arrays), strict=True)]
    ).reshape(arrays[0].shape)


@dataclass(frozen=True)
class GainGrid:
    """A layer's fitted gain grid (:func:`fitted_gain_grid`): a_i = c_i − offset with c_i on
    ``levels`` logarithmic codes lo·ratio^k (k = 0 … levels − 1) of magnitude, signed when
    ``signed``. ``ratio`` = 1 when there is one level."""

    offset: float
    lo: float
    ratio: float
    levels: int
    signed: bool

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def fitted_gain_grid(a: np.ndarray, bits: int, gain_range: float, offset: float) -> GainGrid:
    """The gain grid fitted at programming to the a_i (n,) a layer needs on its chip.

    The circuit: u_i = I_s − offset·I_d + c_i·I_d, i.e. a_i = c_i − offset, with one offset per
    layer (a trimmed subtraction of the deterministic read, continuous) and a per-neuron gain
    c_i on a logarithmic (dB-linear) grid of 2^bits codes spanning [min |c_i|, max |c_i|] of
    the layer — one sign bit and 2^(bits−1) magnitudes when the c_i have both signs. With the
    offset at the cancellation point (a_i of β = 0, e.g. −p or −1), c_i ∝ β_i, so every neuron's
    β is set to the same relative precision, (max|c|/min|c|)^(1/(levels−1)) per code, however
    closely the a_i cluster (on a read-noise Gaussian chip they sit just above −1, where a
    linear grid over a would give the small-β neurons no resolution). a_i beyond ±gain_range
    (including ±inf: an unreachable β) are clipped to it first.
    """
    c = np.clip(np.asarray(a, dtype=np.float64), -gain_range, gain_range) + offset
    mag = np.abs(c[np.isfinite(c)])
    signed = bool(np.any(c < 0) and np.any(c > 0))
    levels = 2 ** (bits - 1) if signed else 2**bits
    nonzero = mag[mag > 0]
    if nonzero.size == 0:
        return GainGrid(float(offset), 0.0, 1.0, 1, signed)
    lo, hi = float(nonzero.min()), float(nonzero.max())
    ratio = (hi / lo) ** (1.0 / (levels - 1)) if levels > 1 and hi > lo else 1.0
    return GainGrid(float(offset), lo, float(ratio), levels, signed)


def quantise_gain_fitted(
    a: np.ndarray, bits: int, gain_range: float, offset: float = 0.0
) -> tuple[np.ndarray, GainGrid | None]:
    """a_i on the layer's fitted grid (:func:`fitted_gain_grid`; nearest code in log
    magnitude, clipped to ±gain_range) and the grid. ``bits = 0``: continuous, only clipped to
    [−gain_range, gain_range] (grid None)."""
    a = np.asarray(a, dtype=np.float64)
    if bits == 0:
        return np.clip(a, -gain_range, gain_range), None
    grid = fitted_gain_grid(a, bits, gain_range, offset)
    c = np.clip(a, -gain_range, gain_range) + offset
    mag = np.abs(c)
    if grid.ratio == 1.0:
        q = np.full(c.shape, grid.lo)
    else:
        with np.errstate(divide="ignore"):
            k = np.rint(np.log(mag / grid.lo) / np.log(grid.ratio))
        k = np.clip(np.nan_to_num(k, neginf=0.0), 0, grid.levels - 1)
        q = grid.lo * grid.ratio**k
    q = np.where(c < 0, -q, q)
    return np.clip(q - offset, -gain_range, gain_range), grid


def quantise_gain(a: np.ndarray, bits: int, gain_range: float) -> np.ndarray:
    """a_i on the gain's grid: two's complement, ``bits`` bits over [−gain_range, gain_range).

    step = gain_range / 2^(bits−1); values beyond the range saturate. ``bits = 0``: continuous,
    only clipped to [−gain_range, gain_range].
    """
    a = np.asarray(a, dtype=np.float64)
    if bits == 0:
        return np.clip(a, -gain_range, gain_range)
    half = 2 ** (bits - 1)
    step = gain_range / half
    k = np.clip(np.rint(np.clip(a, -2 * gain_range, 2 * gain_range) / step), -half, half - 1)
    return k * step


def bias_threshold(
    bias: np.ndarray,
    noise_scale: float,
    weight_norm: np.ndarray,
    var_u: np.ndarray,
    fallback_ua: np.ndarray,
) -> np.ndarray:
    """Comparator threshold θ_i (µA) realising the trained normalised bias b̃_i.

    The NSM fires when E[u]/√(2Var u) + b̃ >= noise, with b̃_i = b_i/(c ‖w_i‖) (c = √(2 Var ξ)
    as trained), so θ_i = −b̃_i √(2 Var[u_i]) = −b_i √(Var[u_i]) √2/(c ‖w_i‖): on the ideal chip
    (g_min = 0, hardware p = trained p) this is −b_i κ_i V. Columns with ‖w_i‖ = 0 use
    ``fallback_ua`` (= −b_i κ_i V).
    """
    norm = np.asarray(weight_norm, dtype=np.float64)
    ok = norm > 0
    safe = np.where(ok, norm, 1.0)
    theta = (
        -np.asarray(bias, dtype=np.float64)
        * np.sqrt(2.0 * np.asarray(var_u))
        / (noise_scale * safe)
    )
    return np.where(ok, theta, fallback_ua)


def rms_full_scale(m: np.ndarray, v: np.ndarray, v_read_v: float, sigmas: float) -> np.ndarray:
    """ADC full scale (µA) = sigmas x RMS of V Σ_j z_j c_j over uniformly random ±1 inputs.

    m (rows, cols): per-cell mean of the converted contribution (µS); v: its variance (µS²).
    With independent zero-mean z_j the cross terms vanish: E[q²] = V² Σ_j (m_j² + v_j).
    """
    rms = v_read_v * np.sqrt(np.sum(np.square(m) + v, axis=0))
    # An all-zero column still needs a positive full scale (its signal is exactly 0 anyway).
    return np.maximum(sigmas * rms, np.finfo(np.float32).tiny)


def adc_convert(x: np.ndarray, full_scale: np.ndarray, bits: int) -> tuple[np.ndarray, int]:
    """Uniform mid-tread ADC: codes k ∈ [−2^(b−1), 2^(b−1) − 1], value k·FS/2^(b−1).

    x (..., n) µA, full_scale (n,) µA. Returns (converted values float32, number of conversions
    that saturated, i.e. whose code was clipped). ``bits = 0``: an ideal converter (identity).
    """
    if bits == 0:
        return np.asarray(x, dtype=np.float32), 0
    half = 2 ** (bits - 1)
    step = (np.asarray(full_scale, dtype=np.float64) / half).astype(np.float32)
    k = np.rint(x / step)
    saturated = int(np.count_nonzero((k < -half) | (k > half - 1)))
    np.clip(k, -half, half - 1, out=k)
    return (k * step).astype(np.float32, copy=False), saturated
