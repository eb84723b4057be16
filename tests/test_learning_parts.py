"""In-situ learning parts: estimators, transposed reads, pulse counts, chip moments, export."""
veraged over 3000 draws the|    # E[n_inc − n_dec] = −lr Σ_b x_bj d_bi / N (N: max or rms of Σ_b |d_bi|); over 1500 draws the|

veraged over 3000 draws the|    # E[n_inc − n_dec] = −lr Σ_b x_bj d_bi / N (N: max or rms of Σ_b |d_bi|); over 1500 draws the|
from __future__ import annotations
veraged over 3000 draws the|    # E[n_inc − n_dec] = −lr Σ_b x_bj d_bi / N (N: max or rms of Σ_b |d_bi|); over 1500 draws the|

veraged over 3000 draws the|    # E[n_inc − n_dec] = −lr Σ_b x_bj d_bi / N (N: max or rms of Σ_b |d_bi|); over 1500 draws the|
import numpy as np
veraged over 3000 draws the|    # E[n_inc − n_dec] = −lr Σ_b x_bj d_bi / N (N: max or rms of Σ_b |d_bi|); over 1500 draws the|
import pytest
veraged over 3000 draws the|    # E[n_inc − n_dec] = −lr Σ_b x_bj d_bi / N (N: max or rms of Σ_b |d_bi|); over 1500 draws the|
from scipy.special import ndtr
veraged over 3000 draws the|    # E[n_inc − n_dec] = −lr Σ_b x_bj d_bi / N (N: max or rms of Σ_b |d_bi|); over 1500 draws the|

veraged over 3000 draws the|    # E[n_inc − n_dec] = −lr Σ_b x_bj d_bi / N (N: max or rms of Σ_b |d_bi|); over 1500 draws the|
from crossbar import ChipConfig, HardwareLayer
veraged over 3000 draws the|    # E[n_inc − n_dec] = −lr Σ_b x_bj d_bi / N (N: max or rms of Σ_b |d_bi|); over 1500 draws the|
from crossbar.tile import Tile, read_arrays
veraged over 3000 draws the|    # E[n_inc − n_dec] = −lr Σ_b x_bj d_bi / N (N: max or rms of Σ_b |d_bi|); over 1500 draws the|
from crossbar.transpose import layer_transposed_read, transposed_read
veraged over 3000 draws the|    # E[n_inc − n_dec] = −lr Σ_b x_bj d_bi / N (N: max or rms of Σ_b |d_bi|); over 1500 draws the|
from devices.pulse import load_pulse_preset
veraged over 3000 draws the|    # E[n_inc − n_dec] = −lr Σ_b x_bj d_bi / N (N: max or rms of Σ_b |d_bi|); over 1500 draws the|
from mapping.estimators import estimate_density, exact_density, window_mean
veraged over 3000 draws the|    # E[n_inc − n_dec] = −lr Σ_b x_bj d_bi / N (N: max or rms of Σ_b |d_bi|); over 1500 draws the|
from mapping.learning import ChipLayer, LearningConfig, OnChipNetwork, _as_state
veraged over 3000 draws the|    # E[n_inc − n_dec] = −lr Σ_b x_bj d_bi / N (N: max or rms of Σ_b |d_bi|); over 1500 draws the|
from mapping.updates import pulse_counts
veraged over 3000 draws the|    # E[n_inc − n_dec] = −lr Σ_b x_bj d_bi / N (N: max or rms of Σ_b |d_bi|); over 1500 draws the|

veraged over 3000 draws the|    # E[n_inc − n_dec] = −lr Σ_b x_bj d_bi / N (N: max or rms of Σ_b |d_bi|); over 1500 draws the|

veraged over 3000 draws the|    # E[n_inc − n_dec] = −lr Σ_b x_bj d_bi / N (N: max or rms of Σ_b |d_bi|); over 1500 draws the|
@pytest.mark.parametrize("m_over_sigma", [0.0, 0.7, -1.5])
veraged over 3000 draws the|    # E[n_inc − n_dec] = −lr Σ_b x_bj d_bi / N (N: max or rms of Σ_b |d_bi|); over 1500 draws the|
def test_window_estimator_converges_to_density(m_over_sigma):
veraged over 3000 draws the|    # E[n_inc − n_dec] = −lr Σ_b x_bj d_bi / N (N: max or rms of Σ_b |d_bi|); over 1500 draws the|
    # The window estimator's mean is [Φ(Δ − x) − Φ(−Δ − x)]/(2Δσ) (bias O(Δ²)) and its sample
veraged over 3000 draws the|    # E[n_inc − n_dec] = −lr Σ_b x_bj d_bi / N (N: max or rms of Σ_b |d_bi|); over 1500 draws the|
    # mean over n reads has standard error sd/√n. Check (i) the sample mean agrees with that
veraged over 3000 draws the|    # E[n_inc − n_dec] = −lr Σ_b x_bj d_bi / N (N: max or rms of Σ_b |d_bi|); over 1500 draws the|
    # expectation within 4 standard errors, and (ii) the bias to the analytic density φ(x)/σ
