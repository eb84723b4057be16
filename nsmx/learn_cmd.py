"""``nsmx learn``: train an NSM MLP in situ on a virtual chip with pulse-programmed devices.

Writes into ``--out DIR``: ``metrics.csv`` and ``metrics.json`` (one row per epoch: loss,
train / test accuracy, gradient cosine per layer, pulses per device, refreshes, time),
``checkpoint.npz`` (every epoch; ``--resume`` continues from it) and ``program.nsmx`` (the
learned network as a crossbar program; evaluate it with ``nsmx run DIR/program.nsmx``).
``--json`` makes the last line of stdout one JSON object (the final epoch's metrics).
"""

from __future__ import annotations

import argparse
import csv
import dataclasses
import json
import sys
from pathlib import Path
from typing import Any

from nsmx.args import (
    UserError,
    add_chip_args,
    add_data_args,
    add_output_args,
    add_plugin_arg,
    add_seed_arg,
    load_data,
    load_split,
    positive_int,
)

DATASET_OF = {"digits-mlp": "digits", "mnist-mlp": "mnist"}


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Register ``learn`` on an ``argparse`` subparsers object; returns its parser."""
    from mapping.estimators import ESTIMATORS
    from mapping.updates import NORMS, PAIR_UPDATES, UPDATES

    p = subparsers.add_parser("learn", help="train in situ on a virtual chip (pulse updates)")
    add_chip_args(
        p,
        program_seed=False,
        set_help="override a chip field, e.g. devices.neuron.noise_sigma_ua=0.2 (repeatable)",
    )
    p.add_argument(
        "--pulse",
        default="ideal",
        help="pulse-response preset (ideal, fefet, rram, pcm) or pulse TOML file "
        "(default: %(default)s)",
    )
    p.add_argument(
        "--model", choices=sorted(DATASET_OF), default="digits-mlp", help="(default: %(default)s)"
    )
    p.add_argument(
        "--epochs", type=positive_int, default=10, help="total epochs to reach (default: 10)"
    )
    p.add_argument(
        "--estimator",
        choices=list(ESTIMATORS),
        default="exact",
        help="how the Gaussian factor dP/ds is obtained (default: exact)",
    )
    p.add_argument(
        "--delta",
        type=float,
        default=0.5,
        help="window half-width Δ in units of the pre-activation std (default 0.5)",
    )
    p.add_argument(
        "--update", choices=list(UPDATES), default="deterministic", help="(default: %(default)s)"
    )
    p.add_argument(
        "--update-norm",
        choices=list(NORMS),
        default="max",
        help="update management scale: max (default) or rms of the column errors",
    )
    p.add_argument(
        "--pair-update",
        choices=["auto", *PAIR_UPDATES],
        default="auto",
        help="(default: %(default)s: the pulse device's)",
    )
    p.add_argument(
        "--batch-size", type=positive_int, default=50, help="1 = online learning (default: 50)"
    )
    p.add_argument(
        "--lr-us",
        type=float,
        default=0.1,
        help="max expected weight change per device and update, µS (default 0.1; "
        "converted to pulses with the device's up step)",
    )
    p.add_argument(
        "--lr-pulses",
        type=float,
        default=None,
        help="max expected pulses per device per update (overrides --lr-us)",
    )
    p.add_argument(
        "--lr-decay", type=float, default=0.9, help="per-epoch factor on lr-pulses (default: 0.9)"
    )
    p.add_argument(
        "--lr-periphery", type=float, default=0.01, help="Adam lr of the periphery (default: 0.01)"
    )
    p.add_argument(
        "--eval-samples",
        type=positive_int,
        default=20,
        help="MC samples per test example (default: 20)",
    )
    p.add_argument(
        "--train-subset", type=positive_int, default=None, help="first N training examples only"
    )
    p.add_argument(
        "--test-subset", type=positive_int, default=None, help="first N test examples only"
    )
    add_seed_arg(p, help="seed of programming, sampling and updates")
    add_data_args(
        p,
        dataset=False,
        limit=False,
        data_dir_help="MNIST IDX folder (default: $NSMX_MNIST_DIR)",
    )
    p.add_argument("--out", required=True, help="output folder")
    p.add_argument("--resume", action="store_true", help="continue from DIR/checkpoint.npz")
    add_plugin_arg(p)
    add_output_args(p)
    return p


def _pulse(spec: str):
    from devices.pulse import list_pulse_presets, load_pulse_preset, pulse_from_toml

    if spec.endswith(".toml") or Path(spec).is_file():
        return pulse_from_toml(Path(spec))
    if spec not in list_pulse_presets():
        raise ValueError(
            f"--pulse {spec!r} is not a pulse preset ("
            f"{', '.join(list_pulse_presets())}) or a TOML file"
        )
    return load_pulse_preset(spec)


def _write_metrics(out: Path, history: list[dict[str, Any]]) -> None:
    (out / "metrics.json").write_text(json.dumps(history, indent=1), encoding="utf-8")
    if not history:
        return
    n_layers = len(history[0]["grad_cosine"])
    header = [
        "epoch",
        "train_loss",
        "train_acc",
        "test_acc",
        "lr_pulses",
        "updates",
        "refreshed_pairs",
        "wall_s",
    ]
    header += [f"cos_l{k}" for k in range(n_layers)]
    header += [f"pulses_mean_l{k}" for k in range(n_layers)]
    header += [f"pulses_max_l{k}" for k in range(n_layers)]
    with open(out / "metrics.csv", "w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(header)
        for r in history:
            w.writerow(
                [r[k] for k in header[:8]]
                + list(r["grad_cosine"])
                + [p["mean"] for p in r["pulses"]]
                + [p["max"] for p in r["pulses"]]
            )


def run(args: argparse.Namespace) -> int:
    from crossbar import ChipError, resolve_chip
    from mapping.learning import LearningConfig, OnChipNetwork, Trainer
    from mapping.program import save_program

    try:
        chip = resolve_chip(args.chip, args.sets)
        pulse = _pulse(args.pulse)
        config = LearningConfig(
            model=args.model,
            estimator=args.estimator,
            delta=args.delta,
            update=args.update,
            update_norm=args.update_norm,
            pair_update=args.pair_update,
            lr_us=args.lr_us,
            lr_pulses=args.lr_pulses,
            lr_decay=args.lr_decay,
            lr_periphery=args.lr_periphery,
            batch_size=args.batch_size,
            eval_samples=args.eval_samples,
            seed=args.seed,
        )
        net = OnChipNetwork(config, chip, pulse)
    except (ChipError, ValueError, TypeError) as exc:
        raise UserError(str(exc)) from exc
    out = Path(args.out)
    ckpt = out / "checkpoint.npz"
    if ckpt.exists() and not args.resume:
        raise UserError(f"{ckpt} exists; pass --resume to continue or choose another --out")
    if args.data is not None:
        dataset = Path(args.data).name
        shape, classes = net.template.input_shape, net.template.n_classes
        x_tr, y_tr = load_data(args.data, "train", input_shape=shape, n_classes=classes)
        x_te, y_te = load_data(args.data, "test", input_shape=shape, n_classes=classes)
    else:
        dataset = DATASET_OF[args.model]
        x_tr, y_tr = load_split(dataset, "train", args.data_dir)
        x_te, y_te = load_split(dataset, "test", args.data_dir)
    x_tr, y_tr = x_tr.numpy(), y_tr.numpy()
    x_te, y_te = x_te.numpy(), y_te.numpy()
    if args.train_subset:
        x_tr, y_tr = x_tr[: args.train_subset], y_tr[: args.train_subset]
    if args.test_subset:
        x_te, y_te = x_te[: args.test_subset], y_te[: args.test_subset]
    trainer = Trainer(net, x_tr, y_tr, x_te, y_te)
    if args.resume and ckpt.exists():
        try:
            info, arrays = Trainer.read_checkpoint(ckpt)
            trainer.load(info, arrays)
        except (ValueError, KeyError, OSError) as exc:
            raise UserError(f"{ckpt}: cannot resume ({exc})") from exc
        print(f"resumed from {ckpt} at epoch {trainer.epoch}")
    out.mkdir(parents=True, exist_ok=True)
    (out / "config.json").write_text(
        json.dumps(
            {
                "learning": dataclasses.asdict(config),
                "chip": args.chip,
                "sets": args.sets,
                "pulse": args.pulse,
                "pulse_config": dataclasses.asdict(pulse),
                "pair_update": net.pair_update,
                "dataset": dataset,
                "train_subset": args.train_subset,
                "test_subset": args.test_subset,
            },
            indent=1,
        ),
        encoding="utf-8",
    )
    print(
        f"in-situ learning: {args.model} on chip {args.chip}, pulse device {args.pulse} "
        f"({net.pair_update}), estimator {args.estimator}, update {args.update}, "
        f"{len(x_tr)} train / {len(x_te)} test examples"
    )
    source = {
        "model": args.model,
        "dataset": dataset,
        "rule": "in_situ",
        "chip": args.chip,
        "pulse": args.pulse,
        "estimator": args.estimator,
        "update": args.update,
    }
    row: dict[str, Any] = trainer.history[-1] if trainer.history else {}
    while trainer.epoch < args.epochs:
        bar = None
        if not args.no_progress:
            from tqdm import tqdm

            bar = tqdm(
                total=len(x_tr),
                desc=f"epoch {trainer.epoch + 1}/{args.epochs}",
                unit="ex",
                file=sys.stderr,
                leave=False,
            )
        row = trainer.run_epoch(progress=bar.update if bar else None)
        if bar is not None:
            bar.close()
        cos = " ".join(f"{c:.3f}" for c in row["grad_cosine"])
        print(
            f"epoch {row['epoch']:3d}  loss {row['train_loss']:.4f}  train "
            f"{row['train_acc'] * 100:6.2f} %  test {row['test_acc'] * 100:6.2f} %  "
            f"cos [{cos}]  pulses/device max {max(p['max'] for p in row['pulses'])}  "
            f"({row['wall_s']:.1f} s)",
            flush=True,
        )
        trainer.save(
            ckpt,
            meta={
                "args": {
                    k: v
                    for k, v in vars(args).items()
                    if isinstance(v, (str, int, float, bool, list))
                }
            },
        )
        _write_metrics(out, trainer.history)
        save_program(net.to_program(dict(source, epochs=trainer.epoch)), out / "program.nsmx")
    if not trainer.history:
        raise UserError(f"nothing to do: the checkpoint is already at epoch {trainer.epoch}")
    print(
        f"wrote {out / 'program.nsmx'} (evaluate with: nsmx run {out / 'program.nsmx'} "
        f"--chip {args.chip})"
    )
    if args.json:
        print(json.dumps(row))
    return 0
