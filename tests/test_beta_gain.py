"""The β gain fitted to the layer (periphery.gain_grid = "fitted"): the grid's rule, and β_eff/β
on pcm-gaussian set by the devices, not by the gain's quantisation."""

from __future__ import annotations

import numpy as np
import pytest

from crossbar import ChipConfig, HardwareLayer, replace_field
from crossbar.periphery import fitted_gain_grid, quantise_gain_fitted


def test_fitted_grid_rule():
    a = np.array([-0.99, -0.9, -0.5, np.inf, -np.inf, 20.0])
    grid = fitted_gain_grid(a, 8, 8.0, offset=1.0)
    # c = a + 1 clipped first: [0.01, 0.1, 0.5, 9, -7, 9] -> both signs: a sign bit, 128 levels
    assert grid.signed and grid.levels == 128
    assert grid.lo == pytest.approx(0.01) and grid.lo * grid.ratio**127 == pytest.approx(9.0)
    q, _ = quantise_gain_fitted(a[:3], 8, 8.0, offset=1.0)
    grid3 = fitted_gain_grid(a[:3], 8, 8.0, offset=1.0)
    assert not grid3.signed and grid3.levels == 256
    # every code within half a log step of the wanted c, relative to c
    c, cq = a[:3] + 1.0, q + 1.0
    assert np.all(np.abs(np.log(cq / c)) <= 0.5 * np.log(grid3.ratio) + 1e-12)
    assert q[0] == pytest.approx(-0.99) and q[2] == pytest.approx(-0.5)  # the ends are codes
    # one distinct value: one code, exact
    same, g = quantise_gain_fitted(np.full(4, 0.3), 8, 8.0, offset=0.5)
    np.testing.assert_allclose(same, 0.3)
    assert g.ratio == 1.0
    cont, none = quantise_gain_fitted(np.array([9.0, -0.2]), 0, 8.0)
    assert none is None and list(cont) == [8.0, -0.2]


def gaussian_layer(grid: str, bits: int) -> HardwareLayer:
    """A 200 x 300 Gaussian NSM layer with β spread over 0.1-4 (log-uniform) on pcm-gaussian:
    a_i = β_i √2 σ_eff − 1 cluster just above −1 (read noise is the NSM's noise)."""
    rng = np.random.default_rng(0)
    w = rng.standard_normal((200, 300))
    beta = np.exp(rng.uniform(np.log(0.1), np.log(4.0), 300))
    bias = rng.standard_normal(300) * 0.2
    chip = replace_field(ChipConfig.preset("pcm-gaussian"), "periphery.gain_grid", grid)
    chip = replace_field(chip, "periphery.gain_bits", bits)
    return HardwareLayer.build(
        w, beta, bias, noise="gaussian", sigma=1.0, chip=chip, rng=np.random.default_rng(1)
    )


def test_beta_ratio_on_pcm_gaussian_is_the_devices_not_the_gain():
    fitted = gaussian_layer("fitted", 8)  # the preset's default gain
    continuous = gaussian_layer("fitted", 0)  # same devices (same programming seed), exact a_i
    beta = fitted.beta
    assert fitted.chip.periphery.gain_grid == "fitted" and fitted.chip.periphery.gain_bits == 8
    ratio = fitted.effective.beta / beta
    devices = continuous.effective.beta / beta
    # No neuron far from 1: the realised β differs from the continuous gain's by at most the
    # grid's half step (relative, 40x β range on 256 log codes: 0.72 %), plus the offset's
    # approximation of each column's cancellation point (measured ~0.1 %): 1 % bound.
    half_step = 0.5 * np.log(fitted.gain_grid.ratio)
    assert half_step < 0.008
    assert np.max(np.abs(ratio / devices - 1.0)) < 0.01
    assert abs(np.mean(ratio) - np.mean(devices)) < 1e-3
    assert ratio.min() > 0.98 and ratio.max() < 1.02
    # The fixed two's-complement grid (step 1/16 over ±8) cannot: β_eff/β spans 0 to ~2.
    fixed = gaussian_layer("fixed", 8).effective.beta / beta
    assert fixed.min() < 0.05 and fixed.max() > 1.5
