"""Evaluate trained MNIST runs with 100 MC samples and print the rebuttal's comparison table.

Usage (after ``nsmx train ... --out RUNS/mnist-mlp-RULE`` for each rule)::

    NSMX_MNIST_DIR=/path/to/mnist python examples/mnist_table.py RUNS/mnist-mlp-* [--samples 100]

Prints one Markdown row per run: rule, epochs, MC test error (%), NLL, training wall time, and
the paper's number for the same rule (rebuttal, MNIST).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch

from nsm.checkpoint import load_model
from nsm.data import load_dataset
from nsm.evaluate import accuracy_nll, mc_predict

#: Test error (%) on MNIST reported in the rebuttal (conv architecture for NSM / BinConcrete).
PAPER_ERROR = {
    "nsm": "0.70",
    "binconcrete": "0.78",
    "bn": "1.10",
    "sn": "2.05",
    "nsm-ste": "2.13",
    "wbd": "2.72",
    "bd": "3.11",
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs", nargs="+", type=Path, help="run folders holding checkpoint.pt")
    parser.add_argument("--samples", type=int, default=100)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", type=Path, default=None, help="also write the rows as JSON")
    args = parser.parse_args()

    x, y = load_dataset("mnist", split="test")
    rows = []
    for run in args.runs:
        model, ckpt = load_model(run / "checkpoint.pt")
        t0 = time.perf_counter()
        prob = mc_predict(
            model, x, samples=args.samples, generator=torch.Generator().manual_seed(args.seed)
        )
        eval_s = time.perf_counter() - t0
        accuracy, nll = accuracy_nll(prob, y)
        train_s = sum(r["epoch_s"] for r in ckpt.get("history", []))
        rows.append(
            {
                "run": str(run),
                "model": ckpt["model"],
                "rule": ckpt["rule"],
                "epochs": int(ckpt["epoch"]),
                "error_pct": 100 * (1 - accuracy),
                "nll": nll,
                "train_s": train_s,
                "eval_s": eval_s,
                "samples": args.samples,
            }
        )
        r = rows[-1]
        print(
            f"| {r['model']} | {r['rule']} | {r['epochs']} | {r['error_pct']:.2f} | "
            f"{r['nll']:.4f} | {r['train_s'] / 60:.1f} | {PAPER_ERROR.get(r['rule'], '-')} |",
            flush=True,
        )
    if args.json:
        args.json.write_text(json.dumps(rows, indent=1) + "\n")


if __name__ == "__main__":
    main()
