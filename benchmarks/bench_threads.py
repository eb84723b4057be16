"""One thread against two on this machine as it is: a compiled MNIST network on a chip.

Run from the project root::

    NSMX_MNIST_DIR=/path/to/mnist python benchmarks/bench_threads.py \\
        --checkpoint examples/checkpoints/mnist-mlp-nsm.pt --rounds 5

On a shared machine the time of one run swings by a factor of two within minutes, so separate
runs cannot compare thread counts. This script programs the chip once and then, round after
round, runs the same evaluation with 1 thread, with 2 threads as asked (``fixed2``) and with
2 threads through the policy of ``nsmx --threads 2`` (``adaptive2``: at most the free cores,
:func:`nsmx.threads.choose_threads`, measured before each run), back to back, the order
rotated from round to round and every run preceded by the same quarter-second pause. Printed per
mode: the median over rounds of the wall time and process CPU time, and of the per-round
ratios ``threads_<label>_vs_1_throughput`` (1-thread wall time / its wall time; ≥ 1 means not
slower), with the load and the free cores seen. ``--modes torch`` times the software reference
(``nsm.mc_predict``) the same way. The chip's results do not depend on the thread count
(checked: every run's probabilities equal the first one's).
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # as nsmx: idle OpenMP threads sleep

import argparse
import statistics
import time

import numba
import numpy as np
import torch
from threadpoolctl import threadpool_limits

from crossbar.presets import resolve_chip
from mapping.compiler import compile_checkpoint
from mapping.runtime import program_chip
from nsm.checkpoint import load_model
from nsm.data import load_dataset
from nsm.evaluate import mc_predict
from nsmx.threads import SAMPLE_S, choose_threads


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--checkpoint", required=True)
    ap.add_argument("--data-dir", default=None, help="MNIST IDX folder (default $NSMX_MNIST_DIR)")
    ap.add_argument("--chip", default="rram-selector")
    ap.add_argument("--samples", type=int, default=100)
    ap.add_argument("--limit", type=int, default=500, help="test images per clt run")
    ap.add_argument("--exact-limit", type=int, default=50, help="test images per exact run")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument(
        "--modes", nargs="+", default=["clt", "exact"], choices=["clt", "exact", "torch"]
    )
    args = ap.parse_args()

    program = compile_checkpoint(args.checkpoint)
    net, _ = load_model(args.checkpoint)
    x_t, _ = load_dataset("mnist", split="test", root=args.data_dir)
    x = x_t[: max(args.limit, args.exact_limit)].numpy()
    chip = resolve_chip(args.chip, [])
    numba.set_num_threads(1)
    with threadpool_limits(limits=1):
        model = program_chip(program, chip, seed=0)
        if model.needs_adc_calibration:
            x_cal, _ = load_dataset("mnist", split="train", root=args.data_dir)
            model.calibrate(x_cal[: chip.periphery.adc_cal_examples].numpy())
    print(f"cpus={os.cpu_count()} load_before={os.getloadavg()[0]:.2f} chip={args.chip}")
    for mode in args.modes:
        xm = x[: args.exact_limit if mode == "exact" else args.limit]

        def evaluate(mode=mode, xm=xm) -> np.ndarray:
            if mode == "torch":  # the software reference, nsm.mc_predict
                gen = torch.Generator().manual_seed(0)
                return mc_predict(net, torch.from_numpy(xm), samples=args.samples, generator=gen)
            return model.run(xm, args.samples, mode=mode, seed=0).probabilities

        model.run(xm[:1], 1, mode="clt" if mode == "torch" else mode, seed=0)  # warm, not timed
        wall: dict[str, list[float]] = {"1": [], "fixed2": [], "adaptive2": []}
        cpu: dict[str, list[float]] = {k: [] for k in wall}
        used: list[int] = []
        free: list[float] = []
        loads: list[float] = []
        reference = None
        labels = list(wall)
        for r in range(args.rounds):
            for label in labels[r % 3 :] + labels[: r % 3]:  # each order in turn
                if label == "adaptive2":
                    choice = choose_threads(2)
                    n = choice.used
                    used.append(n)
                    free.append(-1.0 if choice.free is None else choice.free)
                else:  # the same pause as the measurement of the free cores
                    time.sleep(SAMPLE_S)
                    n = 1 if label == "1" else 2
                numba.set_num_threads(min(n, numba.config.NUMBA_NUM_THREADS))
                torch.set_num_threads(n)
                loads.append(os.getloadavg()[0])
                with threadpool_limits(limits=n):
                    c0, t0 = time.process_time(), time.perf_counter()
                    prob = evaluate()
                    wall[label].append(time.perf_counter() - t0)
                    cpu[label].append(time.process_time() - c0)
                if reference is None:
                    reference = prob
                elif mode != "torch" and not np.array_equal(prob, reference):
                    raise AssertionError(f"{mode}: {label} changed the probabilities")
        tag = f"mode={mode} n={len(xm)} samples={args.samples}"
        for label in wall:
            ratios = [a / b for a, b in zip(wall["1"], wall[label], strict=True)]
            print(
                f"{tag} threads={label} wall_s={statistics.median(wall[label]):.3f} "
                f"cpu_s={statistics.median(cpu[label]):.3f} "
                f"threads_{label}_vs_1_throughput={statistics.median(ratios):.3f} "
                f"min={min(ratios):.3f} max={max(ratios):.3f} "
                f"rounds_wall_s={[round(t, 2) for t in wall[label]]}"
            )
        print(
            f"{tag} adaptive2_threads_used={used} free_cores="
            f"{[round(f, 2) for f in free]} load={min(loads):.1f}-{max(loads):.1f}"
        )
    numba.set_num_threads(numba.config.NUMBA_NUM_THREADS)


if __name__ == "__main__":
    main()
