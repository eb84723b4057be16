"""The NSM unit on the numpy side: normalised pre-activation and firing probability.

For a stochastic binary neuron i with inputs z (docs/model.md §1)::

    m_i = Σ_j z_j w_ji                 n_i = √(Σ_j z_j² w_ji²)          c = √(2 Var ξ)
    s_i = β_i m_i/n_i + b_i/(c n_i)    P(z_i = +1 | z) = ½ [1 + erf(s_i)]

s = E[u]/√(2 Var u) is the *normalised pre-activation* (the mean over √2 times the standard
deviation of u = Σ_j ξ_j z_j w_ji + ..., so that erf, not Φ, gives P). Where n_i = 0 no input
reaches the neuron and u_i = b_i is deterministic: s_i = ±:data:`S_UNREACHED` by the sign of
b_i (sign(0) = +1).

This is the one numpy implementation, used by the software reference
(:mod:`mapping.reference`) and by :meth:`crossbar.HardwareLayer.firing_probability`. The torch
version lives in :mod:`nsm.functional` (torch-only rule); equality tests tie the two.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from scipy.special import erf

__all__ = ["S_UNREACHED", "firing_probability", "normalised_preactivation"]

#: |s| used where no input reaches a neuron: erf(10) = 1 in double precision, so P is exactly
#: 0 or 1 (the same constant as nsm.functional).
S_UNREACHED = 10.0


def normalised_preactivation(
    m: Any, n: Any, beta: Any, bias: Any, noise_scale: float
) -> np.ndarray:
    """s = β m/n + b/(c n), and ±S_UNREACHED (by the sign of b) where n = 0.

    Args (broadcast together, float64; typically m, n (batch, ..., fan_out) and beta, bias
    (fan_out,) or broadcastable):
        m: Σ_j z_j w_ji, the weighted input sum (weight units).
        n: √(Σ_j z_j² w_ji²) >= 0, the input-dependent weight norm (weight units).
        beta: the trained gains β_i (dimensionless).
        bias: the raw biases b_i (weight units, as in u = w·z + b).
        noise_scale: c = √(2 Var ξ) of the trained noise (> 0; √(2p(1−p)) Bernoulli, √2 σ
            Gaussian).

    Returns s, float64, of the broadcast shape (dimensionless).
    """
    m = np.asarray(m, dtype=np.float64)
    n = np.asarray(n, dtype=np.float64)
    reached = n > 0
    n_safe = np.where(reached, n, 1.0)
    s = beta * m / n_safe + bias / (noise_scale * n_safe)
    if reached.all():
        return s
    unreached = np.where(np.broadcast_to(bias, s.shape) >= 0, S_UNREACHED, -S_UNREACHED)
    return np.where(reached, s, unreached)


def firing_probability(s: Any) -> np.ndarray:
    """P(z_i = +1 | z) = ½ [1 + erf(s)] of normalised pre-activations ``s`` (any shape,
    float64 in [0, 1])."""
    return 0.5 * (1.0 + erf(s))
