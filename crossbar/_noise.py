"""numba kernels of the engine's per-read Gaussian draws (private; see :mod:`crossbar.streams`).

The words come from the counter-based generator of :mod:`crossbar.rng` (the same SplitMix64
scheme and constants as the exact samplers: word(s, b, n) = mix64(seed(s, b) + (n + 1)·γ)), so a
draw is a pure function of (key, global sample s, global batch row b, counter n) and results do
not depend on chunking or threads. These functions are re-implemented here rather than imported
from :mod:`crossbar._kernels` because numba's on-disk cache only watches the file of the function
it compiles; ``tests/test_crossbar_engine_streams.py`` checks them bit for bit against the numpy
reference :func:`crossbar.rng.random_words`.

Uniform: k = word >> 11 (53 bits), U = (k + ½)/2⁵³ ∈ (0, 1). Gaussian: N = Φ⁻¹(U), by inversion,
so N is a monotone function of one uniform: a decision N >= t is the same event as
k >= ⌈Φ(t)·2⁵³ − ½⌉. Φ⁻¹ is computed on the lower tail q = min(U, 1 − U) (exact in double for
this U) with Wichura's AS 241 rational approximations (relative error about 10⁻¹⁶; tested
against scipy.special.ndtri to 10⁻¹²; a rational start plus a Halley step on erfc before, 10⁻⁹:
2·10⁻⁴ of the float32 values it feeds moved by one ulp).
|N| <= Φ⁻¹(1 − 2⁻⁵⁴) ≈ 8.3: the tail beyond is cut (probability 10⁻¹⁶ per draw).

Decisions never need N itself: N >= t is the event U >= Φ(t). :func:`noisy_sum` decides it in two
steps: a table Φ̃ (linear interpolation on a 1/64 grid over |t| <= 9, |Φ̃ − Φ| < 7.5·10⁻⁶, tested)
settles every value with |U − Φ̃(t)| > ε = 2⁻¹⁶ (all but ≈ 3·10⁻⁵ of them, in a loop the compiler
vectorises); the rest compare U with Φ(t) = ½ erfc(−t/√2) in double. The result is exactly the
event U >= ½ erfc(−t/√2) (the table only skips the erfc where its error bound cannot change the
answer), and agrees with the value path x = mean + sd·N up to the rounding of x and Φ⁻¹ (a
disagreement needs |N − t| of order 10⁻⁷: a probability of about 10⁻⁷ per decision).
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit, prange

_U = np.uint64
_GAMMA = np.uint64(0x9E3779B97F4A7C15)  # constants: see crossbar/rng.py
_DELTA = np.uint64(0xD1B54A32D192ED03)
_C1 = np.uint64(0xBF58476D1CE4E5B9)
_C2 = np.uint64(0x94D049BB133111EB)
_HALF53 = 1 << 52
_TOP53 = (1 << 53) - 1
_INV53 = 1.0 / 9007199254740992.0  # 2^-53
_SQRT2PI = math.sqrt(2.0 * math.pi)
_INV_SQRT2 = 1.0 / math.sqrt(2.0)

# Φ on the grid t = −9 + j/64 (j = 0..1152): linear interpolation errs by at most
# h²/8·max|Φ''| = 7.4e-6 inside, and by < 1e-18 beyond |t| = 9 (clamped); see the docstring.
_PHI_STEPS = 64.0
_PHI_T = 9.0
_PHI_TABLE = np.array(
    [
        0.5 * math.erfc(-(-_PHI_T + j / _PHI_STEPS) * _INV_SQRT2)
        for j in range(int(2 * _PHI_T * _PHI_STEPS) + 1)
    ]
)
_PHI_LAST = float(_PHI_TABLE.size - 1)
_PHI_EPS = 2.0**-16  # > 2x the table's error bound: a decision outside it is settled


@njit(cache=True, inline="always")
def _mix64(x):
    x = (x ^ (x >> _U(30))) * _C1
    x = (x ^ (x >> _U(27))) * _C2
    return x ^ (x >> _U(31))


@njit(cache=True, inline="always")
def _read_seed(k0, k1, s, b):
    hs = _mix64(k0 + _U(s + 1) * _GAMMA)
    return _mix64(hs ^ (k1 + _U(b + 1) * _DELTA))


@njit(cache=True, inline="always")
def _k53(seed, n):
    """The 53-bit uniform integer k of counter n of a read."""
    return np.int64(_mix64(seed + _U(n + 1) * _GAMMA) >> _U(11))


# Wichura's PPND16 (Applied Statistics algorithm AS 241, 1988): rational approximations of Φ⁻¹
# with relative error about 1e-16, on the central region |p − ½| <= 0.425 (A, B) and the tails
# by r = √(−ln p): r <= 5 (C, D) and beyond (E, F). Published coefficients, lowest order first.
_AS241_A = (
    3.3871328727963666080e0,
    1.3314166789178437745e2,
    1.9715909503065514427e3,
    1.3731693765509461125e4,
    4.5921953931549871457e4,
    6.7265770927008700853e4,
    3.3430575583588128105e4,
    2.5090809287301226727e3,
)
_AS241_B = (
    1.0,
    4.2313330701600911252e1,
    6.8718700749205790830e2,
    5.3941960214247511077e3,
    2.1213794301586595867e4,
    3.9307895800092710610e4,
    2.8729085735721942674e4,
    5.2264952788528545610e3,
)
_AS241_C = (
    1.42343711074968357734e0,
    4.63033784615654529590e0,
    5.76949722146069140550e0,
    3.64784832476320460504e0,
    1.27045825245236838258e0,
    2.41780725177450611770e-1,
    2.27238449892691845833e-2,
    7.74545014278341407640e-4,
)
_AS241_D = (
    1.0,
    2.05319162663775882187e0,
    1.67638483018380384940e0,
    6.89767334985100004550e-1,
    1.48103976427480074590e-1,
    1.51986665636164571966e-2,
    5.47593808499534494600e-4,
    1.05075007164441684324e-9,
)
_AS241_E = (
    6.65790464350110377720e0,
    5.46378491116411436990e0,
    1.78482653991729133580e0,
    2.96560571828504891230e-1,
    2.65321895265761230930e-2,
    1.24266094738807843860e-3,
    2.71155556874348757815e-5,
    2.01033439929228813265e-7,
)
_AS241_F = (
    1.0,
    5.99832206555887937690e-1,
    1.36929880922735805310e-1,
    1.48753612908506148525e-2,
    7.86869131145613259100e-4,
    1.84631831751005468180e-5,
    1.42151175831644588870e-7,
    2.04426310338993978564e-15,
)


@njit(cache=True, inline="always")
def _ratio(c, d, r):
    """(Σ c_i r^i) / (Σ d_i r^i) for degree-7 coefficient tuples (Horner)."""
    num = c[7]
    den = d[7]
    for i in range(6, -1, -1):
        num = num * r + c[i]
        den = den * r + d[i]
    return num / den


@njit(cache=True, inline="always")
def _ppf(k):
    """Φ⁻¹((k + ½)/2⁵³) for a 53-bit integer k (see the module docstring)."""
    upper = k > _HALF53 - 1
    kk = _TOP53 - k if upper else k
    q = (kk + 0.5) * _INV53  # lower-tail probability, exact, <= ½
    d = q - 0.5
    if d >= -0.425:
        x = d * _ratio(_AS241_A, _AS241_B, 0.180625 - d * d)
    else:
        r = math.sqrt(-math.log(q))
        if r <= 5.0:
            x = -_ratio(_AS241_C, _AS241_D, r - 1.6)
        else:
            x = -_ratio(_AS241_E, _AS241_F, r - 5.0)
    return -x if upper else x


@njit(cache=True, inline="always")
def _phi_approx(t):
    """Φ(t) from the table, |error| < 7.5e-6 (t may be ±inf)."""
    f = min(max((t + _PHI_T) * _PHI_STEPS, 0.0), _PHI_LAST - 1e-9)
    j = int(f)
    w = f - j
    return _PHI_TABLE[j] + w * (_PHI_TABLE[j + 1] - _PHI_TABLE[j])


@njit(cache=True)
def phi_approx(t):
    """The table's Φ̃(t) for a float64 array (for the tests)."""
    out = np.empty(t.size)
    for i in range(t.size):
        out[i] = _phi_approx(t[i])
    return out