veraged over 3000 draws the|    # E[n_inc − n_dec] = −lr Σ_b x_bj d_bi / N (N: max or rms of Σ_b |d_bi|); over 1500 draws the|
    # falls as Δ shrinks and is < 1 % at Δ = 0.1. Fixed seed.
veraged over 3000 draws the|    # E[n_inc − n_dec] = −lr Σ_b x_bj d_bi / N (N: max or rms of Σ_b |d_bi|); over 1500 draws the|
    sigma = 2.0
veraged over 3000 draws the|    # E[n_inc − n_dec] = −lr Σ_b x_bj d_bi / N (N: max or rms of Σ_b |d_bi|); over 1500 draws the|
    n = 400_000
veraged over 3000 draws the|    # E[n_inc − n_dec] = −lr Σ_b x_bj d_bi / N (N: max or rms of Σ_b |d_bi|); over 1500 draws the|
    rng = np.random.default_rng(11)
veraged over 3000 draws the|    # E[n_inc − n_dec] = −lr Σ_b x_bj d_bi / N (N: max or rms of Σ_b |d_bi|); over 1500 draws the|
    m = np.full(n, m_over_sigma * sigma)
veraged over 3000 draws the|    # E[n_inc − n_dec] = −lr Σ_b x_bj d_bi / N (N: max or rms of Σ_b |d_bi|); over 1500 draws the|
    target = exact_density(m[:1], sigma)[0]
veraged over 3000 draws the|    # E[n_inc − n_dec] = −lr Σ_b x_bj d_bi / N (N: max or rms of Σ_b |d_bi|); over 1500 draws the|
    errors = []
veraged over 3000 draws the|    # E[n_inc − n_dec] = −lr Σ_b x_bj d_bi / N (N: max or rms of Σ_b |d_bi|); over 1500 draws the|
    for delta in (1.0, 0.3, 0.1):
veraged over 3000 draws the|    # E[n_inc − n_dec] = −lr Σ_b x_bj d_bi / N (N: max or rms of Σ_b |d_bi|); over 1500 draws the|
        est = estimate_density("window", m, sigma, delta=delta, rng=rng)
veraged over 3000 draws the|    # E[n_inc − n_dec] = −lr Σ_b x_bj d_bi / N (N: max or rms of Σ_b |d_bi|); over 1500 draws the|
        se = est.std() / np.sqrt(n)
veraged over 3000 draws the|    # E[n_inc − n_dec] = −lr Σ_b x_bj d_bi / N (N: max or rms of Σ_b |d_bi|); over 1500 draws the|
        assert abs(est.mean() - window_mean(m[:1], sigma, delta)[0]) < 4 * se
veraged over 3000 draws the|    # E[n_inc − n_dec] = −lr Σ_b x_bj d_bi / N (N: max or rms of Σ_b |d_bi|); over 1500 draws the|
        errors.append(abs(window_mean(m[:1], sigma, delta)[0] - target) / target)
veraged over 3000 draws the|    # E[n_inc − n_dec] = −lr Σ_b x_bj d_bi / N (N: max or rms of Σ_b |d_bi|); over 1500 draws the|
        assert abs(est.mean() - target) < abs(window_mean(m[:1], sigma, delta)[0] - target) \
veraged over 3000 draws the|    # E[n_inc − n_dec] = −lr Σ_b x_bj d_bi / N (N: max or rms of Σ_b |d_bi|); over 1500 draws the|
            + 4 * se
veraged over 3000 draws the|    # E[n_inc − n_dec] = −lr Σ_b x_bj d_bi / N (N: max or rms of Σ_b |d_bi|); over 1500 draws the|
    assert errors[0] > errors[1] > errors[2] and errors[2] < 0.01
veraged over 3000 draws the|    # E[n_inc − n_dec] = −lr Σ_b x_bj d_bi / N (N: max or rms of Σ_b |d_bi|); over 1500 draws the|

veraged over 3000 draws the|    # E[n_inc − n_dec] = −lr Σ_b x_bj d_bi / N (N: max or rms of Σ_b |d_bi|); over 1500 draws the|

veraged over 3000 draws the|    # E[n_inc − n_dec] = −lr Σ_b x_bj d_bi / N (N: max or rms of Σ_b |d_bi|); over 1500 draws the|
@pytest.mark.parametrize("estimator", ["two_read", "score"])
veraged over 3000 draws the|    # E[n_inc − n_dec] = −lr Σ_b x_bj d_bi / N (N: max or rms of Σ_b |d_bi|); over 1500 draws the|
def test_other_estimators_are_unbiased(estimator):
veraged over 3000 draws the|    # E[n_inc − n_dec] = −lr Σ_b x_bj d_bi / N (N: max or rms of Σ_b |d_bi|); over 1500 draws the|
    # score: unbiased for every σ; two_read: mean = window_mean (→ density as Δ → 0).
veraged over 3000 draws the|    # E[n_inc − n_dec] = −lr Σ_b x_bj d_bi / N (N: max or rms of Σ_b |d_bi|); over 1500 draws the|
    # Sample mean within 4 standard errors of the expectation (fixed seed).
