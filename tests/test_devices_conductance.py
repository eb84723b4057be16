"""Conductance models reproduce their defining statistics (fixed seeds, stated tolerances).

Tolerance conventions used throughout: a two-sided p-value threshold of 1e-3 for exact tests
(chi-square on a variance, binomial on a count, KS), or a mean within 4 standard errors.
With fixed seeds these tests are deterministic; the thresholds say how far from the model a
result may be before we call the implementation wrong.
"""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from scipy import stats

import devices
from devices import FeFETConfig, IdealConfig, PCMConfig, RRAMConfig

P_MIN = 1e-3  # smallest acceptable two-sided p-value


def _model(cfg):
    return devices.DeviceConfig(conductance=cfg).conductance_model()


def _variance_pvalue(x: np.ndarray, sigma: float) -> float:
    """Two-sided chi-square test of H0: Var(x) = sigma² ((n-1)s²/sigma² ~ chi2(n-1))."""
    n = x.size
    stat = (n - 1) * x.var(ddof=1) / sigma**2
    cdf = stats.chi2.cdf(stat, n - 1)
    return 2 * min(cdf, 1 - cdf)


# Published constants typed in again here (not imported), so a typo in the package shows up.
def _pcm_sigma_prog(g_us):
    g = g_us / 25.0
    return 0.2635 + 1.965 * g - 1.1731 * g**2


def _pcm_nu_moments(g_us):
    g = g_us / 25.0
    mu = np.clip(-0.0155 * np.log(g) + 0.0244, 0.049, 0.1)
    sd = np.clip(-0.0125 * np.log(g) - 0.0059, 0.008, 0.045)
    return mu, sd


@pytest.mark.parametrize("target_us", [2.5, 7.5, 12.5, 17.5, 22.5])
def test_pcm_programming_noise_matches_polynomial(target_us):
    # Targets stay >= 5.5 sigma above 0 µS, so the non-negativity clip is negligible.
    model = _model(PCMConfig())
    rng = np.random.default_rng(11)
    state = model.program(np.full(5000, target_us), rng=rng)
    err = state.g0_us - target_us
    sigma = _pcm_sigma_prog(target_us)
    assert _variance_pvalue(err, sigma) > P_MIN
    assert abs(err.mean()) < 4 * sigma / np.sqrt(err.size)  # unbiased, within 4 SE


@pytest.mark.parametrize("target_us", [2.5, 20.0])
def test_pcm_drift_exponent_recovered_by_loglog_fit(target_us):
    """Fit log G vs log t on noisy reads per device; the fitted nu match the programmed nu and
    their population follows N(mu_nu(g), sigma_nu(g)²) from the published formulas."""
    model = _model(PCMConfig())
    rng = np.random.default_rng(22)
    n_dev, n_reads = 300, 200
    state = model.program(np.full(n_dev, target_us), rng=rng)
    t = 20.0 * np.logspace(0, 5, 6)
    # Average n_reads reads per time to shrink the 1/f read noise before taking logs.
    log_g = np.stack([np.log(model.read(state, ti, rng=rng, n=n_reads).mean(axis=0)) for ti in t])
    x = np.log(t / 20.0)
    w = (x - x.mean()) / ((x - x.mean()) ** 2).sum()  # least-squares slope weights
    nu_hat = -(w[:, None] * log_g).sum(axis=0)
    # Per device, the slope's standard error follows from the read noise of each averaged
    # point (relative std read_sigma/mean/sqrt(n_reads)); the fit errors must be N(0, se²):
    # KS test, and no device beyond 5 SE.
    rel_sd = np.stack([model.read_sigma(state, ti) / model.mean(state, ti) for ti in t])
    se = np.sqrt((w[:, None] ** 2 * rel_sd**2 / n_reads).sum(axis=0))
    z = (nu_hat - state.nu) / se
    assert stats.kstest(z, "norm").pvalue > P_MIN
    assert np.max(np.abs(z)) < 5.0
    mu, sd = _pcm_nu_moments(target_us)
    # Population: mean within 4 SE of mu_nu; the programmed spread by chi-square.
    assert abs(nu_hat.mean() - mu) < 4 * sd / np.sqrt(n_dev)
    assert _variance_pvalue(state.nu, sd) > P_MIN
    # ±15 % ≈ 4 SE of a std from 300 devices (the fit error adds < 2 % to the std).
    assert 0.85 < nu_hat.std(ddof=1) / sd < 1.15


