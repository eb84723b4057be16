"""Exact crossbar samplers: generator, bit-sliced Bernoulli, per-cell and per-row kernels.

Statistical tests use fixed keys, so each is deterministic; the stated tolerance is the chance
that a correct sampler would fail with a fresh key.
"""

from __future__ import annotations

import itertools

import numba
import numpy as np
import pytest
from scipy import stats

from crossbar import _kernels
from crossbar.probability import pack_bits, quantise_probability, unpack_bits
from crossbar.rng import SamplerKey, random_words, sampler_key
from crossbar.sampling import (
    prepare_cells,
    sample_cell_currents,
    sample_cells,
    sample_row_currents,
    stack_differential,
)

P_MIN = 1e-3  # every p-value below: a correct sampler fails with probability 1e-3 per assertion


def _bits(words: np.ndarray) -> np.ndarray:
    """uint64 (n,) -> bool (n, 64), bit t of each word."""
    return ((words[:, None] >> np.arange(64, dtype=np.uint64)) & np.uint64(1)).astype(bool)


# ---------------------------------------------------------------- generator


def test_compiled_generator_matches_numpy_reference_bit_for_bit():
    key = sampler_key(np.random.SeedSequence(2024))
    for s, b in [(0, 0), (3, 5), (10**6, 77), (2**40, 2**33)]:
        compiled = _kernels.draw_words(*key.words, s, b, 257)
        assert np.array_equal(compiled, random_words(key, s, b, np.arange(257)))


def test_sampler_key_sources_and_validation():
    ss = np.random.SeedSequence(5)
    assert sampler_key(5) == sampler_key(np.random.SeedSequence(5)) == sampler_key(ss)
    assert sampler_key(5) != sampler_key(ss.spawn(1)[0])
    rng = np.random.default_rng(0)
    assert sampler_key(rng) != sampler_key(rng)  # draws advance the generator
    with pytest.raises(ValueError, match="seed=-1"):
        sampler_key(-1)
    with pytest.raises(TypeError, match="seed="):
        sampler_key("abc")
    with pytest.raises(ValueError, match=r"SamplerKey.k0"):
        SamplerKey(-1, 0)


def test_generator_bit_frequencies_chi_square():
    # 64 bit positions × 40 000 words from many reads: counts of ones ~ Binomial(n, 1/2) each,
    # Σ (c − n/2)² / (n/4) ~ χ²(64); also the total count of ones over all bits.
    key = sampler_key(11)
    s = np.repeat(np.arange(200), 200)
    b = np.tile(np.arange(200), 200) % 13
    n = np.arange(s.size) % 997
    bits = _bits(random_words(key, s, b, n))
    counts = bits.sum(axis=0)
    n_words = bits.shape[0]
    chi2 = float(((counts - n_words / 2) ** 2 / (n_words / 4)).sum())
    assert stats.chi2.sf(chi2, 64) > P_MIN
    total = counts.sum()
    z_total = (total - 32 * n_words) / np.sqrt(16 * n_words)
    assert abs(z_total) < stats.norm.isf(P_MIN / 2)


@pytest.mark.parametrize(
    "pair",
    ["same_word", "next_counter", "next_sample", "next_batch"],
)
def test_generator_pairwise_independence_chi_square(pair):
    # For 64 bit pairs (bit t of one word, bit (t·7+3) mod 64 of the other) the 2×2 contingency
    # table must be independent: Σ over pairs of the 1-dof χ² ~ χ²(64).
    key = sampler_key(12)
    n_words = 20000
    s = np.arange(n_words) // 100
    b = np.arange(n_words) % 100
    n = np.full(n_words, 5)
    first = _bits(random_words(key, s, b, n))
    if pair == "same_word":
        second = np.roll(first, 1, axis=1)  # bit t vs bit t−1 of the same word
        partner = np.arange(64)
    else:
        ds, db, dn = {"next_counter": (0, 0, 1), "next_sample": (1, 0, 0), "next_batch": (0, 1, 0)}[
            pair
        ]
        second = _bits(random_words(key, s + ds, b + db, n + dn))
        partner = (np.arange(64) * 7 + 3) % 64
    chi2 = 0.0
    for t in range(64):
        x, y = first[:, t], second[:, partner[t]]
        table = np.array([[np.sum(~x & ~y), np.sum(~x & y)], [np.sum(x & ~y), np.sum(x & y)]])
        chi2 += stats.chi2_contingency(table, correction=False)[0]
    assert stats.chi2.sf(chi2, 64) > P_MIN


