"""``nsmx run model.nsmx --chip PRESET|file.toml``: run a compiled program on a virtual chip.

Programs the chip (``--program-seed``, default ``--seed``), runs ``--samples`` Monte-Carlo passes
per test example on it and on the program's software semantics (numpy reference, same number of
samples), and prints a table: accuracy, error, NLL and wall time of both, then one row per
crossbar layer (tiles, read conditions, firing rate, effective β / trained β, weight alignment,
ADC saturations). ``--cost`` adds the energy, latency and area per classification
(:mod:`mapping.cost`, from the run's counters and the chip's ``cost`` section). ``--json`` makes
the last line one JSON object with ``chip_accuracy``, ``software_accuracy``, ``samples``, ``n``,
``mode``, ``chip``, ``seed``, ``t_s``, ``wall_s``, the full report and, with ``--cost``, ``cost``
(:meth:`mapping.cost.CostReport.to_dict`).

A chip whose ADC ranges are calibrated on data (``periphery.adc_range = "calibrated"``, the
realistic presets' default) is calibrated right after programming on the first
``periphery.adc_cal_examples`` examples of the dataset's *training* split — never on the
evaluated test split — with the programming seed (:mod:`mapping.adc_calibration`). The ranges
and the calibration are in the report (``adc``, ``adc_calibration``). More than 1 % saturated
conversions in a layer's ADCs prints a warning on stderr naming the field that sets their range
(``warnings`` in the report).
"""

from __future__ import annotations

import argparse
import sys
import time
from typing import Any

