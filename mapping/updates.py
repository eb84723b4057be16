"""Weight updates as programming pulses on differential pairs (in-situ learning).

The desired update of layer weights w = G⁺ − G⁻ (µS) is ΔW ∝ −Σ_b x_b d_bᵀ, with x_b the
layer's ±1 inputs (rows) and d_b the per-example column errors (the sampled dL/dm times the
column's read gain). Its *scale* is set by the update management of Gokmen & Vlasov
(Frontiers in Neuroscience 10, 333 (2016)), from the column errors alone::

    N = max_i Σ_b |d_bi|          (a bound on max_ij |Σ_b x_bj d_bi| for ±1 inputs)
    E[pulses_ij] = −lr_pulses · Σ_b x_bj d_bi / N      (at most lr_pulses per device)

(``norm="rms"``: N = rms_i Σ_b |d_bi| instead, so a typical column, not the largest, sets the
scale; the largest columns then receive several times lr_pulses.)

Two schemes produce pulse counts with that mean:

- ``stochastic`` (stochastic coincidence, Gokmen & Vlasov 2016): for every example, BL pulse
  slots; a row fires in a slot with probability |x_j| (= 1 for binary inputs), a column with
  q_bi = |d_bi|/D, D = BL·N/lr_pulses; a coincidence is one pulse with sign −sign(x_bj d_bi).
  Pulses of both signs reach a device within one mini-batch (they do not cancel physically).
- ``deterministic``: the periphery computes the net count −lr_pulses Σ_b x_bj d_bi / N and
  rounds it stochastically to an integer (unbiased), one polarity per device and update.

A positive count raises w, a negative one lowers it. Pair schemes (``pair_update``):
``set_only`` — the sign selects the device: +1 → one potentiating pulse on G⁺, −1 → on G⁻
(PCM-style; both devices only grow, so saturated pairs are refreshed: :func:`refresh_pairs`);
``bidirectional`` — G⁺ receives up (+1) and down (−1) pulses, G⁻ is a fixed reference.
"""

from __future__ import annotations

import math

import numpy as np

from devices.fields import check_choice, check_real
from devices.pulse import PulseArray

UPDATES = ("stochastic", "deterministic")
PAIR_UPDATES = ("set_only", "bidirectional")


NORMS = ("max", "rms")


def _normaliser(d: np.ndarray, norm: str) -> float:
    col = np.sum(np.abs(d), axis=0)
    if not col.size:
        return 0.0
    return float(np.max(col)) if norm == "max" else float(np.sqrt(np.mean(col * col)))


def pulse_counts(
    x: np.ndarray,
    d: np.ndarray,
    lr_pulses: float,
    *,
    update: str,
    rng: np.random.Generator,
    norm: str = "max",
) -> tuple[np.ndarray, np.ndarray]:
    """(n_inc, n_dec): int64 (rows, cols) pulses that raise / lower each weight.

    x: (batch, rows) ±1 inputs; d: (batch, cols) column errors (any unit); lr_pulses > 0.
    """
    check_choice("update", update, UPDATES)
    lr_pulses = check_real("lr_pulses", lr_pulses, gt=0.0)
    check_choice("norm", norm, NORMS)
    x = np.asarray(x, dtype=np.float64)
    d = np.asarray(d, dtype=np.float64)
    rows, cols = x.shape[1], d.shape[1]
    zero = np.zeros((rows, cols), dtype=np.int64)
    big_n = _normaliser(d, norm)
    if big_n == 0.0:
        return zero, zero.copy()
    if update == "deterministic":
        target = -lr_pulses * (x.T @ d) / big_n
        n = np.floor(target + rng.random(target.shape)).astype(np.int64)
        return np.maximum(n, 0), np.maximum(-n, 0)
    bl = max(1, math.ceil(lr_pulses * float(np.max(np.abs(d))) / big_n))
    q = np.abs(d) * (lr_pulses / (bl * big_n))
    k = rng.binomial(bl, np.minimum(q, 1.0)).astype(np.float64)  # column firings per example
    ks = -np.sign(d) * k  # signed: + raises w where x = +1
    kp, km = np.maximum(ks, 0.0), np.maximum(-ks, 0.0)
    xp, xm = (x > 0).astype(np.float64), (x < 0).astype(np.float64)
    n_inc = np.rint(xp.T @ kp + xm.T @ km).astype(np.int64)
    n_dec = np.rint(xp.T @ km + xm.T @ kp).astype(np.int64)
    return n_inc, n_dec


def apply_pair_update(
    g_plus: PulseArray,
    g_minus: PulseArray,
    n_inc: np.ndarray,
    n_dec: np.ndarray,
    *,
    pair_update: str,
    rng: np.random.Generator,
) -> None:
    """Fire the pulses on the pair (see the module docstring for the schemes)."""
    if pair_update == "set_only":
        rng_p, rng_m = rng.spawn(2)
        g_plus.pulse(n_up=n_inc, rng=rng_p)
        g_minus.pulse(n_up=n_dec, rng=rng_m)
    elif pair_update == "bidirectional":
        g_plus.pulse(n_up=n_inc, n_down=n_dec, rng=rng)
    else:
        check_choice("pair_update", pair_update, PAIR_UPDATES)  # raises: not a pair scheme


def refresh_pairs(
    g_plus: PulseArray,
    g_minus: PulseArray,
    *,
    level: float,
    rng: np.random.Generator,
    max_pulses: int = 1000,
) -> int:
    """Refresh saturated ``set_only`` pairs; returns how many pairs were refreshed.

    A pair is refreshed when either device exceeds g_min + level·(g_max − g_min): its weight
    w = G⁺ − G⁻ is read (noise-free verify read), both devices are RESET to g_min (one pulse
    each), and |w| is re-written into the device of w's sign by potentiating pulses with
    verify (a pulse while the device is below its target by more than half its own step, at
    most ``max_pulses``), as in Burr et al. (IEEE TED 62, 3498 (2015)).
    """
    c = g_plus.config
    limit = c.g_min_us + level * c.span_us
    sat = (g_plus.g_us > limit) | (g_minus.g_us > limit)
    n_sat = int(sat.sum())
    if n_sat == 0:
        return 0
    w = g_plus.g_us - g_minus.g_us
    g_plus.reset_to_min(sat)
    g_minus.reset_to_min(sat)
    for arr, sign in ((g_plus, 1.0), (g_minus, -1.0)):
        target = np.where(sat & (sign * w > 0), c.g_min_us + np.abs(w), -np.inf)
        for _ in range(max_pulses):
            need = target - arr.g_us > 0.5 * arr.dg_up_us
            if not need.any():
                break
            before = arr.g_us[need].copy()
            arr._step(1, need, rng)
            stalled = np.zeros_like(need)
            stalled[need] = arr.g_us[need] <= before  # saturated or rounded away: stop
            target[stalled] = -np.inf
    return n_sat
