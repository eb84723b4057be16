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
Illustrative (no single source): g_min_us = 0 (the high-resistance state is taken as 0 µS), stuck-at
fault rates (0 by default; early HfO2 chips reported up to ~10 %, docs/hardware-model.md §8), and
the optional drift (``nu_mean``/``nu_sigma``, 0 by default: RRAM shows relaxation rather than the
power-law drift of PCM, so none is modelled unless asked for).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .conductance import (
    CellModel,
    cell_param,
)
from .fields import param, validate_cell_config
from .registry import register_conductance_model

#: g_max (µS) of the reference fit (Wan et al. 2022 as fitted in aihwkit).
G_MAX_REFERENCE_US = 40.0
#: programming-error polynomial c0 + c1 ĝ + ... + c4 ĝ⁴ in µS at g_max = 40 µS (see module doc).
PROG_COEFFS_US = (0.348, 16.030, -43.853, 45.393, -16.815)


@dataclass(frozen=True)
class RRAMConfig:
    """RRAM device parameters (sources and illustrative values: see the module docstring)."""

    g_min_us: float = cell_param("g_min_us", 0.0)  # illustrative
    g_max_us: float = param(
        40.0,
        gt=0.0,
        unit="µS",
        doc="top of the weight window (the programming-error fit scales with it)",
    )  # Wan et al. 2022
    n_levels: int = cell_param("n_levels", 0)
    prog_noise_scale: float = param(
        1.0, ge=0.0, doc="factor on the programming-error std of Wan et al. 2022 (0 = none)"
    )
    write_verify_iterations: int = cell_param("write_verify_iterations", 0)
    write_verify_tol_us: float = cell_param("write_verify_tol_us", 1.0)  # illustrative
    p_stuck_on: float = cell_param("p_stuck_on", 0.0)
    p_stuck_off: float = cell_param("p_stuck_off", 0.0)
    read_noise_rel: float = cell_param(
        "read_noise_rel", 0.01
    )  # ≈1 % short-term read noise (Wan et al. 2022)
    nu_mean: float = cell_param("nu_mean", 0.0)  # illustrative, off by default
    nu_sigma: float = cell_param("nu_sigma", 0.0)  # illustrative, off by default
    t0_s: float = cell_param("t0_s", 1.0)  # reference time of the relaxation fit

    def __post_init__(self) -> None:
        validate_cell_config(self)


def sigma_prog_us(g_us: np.ndarray, g_max_us: float, scale: float = 1.0) -> np.ndarray:
    """Programming-error std (µS) at target ``g_us`` (polynomial in ĝ, rescaled to g_max)."""
    g_hat = np.asarray(g_us, dtype=np.float64) / g_max_us
    sigma = np.zeros_like(g_hat)
    for k, c in enumerate(PROG_COEFFS_US):
        sigma = sigma + c * g_hat**k
    return scale * np.maximum(sigma, 0.0) * (g_max_us / G_MAX_REFERENCE_US)


class RRAM(CellModel):
    """RRAM: polynomial programming error, relative read noise, optional faults and drift."""

    config: RRAMConfig

    def sigma_prog_us(self, g_level_us: np.ndarray) -> np.ndarray:
        c = self.config
        return sigma_prog_us(g_level_us, c.g_max_us, c.prog_noise_scale)


register_conductance_model("rram", RRAMConfig, RRAM)
