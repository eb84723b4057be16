"""crossbar.unit: the numpy NSM unit against its definition, the torch version and its users."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy import stats

from crossbar import ChipConfig, HardwareLayer, TileConfig, replace_field
from crossbar.unit import S_UNREACHED, firing_probability, normalised_preactivation
from nsm import functional as fn


def test_probability_is_the_normal_cdf_of_root_two_s():
    # P(Σ noise < E u) with Var u = ½ (s normalised by √(2 Var u)): Φ(√2 s) = ½[1 + erf(s)].
    s = np.linspace(-6.0, 6.0, 241)
    np.testing.assert_allclose(firing_probability(s), stats.norm.cdf(np.sqrt(2.0) * s), atol=1e-15)
    assert firing_probability(S_UNREACHED) == 1.0 and firing_probability(-S_UNREACHED) == 0.0


def test_unreached_neurons_follow_the_sign_of_the_bias():
    m = np.array([[0.0, 0.0, 0.0, 2.0]])
    n = np.array([[0.0, 0.0, 0.0, 4.0]])
    bias = np.array([0.3, 0.0, -0.2, 1.0])
    s = normalised_preactivation(m, n, np.ones(4), bias, noise_scale=0.5)
    np.testing.assert_array_equal(s[0, :3], [S_UNREACHED, S_UNREACHED, -S_UNREACHED])
    assert s[0, 3] == pytest.approx(2.0 / 4.0 + 1.0 / (0.5 * 4.0))


def test_equals_the_torch_unit():
    rng = np.random.default_rng(0)
    m = rng.normal(size=(6, 5))
    n = np.abs(rng.normal(size=(6, 5))) + 0.1
    n[0, 1] = 0.0  # one unreached neuron
    beta, bias = rng.uniform(0.2, 2.0, 5), rng.normal(size=5)
    p = 0.3
    noise = fn.make_noise("bernoulli", p=p)
    want = fn.probability_from_s(
        fn.normalized_preactivation(*(torch.from_numpy(a) for a in (m, n, beta, bias)), noise)
    ).numpy()
    c = np.sqrt(2.0 * p * (1.0 - p))
    got = firing_probability(normalised_preactivation(m, n, beta, bias, c))
    np.testing.assert_allclose(got, want, rtol=0, atol=1e-14)


def test_hardware_layer_uses_the_unit():
    rng = np.random.default_rng(1)
    w = rng.normal(size=(40, 6))
    beta, bias = rng.uniform(0.5, 1.5, 6), rng.normal(size=6)
    chip = replace_field(ChipConfig.ideal(tile=TileConfig(32, 4)), "devices.element.p", 0.5)
    layer = HardwareLayer.build(w, beta, bias, p=0.5, chip=chip, rng=rng)
    z = rng.choice(np.array([-1, 1], np.int8), size=(3, 40))
    z[0] = 0  # nothing driven: P = 1{b >= 0}
    zf = z.astype(np.float64)
    s = normalised_preactivation(
        zf @ w, np.sqrt(np.square(zf) @ np.square(w)), beta, bias, np.sqrt(0.5)
    )
    np.testing.assert_array_equal(layer.firing_probability(z), firing_probability(s))
    np.testing.assert_array_equal(layer.firing_probability(z)[0], (bias >= 0).astype(float))
