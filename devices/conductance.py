"""Conductance models: the protocol, the programmed state and the shared programming steps.

Units: conductance µS, time s. Shapes: every array in a :class:`ConductanceState` has the shape
of the ``g_target_us`` array that was programmed (any shape; a tile passes (rows, cols)).

A conductance model separates *programming* (once; draws everything that is fixed per device:
stuck-at faults, programming error, write-verify retries, drift exponent) from *reading at time
t* (per read; cycle-to-cycle noise). The read distribution is Gaussian and fully described by
two arrays, so that the crossbar's fast kernels and this reference sampler share one truth::

    read(state, t) ~ mean(state, t) + read_sigma(state, t) * N(0, 1)     (independent per cell)

:class:`CellModel` is the base of the shipped models (ideal, PCM, RRAM, FeFET): it programs with
:func:`program_cells`, drifts with :func:`drift_mean`, reads with :func:`gaussian_read` and
has relative read noise; a model states only what differs (its programming-error std, its drift
exponents, its read noise). Custom models may subclass it or implement the protocol directly.

Drift follows G(t) = G0 (t/t0)^-nu for t >= t0 with a per-device nu (Joshi et al., Nature
Communications 11, 2473 (2020)); reads earlier than t0 see G0 (the model's time axis starts at
t0, the time at which the programmed conductance G0 was verified).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

import numpy as np

from .elements import check_n
from .errors import ConfigError, ConfigTypeError
from .fields import param
from .rng import check_rng

#: stuck-at codes stored in ConductanceState.stuck
HEALTHY, STUCK_ON, STUCK_OFF = 0, 1, -1


@dataclass(frozen=True, eq=False)
class ConductanceState:
    """What programming left in each device (arrays of the programmed shape).

    g_level_us: the level each device was aimed at (target after finite-level quantisation), µS.
    g0_us:      programmed conductance G0 at t0 (programming error applied; stuck cells at
                g_max_us / g_min_us), µS.
    nu:         drift exponent per device (dimensionless; 0 = no drift, stuck cells 0).
    stuck:      int8 fault code per device: 0 healthy, +1 stuck ON (g_max), -1 stuck OFF (g_min).
    """

    g_level_us: np.ndarray
    g0_us: np.ndarray
    nu: np.ndarray
    stuck: np.ndarray

    @property
    def shape(self) -> tuple[int, ...]:
        return self.g0_us.shape


@runtime_checkable
class ConductanceModel(Protocol):
    """A conductance device model (one small class per model, built from a frozen config)."""

    config: Any

    @property
    def g_min_us(self) -> float: ...

    @property
    def g_max_us(self) -> float: ...

    def program(self, g_target_us: np.ndarray, *, rng: np.random.Generator) -> ConductanceState:
        """Program devices to ``g_target_us`` (µS, any shape, within [g_min_us, g_max_us])."""
        ...

    def mean(self, state: ConductanceState, t_s: float) -> np.ndarray:
        """Expected conductance (µS) at ``t_s`` seconds after programming (drift, no noise)."""
        ...

    def read_sigma(self, state: ConductanceState, t_s: float) -> np.ndarray:
        """Std (µS) of one read's cycle-to-cycle noise at ``t_s``, per device."""
        ...

    def read(
        self,
        state: ConductanceState,
        t_s: float,
        *,
        rng: np.random.Generator,
        n: int | None = None,
    ) -> np.ndarray:
        """One noisy read (or ``n`` reads, stacked on a new leading axis), µS."""
        ...


class ProgrammingConfig(Protocol):
    """The config fields that :func:`program_cells` reads (shared by the shipped models)."""

    g_min_us: float
    g_max_us: float
    n_levels: int
    p_stuck_on: float
    p_stuck_off: float
    write_verify_iterations: int
    write_verify_tol_us: float


#: The fields the shipped cell models share, declared once (:func:`cell_param`; each model
#: keeps its own default): the allowed interval and unit, and the one-line meaning.
CELL_BOUNDS: dict[str, dict[str, Any]] = {
    "g_min_us": {"ge": 0.0, "unit": "µS"},
    "n_levels": {"ge": 0, "le": 65536},
    "write_verify_iterations": {"ge": 0, "le": 1000},
    "write_verify_tol_us": {"gt": 0.0, "unit": "µS"},
    "p_stuck_on": {"ge": 0.0, "le": 1.0},
    "p_stuck_off": {"ge": 0.0, "le": 1.0},
    "read_noise_rel": {"ge": 0.0},
    "nu_mean": {"ge": -1.0, "le": 1.0},
    "nu_sigma": {"ge": 0.0, "le": 1.0},
    "t0_s": {"gt": 0.0, "unit": "s"},
}
CELL_DOCS: dict[str, str] = {
    "g_min_us": "lowest target conductance (bottom of the weight window)",
    "n_levels": "programmable levels, evenly spaced in the window (0 = analog)",
    "write_verify_iterations": "re-program rounds for cells more than write_verify_tol_us off",
    "write_verify_tol_us": "write-verify band: |G0 − level| accepted without a retry",
    "p_stuck_on": "probability that a cell is stuck ON (at g_max), drawn once per cell",
    "p_stuck_off": "probability that a cell is stuck OFF (at g_min), drawn once per cell",
    "read_noise_rel": "std of one read's noise relative to G (cycle to cycle)",
    "nu_mean": "mean drift exponent ν in G(t) = G0 (t/t0)^−ν (0 = no drift)",
    "nu_sigma": "device-to-device std of the drift exponent ν, drawn once per cell",
    "t0_s": "drift reference time t0: G = G0 until t0, then G0 (t/t0)^−ν",
}