veraged over 3000 draws the|    # E[n_inc − n_dec] = −lr Σ_b x_bj d_bi / N (N: max or rms of Σ_b |d_bi|); over 1500 draws the|
    sigma, n = 1.5, 400_000
veraged over 3000 draws the|    # E[n_inc − n_dec] = −lr Σ_b x_bj d_bi / N (N: max or rms of Σ_b |d_bi|); over 1500 draws the|
    rng = np.random.default_rng(12)
veraged over 3000 draws the|    # E[n_inc − n_dec] = −lr Σ_b x_bj d_bi / N (N: max or rms of Σ_b |d_bi|); over 1500 draws the|
    m = np.full(n, 0.4 * sigma)
veraged over 3000 draws the|    # E[n_inc − n_dec] = −lr Σ_b x_bj d_bi / N (N: max or rms of Σ_b |d_bi|); over 1500 draws the|
    est = estimate_density(estimator, m, sigma, delta=0.2, rng=rng)
veraged over 3000 draws the|    # E[n_inc − n_dec] = −lr Σ_b x_bj d_bi / N (N: max or rms of Σ_b |d_bi|); over 1500 draws the|
    expect = (exact_density(m[:1], sigma) if estimator == "score"
veraged over 3000 draws the|    # E[n_inc − n_dec] = −lr Σ_b x_bj d_bi / N (N: max or rms of Σ_b |d_bi|); over 1500 draws the|
              else window_mean(m[:1], sigma, 0.2))[0]
veraged over 3000 draws the|    # E[n_inc − n_dec] = −lr Σ_b x_bj d_bi / N (N: max or rms of Σ_b |d_bi|); over 1500 draws the|
    assert abs(est.mean() - expect) < 4 * est.std() / np.sqrt(n)
veraged over 3000 draws the|    # E[n_inc − n_dec] = −lr Σ_b x_bj d_bi / N (N: max or rms of Σ_b |d_bi|); over 1500 draws the|

veraged over 3000 draws the|    # E[n_inc − n_dec] = −lr Σ_b x_bj d_bi / N (N: max or rms of Σ_b |d_bi|); over 1500 draws the|

veraged over 3000 draws the|    # E[n_inc − n_dec] = −lr Σ_b x_bj d_bi / N (N: max or rms of Σ_b |d_bi|); over 1500 draws the|
def test_estimator_errors():
veraged over 3000 draws the|    # E[n_inc − n_dec] = −lr Σ_b x_bj d_bi / N (N: max or rms of Σ_b |d_bi|); over 1500 draws the|
    with pytest.raises(ValueError, match="estimator"):
veraged over 3000 draws the|    # E[n_inc − n_dec] = −lr Σ_b x_bj d_bi / N (N: max or rms of Σ_b |d_bi|); over 1500 draws the|
        estimate_density("magic", np.zeros(2), 1.0)
veraged over 3000 draws the|    # E[n_inc − n_dec] = −lr Σ_b x_bj d_bi / N (N: max or rms of Σ_b |d_bi|); over 1500 draws the|
    with pytest.raises(ValueError, match="delta"):
veraged over 3000 draws the|    # E[n_inc − n_dec] = −lr Σ_b x_bj d_bi / N (N: max or rms of Σ_b |d_bi|); over 1500 draws the|
        estimate_density("window", np.zeros(2), 1.0, delta=0.0, rng=np.random.default_rng(0))
veraged over 3000 draws the|    # E[n_inc − n_dec] = −lr Σ_b x_bj d_bi / N (N: max or rms of Σ_b |d_bi|); over 1500 draws the|
    with pytest.raises(TypeError, match="rng"):
veraged over 3000 draws the|    # E[n_inc − n_dec] = −lr Σ_b x_bj d_bi / N (N: max or rms of Σ_b |d_bi|); over 1500 draws the|
        estimate_density("window", np.zeros(2), 1.0)
veraged over 3000 draws the|    # E[n_inc − n_dec] = −lr Σ_b x_bj d_bi / N (N: max or rms of Σ_b |d_bi|); over 1500 draws the|

veraged over 3000 draws the|    # E[n_inc − n_dec] = −lr Σ_b x_bj d_bi / N (N: max or rms of Σ_b |d_bi|); over 1500 draws the|

veraged over 3000 draws the|    # E[n_inc − n_dec] = −lr Σ_b x_bj d_bi / N (N: max or rms of Σ_b |d_bi|); over 1500 draws the|
def test_transposed_read_equals_wt_x_on_an_ideal_chip():
veraged over 3000 draws the|    # E[n_inc − n_dec] = −lr Σ_b x_bj d_bi / N (N: max or rms of Σ_b |d_bi|); over 1500 draws the|
    rng = np.random.default_rng(0)
veraged over 3000 draws the|    # E[n_inc − n_dec] = −lr Σ_b x_bj d_bi / N (N: max or rms of Σ_b |d_bi|); over 1500 draws the|
    w = rng.normal(size=(70, 30))
veraged over 3000 draws the|    # E[n_inc − n_dec] = −lr Σ_b x_bj d_bi / N (N: max or rms of Σ_b |d_bi|); over 1500 draws the|
    chip = ChipConfig.ideal()
