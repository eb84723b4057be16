"""Per-row (per-input) stochastic elements are one physical driver per input row: shared by
every column-tile of the row, one draw per row and read, one p_j per row (docs/crossbar.md)."""

from __future__ import annotations

import numpy as np

from crossbar import ChipConfig, HardwareLayer, TileConfig, analytic, replace_field

N_SAMPLES = 20_000


def per_row_layer(preset: str = "selector-fefet") -> HardwareLayer:
    """24 inputs x 8 neurons on 16 x 4 tiles: 3 row-tiles x 2 column-tiles, per-row selectors.
    Neuron k + 4 (second column-tile) has nearly the weights of neuron k (first), so the
    per-input model predicts a strong correlation between them."""
    chip = ChipConfig.preset(preset, tile=TileConfig(16, 4))
    chip = replace_field(chip, "devices.element.structure", "per_row")
    rng = np.random.default_rng(11)
    w = rng.standard_normal((24, 4))
    w = np.hstack([w, w + 0.3 * rng.standard_normal((24, 4))])
    beta = rng.uniform(0.5, 2.0, 8)
    return HardwareLayer.build(
        w, beta, None, noise="bernoulli", p=0.5, chip=chip, rng=np.random.default_rng(12)
    )


def test_per_row_p_is_one_per_input_row_across_column_tiles():
    layer = per_row_layer()
    arrays = layer.read_arrays(0.0)
    assert len(arrays) == 3 and len(arrays[0]) == 2
    for t, row in enumerate(arrays):
        p = [ta.row_planes.quantised() for ta in row]
        np.testing.assert_array_equal(p[0], p[1])
        assert layer.tiles[t][0].element is layer.tiles[t][1].element
        assert np.unique(p[0]).size > 1  # the selectors' spread: p_j differs between rows
        rs = layer.tiles[t][0].rows
        np.testing.assert_array_equal(layer.device_parameters()["p_row"][rs], p[0][0])


def test_neurons_in_different_column_tiles_correlate_as_the_per_input_model():
    """Cov(u_i, u_k | z) = V² Σ_j z_j² p_j (1 − p_j) W_ji W_jk (W = G⁺ − G⁻ as read), with
    Var from the chip's exact moments (read noise, deterministic read, comparator noise are
    independent per neuron). Fisher z-test per cross-tile pair, 20 000 reads, |z| < 4 for all 16
    pairs (Bonferroni: family-wise false alarm < 1e-3)."""
    layer = per_row_layer()
    z = np.random.default_rng(13).choice([-1, 1], size=(1, 24))
    u = layer.preactivation(z, N_SAMPLES, rng=np.random.default_rng(14), mode="exact")[:, 0, :]
    v = layer.chip.v_read_v
    arrays = layer.read_arrays(0.0)
    p = layer.device_parameters()["p_row"]  # (24,): one driver per input row
    w = np.block([[ta.m_d for ta in row] for row in arrays])  # G⁺ − G⁻ (ideal wires)
    cov = v**2 * (w * (p * (1 - p))[:, None]).T @ w
    _, var = analytic.comparator_moments(layer, z.astype(np.int8), 0.0)
    rho = cov / np.sqrt(np.outer(var[0], var[0]))
    measured = np.corrcoef(u.T.astype(np.float64))
    fisher = np.sqrt(N_SAMPLES - 3)
    cross = [(i, k) for i in range(4) for k in range(4, 8)]
    zscores = [fisher * (np.arctanh(measured[i, k]) - np.arctanh(rho[i, k])) for i, k in cross]
    assert np.max(np.abs(zscores)) < 4.0, zscores
    assert np.min([rho[k, k + 4] for k in range(4)]) > 0.5  # the test has teeth: strong ρ
    # The variances as well (the diagonal): relative error of a variance ~ √(2/N) = 1 %.
    np.testing.assert_allclose(np.var(u, axis=0), var[0], rtol=0.05)


def test_per_row_preactivation_is_bit_identical_across_chunkings():
    for preset, noise in (
        ("selector-fefet", dict(noise="bernoulli", p=0.5)),
        ("pcm-gaussian", dict(noise="gaussian", sigma=1.0)),
    ):
        chip = ChipConfig.preset(preset, tile=TileConfig(64, 16))
        chip = replace_field(chip, "devices.element.structure", "per_row")
        rng = np.random.default_rng(21)
        w = rng.standard_normal((70, 40))
        layer = HardwareLayer.build(
            w, rng.uniform(0.5, 2, 40), None, chip=chip, rng=np.random.default_rng(22), **noise
        )
        z = rng.choice([-1, 0, 1], size=(30, 70), p=[0.45, 0.1, 0.45])
        ref = layer.preactivation(z, 7, rng=np.random.default_rng(23))
        for chunk_values in (50, 333, 4096):
            out = layer.preactivation(
                z, 7, rng=np.random.default_rng(23), chunk_values=chunk_values
            )
            np.testing.assert_array_equal(out, ref)
