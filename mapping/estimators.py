"""Estimators of the Gaussian factor dP/dm of an NSM neuron, as hardware can obtain it.

A neuron fires when its noisy pre-activation u = m + σε (ε ~ N(0, 1)) exceeds the threshold
(0 here: m is the noise-free margin E[u] − θ, µA). P = Φ(m/σ), so the local factor of the
mean-field gradient (docs/model.md §2, ∂P/∂s = e^{-s²}/√π with s = m/(√2σ)) is the density of u at
the threshold::

    f = dP/dm = φ(m/σ)/σ

Estimators (each returns an estimate of f per neuron and example, 1/µA):

- ``exact``: φ(m/σ)/σ computed in the periphery from the noise-free mean (deterministic read)
  and the column's σ (a column constant for ±1 inputs).
- ``window``: a window comparator on the *noisy* pre-activation of the read that made the
  decision, 1{|u| < Δσ}/(2Δσ) (Δ in units of σ). Mean [Φ(Δ − m/σ) − Φ(−Δ − m/σ)]/(2Δσ) → f
  as Δ → 0 (bias O(Δ²)); variance ≈ f/(2Δσ) per read, so the trade-off in Δ is bias vs noise.
- ``two_read``: finite difference of two more comparator decisions with the threshold shifted
  by ∓Δσ, (1{u₁ > −Δσ} − 1{u₂ > Δσ})/(2Δσ): the same mean as ``window`` from two plain
  comparators (no window circuit), at the cost of two extra reads.
- ``score``: the Gaussian likelihood-ratio (score-function) estimator on the decision's read,
  (1{u > 0} − ½)(u − m)/σ²: E[1{u>0}(u − m)/σ²] = dP/dm exactly, and the baseline ½ (E[ε] = 0)
  removes most of the variance. Unbiased for every σ, no Δ; needs the noise-free mean m, which
  the two-phase periphery already reads (deterministic phase).

``reads`` > 1 averages independent reads (only the first is the decision's own read).
"""

from __future__ import annotations

import numpy as np
from scipy.special import ndtr

from devices.errors import ArgumentTypeError
from devices.fields import check_choice, check_int, check_real

ESTIMATORS = ("exact", "window", "two_read", "score")
_INV_SQRT_2PI = 1.0 / np.sqrt(2.0 * np.pi)


def exact_density(margin: np.ndarray, sigma: np.ndarray) -> np.ndarray:
    """φ(m/σ)/σ, float64 (broadcast of the inputs)."""
    x = np.asarray(margin, dtype=np.float64) / sigma
    return _INV_SQRT_2PI * np.exp(-0.5 * x * x) / sigma


def window_mean(margin: np.ndarray, sigma: np.ndarray, delta: float) -> np.ndarray:
    """The expectation of the ``window`` (and ``two_read``) estimator for half-width Δσ."""
    x = np.asarray(margin, dtype=np.float64) / sigma
    return (ndtr(delta - x) - ndtr(-delta - x)) / (2.0 * delta * sigma)


def estimate_density(
    estimator: str,
    margin: np.ndarray,
    sigma: np.ndarray,
    *,
    u: np.ndarray | None = None,
    delta: float = 0.5,
    reads: int = 1,
    rng: np.random.Generator | None = None,
) -> np.ndarray:
    """An estimate of dP/dm (1/µA), float64 of the shape of ``margin`` (batch, neurons).

    Args:
        estimator: one of :data:`ESTIMATORS`.
        margin: noise-free margins m = E[u] − θ, µA.
        sigma: std of u, µA (broadcastable to ``margin``; > 0).
        u: the decision's noisy margin u − θ (same shape); drawn from ``rng`` if None.
        delta: half-width Δ in units of σ (``window``, ``two_read``), > 0.
        reads: reads averaged (>= 1).
        rng: randomness of extra reads (required unless ``exact``).
    """
    check_choice("estimator", estimator, ESTIMATORS)
    m = np.asarray(margin, dtype=np.float64)
    s = np.broadcast_to(np.asarray(sigma, dtype=np.float64), m.shape)
    if np.any(~(s > 0)):
        raise ValueError("sigma must be > 0 (a noiseless neuron has no density at threshold)")
    if estimator == "exact":
        return exact_density(m, s)
    delta = check_real("delta", delta, gt=0.0, unit="sigma")
    reads = check_int("reads", reads, ge=1)
    if not isinstance(rng, np.random.Generator):
        raise ArgumentTypeError("rng", rng, f"a numpy.random.Generator (estimator {estimator!r})")
    total = np.zeros(m.shape)
    for k in range(reads):
        uk = u if (k == 0 and u is not None) else m + s * rng.standard_normal(m.shape)
        if estimator == "window":
            total += (np.abs(uk) < delta * s) / (2.0 * delta * s)
        elif estimator == "two_read":
            u2 = m + s * rng.standard_normal(m.shape)
            total += ((uk > -delta * s).astype(np.float64) - (u2 > delta * s)) / (2.0 * delta * s)
        else:  # score
            total += ((uk > 0) - 0.5) * (uk - m) / (s * s)
    return total / reads
