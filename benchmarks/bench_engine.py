"""The tiled engine (HardwareLayer) against a dense float32 product and the bare exact kernel.

Run from the project root: ``python benchmarks/bench_engine.py [--quick]``. Prints one
``key=value`` line per figure. Both sides of every ratio run in the same process with the same
thread count (numba.set_num_threads and threadpoolctl); every time is the best of several
interleaved repeats, so a loaded machine penalises both sides alike. Each ratio is also given
from process CPU times (``..._cpu_ratio``; meaningful at one thread), which time-slicing by other
jobs on a shared machine does not inflate.

Figures, for layers 784x300 and 256x256, batch 1000, Bernoulli p = 0.5, default 256x256 tiles,
threads 1 and 2 (ratios are dense time / engine time per MC sample, so higher is better):
- engine_exact_vs_dense_ratio: ``sample(mode="exact")`` on the ideal chip (two-phase β, analog
  partial sums) against the software layer's dense product z @ W (fan_in x fan_out);
- engine_exact_vs_kernel_ratio: the bare exact kernel on the whole [W⁺; W⁻] differential matrix
  (untiled) against the engine (1.0 = the tiling, periphery and decisions cost nothing);
- engine_clt_vs_dense_ratio: ``mode="clt"``, 10 samples per input (the moments are computed
  once per input and shared by its samples);
- engine_clt_1_vs_dense_ratio / engine_realistic_clt_1_...: ``mode="clt"`` with one sample per
  input (every input pays its moment products: the case of a hidden layer fed by sampled
  states, mapping.runtime);
- engine_row_vs_dense_ratio: per-row stochastic elements;
- engine_realistic_exact_vs_dense_ratio / engine_realistic_clt_vs_dense_ratio: the
  ``rram-selector`` chip (per-cell p spread, stuck cells, read noise, comparator noise);
- engine_tile_adc_exact_vs_dense_ratio: per-row-tile 8-bit ADCs and digital sums;
- build_s: mapping + programming + calibration time of the realistic layer.

Headline per shape and thread count: ``clt_vs_dense_ratio`` (= engine_clt_vs_dense_ratio, the
issue's figure) and ``clt_vs_dense_cpu_ratio``.
"""

from __future__ import annotations

import argparse
import os
import platform
import time

import numba
import numpy as np
from threadpoolctl import threadpool_limits

from crossbar import ChipConfig, HardwareLayer, replace_field
from crossbar.sampling import prepare_cells, sample_cells

BATCH = 1000


def _realistic() -> ChipConfig:
    return ChipConfig.from_preset("rram-selector")


#: case -> (chip factory, mode); the line names are engine_<case>_vs_dense_ratio
CASES = {
    "exact": (ChipConfig.ideal, "exact"),
    "clt": (ChipConfig.ideal, "clt"),
    "row": (
        lambda: replace_field(ChipConfig.ideal(), "devices.element.structure", "per_row"),
        "exact",
    ),
    "realistic_exact": (_realistic, "exact"),
    "realistic_clt": (_realistic, "clt"),
    "tile_adc_exact": (
        lambda: replace_field(_realistic(), "periphery.partial_sums", "adc"),
        "exact",
    ),
}


def interleaved_best(fns: dict, repeats: int) -> tuple[dict, dict]:
    """Smallest wall-clock and process CPU time (s) of each callable over ``repeats``
    interleaved rounds."""
    best = dict.fromkeys(fns, float("inf"))
    cpu = dict.fromkeys(fns, float("inf"))
    for _ in range(repeats):
        for name, fn in fns.items():
            c0, t0 = time.process_time(), time.perf_counter()
            fn()
            best[name] = min(best[name], time.perf_counter() - t0)
            cpu[name] = min(cpu[name], time.process_time() - c0)
    return best, cpu


