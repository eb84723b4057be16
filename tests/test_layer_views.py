"""The analytic and inspection views of a programmed layer: the realised device parameters
(device_parameters), the drift-compensation gain on hardware_probability and
effective_parameters, and ChipModel.sample_states' dtypes."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy import stats
from torch import nn

import nsm
from crossbar import ChipConfig, HardwareLayer, TileConfig, analytic, replace_field
from mapping.compiler import compile_model
from mapping.runtime import program_chip


def layer_on(preset: str, structure: str = "per_cell", **noise) -> HardwareLayer:
    chip = ChipConfig.preset(preset, tile=TileConfig(32, 16))  # 40 x 24: 3 x 2 tiles
    chip = replace_field(chip, "devices.element.structure", structure)
    rng = np.random.default_rng(31)
    w = rng.standard_normal((40, 24))
    beta = rng.uniform(0.5, 2.0, 24)
    bias = 0.3 * rng.standard_normal(24)
    noise = noise or dict(noise="bernoulli", p=0.5)
    return HardwareLayer.build(w, beta, bias, chip=chip, rng=np.random.default_rng(32), **noise)


@pytest.mark.parametrize("structure", ["per_cell", "per_row"])
def test_device_parameters_are_what_the_engine_reads(structure):
    layer = layer_on("rram-selector", structure)
    params = layer.device_parameters(3600.0)
    arrays = layer.read_arrays(3600.0)
    for row in layer.tiles:
        for tile in row:
            rs, cs = tile.rows, tile.cols
            np.testing.assert_array_equal(params["g0_plus_us"][rs, cs], tile.g_plus.g0_us)
            np.testing.assert_array_equal(params["nu_minus"][rs, cs], tile.g_minus.nu)
            np.testing.assert_array_equal(params["stuck_plus"][rs, cs], tile.g_plus.stuck)
            mean = layer.conductance.mean(tile.g_minus, 3600.0)
            np.testing.assert_array_equal(params["g_minus_us"][rs, cs], mean)
    if structure == "per_cell":
        # the realised p is the 16-bit one of the stochastic read: m_s = p⁺G⁺ − p⁻G⁻
        m_s = np.block([[ta.m_s for ta in row] for row in arrays])
        g_p, g_m = params["g_plus_us"], params["g_minus_us"]
        np.testing.assert_allclose(m_s, params["p_plus"] * g_p - params["p_minus"] * g_m)
        assert np.all(params["p_plus"] * 2**16 == np.rint(params["p_plus"] * 2**16))
        assert params["p_plus"].std() > 0  # the selectors' device-to-device spread
    else:
        assert params["p_row"].shape == (40,) and "p_plus" not in params
        for row in arrays:
            np.testing.assert_array_equal(
                row[0].row_planes.quantised(), row[1].row_planes.quantised()
            )


def test_drift_compensation_gain_on_the_analytic_views():
    """pcm-gaussian (drift, Gaussian read-noise NSM: hardware_probability is exact) a day after
    programming: with the global drift gain α the prediction matches the sampled frequencies
    (chi-square, 4000 reads, p > 1e-3) and the normalised bias returns towards calibration."""
    layer = layer_on("pcm-gaussian", noise="gaussian", sigma=1.0)
    t = 86400.0
    alpha = layer.drift_signal_us(0.0) / layer.drift_signal_us(t)
    assert alpha > 1.05  # a drifting chip
    z = np.random.default_rng(33).choice([-1, 1], size=(20, 40))
    p_comp = layer.hardware_probability(z, t, read_gain=alpha)
    p_raw = layer.hardware_probability(z, t)
    assert np.max(np.abs(p_comp - p_raw)) > 0.02
    out = layer.sample(z, 4000, rng=np.random.default_rng(34), t_s=t, read_gain=alpha)
    freq = (out == 1).mean(axis=0)
    ok = 4000 * np.minimum(p_comp, 1 - p_comp) >= 20
    stat = np.sum((freq[ok] - p_comp[ok]) ** 2 * 4000 / (p_comp[ok] * (1 - p_comp[ok])))
    assert stats.chi2.sf(stat, df=int(ok.sum())) > 1e-3
    # b̃ = (offset − θ)/√(2 Var) with Var of the compensated read (the same moments).
    _, var = analytic.comparator_moments(layer, z.astype(np.int8), t, alpha)
    comp = layer.effective_parameters(t, read_gain=alpha).bias_tilde
    np.testing.assert_allclose(comp, (layer.offsets_ua - layer.threshold_ua) / np.sqrt(2 * var[0]))
    # Drift shrinks the spread, so the fixed thresholds weigh more (b̃ grows); the gain undoes
    # most of it (not all: PCM read noise does not scale with G under drift).
    cal = layer.effective.bias_tilde
    raw = layer.effective_parameters(t).bias_tilde
    assert np.mean(np.abs(comp - cal)) < 0.8 * np.mean(np.abs(raw - cal))
    with pytest.raises(ValueError, match="read_gain"):
        layer.hardware_probability(z, t, read_gain=0.0)


def test_sample_states_logits_are_float64():
    torch.manual_seed(0)
    model = nn.Sequential(
        nsm.BinarizeInput(), nn.Flatten(), nsm.NSMLinear(16, 8, p=0.5), nn.Linear(8, 3)
    )
    program = compile_model(model.eval(), (1, 4, 4))
    chip = program_chip(program, ChipConfig.preset("ideal"))
    x = np.random.default_rng(0).uniform(size=(5, 1, 4, 4))
    states = chip.sample_states(x, 2)
    assert states[-1].dtype == np.float64 and states[-1].shape == (2, 5, 3)
    assert all(s.dtype == np.int8 for s in states[:-1])
    np.testing.assert_allclose(states[-1].mean(axis=0).shape, chip.run(x, 2).probabilities.shape)