def cell_param(name: str, default: Any) -> Any:
    """The shared field ``name`` (:data:`CELL_BOUNDS`, :data:`CELL_DOCS`) with this model's
    ``default``, as :func:`~devices.fields.param` declares it."""
    return param(default, **CELL_BOUNDS[name], doc=CELL_DOCS[name])


def check_time(t_s: Any) -> float:
    """Validate a read time (s since programming): a finite real >= 0."""
    if isinstance(t_s, bool) or not np.isscalar(t_s) or not np.isreal(t_s):
        raise ConfigTypeError("t_s", t_s, "a real number of seconds in [0, inf)")
    t = float(t_s)
    if not (np.isfinite(t) and t >= 0.0):
        raise ConfigError("t_s", t, "[0, inf) s", "is out of range")
    return t


def levels_us(g_min_us: float, g_max_us: float, n_levels: int) -> np.ndarray:
    """The ``n_levels`` evenly spaced programmable levels in [g_min_us, g_max_us] (µS)."""
    return np.linspace(g_min_us, g_max_us, n_levels)


def quantise(g_us: np.ndarray, g_min_us: float, g_max_us: float, n_levels: int) -> np.ndarray:
    """Round each conductance to the nearest of ``n_levels`` levels (0 = continuous, unchanged)."""
    if n_levels == 0:
        return g_us
    step = (g_max_us - g_min_us) / (n_levels - 1)
    k = np.clip(np.rint((g_us - g_min_us) / step), 0, n_levels - 1)
    return g_min_us + k * step


def _checked_targets(g_target_us: Any, g_min_us: float, g_max_us: float) -> np.ndarray:
    g = np.asarray(g_target_us, dtype=np.float64)
    if g.size and not np.all(np.isfinite(g)):
        raise ConfigError("g_target_us", "an array with NaN/inf", "finite values", "is invalid")
    # Targets computed in float32 by a mapper may overshoot the window by a rounding error;
    # anything beyond that is a caller's bug and is reported, not silently clipped.
    eps = 1e-6 * (g_max_us - g_min_us)
    if g.size and (g.min() < g_min_us - eps or g.max() > g_max_us + eps):
        raise ConfigError(
            "g_target_us",
            f"values in [{g.min():g}, {g.max():g}]",
            f"[g_min_us, g_max_us] = [{g_min_us:g}, {g_max_us:g}] µS",
            "is out of range",
        )
    return np.clip(g, g_min_us, g_max_us)


def program_cells(
    g_target_us: np.ndarray,
    config: ProgrammingConfig,
    *,
    sigma_prog_us: Callable[[np.ndarray], np.ndarray],
    draw_nu: Callable[[np.ndarray, np.random.Generator], np.ndarray] | None,
    rng: np.random.Generator,
) -> ConductanceState:
    """The programming steps shared by all shipped models (a custom model may reuse it).

    1. quantise the target to ``config.n_levels`` levels (0 = continuous);
    2. stuck-at faults: each device independently stuck ON with ``p_stuck_on``, OFF with
       ``p_stuck_off``; stuck devices ignore programming, sit at g_max/g_min and do not drift;
    3. programming error: G0 = max(level + sigma_prog_us(level) * N(0, 1), 0) (a conductance
       cannot be negative; the window bounds the *targets*, not the error around them, as in
       the published PCM/RRAM statistics where devices at g_max scatter on both sides);
    4. write-verify: up to ``write_verify_iterations`` times, every device whose error exceeds
       ``write_verify_tol_us`` is re-programmed (a fresh, independent attempt), so after k
       retries P(|error| > tol) = P1^(k+1) where P1 is the single-attempt probability;
    5. drift exponent nu = draw_nu(level, rng) per device (None = no drift).

    Each step draws from its own child generator (``rng.spawn``), so changing one effect's
    parameter in a sweep leaves the other effects' draws unchanged (common random numbers).
    """
    g_min, g_max = float(config.g_min_us), float(config.g_max_us)
    g_level = quantise(_checked_targets(g_target_us, g_min, g_max), g_min, g_max, config.n_levels)
    rng_fault, rng_prog, rng_verify, rng_drift = check_rng(rng).spawn(4)
    shape = g_level.shape

    stuck = np.zeros(shape, dtype=np.int8)
    if config.p_stuck_on > 0.0 or config.p_stuck_off > 0.0:
        u = rng_fault.random(shape)
        stuck[u < config.p_stuck_on] = STUCK_ON
        stuck[(u >= config.p_stuck_on) & (u < config.p_stuck_on + config.p_stuck_off)] = STUCK_OFF

    sigma = np.broadcast_to(np.asarray(sigma_prog_us(g_level), dtype=np.float64), shape)
    g0 = np.maximum(g_level + sigma * rng_prog.standard_normal(shape), 0.0)
    for _ in range(config.write_verify_iterations):
        retry = (np.abs(g0 - g_level) > config.write_verify_tol_us) & (stuck == HEALTHY)
        n_retry = int(retry.sum())
        if n_retry == 0:
            break
        fresh = g_level[retry] + sigma[retry] * rng_verify.standard_normal(n_retry)
        g0[retry] = np.maximum(fresh, 0.0)

    if draw_nu is None:
        nu = np.zeros(shape)
    else:
        nu = np.array(np.broadcast_to(draw_nu(g_level, rng_drift), shape), dtype=np.float64)

    g0[stuck == STUCK_ON] = g_max
    g0[stuck == STUCK_OFF] = g_min
    nu[stuck != HEALTHY] = 0.0
    return ConductanceState(g_level_us=g_level, g0_us=g0, nu=nu, stuck=stuck)