from nsmx.args import (
    DATASETS,
    UserError,
    add_chip_args,
    add_data_args,
    add_output_args,
    add_plugin_arg,
    add_run_args,
    chip_arg,
    data_label,
    load_data,
    load_split,
    run_config,
)
from nsmx.json_output import print_json
from nsmx.threads import blas_threads


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Register ``run`` on an ``argparse`` subparsers object; returns its parser."""
    p = subparsers.add_parser(
        "run", help="run a compiled program (.nsmx) on a virtual chip and compare with software"
    )
    p.add_argument(
        "program", nargs="?", default=None, help="compiled program (nsmx compile's .nsmx file)"
    )
    p.add_argument(
        "--chip-state",
        default=None,
        metavar="FILE",
        help="evaluate a learned chip as it is (nsmx learn's chip_state.npz) instead of a program",
    )
    add_chip_args(p)
    add_run_args(p)
    add_data_args(p)
    p.add_argument("--no-software", action="store_true", help="skip the software reference run")
    p.add_argument(
        "--cost",
        action="store_true",
        help="report energy, latency and area per classification (the chip's cost.* fields)",
    )
    add_plugin_arg(p)
    add_output_args(p)
    return p


def _dataset(args: argparse.Namespace, program: Any) -> str:
    from nsm.models import MODELS

    if args.dataset:
        return args.dataset
    model = program.source.get("model")
    if model in MODELS:
        return MODELS[model].dataset
    if program.source.get("dataset") in DATASETS:  # a user architecture that names its set
        return program.source["dataset"]
    raise UserError(
        f"{args.program} does not record the dataset it was trained on; pass --data FILE.npz "
        f"or --dataset ({', '.join(DATASETS)})"
    )


def run(args: argparse.Namespace) -> int:
    with blas_threads(getattr(args, "threads", None)):
        return _run(args)


def _run(args: argparse.Namespace) -> int:
    import numpy as np

    if args.chip_state is not None:  # a learned chip (nsmx learn): evaluated as it is
        from nsmx.learn_cmd import run_chip_state

        return run_chip_state(args)
    if args.program is None:
        raise UserError("give a program (.nsmx) or --chip-state FILE")

    from crossbar import chip_label
    from mapping.program import ProgramError, load_program
    from mapping.reference import predict_reference
    from mapping.report import accuracy_nll, chip_report, format_layers
    from mapping.runtime import MappingError, program_chip

    cfg = run_config(args)
    try:
        program = load_program(args.program)
    except ProgramError as exc:
        raise UserError(str(exc)) from exc
    chip = chip_arg(args.chip, args.sets)
    user_data = data_label(args)
    if user_data is not None:
        dataset = user_data
        x, y = load_data(
            args.data, "test", input_shape=program.input_shape, n_classes=program.n_classes
        )
    else:
        dataset = _dataset(args, program)
        x, y = load_split(dataset, "test", args.data_dir)
        if tuple(x.shape[1:]) != program.input_shape:
            raise UserError(
                f"--dataset {dataset} gives inputs of shape {tuple(x.shape[1:])}, but the "
                f"program expects {program.input_shape}"
            )
    if args.limit:
        x, y = x[: args.limit], y[: args.limit]
    x, y = x.numpy(), y.numpy()
    program_seed = cfg.seed if args.program_seed is None else args.program_seed
    label = chip_label(args.chip, args.sets)

    t0 = time.perf_counter()
    try:
        model = program_chip(program, chip, seed=program_seed, config=cfg)
    except MappingError as exc:
        raise UserError(str(exc)) from exc
    program_s = time.perf_counter() - t0
    calibration_s = _calibrate(model, dataset, args)

    src = program.source
    what = (
        f"{src['model']} ({src.get('rule', '?')}, {src.get('epochs', '?')} epochs)"
        if ("model" in src)
        else "program"
    )
    print(f"{what} from {args.program} on chip {label}")
    print(
        f"  {dataset} test: {len(y)} examples x {cfg.samples} MC samples, mode {cfg.mode}, "
        f"t = {cfg.t_s:g} s{' (drift compensated)' if cfg.drift_compensation else ''}, "
        f"p policy {cfg.p_policy}, seeds: program {program_seed}, "
        f"reads {cfg.seed}"
    )
    print(f"  programmed {model.cells():,} cells in {program_s:.1f} s")
    if model.adc_calibration is not None:
        cal = model.adc_calibration
        print(
            f"  ADC ranges calibrated on {cal.source} x {cal.samples} reads (seed {cal.seed}) "
            f"in {calibration_s:.1f} s: {cal.headroom:g} x the {cal.percentile:g}th percentile "
            "of |signal| per converter"
        )

    run_ = model.run(x, cfg, progress=not args.no_progress)
    report = chip_report(model, run_, y, chip=label)

    software = None
    if not args.no_software:
        t0 = time.perf_counter()
        prob = predict_reference(
            program, x, samples=cfg.samples, rng=np.random.default_rng(cfg.seed)
        )
        sw_acc, sw_nll = accuracy_nll(prob, y)
        software = {"accuracy": sw_acc, "nll": sw_nll, "wall_s": time.perf_counter() - t0}

    print()
    print(f"  {'':<22}{'accuracy':>10}{'error':>9}{'NLL':>9}{'wall':>10}")
    if software is not None:
        print(
            f"  {'software (reference)':<22}{software['accuracy'] * 100:>9.2f}%"
            f"{(1 - software['accuracy']) * 100:>8.2f}%{software['nll']:>9.4f}"
            f"{software['wall_s']:>9.1f}s"
        )
    print(
        f"  {'chip (' + cfg.mode + ')':<22}{report.accuracy * 100:>9.2f}%"
        f"{(1 - report.accuracy) * 100:>8.2f}%{report.nll:>9.4f}{report.wall_s:>9.1f}s"
    )
    print()
    for line in format_layers(report):
        print(line)
    for entry in report.adc:
        fs = np.asarray(entry["full_scale_ua"])
        print(
            f"  ADC {entry['layer']}: {entry['what']}, one per {entry['scope']}, "
            f"{entry['bits']} bits, range {entry['rule']}: full scale {fs.min():.4g}-"
            f"{fs.max():.4g} µA"
        )
    if report.adc_conversions:
        print(
            f"  ADC saturations: {report.adc_saturations:,} of {report.adc_conversions:,} "
            f"conversions ({report.adc_saturations / report.adc_conversions:.2%})"
        )
    for line in report.warnings:
        print(f"warning: {line}", file=sys.stderr)
    cost = None
    if args.cost:
        from mapping.cost import cost_report, format_cost

        cost = cost_report(model, run_)
        print()
        for line in format_cost(cost):
            print(line)

    if args.json:
        result = {
            "program": str(args.program),
            "chip": label,
            "chip_spec": str(args.chip),
            "sets": list(args.sets),
            "dataset": dataset,
            "n": len(y),
            "samples": cfg.samples,
            "mode": cfg.mode,
            "seed": cfg.seed,
            "program_seed": program_seed,
            "p_policy": cfg.p_policy,
            "t_s": cfg.t_s,
            "drift_compensation": cfg.drift_compensation,
            "chip_accuracy": report.accuracy,
            "chip_nll": report.nll,
            "software_accuracy": None if software is None else software["accuracy"],
            "software_nll": None if software is None else software["nll"],
            "software_wall_s": None if software is None else software["wall_s"],
            "wall_s": report.wall_s,
            "program_s": program_s,
            "calibration_s": calibration_s,
            "report": report.to_dict(),
        }
        if cost is not None:
            result["cost"] = cost.to_dict()
        print_json(result)
    return 0


def _calibrate(model: Any, dataset: str, args: argparse.Namespace) -> float:
    """Calibrate ``model``'s data-calibrated ADCs on the first ``adc_cal_examples`` examples of
    the *training* split (of ``dataset``, or ``x_train`` of ``--data``; never the test split);
    returns the seconds it took (0 when the chip has none to calibrate). A ``--data`` file
    without ``x_train`` leaves the ADCs uncalibrated: the chip falls back to the rms rule and
    says so on stderr."""
    if not model.needs_adc_calibration:
        return 0.0
    from nsm.user_data import has_split

    t0 = time.perf_counter()
    n = model.chip.periphery.adc_cal_examples
    if getattr(args, "data", None) is not None:
        if not has_split(args.data, "train"):
            print(
                f"warning: {args.data} has no x_train/y_train: the ADC ranges are not "
                "calibrated on data (rms rule instead); add training examples to calibrate",
                file=sys.stderr,
            )
            return 0.0
        x_train, _ = load_data(args.data, "train", input_shape=model.program.input_shape)
    else:
        x_train, _ = load_split(dataset, "train", args.data_dir)
    x_cal = x_train[:n].numpy()
    model.calibrate(x_cal, source=f"{dataset} train[:{len(x_cal)}]")
    return time.perf_counter() - t0
