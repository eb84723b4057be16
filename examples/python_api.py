"""The Python API top to bottom: train an NSM, compile it, program a chip, predict, inspect.

Run from the project root (offline, about a minute on 2 cores)::

    .venv/bin/python examples/python_api.py [--out runs/python-api] [--epochs 30]

Steps:

1. train the ``digits-mlp`` NSM on scikit-learn's bundled 8x8 digits (``nsm.train``);
2. compile the checkpoint into a crossbar program and write / read the ``.nsmx`` file;
3. pick a chip: a preset plus field overrides (``crossbar.resolve_chip``);
4. program the chip (device-to-device randomness drawn once from ``seed``);
5. Monte-Carlo prediction on the chip and in software, side by side;
6. inspect what the chip realises: effective β against the trained β, weight alignment, firing
   rates, operation counters, and a hidden neuron's firing frequency against its probability.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from crossbar.presets import resolve_chip
from mapping.compiler import compile_checkpoint
from mapping.program import load_program, save_program
from mapping.reference import firing_probability, predict_reference
from mapping.report import accuracy_nll, chip_report, format_layers
from mapping.runtime import program_chip
from nsm.data import load_dataset
from nsm.train import CHECKPOINT_NAME, TrainConfig, train


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", default="runs/python-api")
    ap.add_argument("--epochs", type=int, default=30)
    ap.add_argument("--samples", type=int, default=100)
    args = ap.parse_args()
    out = Path(args.out)

    # 1. Train (or reuse a finished run in --out).
    x_tr, y_tr = load_dataset("digits", split="train")
    x_te, y_te = load_dataset("digits", split="test")
    ckpt = out / "train" / CHECKPOINT_NAME
    if not ckpt.exists():
        cfg = TrainConfig(model="digits-mlp", rule="nsm", epochs=args.epochs, seed=0)
        train(cfg, (x_tr, y_tr, x_te, y_te), ckpt.parent, progress=False)

    # 2. Compile; the .nsmx file is validated on load and needs no torch.
    program = load_program(save_program(compile_checkpoint(ckpt), out / "digits-mlp.nsmx"))
    for row in program.summary():
        print(
            f"  {row['name']:>2} {row['kind']:<8} {row['in_shape']} -> {row['out_shape']} "
            f"{row['level']}"
        )

    # 3. A chip: RRAM cells with stochastic selectors (a preset, with field overrides if any).
    chip = resolve_chip("rram-selector")

    # 4. Program it. The mapper sets each layer's read voltage so the selectors realise the
    #    trained p, and solves the periphery gain a_i from the programmed devices. Then the
    #    ADC ranges are calibrated on training examples read through the programmed chip
    #    (never on the test set).
    model = program_chip(program, chip, seed=0)
    model.calibrate(x_tr[: chip.periphery.adc_cal_examples].numpy(), source="digits train")
    for pl in model.layers:
        print(
            f"  layer {pl.name}: {pl.hardware.fan_in}x{pl.hardware.fan_out} on "
            f"{pl.tiles[0]}x{pl.tiles[1]} tiles, {pl.read}"
        )

    # 5. Monte-Carlo prediction: chip (exact per-cell sampling) and software reference.
    x, y = x_te.numpy(), y_te.numpy()
    run = model.run(x, args.samples, mode="exact", seed=1)
    software = predict_reference(program, x, samples=args.samples, rng=np.random.default_rng(1))
    acc_chip, nll_chip = accuracy_nll(run.probabilities, y)
    acc_sw, nll_sw = accuracy_nll(software, y)
    print(f"\n  software: accuracy {acc_sw:.2%}, NLL {nll_sw:.3f}")
    print(
        f"  chip:     accuracy {acc_chip:.2%}, NLL {nll_chip:.3f}  ({run.wall_s:.1f} s, "
        f"{args.samples} samples)"
    )

    # 6. What the chip realises.
    print()
    for line in format_layers(chip_report(model, run, y)):
        print(line)
    for name, eff in model.effective_parameters().items():
        trained = program.layers[int(name)].beta
        print(
            f"  layer {name}: beta_eff/beta {np.mean(eff.beta / trained):.3f} "
            f"(std {np.std(eff.beta / trained):.3f}), gains a_i in "
            f"[{eff.gain.min():.3f}, {eff.gain.max():.3f}]"
        )
    counters = run.counters[model.layers[0].name]
    print(
        f"  first layer: {counters.device_reads / counters.evaluations:,.0f} cell reads and "
        f"{counters.comparator_decisions / counters.evaluations:.0f} comparator decisions per "
        "evaluation"
    )

    # A hidden neuron's firing frequency over 2000 reads of one digit vs its probability:
    # on this chip (programming noise, stuck cells, selector spread) the two differ a little.
    states = model.sample_states(x[:1], 2000, seed=2)
    first = program.binary_layers[0]
    z_in = states[1][0]  # the flattened ±1 input
    p_software = firing_probability(first, z_in)[0]
    p_chip_model = model.layers[0].hardware.hardware_probability(z_in)[0]
    freq = (states[2][:, 0] > 0).mean(axis=0)
    for i in np.argsort(np.abs(p_software - 0.5))[:3]:  # the three most uncertain neurons
        print(
            f"  neuron {i}: software P = {p_software[i]:.3f}, chip prediction "
            f"{p_chip_model[i]:.3f}, measured {freq[i]:.3f} (± {np.sqrt(0.25 / 2000):.3f})"
        )


if __name__ == "__main__":
    main()
