"""Threshold neuron: fixed offsets, per-decision noise, sign(0) = +1.

Tolerances: two-sided p-value > 1e-3 (chi-square, binomial) with fixed seeds.
"""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from devices import ThresholdNeuron, ThresholdNeuronConfig

P_MIN = 1e-3


def test_offsets_have_the_configured_spread():
    neuron = ThresholdNeuron(ThresholdNeuronConfig(offset_sigma_ua=0.7))
    off = neuron.program(5000, rng=np.random.default_rng(0))
    assert off.shape == (5000,)
    stat = (off.size - 1) * off.var(ddof=1) / 0.7**2
    cdf = stats.chi2.cdf(stat, off.size - 1)
    assert 2 * min(cdf, 1 - cdf) > P_MIN
    assert abs(off.mean()) < 4 * 0.7 / np.sqrt(off.size)


def test_noiseless_decisions_are_signs_with_sign0_plus():
    neuron = ThresholdNeuron(ThresholdNeuronConfig())
    i_ua = np.array([[-1.0, 0.0, 2.0], [0.5, -0.5, 0.0]])
    z = neuron.decide(i_ua, np.zeros(3))
    assert z.dtype == np.int8
    np.testing.assert_array_equal(z, [[-1, 1, 1], [1, -1, 1]])
    # Offsets and per-neuron thresholds shift the decision point.
    z = neuron.decide(i_ua, np.array([1.0, 0.0, 0.0]), threshold_ua=np.array([0.0, 0.0, 2.5]))
    np.testing.assert_array_equal(z, [[1, 1, -1], [1, -1, -1]])
    expected = np.where(i_ua >= 0, 1.0, 0.0)
    np.testing.assert_array_equal(neuron.prob_plus(i_ua, np.zeros(3)), expected)


def test_decision_noise_gives_probit_firing_rate():
    sigma, offset, current = 0.4, 0.1, np.array([-0.5, 0.0, 0.3])
    neuron = ThresholdNeuron(ThresholdNeuronConfig(noise_sigma_ua=sigma))
    n = 20000
    i_ua = np.broadcast_to(current, (n, 3))
    z = neuron.decide(i_ua, np.full(3, offset), threshold_ua=0.2, rng=np.random.default_rng(1))
    p = stats.norm.cdf((current + offset - 0.2) / sigma)
    np.testing.assert_allclose(neuron.prob_plus(current, np.full(3, offset), threshold_ua=0.2), p)
    for k in range(3):
        assert stats.binomtest(int((z[:, k] == 1).sum()), n, p[k]).pvalue > P_MIN


def test_noise_needs_a_generator_and_n_is_checked():
    neuron = ThresholdNeuron(ThresholdNeuronConfig(noise_sigma_ua=0.1))
    with pytest.raises(TypeError, match="rng"):
        neuron.decide(np.zeros(3), np.zeros(3))
    with pytest.raises(ValueError, match="n = 0"):
        neuron.program(0, rng=np.random.default_rng(0))
    with pytest.raises(ValueError, match=r"ThresholdNeuronConfig.noise_sigma_ua = -1.0"):
        ThresholdNeuronConfig(noise_sigma_ua=-1.0)