def drift_mean(state: ConductanceState, t_s: float, t0_s: float) -> np.ndarray:
    """G(t) = G0 (max(t, t0)/t0)^-nu, µS (no drift before t0; nu = 0 gives G0 exactly)."""
    t_eff = max(check_time(t_s), t0_s)
    return state.g0_us * (t_eff / t0_s) ** (-state.nu)


def gaussian_read(
    mean_us: np.ndarray,
    sigma_us: np.ndarray,
    *,
    rng: np.random.Generator,
    n: int | None = None,
) -> np.ndarray:
    """The one reference read sampler: mean + sigma * N(0, 1), independent per cell and read.

    Returns the shape of ``mean_us`` (or ``(n, *mean_us.shape)`` when ``n`` is given).
    Reads are not clipped at 0, so the distribution is exactly the Gaussian the fast kernels
    use (a model with large relative read noise at tiny conductances can read below 0).
    """
    check_rng(rng)
    size = mean_us.shape if n is None else (check_n(n), *mean_us.shape)
    return mean_us + sigma_us * rng.standard_normal(size)


class CellModel:
    """The base of the shipped conductance models (the :class:`ConductanceModel` protocol).

    Built from a frozen ``config`` with the :class:`ProgrammingConfig` fields; programming is
    :func:`program_cells` with the std :meth:`sigma_prog_us` and, when :meth:`drifts`, the drift
    exponents :meth:`draw_nu`; the mean read is :func:`drift_mean` (needs ``config.t0_s``); the
    read noise is ``config.read_noise_rel`` x |mean| on healthy cells (stuck cells read their
    fixed conductance exactly). A subclass overrides what its device does differently.
    """

    def __init__(self, config: Any) -> None:
        self.config = config

    @property
    def g_min_us(self) -> float:
        return self.config.g_min_us

    @property
    def g_max_us(self) -> float:
        return self.config.g_max_us

    def sigma_prog_us(self, g_level_us: np.ndarray) -> np.ndarray | float:
        """Programming-error std (µS) at the levels aimed at (broadcast to their shape)."""
        raise NotImplementedError

    def drifts(self) -> bool:
        """Whether programming draws drift exponents (``config.nu_mean`` or ``nu_sigma``)."""
        return bool(self.config.nu_mean or self.config.nu_sigma)

    def draw_nu(self, g_level_us: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """One drift exponent per device: ν ~ N(nu_mean, nu_sigma²), the same at every level."""
        c = self.config
        return c.nu_mean + c.nu_sigma * rng.standard_normal(g_level_us.shape)

    def program(self, g_target_us: np.ndarray, *, rng: np.random.Generator) -> ConductanceState:
        return program_cells(
            g_target_us,
            self.config,
            sigma_prog_us=self.sigma_prog_us,
            draw_nu=self.draw_nu if self.drifts() else None,
            rng=rng,
        )

    def mean(self, state: ConductanceState, t_s: float) -> np.ndarray:
        return drift_mean(state, t_s, self.config.t0_s)

    def read_sigma(self, state: ConductanceState, t_s: float) -> np.ndarray:
        sigma = self.config.read_noise_rel * np.abs(self.mean(state, t_s))
        return np.where(state.stuck == HEALTHY, sigma, 0.0)

    def read(
        self,
        state: ConductanceState,
        t_s: float,
        *,
        rng: np.random.Generator,
        n: int | None = None,
    ) -> np.ndarray:
        return gaussian_read(self.mean(state, t_s), self.read_sigma(state, t_s), rng=rng, n=n)