veraged over 3000 draws the|    # E[n_inc − n_dec] = −lr Σ_b x_bj d_bi / N (N: max or rms of Σ_b |d_bi|); over 1500 draws the|
    layer = HardwareLayer.build(w, np.ones(30), noise="bernoulli", p=0.5, chip=chip,
veraged over 3000 draws the|    # E[n_inc − n_dec] = −lr Σ_b x_bj d_bi / N (N: max or rms of Σ_b |d_bi|); over 1500 draws the|
                                rng=np.random.default_rng(1))
veraged over 3000 draws the|    # E[n_inc − n_dec] = −lr Σ_b x_bj d_bi / N (N: max or rms of Σ_b |d_bi|); over 1500 draws the|
    delta = rng.normal(size=(5, 30))
veraged over 3000 draws the|    # E[n_inc − n_dec] = −lr Σ_b x_bj d_bi / N (N: max or rms of Σ_b |d_bi|); over 1500 draws the|
    e = layer_transposed_read(layer, delta)
veraged over 3000 draws the|    # E[n_inc − n_dec] = −lr Σ_b x_bj d_bi / N (N: max or rms of Σ_b |d_bi|); over 1500 draws the|
    np.testing.assert_allclose(e, chip.v_read_v * delta @ (layer.kappa_us * w).T, rtol=1e-10)
veraged over 3000 draws the|    # E[n_inc − n_dec] = −lr Σ_b x_bj d_bi / N (N: max or rms of Σ_b |d_bi|); over 1500 draws the|
    gp, gm = np.maximum(w, 0) + 1.0, np.maximum(-w, 0) + 1.0
veraged over 3000 draws the|    # E[n_inc − n_dec] = −lr Σ_b x_bj d_bi / N (N: max or rms of Σ_b |d_bi|); over 1500 draws the|
    np.testing.assert_allclose(transposed_read(gp, gm, delta, v_read_v=0.3),
veraged over 3000 draws the|    # E[n_inc − n_dec] = −lr Σ_b x_bj d_bi / N (N: max or rms of Σ_b |d_bi|); over 1500 draws the|
                               0.3 * delta @ w.T, rtol=1e-10, atol=1e-12)
veraged over 3000 draws the|    # E[n_inc − n_dec] = −lr Σ_b x_bj d_bi / N (N: max or rms of Σ_b |d_bi|); over 1500 draws the|

veraged over 3000 draws the|    # E[n_inc − n_dec] = −lr Σ_b x_bj d_bi / N (N: max or rms of Σ_b |d_bi|); over 1500 draws the|

veraged over 3000 draws the|    # E[n_inc − n_dec] = −lr Σ_b x_bj d_bi / N (N: max or rms of Σ_b |d_bi|); over 1500 draws the|
def test_transposed_read_noise_variance():
veraged over 3000 draws the|    # E[n_inc − n_dec] = −lr Σ_b x_bj d_bi / N (N: max or rms of Σ_b |d_bi|); over 1500 draws the|
    # read noise: Var e_j = V² Σ_i (σ⁺² + σ⁻²) δ_i²; sample variance over 20000 reads within
veraged over 3000 draws the|    # E[n_inc − n_dec] = −lr Σ_b x_bj d_bi / N (N: max or rms of Σ_b |d_bi|); over 1500 draws the|
    # 5 % (standard error of a variance estimate ≈ √(2/n) = 1 %).
veraged over 3000 draws the|    # E[n_inc − n_dec] = −lr Σ_b x_bj d_bi / N (N: max or rms of Σ_b |d_bi|); over 1500 draws the|
    rng = np.random.default_rng(3)
veraged over 3000 draws the|    # E[n_inc − n_dec] = −lr Σ_b x_bj d_bi / N (N: max or rms of Σ_b |d_bi|); over 1500 draws the|
    gp, gm = np.full((4, 6), 2.0), np.ones((4, 6))
veraged over 3000 draws the|    # E[n_inc − n_dec] = −lr Σ_b x_bj d_bi / N (N: max or rms of Σ_b |d_bi|); over 1500 draws the|
    delta = np.tile(np.linspace(-1, 1, 6), (20000, 1))
veraged over 3000 draws the|    # E[n_inc − n_dec] = −lr Σ_b x_bj d_bi / N (N: max or rms of Σ_b |d_bi|); over 1500 draws the|
    e = transposed_read(gp, gm, delta, v_read_v=0.5, read_sigma_plus_us=0.1 * gp,
veraged over 3000 draws the|    # E[n_inc − n_dec] = −lr Σ_b x_bj d_bi / N (N: max or rms of Σ_b |d_bi|); over 1500 draws the|
                        read_sigma_minus_us=0.1 * gm, rng=rng)
veraged over 3000 draws the|    # E[n_inc − n_dec] = −lr Σ_b x_bj d_bi / N (N: max or rms of Σ_b |d_bi|); over 1500 draws the|
    expect = 0.25 * np.sum((0.04 + 0.01) * delta[0] ** 2)
veraged over 3000 draws the|    # E[n_inc − n_dec] = −lr Σ_b x_bj d_bi / N (N: max or rms of Σ_b |d_bi|); over 1500 draws the|
    np.testing.assert_allclose(e.var(axis=0), expect, rtol=0.05)
