"""IR-drop solver: exact-solve time, fast-mode cost per sample, fast-vs-exact error.

Run from the project root: ``python benchmarks/bench_ir_drop.py [--quick]``. Prints one
``key=value`` line per figure.

- 256×256 tile (G uniform in 1–25 µS, p = 0.5, r_wire = 1 Ω): time of one exact nodal solve
  (assembly + sparse LU + one solve), of the fast-mode calibration (transfer conductances of the
  mean network: one factorisation, 256 solves), and the exact sampler's time per sample with G and
  with G_eff (batch 100, 1 thread): the fast mode costs nothing per sample, only the calibration.
- Fast-vs-exact error on 64×64 for r_wire in {0.1, 0.5, 1, 2} Ω and on 256×256 at 1 Ω: rms of
  (fast − exact) column currents over random masks and ±1 inputs, relative to the rms exact
  current, next to the same figure when IR drop is ignored.
"""

from __future__ import annotations

import argparse
import time

import numba
import numpy as np

from crossbar.ir_drop import TileNetwork, effective_conductance, solve_ir_drop
from crossbar.rng import sampler_key
from crossbar.sampling import prepare_cells, sample_cells

P = 0.5
V_READ_V = 0.2  # illustrative; every figure below is independent of it (linear network)


def rms(x) -> float:
    return float(np.sqrt(np.mean(np.square(np.concatenate(x)))))


def fast_vs_exact(n: int, r_wire_ohm: float, reads: int, rng) -> tuple[float, float]:
    """(fast error, ignored-IR-drop error), each rms over reads relative to rms exact current."""
    g = rng.uniform(1.0, 25.0, (n, n))
    g_eff = effective_conductance(g, r_wire_ohm, P)
    fast, ideal, exact_all = [], [], []
    for _ in range(reads):
        xi = rng.random((n, n)) < P
        v = rng.choice([-V_READ_V, V_READ_V], size=n)
        exact = solve_ir_drop(g * xi, v, r_wire_ohm).column_currents_ua[0]
        fast.append(v @ (g_eff * xi) - exact)
        ideal.append(v @ (g * xi) - exact)
        exact_all.append(exact)
    return rms(fast) / rms(exact_all), rms(ideal) / rms(exact_all)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer reads")
    args = parser.parse_args()
    rng = np.random.default_rng(2)
    n, r_wire = 256, 1.0
    g = rng.uniform(1.0, 25.0, (n, n))
    v = rng.choice([-V_READ_V, V_READ_V], size=n)

    t0 = time.perf_counter()
    network = TileNetwork(g * P, r_wire)
    t_factor = time.perf_counter() - t0
    t0 = time.perf_counter()
    network.solve(v)
    t_solve = time.perf_counter() - t0
    print(f"ir_exact_factorize_s_256={t_factor:.3g}")
    print(f"ir_exact_solve_s_256={t_factor + t_solve:.3g}")
    print(f"ir_exact_resolve_s_256={t_solve:.3g}", flush=True)

    t0 = time.perf_counter()
    g_eff = effective_conductance(g, r_wire, P)
    print(f"ir_fast_calibration_s_256={time.perf_counter() - t0:.3g}", flush=True)

    numba.set_num_threads(1)
    key = sampler_key(3)
    z = rng.choice(np.array([-1, 1], np.int8), size=(100, n))
    plain = prepare_cells(g.astype(np.float32), P)
    fast = prepare_cells(g_eff.astype(np.float32), P)
    sample_cells(plain, z[:1], samples=1, key=key)
    samples = 20
    t_plain = t_fast = float("inf")
    for _ in range(5 if args.quick else 9):  # interleaved repeats, best of each
        t0 = time.perf_counter()
        sample_cells(plain, z, samples=samples, key=key)
        t_plain = min(t_plain, time.perf_counter() - t0)
        t0 = time.perf_counter()
        sample_cells(fast, z, samples=samples, key=key)
        t_fast = min(t_fast, time.perf_counter() - t0)
    print(f"ir_none_sample_s_256_batch100={t_plain / samples:.3g}")
    print(f"ir_fast_sample_s_256_batch100={t_fast / samples:.3g}")
    print(f"ir_fast_overhead_per_sample_s_256_batch100={(t_fast - t_plain) / samples:.3g}")
    print(f"ir_fast_vs_none_sample_time_ratio={t_fast / t_plain:.3g}", flush=True)

    reads = 10 if args.quick else 30
    for r in (0.1, 0.5, 1.0, 2.0):
        err_fast, err_ideal = fast_vs_exact(64, r, reads, rng)
        print(f"ir_fast_rel_rms_error_64_r{r:g}={err_fast:.3g}")
        print(f"ir_ignored_rel_rms_error_64_r{r:g}={err_ideal:.3g}", flush=True)
    err_fast, err_ideal = fast_vs_exact(256, 1.0, 2 if args.quick else 4, rng)
    print(f"ir_fast_rel_rms_error_256_r1={err_fast:.3g}")
    print(f"ir_ignored_rel_rms_error_256_r1={err_ideal:.3g}")


if __name__ == "__main__":
    main()
