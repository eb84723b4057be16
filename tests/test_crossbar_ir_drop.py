"""IR-drop solver: Kirchhoff's laws, analytic limits, attenuation with distance, fast-mode error."""

from __future__ import annotations

import numpy as np
import pytest

from crossbar.ir_drop import (
    TileNetwork,
    effective_conductance,
    ir_attenuation,
    kcl_residual,
    solve_ir_drop,
    transfer_conductance,
)
from crossbar.sampling import sample_cell_currents

EPS = np.finfo(np.float64).eps
V_READ_V = 0.2  # illustrative read voltage; every quantity below is linear in it


@pytest.mark.parametrize("shape", [(12, 9), (64, 64)])
def test_kcl_residual_at_machine_precision_and_charge_conservation(shape):
    # Every node's net current, recomputed element by element from the solved voltages, is zero
    # to within 64 ulps of the largest wire current g_w·max|V| (the size of the terms summed).
    rng = np.random.default_rng(1)
    g = rng.uniform(0, 25, shape)
    v = rng.choice([-V_READ_V, 0.0, V_READ_V], size=(3, shape[0]))
    r_wire = 1.5
    network = TileNetwork(g, r_wire)
    sol = network.solve(v)
    bound_ua = 64 * EPS * (1 / r_wire) * V_READ_V / 1e-6
    assert kcl_residual(network, v, sol) < bound_ua
    # what the drivers deliver leaves through the virtual grounds (each driver current is
    # g_w·(V − V_wl), good to ~1 ulp of g_w·V: the sums agree to rows + cols such bounds)
    np.testing.assert_allclose(
        sol.driver_currents_ua.sum(axis=1),
        sol.column_currents_ua.sum(axis=1),
        rtol=0,
        atol=(shape[0] + shape[1]) * bound_ua,
    )
    # and the sensed current is the sum of the column's cell currents
    cell_i = g[None] * sol.cell_voltage_v
    np.testing.assert_allclose(cell_i.sum(axis=1), sol.column_currents_ua, rtol=1e-9, atol=1e-9)


def test_single_cell_matches_series_circuit():
    # driver -> r -> cell G -> r -> ground: I = V / (2r + 1/G)
    g_us, r = 20.0, 2.0
    sol = solve_ir_drop(np.array([[g_us]]), np.array([V_READ_V]), r)
    expected_ua = V_READ_V / (2 * r + 1 / (g_us * 1e-6)) / 1e-6
    assert sol.column_currents_ua[0, 0] == pytest.approx(expected_ua, rel=1e-12)


def test_ideal_wires_and_small_resistance_limit():
    rng = np.random.default_rng(2)
    g = rng.uniform(0, 25, (20, 30))
    v = rng.choice([-V_READ_V, V_READ_V], size=20)
    ideal = solve_ir_drop(g, v, 0.0).column_currents_ua[0]
    np.testing.assert_allclose(ideal, v @ g, rtol=1e-12, atol=1e-12)
    tiny = solve_ir_drop(g, v, 1e-6).column_currents_ua[0]
    np.testing.assert_allclose(tiny, ideal, rtol=0, atol=1e-6 * np.abs(ideal).max())
    assert np.array_equal(ir_attenuation(g, 0.0), np.ones_like(g))


def test_transfer_conductance_is_exact_linear_response():
    rng = np.random.default_rng(3)
    g = rng.uniform(0, 25, (16, 10))
    m = transfer_conductance(g, 1.0)
    v = rng.choice([-V_READ_V, 0.0, V_READ_V], size=(5, 16))
    np.testing.assert_allclose(
        v @ m, solve_ir_drop(g, v, 1.0).column_currents_ua, rtol=1e-10, atol=1e-12
    )


def test_currents_attenuate_with_distance_from_drivers_and_sense_end():
    g = np.full((32, 48), 20.0)  # uniform array: only the position of a cell differs
    a = ir_attenuation(g, 2.0, p=0.5)
    assert np.all(np.diff(a, axis=1) < 0)  # along each word line, away from its driver
    assert np.all(np.diff(a, axis=0) > 0)  # along each bit line, towards the virtual ground
    assert 0.5 < a.min() < a.max() < 1.0
    currents = solve_ir_drop(g, np.full(32, V_READ_V), 2.0).column_currents_ua[0]
    assert np.all(np.diff(currents) < 0)  # farther columns deliver less current
    assert currents[0] < V_READ_V * g[:, 0].sum()


@pytest.mark.parametrize("r_wire_ohm", [0.1, 0.5, 1.0, 2.0])
def test_fast_mode_error_vs_exact_solve_on_64x64(r_wire_ohm):
    # 64×64 tile, G uniform in 1–25 µS (PCM-like range, docs/hardware-model.md §8), p = 0.5, random
    # masks and ±1 inputs. Fast mode: I = Σ_j ξ G_eff z V. Measured rms errors (relative to the rms
    # exact current): 2.2e-4, 1.2e-3, 2.5e-3, 5.0e-3 for r = 0.1, 0.5, 1, 2 Ω, versus 1.9e-3 …
    # 4.1e-2 when IR drop is ignored (30 reads). Bounds: < 4e-3·r and < 1/4 of the ignored-IR-drop
    # error.
    rng = np.random.default_rng(4)
    n, p = 64, 0.5
    g = rng.uniform(1, 25, (n, n))
    g_eff = effective_conductance(g, r_wire_ohm, p)
    fast_err, ideal_err, exact_all = [], [], []
    for _ in range(8):
        xi = rng.random((n, n)) < p
        v = rng.choice([-V_READ_V, V_READ_V], size=n)
        exact = solve_ir_drop(g * xi, v, r_wire_ohm).column_currents_ua[0]
        fast_err.append(v @ (g_eff * xi) - exact)
        ideal_err.append(v @ (g * xi) - exact)
        exact_all.append(exact)

    def rms(x):
        return float(np.sqrt(np.mean(np.square(x))))

    assert rms(fast_err) < 4e-3 * r_wire_ohm * rms(exact_all)
    assert rms(fast_err) < 0.25 * rms(ideal_err)


def test_effective_conductance_feeds_the_exact_sampler():
    # Mean of the sampler's currents with G_eff equals the mean network's exact response V @ M;
    # every column within 4.5 standard errors.
    rng = np.random.default_rng(5)
    g = rng.uniform(1, 25, (48, 40))
    p, r_wire, n = 0.5, 2.0, 3000
    g_eff = effective_conductance(g, r_wire, p)
    z = rng.choice(np.array([-1, 1], np.int8), size=(1, 48))
    i_ua = V_READ_V * sample_cell_currents(g_eff, z, p, samples=n, key=8)[:, 0].astype(np.float64)
    mean_ua = (V_READ_V * z[0]) @ transfer_conductance(g * p, r_wire)
    se = V_READ_V * np.sqrt((p * (1 - p) * g_eff**2).sum(axis=0) / n)
    assert np.all(np.abs(i_ua.mean(axis=0) - mean_ua) < 4.5 * se)


def test_ir_drop_input_errors_name_the_field():
    g = np.ones((3, 3))
    with pytest.raises(ValueError, match="r_wire_ohm=-1"):
        TileNetwork(g, -1)
    with pytest.raises(ValueError, match="g_us"):
        TileNetwork(-g, 1.0)
    with pytest.raises(ValueError, match=r"v_rows_v must be finite with shape \(3,\)"):
        solve_ir_drop(g, np.ones(4), 1.0)
    with pytest.raises(ValueError, match="p must lie in"):
        effective_conductance(g, 1.0, 1.5)