def bench_shape(
    fan_in: int, fan_out: int, chips: dict, samples: int, repeats: int, threads_list: list[int]
) -> None:
    rng = np.random.default_rng(0)
    w = rng.standard_normal((fan_in, fan_out)).astype(np.float32)
    beta = rng.uniform(0.5, 2.0, fan_out)
    z = rng.choice(np.array([-1, 1], dtype=np.int8), size=(BATCH, fan_in))
    zf = z.astype(np.float32)
    shape = f"{fan_in}x{fan_out}"
    layers = {}
    for name, (chip, _) in chips.items():
        t0 = time.perf_counter()
        layers[name] = HardwareLayer.build(
            w, beta, None, noise="bernoulli", p=0.5, chip=chip, rng=np.random.default_rng(1)
        )
        if name == "realistic_exact":
            print(f"shape={shape} build_s={time.perf_counter() - t0:.3f}")
    pairs = np.vstack([np.maximum(w, 0), np.maximum(-w, 0)])
    try:  # the engine's differential cells (G⁻ read with −z inside the kernel)
        cells, z_kernel = prepare_cells(pairs, 0.5, differential=True), z
    except TypeError:  # an older crossbar: the stacked rows with [z, −z]
        cells, z_kernel = prepare_cells(pairs, 0.5), np.concatenate([z, -z], axis=1)
    fns = {
        "dense": lambda: zf @ w,
        "kernel": lambda: sample_cells(cells, z_kernel, samples=samples, key=1),
    }
    runs = {}  # name -> samples per input
    for name, (_, mode) in chips.items():
        layer = layers[name]
        layer.sample(z[:8], 1, rng=rng, mode=mode)  # compile / warm caches outside the timings
        for tag, n in ((name, samples), (f"{name}_1", 1)):
            if tag.endswith("_1") and mode != "clt":
                continue
            runs[tag] = n
            fns[tag] = lambda layer=layer, mode=mode, n=n: layer.sample(z, n, rng=rng, mode=mode)
    fns["kernel"]()
    for threads in threads_list:
        numba.set_num_threads(min(threads, numba.config.NUMBA_NUM_THREADS))
        with threadpool_limits(threads):
            best, cpu = interleaved_best(fns, repeats)
        dense = best["dense"]
        tag = f"shape={shape} threads={threads}"
        gmac = BATCH * fan_in * fan_out / dense / 1e9
        print(
            f"{tag} dense_s={dense:.5f} dense_gmac_s={gmac:.2f} load_1min={os.getloadavg()[0]:.2f}"
        )
        for name, n in runs.items():
            t = best[name] / n
            print(
                f"{tag} engine_{name}_vs_dense_ratio={dense / t:.4f} "
                f"engine_{name}_vs_dense_cpu_ratio={cpu['dense'] * n / cpu[name]:.4f} "
                f"engine_{name}_s_per_sample={t:.5f}"
            )
            if name == "exact":
                print(f"{tag} engine_exact_vs_kernel_ratio={best['kernel'] / best[name]:.4f}")
        if "clt" in best:
            print(
                f"{tag} clt_vs_dense_ratio={dense * samples / best['clt']:.4f} "
                f"clt_vs_dense_cpu_ratio={cpu['dense'] * samples / cpu['clt']:.4f}"
            )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer samples and repeats")
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2], help="thread counts")
    parser.add_argument(
        "--cases",
        nargs="+",
        default=None,
        choices=list(CASES),
        help="engine cases to time (default: all)",
    )
    parser.add_argument("--shapes", nargs="+", default=["784x300", "256x256"], help="FANINxFANOUT")
    parser.add_argument("--repeats", type=int, default=None, help="interleaved rounds")
    args = parser.parse_args()
    samples = 2 if args.quick else 10
    repeats = args.repeats or (2 if args.quick else 3)
    print(
        f"machine={platform.machine()} cpus={os.cpu_count()} "
        f"numba_threads_max={numba.config.NUMBA_NUM_THREADS}"
    )
    chips = {name: (make(), mode) for name, (make, mode) in CASES.items()}
    if args.cases:
        chips = {name: chips[name] for name in args.cases}
    for shape in args.shapes:
        fan_in, fan_out = (int(x) for x in shape.split("x"))
        bench_shape(fan_in, fan_out, chips, samples, repeats, args.threads)


if __name__ == "__main__":
    main()
