"""In-situ learning parts: estimators, transposed reads, pulse counts, chip moments, export."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.special import ndtr

from crossbar import ChipConfig, HardwareLayer
from crossbar.transpose import layer_transposed_read, transposed_read
from devices.pulse import load_pulse_preset
from mapping.estimators import estimate_density, exact_density, window_mean
from mapping.learning import ChipLayer, LearningConfig, OnChipNetwork
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


@pytest.mark.parametrize("preset,mode", [("ideal", "clt"), ("rram-selector", "exact")])
def test_learning_forward_is_the_chip_models_forward(preset, mode):
    # One engine: for the same chip state and read seed, the training forward pass (hidden
    # states and logits) is ChipModel.sample_states / run, bit for bit.
    from crossbar import resolve_chip
    from mapping import RunConfig

    chip = resolve_chip(preset)
    net = OnChipNetwork(LearningConfig(mode=mode), chip, load_pulse_preset("rram"))
    x = np.random.default_rng(3).random((30, 1, 8, 8))
    logits, cache = net.forward(x, seed=11)
    states = net.model.sample_states(x, RunConfig(samples=1, seed=11, mode=mode))
    np.testing.assert_array_equal(logits, states[-1][0])
    for layer, c in zip(net.layers, cache, strict=True):
        np.testing.assert_array_equal(c["z_out"], states[layer.programmed.index][0])
    # the learning layer reads the engine's own tiles: its margins are the engine's moments
    z = cache[0]["z_in"]
    margin, sigma = net.layers[0].margins(z)
    p = ndtr(margin / sigma)
    hl = net.layers[0].hw
    np.testing.assert_allclose(p, hl.hardware_probability(z), rtol=1e-12, atol=1e-12)


def test_stuck_cells_do_not_move_under_pulses():
    from crossbar import resolve_chip

    chip = resolve_chip("rram-selector", ["devices.conductance.p_stuck_on=0.05"])
    net = OnChipNetwork(LearningConfig(lr_pulses=20.0), chip, load_pulse_preset("rram"))
    layer = net.layers[0]
    # At least 5 % of the 64 x 128 = 8192 plus cells are stuck (binomial: 410 ± 20 stuck on,
    # fixed seed); > 50 sits > 17 sd below that mean, so it checks stuck cells exist at all.
    assert layer.stuck_plus.sum() > 50
    before = layer.g_plus.g_us[layer.stuck_plus].copy()
    rng = np.random.default_rng(0)
    x = rng.random((50, 1, 8, 8))
    y = rng.integers(0, 10, 50)
    for _ in range(3):
        net.step(x, y, lr_pulses=20.0, rng=rng)
    assert layer.g_plus.total_pulses()[layer.stuck_plus].sum() > 0  # pulses were sent to them
    np.testing.assert_array_equal(layer.g_plus.g_us[layer.stuck_plus], before)
    g0 = np.block([[t.g_plus.g0_us for t in row] for row in layer.hw.tiles])
    np.testing.assert_array_equal(g0[layer.stuck_plus], before)
    moved = ~layer.stuck_plus & (layer.g_plus.total_pulses() > 0)
    assert np.any(g0[moved] != layer._stuck_g[0][moved])  # healthy cells did move


def test_periphery_tuning_sends_no_pulse():
    net = OnChipNetwork(
        LearningConfig(tune="periphery"), ChipConfig.ideal(), load_pulse_preset("rram")
    )
    g = [ly.g_plus.g_us.copy() for ly in net.layers]
    a = [ly.a.copy() for ly in net.layers]
    rng = np.random.default_rng(0)
    x = rng.random((50, 1, 8, 8))
    y = rng.integers(0, 10, 50)
    res = net.step(x, y, lr_pulses=8.0, rng=rng)
    assert res.pulses == 0 and net.total_pulses() == 0
    for ly, g0, a0 in zip(net.layers, g, a, strict=True):
        np.testing.assert_array_equal(ly.g_plus.g_us, g0)
        assert np.any(ly.a != a0)  # the periphery did learn


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
    margin, sigma = net.layers[0].margins(z)
    p_chip = ndtr(margin / sigma)
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
    from mapping import program_chip
    from mapping.learning import scratch_program
    from mapping.learning.layer import chip_pulse

    chip = ChipConfig.ideal()
    model = program_chip(scratch_program("digits-mlp", 0, 1.0), chip)
    layer = ChipLayer(
        model.binary_layers[0],
        pulse=chip_pulse(load_pulse_preset("fefet"), 0.0, 25.0),
        pair_update="bidirectional",
        rng=np.random.default_rng(0),
        init=(np.zeros((64, 128)), 0.3),
    )
    np.testing.assert_array_equal(layer.g_plus.g_us, layer.g_minus.g_us)


def test_learning_rate_in_conductance_units():
    cfg = LearningConfig(lr_us=0.1)
    assert cfg.resolved_lr_pulses(load_pulse_preset("ideal")) == pytest.approx(4.0)
    assert cfg.resolved_lr_pulses(load_pulse_preset("fefet")) == pytest.approx(0.1 / 0.629)
    assert LearningConfig(lr_pulses=3.0).resolved_lr_pulses(load_pulse_preset("rram")) == 3.0
