"""Ferroelectric FET (FeFET) analog weight cell: finite levels by partial polarisation switching.

After M. Jerry et al., "Ferroelectric FET analog synapse for acceleration of deep neural network
training", IEDM 2017 (a HfO2 FeFET with 32 non-volatile conductance states, i.e. 5 bits), the
weight cell of the hardware NSM of S. Dutta et al., Nature Communications 13, 2571 (2022).
ILLUSTRATIVE values (not fitted to a publication): the conductance window 0.5–20 µS, the
programming-error std (0.2 µS, constant across levels: threshold-voltage variation of the
partially switched ferroelectric), the 0.5 % read noise, and no drift or faults by default.
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


@dataclass(frozen=True)
class FeFETConfig:
    """FeFET analog weight cell parameters (sources / illustrative: see module docstring)."""

    g_min_us: float = param(
        0.5, ge=0.0, unit="µS", doc="lowest target conductance (bottom of the weight window)"
    )  # illustrative
    g_max_us: float = param(
        20.0, gt=0.0, unit="µS", doc="highest target conductance (top of the weight window)"
    )  # illustrative
    n_levels: int = param(
        32, ge=0, le=65536, doc="programmable levels, evenly spaced in the window (0 = analog)"
    )  # 5 bits, after Jerry et al. IEDM 2017
    prog_sigma_us: float = param(
        0.2, ge=0.0, unit="µS", doc="programming-error std, the same at every level (V_T variation)"
    )  # illustrative
    write_verify_iterations: int = param(
        0, ge=0, le=1000, doc="re-program rounds for cells more than write_verify_tol_us off"
    )
    write_verify_tol_us: float = param(
        0.3, gt=0.0, unit="µS", doc="write-verify band: |G0 − level| accepted without a retry"
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
        0.005, ge=0.0, doc="std of one read's noise relative to G (cycle to cycle)"
    )  # illustrative
    nu_mean: float = param(
        0.0, ge=-1.0, le=1.0, doc="mean drift exponent ν in G(t) = G0 (t/t0)^−ν (0 = no drift)"
    )  # illustrative, off by default
    nu_sigma: float = param(
        0.0, ge=0.0, le=1.0, doc="device-to-device std of the drift exponent ν, drawn once per cell"
    )  # illustrative, off by default
    t0_s: float = param(
        1.0, gt=0.0, unit="s", doc="drift reference time t0: G = G0 until t0, then G0 (t/t0)^−ν"
    )  # illustrative reference time for drift

    def __post_init__(self) -> None:
        validate_config(self)
        owner = type(self).__name__
        check_window(owner, self.g_min_us, self.g_max_us)
        check_levels(owner, self.n_levels)
        check_fault_rates(owner, self.p_stuck_on, self.p_stuck_off)


class FeFET:
    """FeFET cell: quantised levels, constant programming error, relative read noise."""

    def __init__(self, config: FeFETConfig) -> None:
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
            sigma_prog_us=lambda g: c.prog_sigma_us,
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


register_conductance_model("fefet", FeFETConfig, FeFET)
