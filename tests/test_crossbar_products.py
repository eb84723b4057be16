"""Fixed-order products of ternary inputs (crossbar.products): accuracy against float64, exact
integer cases, and results that depend only on each row's own inputs (chunking, threads)."""

from __future__ import annotations

import numba
import numpy as np
import pytest

from crossbar.products import (
    all_ternary,
    driven_sum,
    driven_table,
    encode_inputs,
    signed_product,
    signed_table,
)


def _inputs(rng, batch, k, zero_fraction=0.0):
    z = rng.choice(np.array([-1, 1], dtype=np.int8), size=(batch, k))
    if zero_fraction:
        z[rng.random((batch, k)) < zero_fraction] = 0
    return z


@pytest.mark.parametrize("k, n", [(784, 300), (37, 5), (4, 33), (1, 1)])
@pytest.mark.parametrize("zeros", [0.0, 0.2])
def test_signed_product_matches_float64_within_float32_rounding(k, n, zeros):
    rng = np.random.default_rng(k * 1000 + n)
    m = rng.standard_normal((k, n))
    shift = rng.standard_normal(n)
    z = _inputs(rng, 50, k, zeros)
    y = signed_product(z, signed_table(m, shift))
    want = shift + z.astype(np.float64) @ m
    assert y.dtype == np.float32 and y.shape == (50, n)
    # one float32 rounding per table entry and per group addition: |error| <= K/4 + 2 units of
    # 2^-24 of the largest partial sum, bounded by Σ|M| + |shift|
    scale = np.abs(m).sum(axis=0) + np.abs(shift)
    assert np.all(np.abs(y - want) <= (k / 4 + 2) * 2.0**-24 * scale)


@pytest.mark.parametrize("zeros", [0.0, 0.3])
def test_driven_sum_matches_float64(zeros):
    rng = np.random.default_rng(3)
    k, n = 300, 70
    q = rng.uniform(0.0, 2.0, (k, n))
    z = _inputs(rng, 40, k, zeros)
    v = driven_sum(z, driven_table(q, 0.25))
    want = 0.25 + np.square(z.astype(np.float64)) @ q
    assert np.all(np.abs(v - want) <= (k / 4 + 2) * 2.0**-24 * (q.sum(axis=0) + 0.25))
    if zeros == 0.0:  # fully driven rows: the float64 column sum, rounded once
        np.testing.assert_array_equal(
            v, np.broadcast_to((q.sum(0) + 0.25).astype(np.float32), v.shape)
        )


def test_small_integer_coefficients_are_exact():
    rng = np.random.default_rng(4)
    m = rng.integers(-50, 50, (129, 40)).astype(np.float64)
    z = _inputs(rng, 30, 129, 0.25)
    y = signed_product(z, signed_table(m, 3.0))
    np.testing.assert_array_equal(y, 3.0 + z.astype(np.int64) @ m.astype(np.int64))
    q = np.abs(m)
    np.testing.assert_array_equal(
        driven_sum(z, driven_table(q)), np.square(z.astype(np.int64)) @ q.astype(np.int64)
    )


def test_each_row_depends_only_on_its_inputs():
    """Any batch split, row order or thread count gives bit-identical rows."""
    rng = np.random.default_rng(5)
    k, n = 301, 90
    st = signed_table(rng.standard_normal((k, n)), rng.standard_normal(n))
    dt = driven_table(rng.uniform(0, 1, (k, n)))
    z = _inputs(rng, 600, k, 0.0)
    z[::7, :20] = 0  # some rows with undriven inputs
    y, v = signed_product(z, st), driven_sum(z, dt)
    perm = rng.permutation(len(z))
    np.testing.assert_array_equal(signed_product(z[perm], st), y[perm])
    np.testing.assert_array_equal(driven_sum(z[perm], dt), v[perm])
    for lo, hi in [(0, 1), (3, 260), (260, 600), (599, 600)]:
        np.testing.assert_array_equal(signed_product(z[lo:hi], st), y[lo:hi])
        np.testing.assert_array_equal(driven_sum(z[lo:hi], dt), v[lo:hi])
    codes = encode_inputs(z)
    np.testing.assert_array_equal(signed_product(codes, st), y)
    np.testing.assert_array_equal(driven_sum(codes, dt), v)
    threads = numba.get_num_threads()
    try:
        for t in {1, numba.config.NUMBA_NUM_THREADS}:
            numba.set_num_threads(t)
            np.testing.assert_array_equal(signed_product(z, st), y)
            np.testing.assert_array_equal(driven_sum(z, dt), v)
    finally:
        numba.set_num_threads(threads)


def test_errors_name_the_argument():
    st = signed_table(np.ones((8, 3)))
    with pytest.raises(ValueError, match="8"):
        signed_product(np.ones((2, 7), dtype=np.int8), st)
    with pytest.raises(TypeError, match="int8"):
        signed_product(np.ones((2, 8)), st)
    with pytest.raises(ValueError, match="m contains non-finite"):
        signed_table(np.array([[np.inf]]))
    with pytest.raises(ValueError, match="shift"):
        driven_table(np.ones((2, 2)), np.nan)


def test_all_ternary_checks_every_value():
    z = np.zeros((3, 5, 7), dtype=np.int8)
    z[0, 0, 0], z[2, 4, 6] = -1, 1
    assert all_ternary(z)
    for bad in (2, -2, 127, -128):
        z[1, 2, 3] = bad
        assert not all_ternary(z)
    with pytest.raises(TypeError, match="int8"):
        all_ternary(np.zeros(3))