veraged over 3000 draws the|    # E[n_inc − n_dec] = −lr Σ_b x_bj d_bi / N (N: max or rms of Σ_b |d_bi|); over 1500 draws the|
    np.testing.assert_allclose(e.mean(axis=0), 0.5 * (delta[0] @ (gp - gm).T), atol=0.01)
veraged over 3000 draws the|    # E[n_inc − n_dec] = −lr Σ_b x_bj d_bi / N (N: max or rms of Σ_b |d_bi|); over 1500 draws the|

veraged over 3000 draws the|    # E[n_inc − n_dec] = −lr Σ_b x_bj d_bi / N (N: max or rms of Σ_b |d_bi|); over 1500 draws the|

veraged over 3000 draws the|    # E[n_inc − n_dec] = −lr Σ_b x_bj d_bi / N (N: max or rms of Σ_b |d_bi|); over 1500 draws the|
@pytest.mark.parametrize("update,norm", [("deterministic", "max"), ("stochastic", "max"),
veraged over 3000 draws the|    # E[n_inc − n_dec] = −lr Σ_b x_bj d_bi / N (N: max or rms of Σ_b |d_bi|); over 1500 draws the|
                                         ("deterministic", "rms"), ("stochastic", "rms")])
veraged over 3000 draws the|    # E[n_inc − n_dec] = −lr Σ_b x_bj d_bi / N (N: max or rms of Σ_b |d_bi|); over 1500 draws the|
def test_pulse_counts_have_the_managed_mean(update, norm):
veraged over 3000 draws the|    # E[n_inc − n_dec] = −lr Σ_b x_bj d_bi / N (N: max or rms of Σ_b |d_bi|); over 1500 draws the|
d_bi|d_bi|; averaged over 3000 draws the
veraged over 3000 draws the|    # E[n_inc − n_dec] = −lr Σ_b x_bj d_bi / N (N: max or rms of Σ_b |d_bi|); over 1500 draws the|
    # net count is within 5 standard errors of it for every device (fixed seed).
veraged over 3000 draws the|    # E[n_inc − n_dec] = −lr Σ_b x_bj d_bi / N (N: max or rms of Σ_b |d_bi|); over 1500 draws the|
    rng = np.random.default_rng(4)
veraged over 3000 draws the|    # E[n_inc − n_dec] = −lr Σ_b x_bj d_bi / N (N: max or rms of Σ_b |d_bi|); over 1500 draws the|
    x = np.where(rng.random((8, 5)) < 0.5, 1.0, -1.0)
veraged over 3000 draws the|    # E[n_inc − n_dec] = −lr Σ_b x_bj d_bi / N (N: max or rms of Σ_b |d_bi|); over 1500 draws the|
    d = rng.normal(size=(8, 3))
veraged over 3000 draws the|    # E[n_inc − n_dec] = −lr Σ_b x_bj d_bi / N (N: max or rms of Σ_b |d_bi|); over 1500 draws the|
    col = np.abs(d).sum(axis=0)
veraged over 3000 draws the|    # E[n_inc − n_dec] = −lr Σ_b x_bj d_bi / N (N: max or rms of Σ_b |d_bi|); over 1500 draws the|
    big_n = col.max() if norm == "max" else np.sqrt(np.mean(col**2))
veraged over 3000 draws the|    # E[n_inc − n_dec] = −lr Σ_b x_bj d_bi / N (N: max or rms of Σ_b |d_bi|); over 1500 draws the|
    target = -2.0 * (x.T @ d) / big_n
veraged over 3000 draws the|    # E[n_inc − n_dec] = −lr Σ_b x_bj d_bi / N (N: max or rms of Σ_b |d_bi|); over 1500 draws the|
    nets = []
veraged over 3000 draws the|    # E[n_inc − n_dec] = −lr Σ_b x_bj d_bi / N (N: max or rms of Σ_b |d_bi|); over 1500 draws the|
    for _ in range(1500):
veraged over 3000 draws the|    # E[n_inc − n_dec] = −lr Σ_b x_bj d_bi / N (N: max or rms of Σ_b |d_bi|); over 1500 draws the|
        n_inc, n_dec = pulse_counts(x, d, 2.0, update=update, rng=rng, norm=norm)
veraged over 3000 draws the|    # E[n_inc − n_dec] = −lr Σ_b x_bj d_bi / N (N: max or rms of Σ_b |d_bi|); over 1500 draws the|
        assert n_inc.min() >= 0 and n_dec.min() >= 0
veraged over 3000 draws the|    # E[n_inc − n_dec] = −lr Σ_b x_bj d_bi / N (N: max or rms of Σ_b |d_bi|); over 1500 draws the|
        nets.append(n_inc - n_dec)
veraged over 3000 draws the|    # E[n_inc − n_dec] = −lr Σ_b x_bj d_bi / N (N: max or rms of Σ_b |d_bi|); over 1500 draws the|
    nets = np.array(nets, dtype=float)
