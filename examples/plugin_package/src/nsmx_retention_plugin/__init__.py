"""Example plugin: a conductance model whose state relaxes toward g_min after programming.

ILLUSTRATIVE, not fitted to a device: retention loss of filamentary cells is often described by a
stretched exponential, G(t) = g_min + (G0 − g_min)·exp(−(t/τ)^b) (Kohlrausch relaxation); τ and
b below are placeholders to be replaced by the user's own measurements. Read noise is Gaussian
and relative to the mean, which is what the crossbar engine samples.

Importing this module registers the model as ``"retention-cell"``; a chip TOML then says::

    [devices.conductance]
    model = "retention-cell"
    tau_s = 1e6
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

import devices
from devices import ConductanceState, gaussian_read, param, program_cells, validate_config


@dataclass(frozen=True)
class RetentionCellConfig:
    g_min_us: float = param(
        1.0, ge=0.0, unit="µS", doc="lowest target conductance (bottom of the weight window)"
    )
    g_max_us: float = param(
        40.0, gt=0.0, unit="µS", doc="highest target conductance (top of the weight window)"
    )
    n_levels: int = param(
        32, ge=0, doc="programmable levels, evenly spaced in the window (0 = analog)"
    )
    prog_sigma_us: float = param(
        0.5, ge=0.0, unit="µS", doc="programming-error std, the same at every level"
    )
    write_verify_iterations: int = param(
        2, ge=0, doc="re-program rounds for cells more than write_verify_tol_us off"
    )
    write_verify_tol_us: float = param(
        0.5, gt=0.0, unit="µS", doc="write-verify band: |G0 − level| accepted without a retry"
    )
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
    tau_s: float = param(
        1e6, gt=0.0, unit="s", doc="retention time τ of the relaxation toward g_min"
    )  # illustrative retention time
    stretch: float = param(
        0.5, gt=0.0, le=1.0, doc="Kohlrausch exponent b: G − g_min ∝ exp(−(t/τ)^b)"
    )  # illustrative Kohlrausch exponent b
    read_noise_rel: float = param(
        0.01, ge=0.0, doc="std of one read's noise relative to G (cycle to cycle)"
    )  # ≈1 % short-term read noise, as ReRAM

    def __post_init__(self) -> None:
        validate_config(self)


class RetentionCell:
    def __init__(self, config: RetentionCellConfig) -> None:
        self.config = config
        self.g_min_us, self.g_max_us = config.g_min_us, config.g_max_us

    def program(self, g_target_us: np.ndarray, *, rng: np.random.Generator) -> ConductanceState:
        sigma = self.config.prog_sigma_us
        return program_cells(
            g_target_us, self.config, sigma_prog_us=lambda g: sigma, draw_nu=None, rng=rng
        )

    def mean(self, state: ConductanceState, t_s: float) -> np.ndarray:
        c = self.config
        relax = np.exp(-((t_s / c.tau_s) ** c.stretch))
        healthy = state.stuck == devices.HEALTHY  # stuck cells keep their conductance
        return np.where(healthy, c.g_min_us + (state.g0_us - c.g_min_us) * relax, state.g0_us)

    def read_sigma(self, state: ConductanceState, t_s: float) -> np.ndarray:
        noise = self.config.read_noise_rel * self.mean(state, t_s)
        return np.where(state.stuck == devices.HEALTHY, noise, 0.0)

    def read(self, state, t_s, *, rng, n=None):
        return gaussian_read(self.mean(state, t_s), self.read_sigma(state, t_s), rng=rng, n=n)


devices.register_conductance_model("retention-cell", RetentionCellConfig, RetentionCell)