@pytest.mark.parametrize("target_us", [0.5, 2.5, 6.25, 12.5, 25.0])
def test_pcm_drift_exponent_distribution(target_us):
    """nu = max(N(mu_nu(g), sigma_nu(g)²), 0): mean and std match the rectified-normal moments
    within 4 SE (20000 devices: SE of the mean ≈ sigma_nu/141)."""
    n = 20000
    state = _model(PCMConfig()).program(np.full(n, target_us), rng=np.random.default_rng(23))
    mu, sd = _pcm_nu_moments(target_us)
    a = mu / sd
    mean = mu * stats.norm.cdf(a) + sd * stats.norm.pdf(a)
    second = (mu**2 + sd**2) * stats.norm.cdf(a) + mu * sd * stats.norm.pdf(a)
    std = np.sqrt(second - mean**2)
    assert np.all(state.nu >= 0)
    assert abs(state.nu.mean() - mean) < 4 * std / np.sqrt(n)
    assert abs(state.nu.std(ddof=1) / std - 1) < 4 / np.sqrt(2 * (n - 1))


def test_pcm_read_noise_matches_1_over_f_formula():
    model = _model(PCMConfig())
    rng = np.random.default_rng(33)
    targets = np.linspace(0.5, 25.0, 40)
    state = model.program(targets, rng=rng)
    t_s, t_read = 3600.0, 250e-9
    nu, g0 = state.nu, state.g0_us
    g_t = g0 * (t_s / 20.0) ** (-nu)
    q_s = np.minimum(0.0088 / (g0 / 25.0) ** 0.65, 0.2)
    expected = g_t * q_s * np.sqrt(np.log((t_s + t_read) / (2 * t_read)))
    np.testing.assert_allclose(model.mean(state, t_s), g_t, rtol=1e-12)
    np.testing.assert_allclose(model.read_sigma(state, t_s), expected, rtol=1e-12)
    # The reference sampler: standardised reads are N(0, 1) (KS test) with unit variance.
    reads = model.read(state, t_s, rng=rng, n=2500)
    z = ((reads - g_t) / expected).ravel()
    assert stats.kstest(z, "norm").pvalue > P_MIN
    assert _variance_pvalue(z, 1.0) > P_MIN
    # Per device, the empirical std of 2500 reads matches the formula within 4 SE (~5.7 %).
    rel = reads.std(axis=0, ddof=1) / expected
    assert np.all(np.abs(rel - 1) < 4 / np.sqrt(2 * 2499))


def test_pcm_read_noise_grows_with_log_time_and_no_drift_before_t0():
    model = _model(PCMConfig())
    state = model.program(np.full(10, 10.0), rng=np.random.default_rng(1))
    np.testing.assert_array_equal(model.mean(state, 0.0), state.g0_us)
    np.testing.assert_array_equal(model.mean(state, 19.9), state.g0_us)
    rel = [model.read_sigma(state, t) / model.mean(state, t) for t in (20.0, 2e3, 2e5, 2e7)]
    assert all(np.all(b > a) for a, b in itertools.pairwise(rel))


def test_stuck_at_fault_rates_binomial_and_fixed_values():
    cfg = RRAMConfig(p_stuck_on=0.05, p_stuck_off=0.03, nu_mean=0.05, nu_sigma=0.01)
    model = _model(cfg)
    n = 200_000  # count SEs ~0.05 % absolute: a rate off by 0.2 % fails the binomial test
    state = model.program(np.full(n, 20.0), rng=np.random.default_rng(44))
    on, off = state.stuck == devices.STUCK_ON, state.stuck == devices.STUCK_OFF
    assert stats.binomtest(int(on.sum()), n, 0.05).pvalue > P_MIN
    assert stats.binomtest(int(off.sum()), n, 0.03).pvalue > P_MIN
    assert not np.any(on & off)
    t = 1e6
    mean, sigma = model.mean(state, t), model.read_sigma(state, t)
    reads = model.read(state, t, rng=np.random.default_rng(5))
    # Stuck devices sit at the window edges, do not drift and carry no read noise.
    assert np.all(mean[on] == cfg.g_max_us) and np.all(mean[off] == cfg.g_min_us)
    assert np.all(sigma[on | off] == 0.0) and np.all(reads[on] == cfg.g_max_us)
    assert np.all(state.nu[on | off] == 0.0)
    healthy = ~(on | off)
    assert np.all(mean[healthy] < state.g0_us[healthy] * 1.5)  # sanity: drift applied