veraged over 3000 draws the|    # E[n_inc − n_dec] = −lr Σ_b x_bj d_bi / N (N: max or rms of Σ_b |d_bi|); over 1500 draws the|
    # standard error from the sample variance; + 1/n guards near-integer targets, whose rare
veraged over 3000 draws the|    # E[n_inc − n_dec] = −lr Σ_b x_bj d_bi / N (N: max or rms of Σ_b |d_bi|); over 1500 draws the|
    # outcome may not occur at all in n draws (sample variance 0)
veraged over 3000 draws the|    # E[n_inc − n_dec] = −lr Σ_b x_bj d_bi / N (N: max or rms of Σ_b |d_bi|); over 1500 draws the|
    n = len(nets)
veraged over 3000 draws the|    # E[n_inc − n_dec] = −lr Σ_b x_bj d_bi / N (N: max or rms of Σ_b |d_bi|); over 1500 draws the|
    se = np.sqrt((nets.var(axis=0) + 1.0 / n) / n)
veraged over 3000 draws the|    # E[n_inc − n_dec] = −lr Σ_b x_bj d_bi / N (N: max or rms of Σ_b |d_bi|); over 1500 draws the|
    assert np.all(np.abs(nets.mean(axis=0) - target) < 5 * se)
veraged over 3000 draws the|    # E[n_inc − n_dec] = −lr Σ_b x_bj d_bi / N (N: max or rms of Σ_b |d_bi|); over 1500 draws the|
    if update == "deterministic":
veraged over 3000 draws the|    # E[n_inc − n_dec] = −lr Σ_b x_bj d_bi / N (N: max or rms of Σ_b |d_bi|); over 1500 draws the|
        assert np.all((n_inc == 0) | (n_dec == 0))  # one polarity per device
veraged over 3000 draws the|    # E[n_inc − n_dec] = −lr Σ_b x_bj d_bi / N (N: max or rms of Σ_b |d_bi|); over 1500 draws the|

veraged over 3000 draws the|    # E[n_inc − n_dec] = −lr Σ_b x_bj d_bi / N (N: max or rms of Σ_b |d_bi|); over 1500 draws the|

veraged over 3000 draws the|    # E[n_inc − n_dec] = −lr Σ_b x_bj d_bi / N (N: max or rms of Σ_b |d_bi|); over 1500 draws the|
@pytest.mark.parametrize("preset", ["ideal", "selector-fefet"])
veraged over 3000 draws the|    # E[n_inc − n_dec] = −lr Σ_b x_bj d_bi / N (N: max or rms of Σ_b |d_bi|); over 1500 draws the|
def test_chip_layer_moments_match_the_engine(preset):
veraged over 3000 draws the|    # E[n_inc − n_dec] = −lr Σ_b x_bj d_bi / N (N: max or rms of Σ_b |d_bi|); over 1500 draws the|
    # The learning layer's read coefficients equal crossbar.tile.read_arrays on the same
veraged over 3000 draws the|    # E[n_inc − n_dec] = −lr Σ_b x_bj d_bi / N (N: max or rms of Σ_b |d_bi|); over 1500 draws the|
    # conductances and element state (the one engine's physics), up to p quantisation (2^-16).
veraged over 3000 draws the|    # E[n_inc − n_dec] = −lr Σ_b x_bj d_bi / N (N: max or rms of Σ_b |d_bi|); over 1500 draws the|
    from mapping.chips import resolve_chip
veraged over 3000 draws the|    # E[n_inc − n_dec] = −lr Σ_b x_bj d_bi / N (N: max or rms of Σ_b |d_bi|); over 1500 draws the|

veraged over 3000 draws the|    # E[n_inc − n_dec] = −lr Σ_b x_bj d_bi / N (N: max or rms of Σ_b |d_bi|); over 1500 draws the|
    chip = resolve_chip(preset)
veraged over 3000 draws the|    # E[n_inc − n_dec] = −lr Σ_b x_bj d_bi / N (N: max or rms of Σ_b |d_bi|); over 1500 draws the|
    w0 = np.random.default_rng(5).uniform(-0.1, 0.1, (20, 7))
veraged over 3000 draws the|    # E[n_inc − n_dec] = −lr Σ_b x_bj d_bi / N (N: max or rms of Σ_b |d_bi|); over 1500 draws the|
    layer = ChipLayer(w0, chip=chip, pulse=load_pulse_preset("ideal"),
veraged over 3000 draws the|    # E[n_inc − n_dec] = −lr Σ_b x_bj d_bi / N (N: max or rms of Σ_b |d_bi|); over 1500 draws the|
                      pair_update="bidirectional", beta_init=1.0, init_fill=0.5,
veraged over 3000 draws the|    # E[n_inc − n_dec] = −lr Σ_b x_bj d_bi / N (N: max or rms of Σ_b |d_bi|); over 1500 draws the|
                      rng=np.random.default_rng(6))
veraged over 3000 draws the|    # E[n_inc − n_dec] = −lr Σ_b x_bj d_bi / N (N: max or rms of Σ_b |d_bi|); over 1500 draws the|
    elem = chip.devices.element_model()
