"""A custom chip from a TOML file: run an NSM on it, then vary the read time and the ADC bits.

Run from the project root (offline, about a minute on 2 cores)::

    .venv/bin/python examples/custom_chip.py [--chip examples/custom_chip.toml] [--program P]

Without ``--program`` it trains the ``digits-mlp`` NSM on the bundled digits first (30 epochs,
about 10 s). ``examples/custom_chip.toml`` describes PCM weight cells with threshold-switching
selectors, 128x128 tiles with 6-bit ADCs between row tiles and 0.5 Ω wires (sources in the file).

It prints three tables:

1. the chip against the software model (accuracy, NLL);
2. accuracy after PCM drift, t = 0 s … 1 month after programming, with the periphery calibrated
   at programming time: weight normalisation makes a uniform drift harmless, only the spread of
   the drift exponents and the parts that do not drift (bias thresholds, ADC ranges) act;
3. accuracy vs the tile ADCs' resolution (``periphery.adc_bits``), each chip programmed with the
   same seed, so the devices are the same and only the converters change.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from crossbar import replace_field
from crossbar.presets import resolve_chip
from mapping.compiler import compile_checkpoint
from mapping.program import load_program
from mapping.reference import predict_reference
from mapping.report import accuracy_nll, chip_report
from mapping.runtime import program_chip
from nsm.data import load_dataset
from nsm.train import CHECKPOINT_NAME, TrainConfig, train

HERE = Path(__file__).resolve().parent


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--chip", default=str(HERE / "custom_chip.toml"))
    ap.add_argument("--program", default=None, help="a compiled digits program (.nsmx)")
    ap.add_argument("--out", default="runs/custom-chip")
    ap.add_argument("--samples", type=int, default=30)
    ap.add_argument("--mode", choices=["exact", "clt"], default="exact")
    args = ap.parse_args()

    x_tr, y_tr = load_dataset("digits", split="train")
    x_te, y_te = load_dataset("digits", split="test")
    if args.program:
        program = load_program(args.program)
    else:
        ckpt = Path(args.out) / "train" / CHECKPOINT_NAME
        if not ckpt.exists():
            cfg = TrainConfig(model="digits-mlp", rule="nsm", epochs=30, seed=0)
            train(cfg, (x_tr, y_tr, x_te, y_te), ckpt.parent, progress=False)
        program = compile_checkpoint(ckpt)
    x, y = x_te.numpy(), y_te.numpy()

    chip = resolve_chip(args.chip)
    print(f"chip: {chip.description}")
    software = predict_reference(program, x, samples=args.samples, rng=np.random.default_rng(0))
    acc, nll = accuracy_nll(software, y)
    # The ADC ranges are calibrated on training examples (never the test set).
    x_cal = x_tr[: chip.periphery.adc_cal_examples].numpy()
    model = program_chip(program, chip, seed=0, calibration=x_cal)
    report = chip_report(model, model.run(x, args.samples, mode=args.mode, seed=0), y)
    print(f"  software    accuracy {acc:.2%}  NLL {nll:.3f}")
    print(
        f"  chip        accuracy {report.accuracy:.2%}  NLL {report.nll:.3f}  "
        f"ADC saturations {report.adc_saturations}/{report.adc_conversions}"
    )

    print("\nPCM drift (periphery calibrated at programming, t_cal = 0 s):")
    print("  t after programming   accuracy     NLL   mean beta_eff/beta (first layer)")
    first = model.binary_layers[0]
    for label, t_s in [
        ("0 s", 0.0),
        ("1 minute", 60.0),
        ("1 hour", 3600.0),
        ("1 day", 86400.0),
        ("1 month", 30 * 86400.0),
    ]:
        prob = model.predict(x, args.samples, t_s=t_s, mode=args.mode, seed=0)
        acc, nll = accuracy_nll(prob, y)
        ratio = first.hardware.effective_parameters(t_s).beta / first.record.beta
        print(f"  {label:<20}{acc:>9.2%}{nll:>9.3f}   {np.mean(ratio):.3f}")

    print("\nTile ADC resolution (same devices: same programming seed):")
    print("  adc_bits   accuracy     NLL   saturated conversions")
    for bits in (3, 4, 5, 6, 8):
        variant = program_chip(
            program, replace_field(chip, "periphery.adc_bits", bits), seed=0, calibration=x_cal
        )
        report = chip_report(variant, variant.run(x, args.samples, mode=args.mode, seed=0), y)
        print(
            f"  {bits:>8}{report.accuracy:>11.2%}{report.nll:>9.3f}   "
            f"{report.adc_saturations / max(report.adc_conversions, 1):.2%}"
        )


if __name__ == "__main__":
    main()
