"""End-to-end runtime benchmark: a compiled MNIST network on a realistic chip vs software.

Run from the project root::

    NSMX_MNIST_DIR=/path/to/mnist python benchmarks/bench_runtime.py \\
        --checkpoint examples/checkpoints/mnist-mlp-nsm.pt --threads 2

The performance acceptance: the full MNIST test set (10 000 examples), 100 MC samples,
mnist-mlp on a realistic preset (default ``rram-selector``), ``exact`` mode within 5 minutes and
``clt`` mode within 30 s on 2 cores, reported as a ratio to the software ``nsm.mc_predict`` (the
torch model, same data, same samples, same thread count) measured in the same run, by wall clock
(``..._time_ratio``) and by process CPU time (``..._cpu_ratio``: the work itself, which other
jobs on a shared machine do not inflate; with 2 threads it sums both). Prints one
``key=value`` line per figure (and ``--json FILE`` writes them); the machine's load average before
and after is printed too, because on a shared machine it changes the numbers.

Threads: ``--threads N`` is applied as ``nsmx --threads N`` applies it (to torch, numba and
BLAS alike): at most the cores found free when the script starts
(:func:`nsmx.threads.choose_threads`), so on a busy machine ``--threads 2`` runs 1 thread;
``threads_requested``, ``threads`` (used) and ``free_cores`` are printed. ``--fixed-threads``
uses N as given (``free_cores=-1``).

Every run is preceded by a one-example warm-up (numba kernels load from the on-disk cache or
compile, the chip's read arrays are prepared), which is not timed.
"""

from __future__ import annotations

import os

# Idle OpenMP threads sleep instead of spinning (set before numba or torch start their OpenMP
# runtimes). With spinning threads, numba's parallel kernels and numpy's BLAS, which alternate
# in the clt path, steal each other's cores: measured 4-12x slower with 2 threads of each on 2
# cores. An explicit OMP_WAIT_POLICY in the environment wins.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import argparse
import json
import platform
import resource
import time

import numba
import torch
from threadpoolctl import threadpool_limits

from crossbar.presets import resolve_chip
from mapping.compiler import compile_checkpoint
from mapping.report import accuracy_nll, chip_report
from mapping.runtime import program_chip
from nsm.checkpoint import load_model
from nsm.data import load_dataset
from nsm.evaluate import mc_predict
from nsmx.threads import ThreadChoice, choose_threads, usable_cores


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--checkpoint", required=True, help="mnist-mlp (or mnist-conv) checkpoint")
    ap.add_argument("--data-dir", default=None, help="MNIST IDX folder (default $NSMX_MNIST_DIR)")
    ap.add_argument("--chip", default="rram-selector", help="chip preset or TOML file")
    ap.add_argument("--set", dest="sets", action="append", default=[], metavar="FIELD=VALUE")
    ap.add_argument("--samples", type=int, default=100)
    ap.add_argument("--limit", type=int, default=None, help="first N test examples only")
    ap.add_argument(
        "--threads", type=int, default=2, help="threads asked for (see --fixed-threads)"
    )
    ap.add_argument(
        "--fixed-threads",
        action="store_true",
        help="use --threads as given; by default fewer where the cores are busy, as nsmx does",
    )
    ap.add_argument("--modes", nargs="+", default=["clt", "exact"], choices=["clt", "exact"])
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--json", default=None, help="also write the figures to this JSON file")
    args = ap.parse_args()

    if args.fixed_threads:
        choice = ThreadChoice(args.threads, args.threads, usable_cores(), None, os.getloadavg()[0])
    else:
        choice = choose_threads(args.threads)  # nsmx --threads: at most the free cores
    threads = choice.used
    torch.set_num_threads(threads)
    numba.set_num_threads(min(threads, numba.config.NUMBA_NUM_THREADS))
    figures: dict[str, object] = {
        "cpu_count": os.cpu_count(),
        "threads_requested": args.threads,
        "threads": threads,
        "free_cores": -1.0 if choice.free is None else choice.free,
        "machine": platform.processor() or platform.machine(),
        "load_before": os.getloadavg()[0],
        "chip": " ".join([args.chip, *args.sets]),
        "samples": args.samples,
    }

    program = compile_checkpoint(args.checkpoint)
    model, ckpt = load_model(args.checkpoint)
    x_t, y_t = load_dataset("mnist", split="test", root=args.data_dir)
    if args.limit:
        x_t, y_t = x_t[: args.limit], y_t[: args.limit]
    x, y = x_t.numpy(), y_t.numpy()
    figures.update(model=ckpt["model"], rule=ckpt["rule"], n=len(y))

    with threadpool_limits(limits=threads):
        t0 = time.perf_counter()
        chip = resolve_chip(args.chip, args.sets)
        chip_model = program_chip(program, chip, seed=args.seed)
        figures["program_s"] = time.perf_counter() - t0
        if chip_model.needs_adc_calibration:  # on training examples, never the test set
            x_cal, _ = load_dataset("mnist", split="train", root=args.data_dir)
            t0 = time.perf_counter()
            chip_model.calibrate(x_cal[: chip.periphery.adc_cal_examples].numpy())
            figures["calibration_s"] = time.perf_counter() - t0

        mc_predict(model, x_t[:10], samples=1, generator=torch.Generator().manual_seed(0))
        c0, t0 = time.process_time(), time.perf_counter()
        prob = (
            mc_predict(
                model, x_t, samples=args.samples, generator=torch.Generator().manual_seed(args.seed)
            )
            .double()
            .numpy()
        )
        software_s = time.perf_counter() - t0
        software_cpu_s = time.process_time() - c0
        acc, nll = accuracy_nll(prob, y)
        figures.update(
            software_s=software_s,
            software_cpu_s=software_cpu_s,
            software_accuracy=acc,
            software_nll=nll,
        )

        for mode in args.modes:
            chip_model.run(x[:1], 1, mode=mode, seed=args.seed)  # warm-up, not timed
            c0 = time.process_time()
            run = chip_model.run(x, args.samples, mode=mode, seed=args.seed)
            cpu_s = time.process_time() - c0
            report = chip_report(chip_model, run, y)
            figures.update(
                {
                    f"{mode}_s": run.wall_s,
                    f"{mode}_cpu_s": cpu_s,
                    f"{mode}_vs_software_cpu_ratio": cpu_s / software_cpu_s,
                    f"{mode}_accuracy": report.accuracy,
                    f"{mode}_nll": report.nll,
                    f"{mode}_vs_software_time_ratio": run.wall_s / software_s,
                    f"{mode}_evaluations_per_s": run.n * run.samples / run.wall_s,
                    f"{mode}_adc_saturation_rate": (
                        report.adc_saturations / report.adc_conversions
                        if report.adc_conversions
                        else 0.0
                    ),
                }
            )
    figures["load_after"] = os.getloadavg()[0]
    # ru_maxrss is in KiB on Linux: the process's peak resident memory over the whole run
    figures["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    for key, value in figures.items():
        print(f"{key}={value:.4g}" if isinstance(value, float) else f"{key}={value}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(figures, f, indent=1)


if __name__ == "__main__":
    main()