veraged over 3000 draws the|    # E[n_inc − n_dec] = −lr Σ_b x_bj d_bi / N (N: max or rms of Σ_b |d_bi|); over 1500 draws the|
    state = elem.program((40, 7), rng=np.random.default_rng(6).spawn(4)[2])
veraged over 3000 draws the|    # E[n_inc − n_dec] = −lr Σ_b x_bj d_bi / N (N: max or rms of Σ_b |d_bi|); over 1500 draws the|
    tile = Tile(rows=slice(0, 20), cols=slice(0, 7), g_plus=_as_state(layer.g_plus.g_us),
veraged over 3000 draws the|    # E[n_inc − n_dec] = −lr Σ_b x_bj d_bi / N (N: max or rms of Σ_b |d_bi|); over 1500 draws the|
                g_minus=_as_state(layer.g_minus.g_us), element=state)
veraged over 3000 draws the|    # E[n_inc − n_dec] = −lr Σ_b x_bj d_bi / N (N: max or rms of Σ_b |d_bi|); over 1500 draws the|
    ta = read_arrays(tile, conductance=layer.cond, element=elem, t_s=0.0, r_wire_ohm=0.0)
veraged over 3000 draws the|    # E[n_inc − n_dec] = −lr Σ_b x_bj d_bi / N (N: max or rms of Σ_b |d_bi|); over 1500 draws the|
    mom = layer.moments()
veraged over 3000 draws the|    # E[n_inc − n_dec] = −lr Σ_b x_bj d_bi / N (N: max or rms of Σ_b |d_bi|); over 1500 draws the|
    for name in ("m_s", "m_d", "v_el", "v_rd", "v_d"):
veraged over 3000 draws the|    # E[n_inc − n_dec] = −lr Σ_b x_bj d_bi / N (N: max or rms of Σ_b |d_bi|); over 1500 draws the|
        np.testing.assert_allclose(mom[name], getattr(ta, name), rtol=1e-4, atol=1e-9)
veraged over 3000 draws the|    # E[n_inc − n_dec] = −lr Σ_b x_bj d_bi / N (N: max or rms of Σ_b |d_bi|); over 1500 draws the|

veraged over 3000 draws the|    # E[n_inc − n_dec] = −lr Σ_b x_bj d_bi / N (N: max or rms of Σ_b |d_bi|); over 1500 draws the|

veraged over 3000 draws the|    # E[n_inc − n_dec] = −lr Σ_b x_bj d_bi / N (N: max or rms of Σ_b |d_bi|); over 1500 draws the|
def test_exact_estimator_gradient_matches_mean_field_gradient():
veraged over 3000 draws the|    # E[n_inc − n_dec] = −lr Σ_b x_bj d_bi / N (N: max or rms of Σ_b |d_bi|); over 1500 draws the|
    # On the ideal chip with the exact estimator, the hardware gradient differs from the
veraged over 3000 draws the|    # E[n_inc − n_dec] = −lr Σ_b x_bj d_bi / N (N: max or rms of Σ_b |d_bi|); over 1500 draws the|
    # mean-field gradient only by the omitted dσ/dG term: cosine > 0.98 per layer.
veraged over 3000 draws the|    # E[n_inc − n_dec] = −lr Σ_b x_bj d_bi / N (N: max or rms of Σ_b |d_bi|); over 1500 draws the|
    net = OnChipNetwork(LearningConfig(estimator="exact"), ChipConfig.ideal(),
veraged over 3000 draws the|    # E[n_inc − n_dec] = −lr Σ_b x_bj d_bi / N (N: max or rms of Σ_b |d_bi|); over 1500 draws the|
                        load_pulse_preset("ideal"))
veraged over 3000 draws the|    # E[n_inc − n_dec] = −lr Σ_b x_bj d_bi / N (N: max or rms of Σ_b |d_bi|); over 1500 draws the|
    rng = np.random.default_rng(7)
veraged over 3000 draws the|    # E[n_inc − n_dec] = −lr Σ_b x_bj d_bi / N (N: max or rms of Σ_b |d_bi|); over 1500 draws the|
    x = rng.random((64, 1, 8, 8))
veraged over 3000 draws the|    # E[n_inc − n_dec] = −lr Σ_b x_bj d_bi / N (N: max or rms of Σ_b |d_bi|); over 1500 draws the|
    y = rng.integers(0, 10, 64)
veraged over 3000 draws the|    # E[n_inc − n_dec] = −lr Σ_b x_bj d_bi / N (N: max or rms of Σ_b |d_bi|); over 1500 draws the|
    res = net.step(x, y, lr_pulses=1.0, rng=rng, apply=False)
veraged over 3000 draws the|    # E[n_inc − n_dec] = −lr Σ_b x_bj d_bi / N (N: max or rms of Σ_b |d_bi|); over 1500 draws the|
    exact = net.exact_gradients(res.cache, y)
veraged over 3000 draws the|    # E[n_inc − n_dec] = −lr Σ_b x_bj d_bi / N (N: max or rms of Σ_b |d_bi|); over 1500 draws the|
    for h, g in zip(res.grads, exact, strict=True):
