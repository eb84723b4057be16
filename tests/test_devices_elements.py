"""Stochastic elements: realised p / sigma and the reference samplers agree with the model.

Tolerances: two-sided p-value > 1e-3 for exact tests (binomial, chi-square, KS), or a
statistic within 4 standard errors; fixed seeds make every test deterministic.
"""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats
from scipy.special import ndtr, ndtri

import devices
from devices import BernoulliConfig, GaussianElementConfig, SelectorConfig

P_MIN = 1e-3


def _element(cfg):
    return devices.DeviceConfig(element=cfg).element_model()


def _chi2_binomial_pvalue(counts: np.ndarray, n: int, p: np.ndarray) -> float:
    """Upper-tail p-value of sum (k - np)²/(np(1-p)) ~ chi2(#cells) (k_i ~ Binomial(n, p_i))."""
    stat = float((((counts - n * p) ** 2) / (n * p * (1 - p))).sum())
    return float(stats.chi2.sf(stat, counts.size))


@pytest.mark.parametrize("structure", ["per_cell", "per_row"])
def test_bernoulli_constant_p(structure):
    el = _element(BernoulliConfig(p=0.3, structure=structure))
    state = el.program((12, 20), rng=np.random.default_rng(0))
    expected_shape = (12, 20) if structure == "per_cell" else (12,)
    assert el.p(state).shape == expected_shape and np.all(el.p(state) == 0.3)
    n = 3000
    masks = el.sample(state, n, rng=np.random.default_rng(1))
    assert masks.shape == (n, *expected_shape) and masks.dtype == bool
    assert stats.binomtest(int(masks.sum()), masks.size, 0.3).pvalue > P_MIN
    assert _chi2_binomial_pvalue(masks.sum(axis=0), n, el.p(state)) > P_MIN


def test_bernoulli_p_one_always_conducts():
    el = _element(BernoulliConfig(p=1.0))
    state = el.program((3, 4), rng=np.random.default_rng(0))
    assert el.sample(state, 100, rng=np.random.default_rng(1)).all()


@pytest.mark.parametrize("v_read_v", [0.35, 0.5, 0.62])
def test_selector_switching_frequency_matches_phi_per_device(v_read_v):
    cfg = SelectorConfig(v_read_v=v_read_v, mu_v=0.5, sigma_c_v=0.1, sigma_d_v=0.05)
    el = _element(cfg)
    state = el.program((10, 20), rng=np.random.default_rng(2))
    p = el.p(state)
    np.testing.assert_allclose(p, ndtr((v_read_v - state.mu_v) / 0.1), rtol=1e-12)
    n = 3000
    counts = el.sample(state, n, rng=np.random.default_rng(3)).sum(axis=0)
    # Each device's count ~ Binomial(n, Phi((V - mu_ij)/sigma_c)): chi-square over 200 devices.
    assert _chi2_binomial_pvalue(counts, n, p) > P_MIN
    # The devices really differ (sigma_d > 0): a common p would be rejected.
    assert _chi2_binomial_pvalue(counts, n, np.full_like(p, p.mean())) < 1e-6


def test_selector_device_spread_matches_sigma_d():
    """Infer each device's mean threshold from its switching frequency (probit), then the
    spread across devices must be sigma_d."""
    sigma_c, sigma_d, n_dev, n = 0.1, 0.03, 400, 3000
    cfg = SelectorConfig(v_read_v=0.5, mu_v=0.5, sigma_c_v=sigma_c, sigma_d_v=sigma_d)
    el = _element(cfg)
    state = el.program((1, n_dev), rng=np.random.default_rng(4))
    freq = el.sample(state, n, rng=np.random.default_rng(5)).mean(axis=0)[0]
    mu_hat = 0.5 - sigma_c * ndtri(freq)
    # Probit estimation noise: var ≈ sigma_c² p(1-p) / (n phi(z)²) ≈ (2.9 mV)² ≪ sigma_d².
    est_var = np.mean(sigma_c**2 * freq * (1 - freq) / (n * stats.norm.pdf(ndtri(freq)) ** 2))
    spread = np.sqrt(mu_hat.var(ddof=1) - est_var)
    # SE of a std from 400 devices is sigma_d/sqrt(2*399) ≈ 3.5 %: allow 4 SE (±14 %).
    assert abs(spread / sigma_d - 1) < 4 / np.sqrt(2 * (n_dev - 1))
    assert abs(mu_hat.mean() - 0.5) < 4 * sigma_d / np.sqrt(n_dev)


def test_selector_read_voltage_for_target_p():
    cfg = SelectorConfig(mu_v=0.6, sigma_c_v=0.08, sigma_d_v=0.04)
    el = _element(cfg)
    state = el.program((50, 80), rng=np.random.default_rng(6))
    for p_target in (0.1, 0.25, 0.5, 0.9):
        v_state = el.read_voltage_for(p_target, state)
        assert abs(el.p(state, v_state).mean() - p_target) < 1e-9
        # Population (closed form): realised mean p of 4000 devices within 4 SE of the target
        # (SE from the device-to-device spread of p at that voltage).
        v_pop = devices.selector_read_voltage(cfg, p_target)
        p_dev = el.p(state, v_pop)
        assert abs(p_dev.mean() - p_target) < 4 * p_dev.std() / np.sqrt(p_dev.size)
    # The deterministic phase: far above every threshold the selector always conducts.
    assert np.all(el.p(state, 2.0) > 1 - 1e-12)
    with pytest.raises(ValueError, match=r"p_target = 1.0 .*\(0, 1\)"):
        el.read_voltage_for(1.0)
    with pytest.raises(ValueError, match="p_target"):
        devices.selector_read_voltage(SelectorConfig(mu_v=0.05, sigma_c_v=0.1), 0.01)