# ---------------------------------------------------------------- probability planes


def test_quantisation_exact_for_dyadic_and_bounded_otherwise():
    p = np.array([[0.0, 0.25, 0.5, 1.0, 0.375, 1 - 2**-16]])
    planes = quantise_probability(p, p.shape, bits=16)
    assert np.array_equal(planes.quantised(), p)
    rng = np.random.default_rng(3)
    for bits in (1, 4, 8, 16, 24):
        p = rng.uniform(0, 1, (7, 131))
        q = quantise_probability(p, p.shape, bits=bits).quantised()
        assert np.max(np.abs(q - p)) <= 2.0 ** -(bits + 1) + 1e-15
    mask = rng.uniform(size=(5, 200)) < 0.4
    assert np.array_equal(unpack_bits(pack_bits(mask), 5, 200), mask)


def test_quantisation_input_errors_name_the_field():
    with pytest.raises(ValueError, match=r"bits=0 .*\[1, 32\]"):
        quantise_probability(0.5, (2, 2), bits=0)
    with pytest.raises(TypeError, match="bits"):
        quantise_probability(0.5, (2, 2), bits=2.5)
    with pytest.raises(ValueError, match=r"p contains 1\.5.*\[0, 1\]"):
        quantise_probability(np.array([[0.5, 1.5]]), (1, 2))
    with pytest.raises(ValueError, match="does not broadcast"):
        quantise_probability(np.zeros((3, 3)), (2, 2))


# ---------------------------------------------------------------- per-cell sampler


def _one_hot_inputs(rows: int) -> np.ndarray:
    return np.eye(rows, dtype=np.int8)


@pytest.mark.parametrize("bits", [4, 10, 16])
def test_per_cell_conduction_frequencies_binomial(bits):
    # With one-hot inputs and G = 1, I[s, b, i] is the element ξ of cell (b, i): its frequency over
    # n samples must match the quantised p of that cell. bits 4 / 10 / 16 exercise the vector
    # pass, the compacted second pass and the scalar tail of the bit-sliced draw.
    rng = np.random.default_rng(4)
    rows, cols, n = 6, 130, 3000
    p = rng.uniform(0, 1, (rows, cols))
    p[0, :5] = [0.0, 1.0, 0.5, 0.25, 1e-3]
    q = quantise_probability(p, p.shape, bits=bits).quantised()
    i_cells = sample_cell_currents(
        np.ones((rows, cols)), _one_hot_inputs(rows), p, samples=n, key=21, bits=bits
    )
    assert set(np.unique(i_cells)) <= {0.0, 1.0}
    freq_counts = i_cells.sum(axis=0)  # (rows, cols): conducting count of each cell
    assert np.all(freq_counts[q == 0.0] == 0) and np.all(freq_counts[q == 1.0] == n)
    inner = (q > 0) & (q < 1)
    expected = n * q[inner]
    chi2 = float(np.sum((freq_counts[inner] - expected) ** 2 / (expected * (1 - q[inner]))))
    assert stats.chi2.sf(chi2, inner.sum()) > P_MIN