veraged over 3000 draws the|    # E[n_inc − n_dec] = −lr Σ_b x_bj d_bi / N (N: max or rms of Σ_b |d_bi|); over 1500 draws the|
        assert np.sum(h * g) / np.linalg.norm(h) / np.linalg.norm(g) > 0.98
veraged over 3000 draws the|    # E[n_inc − n_dec] = −lr Σ_b x_bj d_bi / N (N: max or rms of Σ_b |d_bi|); over 1500 draws the|

veraged over 3000 draws the|    # E[n_inc − n_dec] = −lr Σ_b x_bj d_bi / N (N: max or rms of Σ_b |d_bi|); over 1500 draws the|

veraged over 3000 draws the|    # E[n_inc − n_dec] = −lr Σ_b x_bj d_bi / N (N: max or rms of Σ_b |d_bi|); over 1500 draws the|
def test_program_export_reproduces_the_chip_probabilities():
veraged over 3000 draws the|    # E[n_inc − n_dec] = −lr Σ_b x_bj d_bi / N (N: max or rms of Σ_b |d_bi|); over 1500 draws the|
    net = OnChipNetwork(LearningConfig(), ChipConfig.ideal(), load_pulse_preset("rram"))
veraged over 3000 draws the|    # E[n_inc − n_dec] = −lr Σ_b x_bj d_bi / N (N: max or rms of Σ_b |d_bi|); over 1500 draws the|
    prog = net.to_program({"model": "digits-mlp"})
veraged over 3000 draws the|    # E[n_inc − n_dec] = −lr Σ_b x_bj d_bi / N (N: max or rms of Σ_b |d_bi|); over 1500 draws the|
    z = np.where(np.random.default_rng(8).random((16, 64)) < 0.5, 1.0, -1.0)
veraged over 3000 draws the|    # E[n_inc − n_dec] = −lr Σ_b x_bj d_bi / N (N: max or rms of Σ_b |d_bi|); over 1500 draws the|
    layer = net.layers[0]
veraged over 3000 draws the|    # E[n_inc − n_dec] = −lr Σ_b x_bj d_bi / N (N: max or rms of Σ_b |d_bi|); over 1500 draws the|
    c = layer.forward(z, np.random.default_rng(9))
veraged over 3000 draws the|    # E[n_inc − n_dec] = −lr Σ_b x_bj d_bi / N (N: max or rms of Σ_b |d_bi|); over 1500 draws the|
    p_chip = ndtr(c["margin"] / c["sigma"])
veraged over 3000 draws the|    # E[n_inc − n_dec] = −lr Σ_b x_bj d_bi / N (N: max or rms of Σ_b |d_bi|); over 1500 draws the|
    dense = next(r for r in prog.layers if r.kind == "dense")
veraged over 3000 draws the|    # E[n_inc − n_dec] = −lr Σ_b x_bj d_bi / N (N: max or rms of Σ_b |d_bi|); over 1500 draws the|
    np.testing.assert_allclose(dense.firing_probability(z), p_chip, atol=2e-5)
veraged over 3000 draws the|    # E[n_inc − n_dec] = −lr Σ_b x_bj d_bi / N (N: max or rms of Σ_b |d_bi|); over 1500 draws the|

veraged over 3000 draws the|    # E[n_inc − n_dec] = −lr Σ_b x_bj d_bi / N (N: max or rms of Σ_b |d_bi|); over 1500 draws the|

veraged over 3000 draws the|    # E[n_inc − n_dec] = −lr Σ_b x_bj d_bi / N (N: max or rms of Σ_b |d_bi|); over 1500 draws the|
def test_learning_config_errors():
veraged over 3000 draws the|    # E[n_inc − n_dec] = −lr Σ_b x_bj d_bi / N (N: max or rms of Σ_b |d_bi|); over 1500 draws the|
    with pytest.raises(ValueError, match="estimator"):
veraged over 3000 draws the|    # E[n_inc − n_dec] = −lr Σ_b x_bj d_bi / N (N: max or rms of Σ_b |d_bi|); over 1500 draws the|
        LearningConfig(estimator="nope")
veraged over 3000 draws the|    # E[n_inc − n_dec] = −lr Σ_b x_bj d_bi / N (N: max or rms of Σ_b |d_bi|); over 1500 draws the|
    with pytest.raises(ValueError, match="batch_size"):
veraged over 3000 draws the|    # E[n_inc − n_dec] = −lr Σ_b x_bj d_bi / N (N: max or rms of Σ_b |d_bi|); over 1500 draws the|
        LearningConfig(batch_size=0)
veraged over 3000 draws the|    # E[n_inc − n_dec] = −lr Σ_b x_bj d_bi / N (N: max or rms of Σ_b |d_bi|); over 1500 draws the|
    with pytest.raises(ValueError, match="lr_pulses"):
veraged over 3000 draws the|    # E[n_inc − n_dec] = −lr Σ_b x_bj d_bi / N (N: max or rms of Σ_b |d_bi|); over 1500 draws the|
        LearningConfig(lr_pulses=-1.0)
veraged over 3000 draws the|    # E[n_inc − n_dec] = −lr Σ_b x_bj d_bi / N (N: max or rms of Σ_b |d_bi|); over 1500 draws the|
