"""In-situ learning parts: estimators, transposed reads, pulse counts, chip moments, export."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.special import ndtr

from crossbar import ChipConfig, HardwareLayer
from crossbar.tile import Tile, read_arrays
from crossbar.transpose import layer_transposed_read, transposed_read
from devices.pulse import load_pulse_preset
from mapping.estimators import estimate_density, exact_density, window_mean
from mapping.learning import ChipLayer, LearningConfig, OnChipNetwork
from mapping.learning.layer import _as_state
from mapping.reference import firing_probability
from mapping.updates import pulse_counts


@pytest.mark.parametrize("m_over_sigma", [0.0, 0.7, -1.5])
def test_window_estimator_converges_to_density(m_over_sigma):
    # The window estimator's mean is [Φ(Δ − x) − Φ(−Δ − x)]/(2Δσ) (bias O(Δ²)) and its sample
    # mean over n reads has standard error sd/√n. Check (i) the sample mean agrees with that
    # expectation within 4 standard errors, and (ii) the bias to the analytic density φ(x)/σ
    # falls as Δ shrinks and is < 1 % at Δ = 0.1. Fixed seed.
    sigma = 2.0
    n = 400_000
    rng = np.random.default_rng(11)
    m = np.full(n, m_over_sigma * sigma)
    target = exact_density(m[:1], sigma)[0]
    errors = []
    for delta in (1.0, 0.3, 0.1):
        est = estimate_density("window", m, sigma, delta=delta, rng=rng)
        se = est.std() / np.sqrt(n)
        assert abs(est.mean() - window_mean(m[:1], sigma, delta)[0]) < 4 * se
        errors.append(abs(window_mean(m[:1], sigma, delta)[0] - target) / target)
        assert abs(est.mean() - target) < abs(window_mean(m[:1], sigma, delta)[0] - target) + 4 * se
    assert errors[0] > errors[1] > errors[2] and errors[2] < 0.01


@pytest.mark.parametrize("estimator", ["two_read", "score"])
def test_other_estimators_are_unbiased(estimator):
    # score: unbiased for every σ; two_read: mean = window_mean (→ density as Δ → 0).
    # Sample mean within 4 standard errors of the expectation (fixed seed).
    sigma, n = 1.5, 400_000
    rng = np.random.default_rng(12)
    m = np.full(n, 0.4 * sigma)
    est = estimate_density(estimator, m, sigma, delta=0.2, rng=rng)
    expect = (
        exact_density(m[:1], sigma) if estimator == "score" else window_mean(m[:1], sigma, 0.2)
    )[0]
    assert abs(est.mean() - expect) < 4 * est.std() / np.sqrt(n)


def test_estimator_errors():
    with pytest.raises(ValueError, match="estimator"):
        estimate_density("magic", np.zeros(2), 1.0)
    with pytest.raises(ValueError, match="delta"):
        estimate_density("window", np.zeros(2), 1.0, delta=0.0, rng=np.random.default_rng(0))
    with pytest.raises(TypeError, match="rng"):
        estimate_density("window", np.zeros(2), 1.0)


def test_transposed_read_equals_wt_x_on_an_ideal_chip():
    rng = np.random.default_rng(0)
    w = rng.normal(size=(70, 30))
    chip = ChipConfig.ideal()
    layer = HardwareLayer.build(
        w, np.ones(30), noise="bernoulli", p=0.5, chip=chip, rng=np.random.default_rng(1)
    )
    delta = rng.normal(size=(5, 30))
    e = layer_transposed_read(layer, delta)
    np.testing.assert_allclose(e, chip.v_read_v * delta @ (layer.kappa_us * w).T, rtol=1e-10)
    gp, gm = np.maximum(w, 0) + 1.0, np.maximum(-w, 0) + 1.0
    np.testing.assert_allclose(
        transposed_read(gp, gm, delta, v_read_v=0.3), 0.3 * delta @ w.T, rtol=1e-10, atol=1e-12
    )


def test_transposed_read_noise_variance():
    # read noise: Var e_j = V² Σ_i (σ⁺² + σ⁻²) δ_i²; sample variance over 20000 reads within
    # 5 % (standard error of a variance estimate ≈ √(2/n) = 1 %).
    rng = np.random.default_rng(3)
    gp, gm = np.full((4, 6), 2.0), np.ones((4, 6))
    delta = np.tile(np.linspace(-1, 1, 6), (20000, 1))
    e = transposed_read(
        gp,
        gm,
        delta,
        v_read_v=0.5,
        read_sigma_plus_us=0.1 * gp,
        read_sigma_minus_us=0.1 * gm,
        rng=rng,
    )
    expect = 0.25 * np.sum((0.04 + 0.01) * delta[0] ** 2)
    np.testing.assert_allclose(e.var(axis=0), expect, rtol=0.05)
    np.testing.assert_allclose(e.mean(axis=0), 0.5 * (delta[0] @ (gp - gm).T), atol=0.01)


@pytest.mark.parametrize(
    "update,norm",
    [
        ("deterministic", "max"),
        ("stochastic", "max"),
        ("deterministic", "rms"),
        ("stochastic", "rms"),
    ],
)
def test_pulse_counts_have_the_managed_mean(update, norm):
    # E[n_inc − n_dec] = −lr Σ_b x_bj d_bi / N, N the max (or rms) over columns of
    # Σ_b |d_bi|; averaged over 1500 draws the net count is within 5 standard errors of it
    # for every device (fixed seed).
    rng = np.random.default_rng(4)
    x = np.where(rng.random((8, 5)) < 0.5, 1.0, -1.0)
    d = rng.normal(size=(8, 3))
    col = np.abs(d).sum(axis=0)
    big_n = col.max() if norm == "max" else np.sqrt(np.mean(col**2))
    target = -2.0 * (x.T @ d) / big_n
    nets = []
    for _ in range(1500):
        n_inc, n_dec = pulse_counts(x, d, 2.0, update=update, rng=rng, norm=norm)
        assert n_inc.min() >= 0 and n_dec.min() >= 0
        nets.append(n_inc - n_dec)
    nets = np.array(nets, dtype=float)
    # standard error from the sample variance; + 1/n guards near-integer targets, whose rare
    # outcome may not occur at all in n draws (sample variance 0)
    n = len(nets)
    se = np.sqrt((nets.var(axis=0) + 1.0 / n) / n)
    assert np.all(np.abs(nets.mean(axis=0) - target) < 5 * se)
    if update == "deterministic":
        assert np.all((n_inc == 0) | (n_dec == 0))  # one polarity per device


@pytest.mark.parametrize("preset", ["ideal", "selector-fefet"])
def test_chip_layer_moments_match_the_engine(preset):
    # The learning layer's read coefficients equal crossbar.tile.read_arrays on the same
    # conductances and element state (the one engine's physics), up to p quantisation (2^-16).
    from mapping.chips import resolve_chip

    chip = resolve_chip(preset)
    w0 = np.random.default_rng(5).uniform(-0.1, 0.1, (20, 7))
    layer = ChipLayer(
        w0,
        chip=chip,
        pulse=load_pulse_preset("ideal"),
        pair_update="bidirectional",
        beta_init=1.0,
        init_fill=0.5,
        rng=np.random.default_rng(6),
    )
    elem = chip.devices.element_model()
    state = elem.program((40, 7), rng=np.random.default_rng(6).spawn(4)[2])
    tile = Tile(
        rows=slice(0, 20),
        cols=slice(0, 7),
        g_plus=_as_state(layer.g_plus.g_us),
        g_minus=_as_state(layer.g_minus.g_us),
        element=state,
    )
    ta = read_arrays(tile, conductance=layer.cond, element=elem, t_s=0.0, r_wire_ohm=0.0)
    mom = layer.moments()
    for name in ("m_s", "m_d", "v_el", "v_rd", "v_d"):
        np.testing.assert_allclose(mom[name], getattr(ta, name), rtol=1e-4, atol=1e-9)


def test_exact_estimator_gradient_matches_mean_field_gradient():
    # On the ideal chip with the exact estimator, the hardware gradient differs from the
    # mean-field gradient only by the omitted dσ/dG term: cosine > 0.98 per layer.
    net = OnChipNetwork(
        LearningConfig(estimator="exact"), ChipConfig.ideal(), load_pulse_preset("ideal")
    )
    rng = np.random.default_rng(7)
    x = rng.random((64, 1, 8, 8))
    y = rng.integers(0, 10, 64)
    res = net.step(x, y, lr_pulses=1.0, rng=rng, apply=False)
    exact = net.exact_gradients(res.cache, y)
    for h, g in zip(res.grads, exact, strict=True):
        assert np.sum(h * g) / np.linalg.norm(h) / np.linalg.norm(g) > 0.98


def test_program_export_reproduces_the_chip_probabilities():
    net = OnChipNetwork(LearningConfig(), ChipConfig.ideal(), load_pulse_preset("rram"))
    prog = net.to_program({"model": "digits-mlp"})
    z = np.where(np.random.default_rng(8).random((16, 64)) < 0.5, 1.0, -1.0)
    layer = net.layers[0]
    c = layer.forward(z, np.random.default_rng(9))
    p_chip = ndtr(c["margin"] / c["sigma"])
    dense = next(r for r in prog.layers if r.kind == "dense")
    np.testing.assert_allclose(firing_probability(dense, z), p_chip, atol=2e-5)


def test_learning_config_errors():
    with pytest.raises(ValueError, match="estimator"):
        LearningConfig(estimator="nope")
    with pytest.raises(ValueError, match="batch_size"):
        LearningConfig(batch_size=0)
    with pytest.raises(ValueError, match="lr_pulses"):
        LearningConfig(lr_pulses=-1.0)


def test_bidirectional_pairs_start_unbiased_on_a_level_grid():
    # FeFET: 32 levels. The reference G⁻ sits on a level and G⁺ = G⁻ + w on the same grid, so
    # zero weights are exactly zero (a reference rounded apart from G⁺ biased every weight).
    chip = ChipConfig.ideal()
    layer = ChipLayer(
        np.zeros((30, 4)),
        chip=chip,
        pulse=load_pulse_preset("fefet"),
        pair_update="bidirectional",
        beta_init=1.0,
        init_fill=0.3,
        rng=np.random.default_rng(0),
    )
    np.testing.assert_array_equal(layer.g_plus.g_us, layer.g_minus.g_us)


def test_learning_rate_in_conductance_units():
    cfg = LearningConfig(lr_us=0.1)
    assert cfg.resolved_lr_pulses(load_pulse_preset("ideal")) == pytest.approx(4.0)
    assert cfg.resolved_lr_pulses(load_pulse_preset("fefet")) == pytest.approx(0.1 / 0.629)
    assert LearningConfig(lr_pulses=3.0).resolved_lr_pulses(load_pulse_preset("rram")) == 3.0