@pytest.mark.parametrize("p_kind", [0.25, 0.5, "per_cell"])
def test_column_mean_and_variance_match_formulas(p_kind):
    # Mean Σ p G z and variance Σ p(1−p) G² z² per column; z has −1, 0 and +1 entries. Each
    # column's mean is within 4.5 standard errors, its variance within 4.5 standard errors of
    # the variance estimate (≈ √(2/n) relative, near-Gaussian sums); both ~7e-6 per column.
    rng = np.random.default_rng(5)
    rows, cols, n = 200, 70, 4000
    g = rng.normal(0, 1, (rows, cols)).astype(np.float32)
    z = rng.choice(np.array([-1, 0, 1], np.int8), size=(2, rows), p=[0.45, 0.1, 0.45])
    p = rng.uniform(0.1, 0.9, (rows, cols)) if p_kind == "per_cell" else p_kind
    i_cells = sample_cell_currents(g, z, p, samples=n, key=31)
    q = quantise_probability(p, (rows, cols)).quantised()
    g64 = g.astype(np.float64)
    for b in range(2):
        mean = (q * g64 * z[b][:, None]).sum(axis=0)
        var = (q * (1 - q) * g64**2 * z[b][:, None] ** 2).sum(axis=0)
        got = i_cells[:, b, :].astype(np.float64)
        assert np.all(np.abs(got.mean(axis=0) - mean) < 4.5 * np.sqrt(var / n))
        assert np.all(np.abs(got.var(axis=0, ddof=1) / var - 1) < 4.5 * np.sqrt(2 / (n - 1)))
    # independent cells: columns uncorrelated (|r| < 4.5/√n for every pair)
    r = np.corrcoef(i_cells[:, 0, :].T)
    assert np.max(np.abs(r[np.triu_indices(cols, 1)])) < 4.5 / np.sqrt(n)


def test_small_array_distribution_matches_exact_binomial_mixture():
    # 4 rows: the column current takes one value per subset of conducting cells; its exact law
    # is Π p_j^ξ_j (1−p_j)^(1−ξ_j). χ² goodness of fit over the 16 outcomes with 20 000 samples.
    rows, n = 4, 20000
    g = np.array([[1.0], [2.0], [4.0], [8.0]], dtype=np.float32)  # subset sums are distinct
    z = np.array([[1, -1, 1, 1]], dtype=np.int8)
    p = np.array([[0.3], [0.5], [0.8], [0.125]])
    i_cells = sample_cell_currents(g, z, p, samples=n, key=41)[:, 0, 0]
    outcomes, probs = [], []
    for xi in itertools.product([0, 1], repeat=rows):
        xi = np.array(xi)
        outcomes.append(float(np.sum(xi * g[:, 0] * z[0])))
        probs.append(float(np.prod(np.where(xi == 1, p[:, 0], 1 - p[:, 0]))))
    counts = np.array([np.sum(i_cells == v) for v in outcomes])
    assert counts.sum() == n
    chi2 = float(np.sum((counts - n * np.array(probs)) ** 2 / (n * np.array(probs))))
    assert stats.chi2.sf(chi2, 2**rows - 1) > P_MIN


def test_deterministic_limits_and_scalar_equals_constant_array():
    rng = np.random.default_rng(6)
    g = rng.normal(size=(90, 65)).astype(np.float32)
    z = rng.choice(np.array([-1, 0, 1], np.int8), size=(3, 90))
    assert np.all(sample_cell_currents(g, z, 0.0, samples=2, key=1) == 0)
    full = sample_cell_currents(g, z, 1.0, samples=2, key=1)
    exact = z.astype(np.float64) @ g.astype(np.float64)
    assert np.allclose(full, exact[None], rtol=0, atol=1e-4)
    scalar = sample_cell_currents(g, z, 0.3, samples=3, key=9)
    array = sample_cell_currents(g, z, np.full(g.shape, 0.3), samples=3, key=9)
    assert np.array_equal(scalar, array)


def test_read_variance_accumulator_uses_the_same_masks():
    # V = Σ ξ R z². With R = G ≥ 0, V equals the current of the same read with inputs |z|: the
    # masks do not depend on z, so the two must agree bit for bit.
    rng = np.random.default_rng(7)
    g = rng.uniform(0, 2, (150, 100)).astype(np.float32)
    z = rng.choice(np.array([-1, 0, 1], np.int8), size=(4, 150))
    i_cells, v_cells = sample_cell_currents(g, z, 0.4, samples=5, key=3, read_var=g)
    i_abs = sample_cell_currents(g, np.abs(z), 0.4, samples=5, key=3)
    assert np.array_equal(v_cells, i_abs)
    assert np.array_equal(i_cells, sample_cell_currents(g, z, 0.4, samples=5, key=3))