@njit(cache=True)
def words(k0, k1, s, b, n):
    """word(s, b, i) for i in 0..n-1 (tests compare it with crossbar.rng.random_words)."""
    seed = _read_seed(k0, k1, s, b)
    out = np.empty(n, dtype=np.uint64)
    for i in range(n):
        out[i] = _mix64(seed + _U(i + 1) * _GAMMA)
    return out


@njit(cache=True)
def ppf53(k):
    """Φ⁻¹((k + ½)/2⁵³) for an int64 array of 53-bit integers (for the tests)."""
    out = np.empty(k.size)
    for i in range(k.size):
        out[i] = _ppf(k[i])
    return out


@njit(cache=True, parallel=True)
def standard_normals(k0, k1, s0, b0, n_samples, batch, n, c0):
    """float32 (n_samples, batch, n): N(0, 1) at (s0 + s, b0 + b, counter c0 + i)."""
    out = np.empty((n_samples, batch, n), dtype=np.float32)
    for item in prange(n_samples * batch):
        s = item // batch
        b = item - s * batch
        seed = _read_seed(k0, k1, s0 + s, b0 + b)
        for i in range(n):
            out[s, b, i] = np.float32(_ppf(_k53(seed, c0 + i)))
    return out


@njit(cache=True, inline="always")
def _standardised(base, shift, var_s, var_c, thr):
    """t = (thr − x)/sd in double for x = base + shift, sd² = var_s + var_c (float32 inputs);
    sd = 0: t = −inf where x >= thr (always fires), else +inf (never)."""
    var = np.float64(var_s) + np.float64(var_c)
    gap = np.float64(thr) - (np.float64(base) + np.float64(shift))
    if var > 0.0:
        return gap / np.sqrt(var)
    return -np.inf if gap <= 0.0 else np.inf


