"""``nsmx learn``: train an NSM in situ on a virtual chip with pulse-programmed devices, from
scratch (``--model``) or by fine-tuning a programmed chip (``--program FILE.nsmx --tune
periphery|full``).

Writes into ``--out DIR``: ``metrics.csv`` and ``metrics.json`` (one row per epoch: loss,
train / test accuracy, gradient cosine per layer, pulses per device, refreshes, time),
``chip_state.npz`` (the learned chip as it is, every epoch: ``nsmx run --chip-state`` evaluates
it, ``--resume`` continues it), ``program.nsmx`` (the learned network as a crossbar program)
and ``learning_curve.png`` (accuracy, gradient cosine and pulses per epoch, every epoch).
``--model`` takes what ``nsmx train --model`` takes (a named model, a layer-list TOML file or
``module:function``); ``--resume`` refuses any change but ``--epochs``, ``--no-progress`` and
``--json``, naming the field.
``--json`` makes the last line of stdout one JSON object: accuracy_before (the chip before
learning), accuracy_after, epochs, n (test examples), samples, the paths written and the final
epoch's metrics.
"""

from __future__ import annotations

import argparse
import csv
import dataclasses
import json
import sys
from pathlib import Path
from typing import Any

import numpy as np

from nsmx.args import (
    UserError,
    add_chip_args,
    add_data_args,
    add_output_args,
    add_plugin_arg,
    add_training_args,
    load_data,
    load_split,
    model_architecture,
    positive_int,
)
from nsmx.json_output import print_json
from nsmx.safe_io import check_output_dir

DATASETS = ("digits", "mnist", "fashion-mnist")


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Register ``learn`` on an ``argparse`` subparsers object; returns its parser."""
    from mapping.estimators import ESTIMATORS
    from mapping.updates import NORMS, PAIR_UPDATES, UPDATES
    from nsm.models import MODELS

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
        "--model",
        default=None,
        help=f"architecture learned from scratch, as for nsmx train: a named model "
        f"({', '.join(sorted(MODELS))}), a layer-list TOML file or module:function (with "
        "--data) (default: digits-mlp; not with --program)",
    )
    p.add_argument(
        "--program",
        default=None,
        metavar="FILE.nsmx",
        help="fine-tune the chip programmed with this compiled program",
    )
    p.add_argument(
        "--tune",
        choices=["periphery", "full"],
        default="full",
        help="with --program: periphery = only β gains, thresholds and the output layer (no "
        "pulse); full = also pulse updates of the crossbars (default: %(default)s)",
    )
    p.add_argument(
        "--dataset",
        choices=list(DATASETS),
        default=None,
        help="the data the program was trained for (default: the program's source dataset, "
        "or the --model's)",
    )
    p.add_argument(
        "--mode",
        choices=["clt", "exact"],
        default="clt",
        help="the engine's read mode for training and evaluation (default: %(default)s)",
    )
    add_training_args(
        p,
        epochs_help="total epochs to reach (default: 10; with --resume the one setting that may "
        "change, with --no-progress and --json)",
        batch_size=50,
        batch_size_help="1 = online learning (default: 50)",
        eval_samples=20,
        eval_samples_help="MC samples per test example (default: 20)",
        seed_help="seed of programming, sampling and updates",
        out_help="output folder",
        resume_help="continue from DIR/chip_state.npz to --epochs; refused when the chip, pulse "
        "device, architecture or program, a learning setting or the data differ",
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
        "--update",
        choices=list(UPDATES),
        default="deterministic",
        help="pulse scheme: deterministic (net count, rounded stochastically) or stochastic "
        "(coincidences) (default: %(default)s)",
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
        "--lr-us",
        type=float,
        default=0.2,
        help="max expected weight change per device and update, µS (default 0.2; "
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
        "--train-subset", type=positive_int, default=None, help="first N training examples only"
    )
    p.add_argument(
        "--test-subset", type=positive_int, default=None, help="first N test examples only"
    )
    add_data_args(
        p,
        dataset=False,
        limit=False,
        data_dir_help="MNIST IDX folder (default: $NSMX_MNIST_DIR)",
    )
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


def _scratch_model(spec: str, data: str | None) -> tuple[str, dict[str, Any] | None]:
    """(model, architecture) of ``--model`` as ``nsmx train --model`` reads it: a named model
    (architecture None), a layer-list TOML file or a ``module:function`` factory (its layer
    list, the input shape taken from ``--data``); errors are :class:`UserError`."""
    architecture = model_architecture(spec, data, verb="learns")
    return (spec, None) if architecture is None else ("custom", architecture)


def _dataset(args: argparse.Namespace, program: Any, model: str, architecture: Any) -> str:
    """The data the run learns: ``--data``'s file name, ``--dataset``, the program's source
    dataset or the architecture's."""
    if args.data is not None:  # the user's own data names itself
        return Path(args.data).name
    if args.dataset is not None:
        return args.dataset
    if program is not None:
        dataset = str(program.source.get("dataset", ""))
        if dataset not in DATASETS:
            raise UserError(
                f"{args.program}: name its data with --dataset (source says {dataset!r})"
            )
        return dataset
    if architecture is not None:
        dataset = architecture.get("dataset")
        if dataset is None:
            raise UserError(
                f"--model {args.model}: the architecture names no dataset; pass --data FILE.npz "
                'or --dataset (or set dataset = "digits" in the layer list)'
            )
        return str(dataset)
    from nsm.models import MODELS

    return str(MODELS[model].dataset)