def test_identical_for_any_chunking_and_thread_count():
    rng = np.random.default_rng(8)
    g = rng.normal(size=(120, 200)).astype(np.float32)
    z = rng.choice(np.array([-1, 1], np.int8), size=(7, 120))
    p = rng.uniform(0.05, 0.95, g.shape)
    cells = prepare_cells(g, p, read_var=g * g)
    key = sampler_key(np.random.SeedSequence(99))
    default_threads = numba.get_num_threads()
    try:
        numba.set_num_threads(1)
        whole_i, whole_v = sample_cells(cells, z, samples=9, key=key)
        numba.set_num_threads(default_threads)
        parts = [
            sample_cells(
                cells, z[b0:b1], samples=s1 - s0, key=key, sample_offset=s0, batch_offset=b0
            )
            for s0, s1 in [(0, 4), (4, 5), (5, 9)]
            for b0, b1 in [(0, 3), (3, 7)]
        ]
    finally:
        numba.set_num_threads(default_threads)
    it = iter(parts)
    for s0, s1 in [(0, 4), (4, 5), (5, 9)]:
        for b0, b1 in [(0, 3), (3, 7)]:
            i_part, v_part = next(it)
            assert np.array_equal(i_part, whole_i[s0:s1, b0:b1])
            assert np.array_equal(v_part, whole_v[s0:s1, b0:b1])


def test_differential_pair_mean():
    # [G+; G-] with [z, -z]: mean = p Σ (G+ − G−) z; 4.5 standard errors per column.
    rng = np.random.default_rng(9)
    gp = rng.uniform(0, 25, (64, 20)).astype(np.float32)
    gm = rng.uniform(0, 25, (64, 20)).astype(np.float32)
    z = rng.choice(np.array([-1, 1], np.int8), size=(1, 64))
    g, zz = stack_differential(gp, gm, z)
    assert g.shape == (128, 20) and zz.shape == (1, 128)
    n = 3000
    i_cells = sample_cell_currents(g, zz, 0.5, samples=n, key=5)[:, 0].astype(np.float64)
    mean = 0.5 * (z[0].astype(np.float64) @ (gp.astype(np.float64) - gm))
    var = 0.25 * ((gp.astype(np.float64) ** 2 + gm.astype(np.float64) ** 2).sum(axis=0))
    assert np.all(np.abs(i_cells.mean(axis=0) - mean) < 4.5 * np.sqrt(var / n))


def _pairs(rng, rows, cols, integer=False, disjoint=True):
    if integer:
        w = rng.integers(-20, 21, (rows, cols)).astype(np.float32)
    else:
        w = rng.normal(0, 10, (rows, cols)).astype(np.float32)
    gp, gm = np.maximum(w, 0), np.maximum(-w, 0)
    if not disjoint:
        gm = gm + rng.uniform(0, 1, gm.shape).astype(np.float32)
    return np.vstack([gp, gm])


