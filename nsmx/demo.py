"""``nsmx demo``: the whole pipeline on the embedded 8x8 digits, offline, in about two minutes.

1. train the ``digits-mlp`` NSM (64-128-128-10, Bernoulli p = 0.5) in PyTorch;
2. compile it into a crossbar program (``OUT/model.nsmx``);
3. run it on the ``ideal`` chip and on the realistic chip presets that have a Bernoulli element
   (threshold-switching selectors: ``rram-selector``, ``selector-fefet``), and in software
   (the torch model's own Monte-Carlo prediction), for 1, 3, 10, 30 and 100 MC samples;
4. print the table and save ``OUT/demo_accuracy.png`` (accuracy vs MC samples per
   configuration) and ``OUT/demo.json``.
"""

from __future__ import annotations

import argparse
import shutil
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from nsmx.args import (
    add_output_args,
    add_samples_arg,
    add_seed_arg,
    chip_arg,
    positive_int,
)
from nsmx.json_output import print_json
from nsmx.safe_io import json_text
from nsmx.threads import blas_threads

DEFAULT_CHIPS = ("ideal", "rram-selector", "selector-fefet")
SAMPLE_COUNTS = (1, 3, 10, 30, 100)


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Register ``demo`` on an ``argparse`` subparsers object; returns its parser."""
    from mapping.run_config import MODES

    p = subparsers.add_parser(
        "demo", help="train, compile and run an NSM on virtual chips (bundled 8x8 digits, offline)"
    )
    p.add_argument("--out", default="runs/demo", help="output folder (default: runs/demo)")
    p.add_argument("--epochs", type=positive_int, default=30, help="training epochs (default: 30)")
    add_samples_arg(
        p, help="largest number of MC samples (the curve uses 1, 3, 10, 30, 100 up to it)"
    )
    add_seed_arg(p, help="seed of training, programming and sampling")
    p.add_argument(
        "--chips",
        nargs="+",
        default=list(DEFAULT_CHIPS),
        metavar="CHIP",
        help="chip presets or TOML files (default: " + " ".join(DEFAULT_CHIPS) + ")",
    )
    p.add_argument(
        "--mode",
        choices=list(MODES),
        default="exact",
        help="chip sampling mode (default: exact, every cell drawn)",
    )
    add_output_args(p)
    return p


def sample_counts(largest: int) -> list[int]:
    """The points of the accuracy curve: 1, 3, 10, 30, 100 up to ``largest``, and ``largest``."""
    return sorted({s for s in SAMPLE_COUNTS if s <= largest} | {largest})


def accuracy_curve(
    predict: Callable[[int], np.ndarray], y: np.ndarray, counts: Sequence[int]
) -> tuple[list[float], float, float]:
    """Accuracy for each number of samples in ``counts``, the NLL at the largest, and the wall
    time of the largest run (``predict(samples)`` returns (N, classes) probabilities)."""
    from mapping.report import accuracy_nll

    accuracies = []
    nll = wall = float("nan")
    for s in counts:
        t0 = time.perf_counter()
        prob = predict(s)
        wall = time.perf_counter() - t0
        acc, nll = accuracy_nll(prob, y)
        accuracies.append(acc)
    return accuracies, nll, wall


def plot_curves(rows: list[dict[str, Any]], counts: Sequence[int], path: Path, title: str) -> None:
    """Accuracy (%) vs MC samples (log axis), one line per configuration."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.4, 4.2))
    for row in rows:
        style = "--" if row["config"].startswith("software") else "-"
        ax.plot(counts, [100 * a for a in row["accuracy"]], style, marker="o", label=row["config"])
    ax.set_xscale("log")
    ax.minorticks_off()
    ax.set_xticks(list(counts), [str(c) for c in counts])
    ax.set_xlabel("Monte-Carlo samples per test example")
    ax.set_ylabel("test accuracy (%)")
    ax.set_title(title)
    ax.grid(True, alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def run(args: argparse.Namespace) -> int:
    import numba
    import torch

    threads = getattr(args, "threads", None)
    if threads is not None:  # nsmx --threads N: the CLI has set torch and numba already
        with blas_threads(threads):
            return _run(args)
    # Default: one thread. The demo's matrices are tiny (at most 128x128, batches of 50), so
    # parallel regions cost more in synchronisation than they save, and on a shared machine
    # waiting for a second core stalls them (measured on a loaded 2-core machine: 30 epochs in
    # 7.5 s with one thread, 218 s with two).
    previous = torch.get_num_threads(), numba.get_num_threads()
    torch.set_num_threads(1)
    numba.set_num_threads(1)
    try:
        with blas_threads(1):
            return _run(args)
    finally:
        torch.set_num_threads(previous[0])
        numba.set_num_threads(previous[1])


def _run(args: argparse.Namespace) -> int:
    import torch

    from crossbar import chip_label
    from mapping.compiler import compile_checkpoint
    from mapping.program import save_program
    from mapping.runtime import MappingError, program_chip
    from nsm.checkpoint import load_model
    from nsm.data import load_dataset
    from nsm.evaluate import mc_predict
    from nsm.train import CHECKPOINT_NAME, TrainConfig, train

    # Resolve the chips first: a typo fails now, not after training.
    chips = [(chip_label(spec), chip_arg(spec)) for spec in args.chips]
    out = Path(args.out)
    train_dir = out / "train"
    if (train_dir / CHECKPOINT_NAME).exists():
        shutil.rmtree(train_dir)  # the demo always starts from scratch
    x_tr, y_tr = load_dataset("digits", split="train")
    x_te, y_te = load_dataset("digits", split="test")
    cfg = TrainConfig(model="digits-mlp", rule="nsm", epochs=args.epochs, seed=args.seed)
    print(
        f"[1/3] training an NSM ({cfg.model}: {len(x_tr)} train / {len(x_te)} test digits, "
        f"{cfg.epochs} epochs)"
    )
    t0 = time.perf_counter()
    train(cfg, (x_tr, y_tr, x_te, y_te), train_dir, progress=not args.no_progress)
    train_s = time.perf_counter() - t0

    ckpt = train_dir / CHECKPOINT_NAME
    program = compile_checkpoint(ckpt)
    program_path = save_program(program, out / "model.nsmx")
    print(f"[2/3] compiled {ckpt} -> {program_path} ({program.cells():,} crossbar cells)")

    counts = sample_counts(args.samples)
    x, y = x_te.numpy(), y_te.numpy()
    model, _ = load_model(ckpt)
    print(
        f"[3/3] Monte-Carlo test accuracy for {', '.join(map(str, counts))} samples: software "
        f"and {len(chips)} chips ({args.mode} sampling)"
    )
    rows: list[dict[str, Any]] = []

    def software(s: int) -> np.ndarray:
        g = torch.Generator().manual_seed(args.seed)
        return mc_predict(model, x_te, samples=s, generator=g).double().numpy()

    acc, nll, wall = accuracy_curve(software, y, counts)
    rows.append({"config": "software (torch)", "accuracy": acc, "nll": nll, "wall_s": wall})
    for label, chip in chips:
        try:
            # Data-calibrated ADCs: on the first training examples, never the test set.
            x_cal = x_tr[: chip.periphery.adc_cal_examples].numpy()
            chip_model = program_chip(program, chip, seed=args.seed, calibration=x_cal)
        except MappingError as exc:
            print(f"  skipping chip {label}: {exc}")
            continue

        def on_chip(s: int, chip_model=chip_model) -> np.ndarray:
            return chip_model.predict(x, s, mode=args.mode, seed=args.seed)

        acc, nll, wall = accuracy_curve(on_chip, y, counts)
        beta = np.concatenate(
            [pl.hardware.effective.beta / pl.record.beta for pl in chip_model.binary_layers]
        )
        rows.append(
            {
                "config": f"chip {label}",
                "accuracy": acc,
                "nll": nll,
                "wall_s": wall,
                "beta_ratio_std": float(np.std(beta)),
            }
        )

    head = "".join(f"{'S=' + str(s):>8}" for s in counts)
    print()
    print(f"  {'configuration':<26}{head}{'NLL':>9}{'wall':>8}")
    for r in rows:
        accs = "".join(f"{100 * a:>7.2f}%" for a in r["accuracy"])
        print(f"  {r['config']:<26}{accs}{r['nll']:>9.4f}{r['wall_s']:>7.1f}s")
    print(f"  (accuracy on {len(y)} test digits; NLL and wall time at S={counts[-1]})")

    figure = out / "demo_accuracy.png"
    plot_curves(
        rows, counts, figure, f"digits-mlp NSM, {len(y)} test digits ({args.mode} chip sampling)"
    )
    print(f"\ntrained in {train_s:.1f} s; plot: {figure}; program: {program_path}")
    result = {
        "train_s": train_s,
        "samples": counts,
        "n": len(y),
        "mode": args.mode,
        "seed": args.seed,
        "rows": rows,
        "figure": str(figure),
        "program": str(program_path),
    }
    (out / "demo.json").write_text(json_text(result, indent=1) + "\n")
    if args.json:
        print_json(result)
    return 0