def test_fefet_finite_levels_and_programming_noise():
    cfg = FeFETConfig(prog_sigma_us=0.0)
    model = _model(cfg)
    levels = np.linspace(cfg.g_min_us, cfg.g_max_us, cfg.n_levels)
    step = levels[1] - levels[0]
    targets = np.random.default_rng(2).uniform(cfg.g_min_us, cfg.g_max_us, 5000)
    state = model.program(targets, rng=np.random.default_rng(3))
    # Without noise every device lands exactly on the nearest of the 32 levels.
    nearest = levels[np.abs(targets[:, None] - levels).argmin(axis=1)]
    np.testing.assert_allclose(state.g0_us, nearest, rtol=0, atol=1e-12)
    assert np.all(np.abs(state.g0_us - targets) <= step / 2 + 1e-12)
    assert np.unique(state.g_level_us).size == cfg.n_levels
    # With noise: error around the level has the configured constant std.
    noisy = _model(FeFETConfig()).program(targets, rng=np.random.default_rng(4))
    np.testing.assert_allclose(noisy.g_level_us, nearest, atol=1e-12)
    assert _variance_pvalue(noisy.g0_us - noisy.g_level_us, 0.2) > P_MIN


@pytest.mark.parametrize("iterations", [0, 1, 2, 4])
def test_write_verify_shrinks_error_geometrically(iterations):
    """P(|error| > tol) after k retries is P1^(k+1) (independent attempts): binomial test."""
    tol, target, n = 0.5, 12.5, 20000
    cfg = PCMConfig(write_verify_iterations=iterations, write_verify_tol_us=tol)
    state = _model(cfg).program(np.full(n, target), rng=np.random.default_rng(55 + iterations))
    sigma = _pcm_sigma_prog(target)
    p1 = 2 * stats.norm.sf(tol / sigma)
    outside = int((np.abs(state.g0_us - target) > tol).sum())
    assert stats.binomtest(outside, n, p1 ** (iterations + 1)).pvalue > P_MIN


def test_write_verify_std_decreases():
    stds = []
    for k in range(4):
        cfg = PCMConfig(write_verify_iterations=k, write_verify_tol_us=0.5)
        state = _model(cfg).program(np.full(20000, 12.5), rng=np.random.default_rng(7))
        stds.append(np.std(state.g0_us - 12.5))
    assert all(b < 0.9 * a for a, b in itertools.pairwise(stds))


@pytest.mark.parametrize("target_us", [10.0, 20.0, 30.0])
def test_rram_programming_and_read_noise(target_us):
    model = _model(RRAMConfig())
    rng = np.random.default_rng(66)
    state = model.program(np.full(5000, target_us), rng=rng)
    g = target_us / 40.0
    sigma = 0.348 + 16.030 * g - 43.853 * g**2 + 45.393 * g**3 - 16.815 * g**4
    assert _variance_pvalue(state.g0_us - target_us, sigma) > P_MIN
    reads = model.read(state, 10.0, rng=rng, n=40)
    rel = (reads - state.g0_us) / state.g0_us
    assert _variance_pvalue(rel.ravel(), 0.01) > P_MIN  # ≈1 % read noise


def test_ideal_is_exact():
    model = _model(IdealConfig())
    targets = np.random.default_rng(1).uniform(0, 25, (7, 5))
    state = model.program(targets, rng=np.random.default_rng(2))
    np.testing.assert_array_equal(state.g0_us, targets)
    np.testing.assert_array_equal(model.read(state, 1e9, rng=np.random.default_rng(3)), targets)
    assert np.all(model.read_sigma(state, 5.0) == 0) and np.all(state.nu == 0)


def test_programming_is_reproducible_and_effects_have_separate_streams():
    targets = np.random.default_rng(0).uniform(1, 24, (30, 40))
    a = _model(PCMConfig()).program(targets, rng=np.random.default_rng(9))
    b = _model(PCMConfig()).program(targets, rng=np.random.default_rng(9))
    np.testing.assert_array_equal(a.g0_us, b.g0_us)
    np.testing.assert_array_equal(a.nu, b.nu)
    # Adding faults changes only the faulty devices (common random numbers across a sweep).
    c = _model(PCMConfig(p_stuck_on=0.1)).program(targets, rng=np.random.default_rng(9))
    healthy = c.stuck == 0
    assert 0 < (~healthy).sum() < targets.size
    np.testing.assert_array_equal(a.g0_us[healthy], c.g0_us[healthy])
    np.testing.assert_array_equal(a.nu[healthy], c.nu[healthy])


def test_bad_inputs_name_the_argument():
    model = _model(PCMConfig())
    rng = np.random.default_rng(0)
    with pytest.raises(ValueError, match=r"g_target_us .*\[0, 25\]"):
        model.program(np.array([1.0, 30.0]), rng=rng)
    with pytest.raises(ValueError, match="g_target_us"):
        model.program(np.array([np.nan]), rng=rng)
    with pytest.raises(TypeError, match="rng"):
        model.program(np.array([1.0]), rng=0)
    state = model.program(np.array([1.0]), rng=rng)
    with pytest.raises(ValueError, match=r"t_s = -1.0 .*\[0, inf\)"):
        model.mean(state, -1.0)
    with pytest.raises(ValueError, match="n = 0"):
        model.read(state, 1.0, rng=rng, n=0)