def test_differential_cells_read_the_same_draws_as_the_stacked_rows():
    """prepare_cells(differential=True): inputs z instead of [z, −z]. Pairs with two active
    cells are read as the stacked rows (bit for bit); disjoint pairs are merged, which reads the
    same draws ξ⁺, ξ⁻ — with integer conductances (exact float32 sums in any order) the results
    are identical, with real ones they agree to float32 rounding."""
    rng = np.random.default_rng(11)
    rows, cols = 90, 70
    z = rng.choice(np.array([-1, 0, 1], np.int8), size=(6, rows))
    zz = np.concatenate([z, -z], axis=1)
    for integer, disjoint in [(True, True), (False, True), (False, False)]:
        g = _pairs(rng, rows, cols, integer, disjoint)
        p = rng.uniform(0.1, 0.9, g.shape)
        var = (0.05 * g) ** 2
        stacked = prepare_cells(g, p, read_var=var)
        cells = prepare_cells(g, p, read_var=var, differential=True)
        assert cells.pairs == (2 if disjoint else 1) and cells.inputs == rows
        want_i, want_v = sample_cells(stacked, zz, samples=5, key=12)
        got_i, got_v = sample_cells(cells, z, samples=5, key=12)
        if integer or not disjoint:
            np.testing.assert_array_equal(got_i, want_i)
        else:  # |error| <= rows·2^-24·Σ|G| per column (float32 rounding, another order)
            bound = 2 * rows * 2.0**-24 * np.abs(g).sum(axis=0)
            assert np.all(np.abs(got_i - want_i) <= bound)
        assert np.all(np.abs(got_v - want_v) <= 2 * rows * 2.0**-24 * var.sum(axis=0))
    with pytest.raises(ValueError, match="even number"):
        prepare_cells(np.ones((3, 2)), 0.5, differential=True)
    with pytest.raises(ValueError, match=r"z must have shape \(batch, 45\)"):
        sample_cells(prepare_cells(np.ones((90, 2)), 0.5, differential=True), zz, samples=1, key=1)


def test_merged_pairs_chunk_and_thread_invariant_and_scaled_accumulation():
    rng = np.random.default_rng(13)
    g = _pairs(rng, 60, 130)
    cells = prepare_cells(g, rng.uniform(0.2, 0.8, g.shape), read_var=g * g, differential=True)
    z = rng.choice(np.array([-1, 1], np.int8), size=(5, 60))
    key = sampler_key(np.random.SeedSequence(7))
    whole_i, whole_v = sample_cells(cells, z, samples=11, key=key)
    threads = numba.get_num_threads()
    try:
        numba.set_num_threads(1)
        for s0, s1, b0, b1 in [(0, 3, 0, 2), (3, 11, 2, 5)]:
            i_part, v_part = sample_cells(
                cells, z[b0:b1], samples=s1 - s0, key=key, sample_offset=s0, batch_offset=b0
            )
            np.testing.assert_array_equal(i_part, whole_i[s0:s1, b0:b1])
            np.testing.assert_array_equal(v_part, whole_v[s0:s1, b0:b1])
    finally:
        numba.set_num_threads(threads)
    # scale and out: the numbers of out + s·I and out + s²·V in float32
    acc = (np.full(whole_i.shape, 3.0, np.float32), np.full(whole_v.shape, 0.5, np.float32))
    res = sample_cells(cells, z, samples=11, key=key, scale=0.2, out=acc)
    s = np.float32(0.2)
    assert res[0] is acc[0]
    np.testing.assert_array_equal(acc[0], np.float32(3.0) + s * whole_i)
    np.testing.assert_array_equal(acc[1], np.float32(0.5) + (s * s) * whole_v)
    scaled = sample_cells(cells, z, samples=11, key=key, scale=0.2)
    np.testing.assert_array_equal(scaled[0], s * whole_i)
    with pytest.raises(ValueError, match="C-contiguous float32"):
        sample_cells(cells, z, samples=11, key=key, out=(acc[0][:, :2], acc[1]))


@pytest.mark.parametrize("differential", [False, True])
def test_reads_grouped_across_batch_rows_equal_single_reads(differential):
    """With fewer than 8 samples a task groups batch rows (fully driven rows share one row
    list); every read must still equal the same read alone (one batch row per call)."""
    rng = np.random.default_rng(14)
    g = _pairs(rng, 40, 70, disjoint=False) if differential else rng.normal(size=(40, 70))
    cells = prepare_cells(
        g, rng.uniform(0.2, 0.8, g.shape), read_var=g * g, differential=differential
    )
    z = rng.choice(np.array([-1, 1], np.int8), size=(11, cells.inputs))
    z[[1, 4, 5], :7] = 0  # rows with undriven inputs between fully driven ones
    for samples in (1, 3):
        whole_i, whole_v = sample_cells(cells, z, samples=samples, key=15, sample_offset=4)
        for b in range(len(z)):
            i_b, v_b = sample_cells(
                cells, z[b : b + 1], samples=samples, key=15, sample_offset=4, batch_offset=b
            )
            np.testing.assert_array_equal(i_b, whole_i[:, b : b + 1])
            np.testing.assert_array_equal(v_b, whole_v[:, b : b + 1])


