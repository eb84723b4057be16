"""Resistive RAM (HfO2-type filamentary RRAM) as an analog weight cell.

Sources:
- programming error: conductance-dependent std from W. Wan et al., "A compute-in-memory chip
  based on resistive random-access memory", Nature 608, 504 (2022), as the 4th-order polynomial
  in ĝ = G/g_max (g_max = 40 µS) that IBM's aihwkit (``ReRamWan2022NoiseModel``) fitted to the
  paper's figures for the spread 1 s after program-and-verify (an estimate read off figures,
  not a fit published by the authors):
      sigma_prog(ĝ) = 0.348 + 16.030 ĝ - 43.853 ĝ² + 45.393 ĝ³ - 16.815 ĝ⁴   [µS]
- read noise: about 1 % of G per read (short-term read noise noted with the same model);
- g_max 40 µS (the reference window of that fit).
Illustrative (no single source): g_min_us = 0 (the high-resistance state is taken as 0 µS),
stuck-at fault rates (0 by default; early HfO2 chips reported up to ~10 %, DESIGN §3), and the
optional drift (``nu_mean``/``nu_sigma``, 0 by default: RRAM shows relaxation rather than the
power-law drift of PCM, so none is modelled unless asked for).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .conductance import (
    HEALTHY,
    ConductanceState,
    drift_mean,
    gaussian_read,
    program_cells,
)
from .fields import check_fault_rates, check_levels, check_window, param, validate_config
from .registry import register_conductance_model

#: g_max (µS) of the reference fit (Wan et al. 2022 as fitted in aihwkit).
G_MAX_REFERENCE_US = 40.0
#: programming-error polynomial c0 + c1 ĝ + ... + c4 ĝ⁴ in µS at g_max = 40 µS (see module doc).
PROG_COEFFS_US = (0.348, 16.030, -43.853, 45.393, -16.815)


@dataclass(frozen=True)
class RRAMConfig:
    """RRAM device parameters (sources and illustrative values: see the module docstring)."""

    g_min_us: float = param(
        0.0, ge=0.0, unit="µS", doc="lowest target conductance (bottom of the weight window)"
    )  # illustrative
    g_max_us: float = param(
        40.0,
        gt=0.0,
        unit="µS",
        doc="top of the weight window (the programming-error fit scales with it)",
    )  # Wan et al. 2022
    n_levels: int = param(
        0, ge=0, le=65536, doc="programmable levels, evenly spaced in the window (0 = analog)"
    )
    prog_noise_scale: float = param(
        1.0, ge=0.0, doc="factor on the programming-error std of Wan et al. 2022 (0 = none)"
    )
    write_verify_iterations: int = param(
        0, ge=0, le=1000, doc="re-program rounds for cells more than write_verify_tol_us off"
    )
    write_verify_tol_us: float = param(
        1.0, gt=0.0, unit="µS", doc="write-verify band: |G0 − level| accepted without a retry"
    )  # illustrative
    p_stuck_on: float = param(
        0.0,
        ge=0.0,
        le=1.0,
        doc="probability that a cell is stuck ON (at g_max), drawn once per cell",
    )
    p_stuck_off: float = param(
        0.0,
        ge=0.0,
        le=1.0,
        doc="probability that a cell is stuck OFF (at g_min), drawn once per cell",
    )
    read_noise_rel: float = param(
        0.01, ge=0.0, doc="std of one read's noise relative to G (cycle to cycle)"
    )  # ≈1 % short-term read noise (Wan et al. 2022)
    nu_mean: float = param(
        0.0, ge=-1.0, le=1.0, doc="mean drift exponent ν in G(t) = G0 (t/t0)^−ν (0 = no drift)"
    )  # illustrative, off by default
    nu_sigma: float = param(
        0.0, ge=0.0, le=1.0, doc="device-to-device std of the drift exponent ν, drawn once per cell"
    )  # illustrative, off by default
    t0_s: float = param(
        1.0, gt=0.0, unit="s", doc="drift reference time t0: G = G0 until t0, then G0 (t/t0)^−ν"
    )  # reference time of the relaxation fit

    def __post_init__(self) -> None:
        validate_config(self)
        owner = type(self).__name__
        check_window(owner, self.g_min_us, self.g_max_us)
        check_levels(owner, self.n_levels)
        check_fault_rates(owner, self.p_stuck_on, self.p_stuck_off)


def sigma_prog_us(g_us: np.ndarray, g_max_us: float, scale: float = 1.0) -> np.ndarray:
    """Programming-error std (µS) at target ``g_us`` (polynomial in ĝ, rescaled to g_max)."""
    g_hat = np.asarray(g_us, dtype=np.float64) / g_max_us
    sigma = np.zeros_like(g_hat)
    for k, c in enumerate(PROG_COEFFS_US):
        sigma = sigma + c * g_hat**k
    return scale * np.maximum(sigma, 0.0) * (g_max_us / G_MAX_REFERENCE_US)


class RRAM:
    """RRAM: polynomial programming error, relative read noise, optional faults and drift."""

    def __init__(self, config: RRAMConfig) -> None:
        self.config = config

    @property
    def g_min_us(self) -> float:
        return self.config.g_min_us

    @property
    def g_max_us(self) -> float:
        return self.config.g_max_us

    def _draw_nu(self, g_level: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        c = self.config
        return c.nu_mean + c.nu_sigma * rng.standard_normal(g_level.shape)

    def program(self, g_target_us: np.ndarray, *, rng: np.random.Generator) -> ConductanceState:
        c = self.config
        return program_cells(
            g_target_us,
            c,
            sigma_prog_us=lambda g: sigma_prog_us(g, c.g_max_us, c.prog_noise_scale),
            draw_nu=self._draw_nu if (c.nu_mean or c.nu_sigma) else None,
            rng=rng,
        )

    def mean(self, state: ConductanceState, t_s: float) -> np.ndarray:
        return drift_mean(state, t_s, self.config.t0_s)

    def read_sigma(self, state: ConductanceState, t_s: float) -> np.ndarray:
        sigma = self.config.read_noise_rel * np.abs(self.mean(state, t_s))
        return np.where(state.stuck == HEALTHY, sigma, 0.0)

    def read(self, state, t_s, *, rng, n=None):
        return gaussian_read(self.mean(state, t_s), self.read_sigma(state, t_s), rng=rng, n=n)


register_conductance_model("rram", RRAMConfig, RRAM)