def run(args: argparse.Namespace) -> int:
    from crossbar import ChipError, resolve_chip
    from mapping.learning import ChipStateError, LearningConfig, OnChipNetwork, Trainer
    from mapping.learning.chip_state import data_identity, read_chip_state
    from mapping.learning.models import network_template
    from mapping.program import ProgramError, load_program, save_program
    from nsmx.learn_plot import plot_learning_curve

    if args.program is not None and args.model is not None:
        raise UserError("--model and --program are exclusive (a program has its architecture)")
    if args.program is None and args.tune != "full":
        raise UserError(
            "--tune periphery needs --program (a chip learned from scratch learns its crossbars)"
        )
    program = None
    architecture = None
    if args.program is not None:
        try:
            program = load_program(args.program)
        except (ProgramError, OSError) as exc:
            raise UserError(str(exc)) from exc
        model = ""
        template = program
    else:
        model, architecture = _scratch_model(args.model or "digits-mlp", args.data)
        try:
            template = network_template(model, architecture)
        except ValueError as exc:
            raise UserError(str(exc)) from exc
    dataset = _dataset(args, program, model, architecture)
    out = check_output_dir(args.out, "learn --out")  # a folder this process can write
    state_path = out / "chip_state.npz"
    if state_path.exists() and not args.resume:
        raise UserError(f"{state_path} exists; pass --resume to continue or choose another --out")
    if args.resume and state_path.exists():
        try:  # a damaged or foreign file is refused before the chip is built
            read_chip_state(state_path)
        except (ChipStateError, OSError) as exc:
            raise UserError(f"cannot resume: {exc}") from exc
    shape, classes = template.input_shape, template.n_classes
    if args.data is not None:
        x_tr, y_tr = load_data(args.data, "train", input_shape=shape, n_classes=classes)
        x_te, y_te = load_data(args.data, "test", input_shape=shape, n_classes=classes)
    else:
        x_tr, y_tr = load_split(dataset, "train", args.data_dir)
        x_te, y_te = load_split(dataset, "test", args.data_dir)
    x_tr, y_tr = np.asarray(x_tr), np.asarray(y_tr)
    x_te, y_te = np.asarray(x_te), np.asarray(y_te)
    if tuple(x_tr.shape[1:]) != tuple(shape):
        raise UserError(
            f"{dataset} gives inputs of shape {tuple(x_tr.shape[1:])}, but the network takes "
            f"{tuple(shape)}"
        )
    if args.train_subset:
        x_tr, y_tr = x_tr[: args.train_subset], y_tr[: args.train_subset]
    if args.test_subset:
        x_te, y_te = x_te[: args.test_subset], y_te[: args.test_subset]
    data = data_identity(
        dataset,
        (x_tr, y_tr, x_te, y_te),
        train_subset=args.train_subset,
        test_subset=args.test_subset,
        data_file=args.data,
    )
    try:
        chip = resolve_chip(args.chip, args.sets)
        pulse = _pulse(args.pulse)
        config = LearningConfig(
            model=model,
            architecture=architecture,
            mode=args.mode,
            tune=args.tune,
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
        n_cal = chip.periphery.adc_cal_examples
        net = OnChipNetwork(config, chip, pulse, program, calibration=x_tr[:n_cal])
    except (ChipError, ValueError, TypeError) as exc:
        raise UserError(str(exc)) from exc
    trainer = Trainer(net, x_tr, y_tr, x_te, y_te)
    if args.resume and state_path.exists():
        try:
            trainer.resume(state_path, data)
        except (ChipStateError, OSError) as exc:
            raise UserError(f"cannot resume: {exc}") from exc
        print(f"resumed from {state_path} at epoch {trainer.epoch}")
    out.mkdir(parents=True, exist_ok=True)
    (out / "config.json").write_text(
        json.dumps(
            {
                "learning": dataclasses.asdict(config),
                "program": args.program,
                "chip": args.chip,
                "sets": args.sets,
                "pulse": args.pulse,
                "pulse_config": dataclasses.asdict(pulse),
                "pair_update": net.pair_update,
                "dataset": dataset,
                "train_subset": args.train_subset,
                "test_subset": args.test_subset,
                "data": data,
            },
            indent=1,
        ),
        encoding="utf-8",
    )
    name = model if architecture is None else str(architecture.get("name", "custom"))
    what = f"fine-tuning {args.program} ({args.tune})" if program else f"{name} from scratch"
    print(
        f"in-situ learning: {what} on chip {args.chip}, pulse device {args.pulse} "
        f"({net.pair_update}), estimator {args.estimator}, update {args.update}, mode "
        f"{args.mode}, {len(x_tr)} train / {len(x_te)} test examples"
    )
    source = {
        "model": name or str(program.source.get("model", "program")),
        "dataset": dataset,
        "rule": "in_situ",
        "chip": args.chip,
        "pulse": args.pulse,
        "estimator": args.estimator,
        "update": args.update,
        "tune": args.tune,
    }
    acc_before = trainer.history[0]["accuracy_before"] if trainer.history else trainer.evaluate(-1)
    print(f"chip accuracy before learning: {acc_before * 100:.2f} %", flush=True)
    row: dict[str, Any] = trainer.history[-1] if trainer.history else {}
    curve = out / "learning_curve.png"
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
        row["accuracy_before"] = acc_before
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
        trainer.save(state_path, meta={"dataset": dataset, "source": source, "data": data})
        _write_metrics(out, trainer.history)
        save_program(net.to_program(dict(source, epochs=trainer.epoch)), out / "program.nsmx")
        plot_learning_curve(trainer.history, curve, title=f"in-situ learning: {what}")
    if not trainer.history:
        raise UserError(f"nothing to do: the chip state is already at epoch {trainer.epoch}")
    print(
        f"wrote {state_path} (evaluate with: nsmx run --chip-state {state_path}), "
        f"{out / 'program.nsmx'} and {curve}"
    )
    if args.json:
        summary = {
            "accuracy_before": acc_before,
            "accuracy_after": row["test_acc"],
            "epochs": trainer.epoch,
            "n": len(x_te),
            "samples": config.eval_samples,
            "chip_state": str(state_path),
            "program": str(out / "program.nsmx"),
            "metrics": str(out / "metrics.json"),
            "learning_curve": str(curve),
            **row,
        }
        print_json(summary)
    return 0


def run_chip_state(args: argparse.Namespace) -> int:
    """``nsmx run --chip-state FILE``: the MC test accuracy of a learned chip as it is (the
    chip-state file's conductances, calibration and gains; its learning mode unless
    ``--mode`` is given), on the data it learned (or ``--dataset`` / ``--data``)."""
    from mapping.learning import ChipStateError, load_chip_state
    from nsmx.args import run_config

    if args.program is not None:
        raise UserError("give either a program or --chip-state, not both")
    cfg = run_config(args)
    try:
        net, manifest = load_chip_state(args.chip_state)
    except (ChipStateError, OSError) as exc:
        raise UserError(str(exc)) from exc
    dataset = args.dataset or manifest.get("meta", {}).get("dataset")
    if args.data is not None:
        x, y = load_data(args.data, "test", input_shape=net.input_shape, n_classes=None)
        dataset = Path(args.data).name
    else:
        if dataset not in ("digits", "mnist", "fashion-mnist"):
            raise UserError(f"{args.chip_state}: name the test data with --dataset")
        x, y = load_split(dataset, "test", args.data_dir)
    x, y = np.asarray(x), np.asarray(y)
    if args.limit:
        x, y = x[: args.limit], y[: args.limit]
    run = net.model.run(x, net.run_config(cfg.samples, cfg.seed), progress=not args.no_progress)
    acc = float(np.mean(np.argmax(run.probabilities, axis=1) == y))
    pos = manifest.get("position", {})
    print(
        f"chip state {args.chip_state} (epoch {pos.get('epoch', '?')}, "
        f"{net.total_pulses():,} pulses so far) on {dataset} test: {len(y)} examples x "
        f"{cfg.samples} MC samples, mode {net.config.mode}, reads seed {cfg.seed}"
    )
    print(f"  chip accuracy {acc * 100:.2f} %")
    if args.json:
        print_json(
            {
                "chip_state": str(args.chip_state),
                "dataset": dataset,
                "n": len(y),
                "samples": cfg.samples,
                "seed": cfg.seed,
                "mode": net.config.mode,
                "chip_accuracy": acc,
                "epoch": pos.get("epoch"),
            }
        )
    return 0
