"""Add your own conductance model in a few lines and use it like a shipped one.

Run from the project root:  python examples/custom_device.py

The model here is ILLUSTRATIVE: a cell that loses conductance exponentially (retention time
constant tau_s) on top of the shared programming steps (levels, programming noise, faults,
write-verify) of ``devices.program_cells``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

import devices
from devices import ConductanceState, gaussian_read, param, program_cells, validate_config


@dataclass(frozen=True)
class LeakyCellConfig:
    g_min_us: float = param(
        0.0, ge=0.0, unit="µS", doc="lowest target conductance (bottom of the weight window)"
    )
    g_max_us: float = param(
        10.0, gt=0.0, unit="µS", doc="highest target conductance (top of the weight window)"
    )
    n_levels: int = param(
        16, ge=0, doc="programmable levels, evenly spaced in the window (0 = analog)"
    )
    prog_sigma_us: float = param(
        0.1, ge=0.0, unit="µS", doc="programming-error std, the same at every level"
    )
    write_verify_iterations: int = param(
        2, ge=0, doc="re-program rounds for cells more than write_verify_tol_us off"
    )
    write_verify_tol_us: float = param(
        0.1, gt=0.0, unit="µS", doc="write-verify band: |G0 − level| accepted without a retry"
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
    tau_s: float = param(1e5, gt=0.0, unit="s", doc="retention time constant: G(t) = G0 exp(−t/τ)")
    read_noise_rel: float = param(
        0.02, ge=0.0, doc="std of one read's noise relative to G (cycle to cycle)"
    )

    def __post_init__(self) -> None:
        validate_config(self)  # types and ranges, errors naming field, value and range


class LeakyCell:
    def __init__(self, config: LeakyCellConfig) -> None:
        self.config = config
        self.g_min_us, self.g_max_us = config.g_min_us, config.g_max_us

    def program(self, g_target_us, *, rng) -> ConductanceState:
        sigma = self.config.prog_sigma_us
        return program_cells(
            g_target_us, self.config, sigma_prog_us=lambda g: sigma, draw_nu=None, rng=rng
        )

    def mean(self, state, t_s):
        # Stuck devices (state.stuck != 0) keep their fixed conductance.
        decay = np.where(state.stuck == devices.HEALTHY, np.exp(-t_s / self.config.tau_s), 1.0)
        return state.g0_us * decay

    def read_sigma(self, state, t_s):
        noise = self.config.read_noise_rel * self.mean(state, t_s)
        return np.where(state.stuck == devices.HEALTHY, noise, 0.0)

    def read(self, state, t_s, *, rng, n=None):
        return gaussian_read(self.mean(state, t_s), self.read_sigma(state, t_s), rng=rng, n=n)


devices.register_conductance_model("leaky-cell", LeakyCellConfig, LeakyCell)


def main() -> None:
    cfg = devices.from_toml(
        """
        format_version = 1
        description = "leaky cell + Ag/HfO2-like selector (illustrative)"
        [conductance]
        model = "leaky-cell"
        tau_s = 3600.0
        [element]
        model = "selector"
        """
    )
    rng = np.random.default_rng(7)
    cond, selector = cfg.conductance_model(), cfg.element_model()
    state = cond.program(np.linspace(0.0, 10.0, 6), rng=rng)
    print("levels aimed at (µS):", state.g_level_us)
    print("programmed G0 (µS):  ", np.round(state.g0_us, 3))
    print("mean after 1 h (µS): ", np.round(cond.mean(state, 3600.0), 3))
    sel_state = selector.program((4, 6), rng=rng)
    print("realised selector p:\n", np.round(selector.p(sel_state), 3))
    # A sweep varies one field at a time, with the same validation as the TOML file:
    for tau in (60.0, 3600.0, 86400.0):
        swept = devices.replace_field(cfg, "conductance.tau_s", tau).conductance_model()
        ratio = swept.mean(state, 3600.0)[-1] / state.g0_us[-1]
        print(f"tau_s = {tau:>7g} s: G(1 h)/G0 = {ratio:.3f}")
    print(devices.to_toml(cfg))


if __name__ == "__main__":
    main()
