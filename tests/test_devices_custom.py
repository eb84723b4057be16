"""A user-defined conductance model in a few lines: registered, used from TOML, validated."""

from __future__ import annotations

from dataclasses import dataclass, fields

import numpy as np
import pytest

import devices
from devices import CellModel, ConductanceState, gaussian_read, param, validate_config
from devices.conductance import cell_param
from devices.fields import validate_cell_config


# ---- the custom model: exponential retention loss, constant read noise (illustrative) ----
@dataclass(frozen=True)
class LeakyCellConfig:
    g_max_us: float = param(10.0, gt=0.0, unit="µS")
    tau_s: float = param(1e4, gt=0.0, unit="s")
    read_sigma_us: float = param(0.05, ge=0.0, unit="µS")

    def __post_init__(self):
        validate_config(self)


class LeakyCell:
    g_min_us = 0.0

    def __init__(self, config):
        self.config = config
        self.g_max_us = config.g_max_us

    def program(self, g_target_us, *, rng):
        g = np.asarray(g_target_us, dtype=float)
        return ConductanceState(g, g.copy(), np.zeros_like(g), np.zeros(g.shape, np.int8))

    def mean(self, state, t_s):
        return state.g0_us * np.exp(-t_s / self.config.tau_s)

    def read_sigma(self, state, t_s):
        return np.full(state.shape, self.config.read_sigma_us)

    def read(self, state, t_s, *, rng, n=None):
        return gaussian_read(self.mean(state, t_s), self.read_sigma(state, t_s), rng=rng, n=n)


devices.register_conductance_model("leaky-cell", LeakyCellConfig, LeakyCell)
# ---- end of the custom model ----

TOML = """
format_version = 1
description = "custom leaky cell + selector"
[conductance]
model = "leaky-cell"
tau_s = 100.0
[element]
model = "selector"
"""


def test_custom_model_from_toml_round_trip_and_reads():
    cfg = devices.from_toml(TOML)
    assert cfg.conductance == LeakyCellConfig(tau_s=100.0)
    assert devices.from_toml(devices.to_toml(cfg)) == cfg
    model = cfg.conductance_model()
    assert isinstance(model, devices.ConductanceModel) and isinstance(model, LeakyCell)
    rng = np.random.default_rng(0)
    state = model.program(np.full(400, 8.0), rng=rng)
    reads = model.read(state, 100.0, rng=rng, n=50)
    # Mean of 20000 reads at t = tau is 8/e within 4 SE (SE = 0.05/sqrt(20000)).
    assert abs(reads.mean() - 8.0 / np.e) < 4 * 0.05 / np.sqrt(reads.size)
    assert replace_tau(cfg, 5.0).conductance.tau_s == 5.0


def replace_tau(cfg, tau):
    return devices.replace_field(cfg, "conductance.tau_s", tau)


def test_custom_model_validation_names_the_field():
    with pytest.raises(devices.ConfigError, match=r"conductance\.tau_s = -1\.0 .*\(0, inf\) s"):
        devices.from_toml(TOML.replace("tau_s = 100.0", "tau_s = -1.0"))
    with pytest.raises(devices.ConfigError, match=r"conductance\.tau_s = 0\.0"):
        replace_tau(devices.from_toml(TOML), 0.0)


def test_registry_rejects_conflicts_and_bad_configs():
    @dataclass(frozen=True)
    class Other:
        x: float = 1.0

    @dataclass
    class Mutable:
        x: float = 1.0

    @dataclass(frozen=True)
    class Reserved:
        model: str = "x"

    with pytest.raises(ValueError, match="already registered"):
        devices.register_conductance_model("leaky-cell", Other, LeakyCell)
    with pytest.raises(ValueError, match="already registered as 'leaky-cell'"):
        devices.register_conductance_model("leaky-2", LeakyCellConfig, LeakyCell)
    with pytest.raises(TypeError, match="must be frozen"):
        devices.register_conductance_model("mutable", Mutable, LeakyCell)
    with pytest.raises(TypeError, match="reserved"):
        devices.register_element_model("reserved", Reserved, LeakyCell)
    # Re-registering the same pair (e.g. a module imported twice) is harmless.
    devices.register_conductance_model("leaky-cell", LeakyCellConfig, LeakyCell)


# ---- a CellModel subclass: the shipped programming, drift and reads, one std of its own ----
@dataclass(frozen=True)
class FlatCellConfig:
    g_min_us: float = cell_param("g_min_us", 0.0)
    g_max_us: float = param(10.0, gt=0.0, unit="µS")
    n_levels: int = cell_param("n_levels", 0)
    write_verify_iterations: int = cell_param("write_verify_iterations", 0)
    write_verify_tol_us: float = cell_param("write_verify_tol_us", 0.5)
    p_stuck_on: float = cell_param("p_stuck_on", 0.0)
    p_stuck_off: float = cell_param("p_stuck_off", 0.0)
    read_noise_rel: float = cell_param("read_noise_rel", 0.02)
    nu_mean: float = cell_param("nu_mean", 0.0)
    nu_sigma: float = cell_param("nu_sigma", 0.0)
    t0_s: float = cell_param("t0_s", 1.0)

    def __post_init__(self):
        validate_cell_config(self)


class FlatCell(CellModel):
    def sigma_prog_us(self, g_level_us):
        return 0.3  # µS at every level


def test_cell_model_subclass_programs_drifts_and_reads_like_the_shipped_models():
    n = 40_000
    model = FlatCell(FlatCellConfig(nu_mean=0.1))
    state = model.program(np.full(n, 5.0), rng=np.random.default_rng(0))
    err = state.g0_us - 5.0
    # The std of the sample std is σ/√(2n) ≈ 1.1e-3 µS here; 5 of them as the bound.
    assert abs(err.std() - 0.3) < 5 * 0.3 / np.sqrt(2 * n)
    assert np.all(state.nu == 0.1)  # nu_sigma = 0: every device drifts with nu_mean
    mean = model.mean(state, 100.0)
    np.testing.assert_allclose(mean, state.g0_us * 100.0**-0.1, rtol=1e-12)
    np.testing.assert_allclose(model.read_sigma(state, 100.0), 0.02 * np.abs(mean), rtol=1e-12)
    assert not FlatCell(FlatCellConfig()).drifts()  # no drift asked for: no ν drawn


def test_cell_fields_keep_the_shipped_ranges_and_meanings():
    with pytest.raises(devices.ConfigError, match=r"p_stuck_on"):
        FlatCellConfig(p_stuck_on=1.5)
    with pytest.raises(devices.ConfigError, match=r"g_min_us"):
        FlatCellConfig(g_min_us=20.0)  # the window check of validate_cell_config
    rram = {f.name: f.metadata for f in fields(devices.RRAMConfig)}
    for f in fields(FlatCellConfig):
        if f.name != "g_max_us":
            assert f.metadata == rram[f.name], f.name