def test_sampler_input_errors_name_the_field():
    g = np.ones((4, 3))
    with pytest.raises(ValueError, match=r"z contains 2"):
        sample_cell_currents(g, np.array([[1, 2, 0, 1]]), 0.5, samples=1, key=1)
    with pytest.raises(ValueError, match=r"z must have shape \(batch, 4\)"):
        sample_cell_currents(g, np.ones((2, 5)), 0.5, samples=1, key=1)
    with pytest.raises(ValueError, match="g contains non-finite"):
        sample_cell_currents(np.full((4, 3), np.nan), np.ones((1, 4)), 0.5, samples=1, key=1)
    with pytest.raises(ValueError, match="samples=-1"):
        sample_cell_currents(g, np.ones((1, 4)), 0.5, samples=-1, key=1)
    with pytest.raises(ValueError, match="read_var contains"):
        sample_cell_currents(g, np.ones((1, 4)), 0.5, samples=1, key=1, read_var=-g)
    with pytest.raises(TypeError, match="sampler_key"):
        sample_cell_currents(g, np.ones((1, 4)), 0.5, samples=1, key=np.random.default_rng(0))
    with pytest.raises(ValueError, match="expected"):
        prepare_cells(g, quantise_probability(0.5, (3, 3)))


# ---------------------------------------------------------------- per-row sampler


def test_per_row_marginals_and_between_column_covariance():
    # One element per row: columns share ξ_j, so Cov(I_i, I_k) = Σ_j p_j(1−p_j) G_ji G_jk z_j².
    # Means within 4.5 s.e.; each covariance within 4.5 s.e. of its estimate,
    # s.e.² ≈ (σ_i² σ_k² + c_ik²)/n (near-Gaussian sums).
    rng = np.random.default_rng(10)
    rows, cols, n = 100, 12, 6000
    g = rng.normal(0, 1, (rows, cols)).astype(np.float32)
    g[:, 1] = g[:, 0]  # two identical columns: correlation 1 under per-row noise
    z = rng.choice(np.array([-1, 0, 1], np.int8), size=(1, rows), p=[0.45, 0.1, 0.45])
    p = rng.uniform(0.2, 0.8, rows)
    i_rows = sample_row_currents(g, z, p, samples=n, key=51)[:, 0].astype(np.float64)
    q = quantise_probability(p.reshape(1, -1), (1, rows)).quantised()[0]
    gz = g.astype(np.float64) * z[0][:, None]
    mean = q @ gz
    cov = gz.T @ ((q * (1 - q))[:, None] * gz)
    sd = np.sqrt(np.diag(cov))
    assert np.all(np.abs(i_rows.mean(axis=0) - mean) < 4.5 * sd / np.sqrt(n))
    emp = np.cov(i_rows.T)
    se = np.sqrt((np.outer(sd**2, sd**2) + cov**2) / n)
    assert np.all(np.abs(emp - cov) < 4.5 * se)
    assert np.corrcoef(i_rows[:, 0], i_rows[:, 1])[0, 1] > 0.999


def test_per_row_masks_are_shared_and_chunk_invariant():
    rng = np.random.default_rng(11)
    g = rng.uniform(0, 1, (70, 5)).astype(np.float32)
    z = rng.choice(np.array([-1, 1], np.int8), size=(4, 70))
    a, v = sample_row_currents(g, z, 0.5, samples=6, key=2, read_var=np.ones_like(g))
    # with R = 1 every column's V is the number of conducting driven rows
    assert np.all(v == v[..., :1]) and np.all(v == np.round(v))
    b = np.concatenate(
        [sample_row_currents(g, z, 0.5, samples=3, key=2, sample_offset=s0) for s0 in (0, 3)]
    )
    assert np.array_equal(a, b)
    with pytest.raises(ValueError, match=r"per-row \(70,\)"):
        sample_row_currents(g, z, np.full((70, 5), 0.5), samples=1, key=2)
