"""crossbar.moments: the column mean/variance coefficients against sampled reads."""

from __future__ import annotations

import numpy as np

from crossbar import ChipConfig, HardwareLayer, TileConfig
from crossbar.moments import column_moments, layer_moments, stack_coefficients


def rram_layer(seed: int = 0) -> tuple[HardwareLayer, np.ndarray]:
    rng = np.random.default_rng(seed)
    w = rng.standard_normal((80, 20))
    beta, bias = rng.uniform(0.5, 1.5, 20), rng.normal(0.0, 0.3, 20)
    chip = ChipConfig.preset("rram-selector", tile=TileConfig(64, 16))  # 3 x 2 tiles
    layer = HardwareLayer.build(w, beta, bias, p=0.5, chip=chip, rng=rng)
    z = rng.choice(np.array([-1, 1], np.int8), size=(2, 80))
    z[1, :10] = 0  # undriven rows carry neither signal nor noise
    return layer, z


def test_exact_reads_have_the_column_moments():
    # The comparator input (analog path) is u + offset + noise with u = I_s + a I_d, so its mean
    # is z M + offset and its variance (z∘z) Q + σ_n². 4000 exact reads: mean z-scores < 5 and
    # variances within 6 standard errors (√(2/n) for near-Gaussian sums of 80 cells).
    layer, z = rram_layer()
    n = 4000
    u = layer.preactivation(z, n, rng=np.random.default_rng(1), mode="exact").astype(np.float64)
    m, q = layer_moments(layer.read_arrays(0.0), layer.gain, layer.chip.v_read_v)
    zf = z.astype(np.float64)
    mean = zf @ m + layer.offsets_ua
    var = np.square(zf) @ q + layer.neuron.config.noise_sigma_ua**2
    z_mean = (u.mean(axis=0) - mean) / np.sqrt(var / n)
    assert np.abs(z_mean).max() < 5.0
    np.testing.assert_allclose(u.var(axis=0), var, rtol=6 * np.sqrt(2.0 / n))


def test_coefficients_per_volt_gain_and_stacking():
    layer, _ = rram_layer(1)
    arrays = layer.read_arrays(0.0)
    v = layer.chip.v_read_v
    col = [row[0] for row in arrays]
    a = layer.gain[layer.col_slices[0]]
    m, q = column_moments(col, a, v)
    m1, q1 = column_moments(col, a, 1.0)
    np.testing.assert_allclose(m, v * m1, rtol=1e-15)
    np.testing.assert_allclose(q, v**2 * q1, rtol=1e-15)
    # a = 0: the stochastic read alone; the deterministic read enters with a and a².
    m0, q0 = column_moments(col, 0.0, 1.0)
    np.testing.assert_array_equal(m0, np.vstack([ta.m_s for ta in col]))
    np.testing.assert_array_equal(q0, np.vstack([ta.v_el + ta.v_rd for ta in col]))
    np.testing.assert_allclose(m1 - m0, a * np.vstack([ta.m_d for ta in col]), atol=1e-12)
    np.testing.assert_allclose(q1 - q0, a**2 * np.vstack([ta.v_d for ta in col]), atol=1e-12)
    # The layer form is the columns side by side, as stack_coefficients places the tiles.
    big_m, _ = layer_moments(arrays, 0.0, 1.0)
    np.testing.assert_array_equal(big_m, stack_coefficients(arrays, "m_s"))
    assert big_m.shape == (layer.fan_in, layer.fan_out)