@pytest.mark.parametrize(
    "cfg",
    [
        BernoulliConfig(p=0.5, structure="per_row"),
        SelectorConfig(structure="per_row"),
        GaussianElementConfig(sigma=0.4, structure="per_row"),
    ],
)
def test_per_row_draws_are_shared_across_a_row(cfg):
    el = _element(cfg)
    state = el.program((6, 5), rng=np.random.default_rng(7))
    samples = el.sample(state, 4000, rng=np.random.default_rng(8))
    assert samples.shape == (4000, 6)
    cells = devices.as_cells(samples, (6, 5)).astype(float)
    # Same row, different columns: identical draws (correlation exactly 1).
    np.testing.assert_array_equal(cells[:, 2, 0], cells[:, 2, 4])
    # Different rows: independent (|r| < 4/sqrt(n)).
    r = np.corrcoef(cells[:, 0, 0], cells[:, 1, 0])[0, 1]
    assert abs(r) < 4 / np.sqrt(4000)


@pytest.mark.parametrize(
    "cfg",
    [
        BernoulliConfig(p=0.5),
        SelectorConfig(),
        GaussianElementConfig(sigma=0.4),
    ],
)
def test_per_cell_draws_are_independent(cfg):
    el = _element(cfg)
    state = el.program((4, 5), rng=np.random.default_rng(9))
    n = 4000
    x = el.sample(state, n, rng=np.random.default_rng(10)).reshape(n, -1).astype(float)
    r = np.corrcoef(x, rowvar=False)
    off_diag = r[~np.eye(r.shape[0], dtype=bool)]
    # 380 off-diagonal correlations of independent draws: each ~ N(0, 1/n); the largest of
    # 190 distinct pairs stays below 4.5/sqrt(n) with probability > 0.998.
    assert np.max(np.abs(off_diag)) < 4.5 / np.sqrt(n)
    assert devices.as_cells(x.reshape(n, 4, 5), (4, 5)).shape == (n, 4, 5)


def test_gaussian_element_mean_variance_and_spread():
    el = _element(GaussianElementConfig(sigma=0.3))
    state = el.program((8, 9), rng=np.random.default_rng(11))
    assert np.all(el.sigma(state) == 0.3)
    xi = el.sample(state, 2000, rng=np.random.default_rng(12))
    z = ((xi - 1.0) / 0.3).ravel()
    assert stats.kstest(z, "norm").pvalue > P_MIN
    # Device-to-device spread of sigma: sigma_ij/sigma has std sigma_spread_rel (4 SE).
    el2 = _element(GaussianElementConfig(sigma=0.3, sigma_spread_rel=0.1))
    s = el2.sigma(el2.program((40, 50), rng=np.random.default_rng(13))) / 0.3
    assert abs(s.std(ddof=1) / 0.1 - 1) < 4 / np.sqrt(2 * (s.size - 1))
    assert abs(s.mean() - 1) < 4 * 0.1 / np.sqrt(s.size)


def test_gaussian_read_noise_source_adds_nothing():
    cfg = GaussianElementConfig(sigma=0.0, source="read_noise")
    el = _element(cfg)
    state = el.program((3, 4), rng=np.random.default_rng(0))
    assert el.source == "read_noise" and np.all(el.sigma(state) == 0)
    assert np.all(el.sample(state, 10, rng=np.random.default_rng(1)) == 1.0)
    with pytest.raises(ValueError, match=r"GaussianElementConfig.sigma = 0.2 .*read_noise"):
        GaussianElementConfig(sigma=0.2, source="read_noise")


def test_wrong_parameter_kind_and_bad_arguments():
    bern = _element(BernoulliConfig())
    gauss = _element(GaussianElementConfig())
    rng = np.random.default_rng(0)
    with pytest.raises(TypeError, match="no Gaussian sigma"):
        bern.sigma(bern.program((2, 2), rng=rng))
    with pytest.raises(TypeError, match="no conducting probability"):
        gauss.p(gauss.program((2, 2), rng=rng))
    with pytest.raises(ValueError, match=r"shape\[1\] \(cols\) = 0"):
        bern.program((2, 0), rng=rng)
    with pytest.raises(TypeError, match="shape"):
        bern.program(5, rng=rng)
    with pytest.raises(TypeError, match="rng"):
        bern.program((2, 2), rng=np.random.RandomState(0))
    with pytest.raises(ValueError, match="n = -3"):
        bern.sample(bern.program((2, 2), rng=rng), -3, rng=rng)
    with pytest.raises(ValueError, match=r"samples\.shape"):
        devices.as_cells(np.zeros((3, 7)), (2, 2))
