"""Paired accuracy change of a fine-tuning run: the learned chip against the untuned one.

    python benchmarks/paired_change.py RUN/chip_state.npz --samples 20 [--seed 0]

The untuned chip is rebuilt from the chip-state file's program, chip, pulse device and seed
(the chip ``nsmx learn --program`` started from); both are read on the same test examples with
the same MC samples and read seed, so the change and its standard error are those of the
per-example difference (correct after − correct before). Prints one line.
"""

from __future__ import annotations

import argparse

import numpy as np

from mapping.learning import ChipStateError, load_chip_state, load_untuned_chip
from nsmx.args import load_split


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("chip_state")
    parser.add_argument("--samples", type=int, default=20)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    try:
        before, _ = load_untuned_chip(args.chip_state)
    except ChipStateError as exc:
        raise SystemExit(str(exc)) from None
    after, manifest = load_chip_state(args.chip_state)
    x, y = load_split(manifest.get("meta", {}).get("dataset"), "test", None)
    x, y = np.asarray(x), np.asarray(y)
    correct = []
    for net in (before, after):
        run = net.model.run(x, net.run_config(args.samples, args.seed), progress=False)
        correct.append((np.argmax(run.probabilities, axis=1) == y).astype(float))
    d = correct[1] - correct[0]
    se = d.std(ddof=1) / np.sqrt(len(d))
    print(
        f"{args.chip_state}: before {100 * correct[0].mean():.2f} % after "
        f"{100 * correct[1].mean():.2f} % change {100 * d.mean():+.2f} ± {100 * se:.2f} pp "
        f"(paired SE), fixed {int((d > 0).sum())} broken {int((d < 0).sum())}"
    )


if __name__ == "__main__":
    main()
