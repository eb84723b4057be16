"""The ideal conductance: programmed exactly, no drift, no read noise, no faults."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .conductance import CellModel, ConductanceState, check_time
from .fields import check_window, param, validate_config
from .registry import register_conductance_model


@dataclass(frozen=True)
class IdealConfig:
    """An ideal device: G0 = target exactly, forever.

    The window is illustrative: with a weight-normalised NSM only ratios of conductances
    matter, so [0, 25] µS (the PCM window of the other presets) is chosen for comparability.
    """

    g_min_us: float = param(
        0.0, ge=0.0, unit="µS", doc="lowest conductance (bottom of the weight window)"
    )
    g_max_us: float = param(
        25.0, gt=0.0, unit="µS", doc="highest conductance (top of the weight window)"
    )

    def __post_init__(self) -> None:
        validate_config(self)
        check_window(type(self).__name__, self.g_min_us, self.g_max_us)

    # Fixed programming behaviour (read by program_cells): no levels, faults or verify.
    n_levels = 0
    p_stuck_on = 0.0
    p_stuck_off = 0.0
    write_verify_iterations = 0
    write_verify_tol_us = 0.0


class IdealConductance(CellModel):
    """Exact programming and noiseless, drift-free reads."""

    config: IdealConfig

    def sigma_prog_us(self, g_level_us: np.ndarray) -> float:
        return 0.0

    def drifts(self) -> bool:
        return False

    def mean(self, state: ConductanceState, t_s: float) -> np.ndarray:
        check_time(t_s)
        return state.g0_us.copy()

    def read_sigma(self, state: ConductanceState, t_s: float) -> np.ndarray:
        check_time(t_s)
        return np.zeros(state.shape)


register_conductance_model("ideal", IdealConfig, IdealConductance)
