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
    CellModel,
    cell_param,
)
from .fields import param, validate_cell_config
from .registry import register_conductance_model


@dataclass(frozen=True)
class FeFETConfig:
    """FeFET analog weight cell parameters (sources / illustrative: see module docstring)."""

    g_min_us: float = cell_param("g_min_us", 0.5)  # illustrative
    g_max_us: float = param(
        20.0, gt=0.0, unit="µS", doc="highest target conductance (top of the weight window)"
    )  # illustrative
    n_levels: int = cell_param("n_levels", 32)  # 5 bits, after Jerry et al. IEDM 2017
    prog_sigma_us: float = param(
        0.2, ge=0.0, unit="µS", doc="programming-error std, the same at every level (V_T variation)"
    )  # illustrative
    write_verify_iterations: int = cell_param("write_verify_iterations", 0)
    write_verify_tol_us: float = cell_param("write_verify_tol_us", 0.3)  # illustrative
    p_stuck_on: float = cell_param("p_stuck_on", 0.0)
    p_stuck_off: float = cell_param("p_stuck_off", 0.0)
    read_noise_rel: float = cell_param("read_noise_rel", 0.005)  # illustrative
    nu_mean: float = cell_param("nu_mean", 0.0)  # illustrative, off by default
    nu_sigma: float = cell_param("nu_sigma", 0.0)  # illustrative, off by default
    t0_s: float = cell_param("t0_s", 1.0)  # illustrative reference time for drift

    def __post_init__(self) -> None:
        validate_cell_config(self)


class FeFET(CellModel):
    """FeFET cell: quantised levels, constant programming error, relative read noise."""

    config: FeFETConfig

    def sigma_prog_us(self, g_level_us: np.ndarray) -> float:
        return self.config.prog_sigma_us


register_conductance_model("fefet", FeFETConfig, FeFET)
