"""The periphery's arithmetic: gain solve (including a noisy deterministic read), gain
quantisation, bias threshold, ADC conversion and full scale."""

from __future__ import annotations

import numpy as np
import pytest

from crossbar import ChipConfig, HardwareLayer, TileConfig, replace_field
from crossbar.periphery import (
    adc_convert,
    bias_threshold,
    quantise_gain,
    rms_full_scale,
    solve_gain,
)


def realised_beta(a, A, B, var_s, var_d):
    return (A + a * B) / np.sqrt(2 * (var_s + a**2 * var_d))


def test_solve_gain_reduces_to_design_formula():
    p = np.array([0.25, 0.5, 0.5])
    beta = np.array([0.3, 1.0, 4.0])
    # Ideal chip in units where V κ ‖w‖ = 1: A = p, B = 1, V_s = p(1 − p), R_d = 0.
    a = solve_gain(p, np.ones(3), p * (1 - p), np.zeros(3), beta)
    np.testing.assert_allclose(a, beta * np.sqrt(2 * p * (1 - p)) - p, rtol=1e-12)


def test_solve_gain_with_a_noisy_deterministic_read():
    rng = np.random.default_rng(0)
    A = rng.uniform(0.2, 1.0, 50)
    B = rng.uniform(0.8, 1.2, 50)
    var_s = rng.uniform(0.05, 0.3, 50)
    var_d = rng.uniform(0.0, 0.02, 50)
    beta = rng.uniform(-2.0, 3.0, 50)
    a = solve_gain(A, B, var_s, var_d, beta)
    reach = B / np.sqrt(2 * var_d)  # |β| is reachable below B/√(2 R_d) (and at the peak a*)
    ok = np.abs(beta) < 0.9 * reach
    assert ok.sum() > 40
    np.testing.assert_allclose(realised_beta(a, A, B, var_s, var_d)[ok], beta[ok], rtol=1e-9)
    # Out of reach: the gain of the largest reachable β (the ratio's peak a* = B V_s/(A R_d)).
    a = solve_gain(1.0, 1.0, 0.1, 0.05, 10.0)
    peak = 1.0 * 0.1 / (1.0 * 0.05)
    np.testing.assert_allclose(a, peak)
    grid = np.linspace(-50, 50, 100001)
    assert realised_beta(a, 1.0, 1.0, 0.1, 0.05) >= realised_beta(grid, 1.0, 1.0, 0.1, 0.05).max()
    assert solve_gain(1.0, 1.0, 0.1, 0.05, -10.0) == -np.inf  # clipped by quantise_gain
    assert solve_gain(1.0, 0.0, 0.1, 0.0, 1.0) == 0.0  # no deterministic signal: no gain


def test_quantise_gain_grid_range_and_continuous_mode():
    a = np.array([-20.0, -1.03, 0.0, 0.26, 7.99, 20.0, np.inf, -np.inf])
    q = quantise_gain(a, 4, 8.0)  # step 1, codes -8..7
    np.testing.assert_array_equal(q, [-8, -1, 0, 0, 7, 7, 7, -8])
    np.testing.assert_array_equal(quantise_gain(a, 0, 8.0), np.clip(a, -8, 8))


def test_bias_threshold_scales_with_the_realised_noise():
    b = np.array([1.0, -2.0, 0.5])
    norm = np.array([2.0, 1.0, 0.0])
    theta = bias_threshold(
        b, np.sqrt(0.5), norm, np.array([4.0, 1.0, 1.0]), fallback_ua=np.array([0.0, 0.0, -7.0])
    )
    # θ = −b √(2 Var)/(c ‖w‖); the zero column uses the fallback.
    np.testing.assert_allclose(
        theta, [-1.0 * np.sqrt(8) / (np.sqrt(0.5) * 2), 2.0 * np.sqrt(2) / np.sqrt(0.5), -7.0]
    )


def test_adc_convert_quantises_clips_and_counts():
    x = np.array([[-10.0, -0.26, 0.0, 0.24, 0.76, 9.9]])
    y, sat = adc_convert(x, np.full(6, 8.0), 5)  # step 0.5, codes -16..15 -> [-8, 7.5]
    np.testing.assert_array_equal(y, [[-8.0, -0.5, 0.0, 0.0, 1.0, 7.5]])
    assert sat == 2
    y, sat = adc_convert(x, np.full(6, 8.0), 0)  # ideal converter
    np.testing.assert_array_equal(y, x.astype(np.float32))
    assert sat == 0


def test_rms_full_scale_is_the_rms_over_random_inputs():
    rng = np.random.default_rng(1)
    m = rng.normal(0, 1, (200, 3))
    v = rng.uniform(0, 0.5, (200, 3))
    fs = rms_full_scale(m, v, 0.2, 4.0)
    z = rng.choice([-1.0, 1.0], size=(20000, 200))
    # Each cell adds z_j (m_j + √v_j·N): the noise of a column adds up to variance Σ_j v_j.
    q = 0.2 * (z @ m + np.sqrt(v.sum(0)) * rng.standard_normal((20000, 3)))
    rms = np.sqrt(np.mean(q**2, axis=0))
    np.testing.assert_allclose(fs / 4.0, rms, rtol=0.03)  # 20 000 draws: ~0.5 % standard error


@pytest.mark.parametrize("gain_bits", [0, 10])
def test_gaussian_read_noise_nsm_realises_the_trained_beta(gain_bits):
    """pcm-gaussian: the NSM's noise is the cells' read noise and the deterministic read is just
    as noisy, so a_i solves the quadratic; β is met exactly with a continuous gain and within
    the gain step otherwise."""
    rng = np.random.default_rng(2)
    w = rng.standard_normal((60, 12))
    beta = rng.uniform(0.5, 3.0, 12)
    chip = ChipConfig.from_preset("pcm-gaussian", tile=TileConfig(64, 16))
    chip = replace_field(chip, "periphery.gain_bits", gain_bits)
    chip = replace_field(chip, "periphery.gain_grid", "fixed")  # the two's-complement grid
    # The comparator noise lowers β and is not calibrated out: switch it off for this check.
    chip = replace_field(chip, "devices.neuron.noise_sigma_ua", 0.0)
    layer = HardwareLayer.build(
        w,
        beta,
        None,
        noise="gaussian",
        sigma=0.4,
        chip=chip,
        rng=np.random.default_rng(3),
        t_cal_s=60.0,
    )
    eff = layer.effective_parameters(t_s=60.0)
    assert np.all(layer.gain != 0)
    if gain_bits == 0:
        np.testing.assert_allclose(eff.beta, beta, rtol=1e-9)
    else:
        step = chip.periphery.gain_range / 2 ** (gain_bits - 1)
        assert np.max(np.abs(layer.gain - layer.gain_set)) == 0
        assert np.max(np.abs(eff.beta / beta - 1)) < 0.2
        assert np.max(np.abs(layer.gain_set - np.round(layer.gain_set / step) * step)) < 1e-12