@njit(cache=True, parallel=True)
def noisy_sum(base, shift, var_s, var_c, thr, k0, k1, s0, b0, n_samples, c0, decide):
    """x = base + shift + √(var_s + var_c)·N, per (sample, batch row, column).

    base: float32 (nb, batch, n) with nb = 1 (broadcast over samples) or n_samples;
    shift, var_c: float32 (batch, n); var_s: float32 (nv, batch, n), nv = 1 or n_samples;
    thr: float32 (n,). N ~ N(0, 1) at (s0 + s, b0 + b, counter c0 + i).
    Returns (int8, float32) arrays: with ``decide`` the decisions ±1 = [x >= thr] (sign(0) =
    +1), decided as U >= Φ((thr − base − shift)/sd) without computing N (see the module
    docstring), and an empty float array; without, an empty int8 array and x as float32
    (n_samples, batch, n).
    """
    nb, batch, n = base.shape
    nv = var_s.shape[0]
    if decide:
        out_i = np.empty((n_samples, batch, n), dtype=np.int8)
        out_f = np.empty((0, 0, 0), dtype=np.float32)
    else:
        out_i = np.empty((0, 0, 0), dtype=np.int8)
        out_f = np.empty((n_samples, batch, n), dtype=np.float32)
    for item in prange(n_samples * batch):
        s = item // batch
        b = item - s * batch
        sb = s if nb > 1 else 0
        sv = s if nv > 1 else 0
        seed = _read_seed(k0, k1, s0 + s, b0 + b)
        if decide:
            # Pass 1 (vectorised): settle |U − Φ̃(t)| > ε from the table; 0 marks the rest.
            undecided = 0
            for i in range(n):
                t = _standardised(base[sb, b, i], shift[b, i], var_s[sv, b, i], var_c[b, i], thr[i])
                d = (_k53(seed, c0 + i) + 0.5) * _INV53 - _phi_approx(t)
                out_i[s, b, i] = 1 if d > _PHI_EPS else (-1 if d < -_PHI_EPS else 0)
                undecided += 1 if abs(d) <= _PHI_EPS else 0
            # Pass 2 (about 3e-5 of the values): U >= Φ(t) with Φ in double.
            if undecided > 0:
                for i in range(n):
                    if out_i[s, b, i] == 0:
                        t = _standardised(
                            base[sb, b, i], shift[b, i], var_s[sv, b, i], var_c[b, i], thr[i]
                        )
                        u = (_k53(seed, c0 + i) + 0.5) * _INV53
                        out_i[s, b, i] = 1 if u >= 0.5 * math.erfc(-t * _INV_SQRT2) else -1
        else:
            for i in range(n):
                var = np.float64(var_s[sv, b, i]) + np.float64(var_c[b, i])
                x = np.float64(base[sb, b, i]) + np.float64(shift[b, i])
                if var > 0.0:
                    x += np.sqrt(var) * _ppf(_k53(seed, c0 + i))
                out_f[s, b, i] = np.float32(x)
    return out_i, out_f


@njit(cache=True, parallel=True)
def decide_moments(mean, var, thr, k0, k1, s0, b0, n_samples, c0):
    """int8 (n_samples, batch, n) decisions ±1 = [mean + √var·N >= thr]: exactly
    :func:`noisy_sum`'s decisions with base = var_s = 0, shift = mean, var_c = var (the same
    :func:`_standardised` on the same float32 values), without the zero arrays.

    mean: float32 (batch, n); var: float32 (nv, n), nv = batch or 1 (the same variances for every
    row, e.g. fully driven inputs); thr: float32 (n,).
    """
    batch, n = mean.shape
    nv = var.shape[0]
    out_i = np.empty((n_samples, batch, n), dtype=np.int8)
    zero = np.float32(0.0)
    for item in prange(n_samples * batch):
        s = item // batch
        b = item - s * batch
        vb = b if nv > 1 else 0
        seed = _read_seed(k0, k1, s0 + s, b0 + b)
        undecided = 0
        for i in range(n):
            t = _standardised(zero, mean[b, i], zero, var[vb, i], thr[i])
            d = (_k53(seed, c0 + i) + 0.5) * _INV53 - _phi_approx(t)
            out_i[s, b, i] = 1 if d > _PHI_EPS else (-1 if d < -_PHI_EPS else 0)
            undecided += 1 if abs(d) <= _PHI_EPS else 0
        if undecided > 0:
            for i in range(n):
                if out_i[s, b, i] == 0:
                    t = _standardised(zero, mean[b, i], zero, var[vb, i], thr[i])
                    u = (_k53(seed, c0 + i) + 0.5) * _INV53
                    out_i[s, b, i] = 1 if u >= 0.5 * math.erfc(-t * _INV_SQRT2) else -1
    return out_i
