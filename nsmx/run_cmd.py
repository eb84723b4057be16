"""``nsmx run model.nsmx --chip PRESET|file.toml``: run a compiled program on a virtual chip.

Programs the chip (``--program-seed``, default ``--seed``), runs ``--samples`` Monte-Carlo passes
per test example on it and on the program's software semantics (numpy reference, same number of
samples), and prints a table: accuracy, error, NLL and wall time of both, then one row per
crossbar layer (tiles, read conditions, firing rate, effective β / trained β, weight alignment,
ADC saturations). ``--json`` makes the last line one JSON object with ``chip_accuracy``,
``software_accuracy``, ``samples``, ``n``, ``mode``, ``chip``, ``seed``, ``t_s``, ``wall_s`` and
the full report.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import time
from collections.abc import Iterator
from typing import Any

# Idle OpenMP threads sleep instead of spinning. The chip's clt path alternates numba's parallel
# kernels with numpy's BLAS; with spinning idle threads each steals the other's cores (measured:
# full-MNIST clt run 204 s with 2 threads of each on 2 cores, 15 s with passive waiting, 17 s with
# one thread). It must be set before torch or numba load their OpenMP runtime, i.e. when the CLI
# imports this module; an explicit OMP_WAIT_POLICY in the environment wins.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

DATASETS = ("digits", "mnist", "fashion-mnist")


def _nonnegative_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not (value >= 0 and value != float("inf")):
        raise argparse.ArgumentTypeError(f"{value} must be a finite number >= 0")
    return value


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Register ``run`` on an ``argparse`` subparsers object; returns its parser."""
    from mapping.runtime import MODES, P_POLICIES
    from nsmx.cli import _nonnegative_int, _positive_int

    p = subparsers.add_parser(
        "run", help="run a compiled program (.nsmx) on a virtual chip and compare with software"
    )
    p.add_argument("program", help="compiled program (nsmx compile's .nsmx file)")
    p.add_argument(
        "--chip",
        default="ideal",
        help="chip preset (nsmx chips lists them) or a chip TOML file (default: ideal)",
    )
    p.add_argument(
        "--set",
        dest="sets",
        action="append",
        default=[],
        metavar="FIELD=VALUE",
        help="override a chip field, e.g. periphery.adc_bits=6 (repeatable)",
    )
    p.add_argument("--samples", type=_positive_int, default=100, help="MC samples per example")
    p.add_argument(
        "--dataset",
        choices=DATASETS,
        default=None,
        help="test set (default: the one the program's model was trained on)",
    )
    p.add_argument(
        "--data-dir",
        default=None,
        help="folder of the IDX files (default: $NSMX_MNIST_DIR / $NSMX_FASHION_MNIST_DIR)",
    )
    p.add_argument(
        "--seed",
        type=_nonnegative_int,
        default=0,
        help="seed of the MC reads (and of programming unless --program-seed)",
    )
    p.add_argument(
        "--program-seed",
        type=_nonnegative_int,
        default=None,
        help="seed of the device-to-device randomness drawn at programming",
    )
    p.add_argument(
        "--mode",
        choices=list(MODES),
        default="exact",
        help="exact: every cell's stochastic element drawn; clt: one Gaussian per "
        "neuron from the exact moments (fast)",
    )
    p.add_argument(
        "--t-s",
        type=_nonnegative_float,
        default=0.0,
        help="read time after programming in seconds (drift)",
    )
    p.add_argument(
        "--p-policy",
        choices=list(P_POLICIES),
        default="trained",
        help="trained: set each layer's read conditions to its trained p; chip: the "
        "chip as configured, the beta gain compensates",
    )
    p.add_argument(
        "--drift-compensation",
        action="store_true",
        help="scale every column signal by the chip's global drift gain at --t-s "
        "(one calibration read; after Joshi et al. 2020)",
    )
    p.add_argument("--limit", type=_positive_int, default=None, help="first N test examples only")
    p.add_argument("--no-software", action="store_true", help="skip the software reference run")
    p.add_argument("--no-progress", action="store_true")
    p.add_argument("--json", action="store_true", help="last line of output: one JSON object")
    return p


@contextlib.contextmanager
def blas_threads(n: int | None) -> Iterator[None]:
    """Limit numpy's BLAS to ``n`` threads within the block (``nsmx --threads``; torch and numba
    are limited by the CLI itself). On a busy machine an unlimited BLAS oversubscribes the cores
    and the reference's matrix products run many times slower."""
    if n is None:
        yield
        return
    try:
        from threadpoolctl import threadpool_limits  # installed with scikit-learn
    except ImportError:  # pragma: no cover - scikit-learn always brings it
        yield
        return
    with threadpool_limits(limits=n):
        yield


def _dataset(args: argparse.Namespace, program: Any) -> str:
    from nsm.models import MODELS
    from nsmx.cli import UserError

    if args.dataset:
        return args.dataset
    model = program.source.get("model")
    if model in MODELS:
        return MODELS[model].dataset
    raise UserError(
        f"{args.program} does not record the dataset it was trained on; pass --dataset "
        f"({', '.join(DATASETS)})"
    )


def run(args: argparse.Namespace) -> int:
    with blas_threads(getattr(args, "threads", None)):
        return _run(args)


def _run(args: argparse.Namespace) -> int:
    import numpy as np

    from mapping.chips import ChipError, chip_label, resolve_chip
    from mapping.program import ProgramError, load_program
    from mapping.reference import predict_reference
    from mapping.report import accuracy_nll, chip_report, format_layers
    from mapping.runtime import MappingError, program_chip
    from nsmx.cli import UserError, _load_split

    try:
        program = load_program(args.program)
    except ProgramError as exc:
        raise UserError(str(exc)) from exc
    try:
        chip = resolve_chip(args.chip, args.sets)
    except ChipError as exc:
        raise UserError(str(exc)) from exc
    dataset = _dataset(args, program)
    x, y = _load_split(dataset, "test", args.data_dir)
    if tuple(x.shape[1:]) != program.input_shape:
        raise UserError(
            f"--dataset {dataset} gives inputs of shape {tuple(x.shape[1:])}, but the program "
            f"expects {program.input_shape}"
        )
    if args.limit:
        x, y = x[: args.limit], y[: args.limit]
    x, y = x.numpy(), y.numpy()
    program_seed = args.seed if args.program_seed is None else args.program_seed
    label = chip_label(args.chip, args.sets)

    t0 = time.perf_counter()
    try:
        model = program_chip(program, chip, seed=program_seed, p_policy=args.p_policy)
    except MappingError as exc:
        raise UserError(str(exc)) from exc
    program_s = time.perf_counter() - t0

    src = program.source
    what = (
        f"{src['model']} ({src.get('rule', '?')}, {src.get('epochs', '?')} epochs)"
        if ("model" in src)
        else "program"
    )
    print(f"{what} from {args.program} on chip {label}")
    print(
        f"  {dataset} test: {len(y)} examples x {args.samples} MC samples, mode {args.mode}, "
        f"t = {args.t_s:g} s{' (drift compensated)' if args.drift_compensation else ''}, "
        f"p policy {args.p_policy}, seeds: program {program_seed}, "
        f"reads {args.seed}"
    )
    print(f"  programmed {model.cells():,} cells in {program_s:.1f} s")

    run_ = model.run(
        x,
        args.samples,
        t_s=args.t_s,
        mode=args.mode,
        seed=args.seed,
        progress=not args.no_progress,
        drift_compensation=args.drift_compensation,
    )
    report = chip_report(model, run_, y, chip=label)

    software = None
    if not args.no_software:
        t0 = time.perf_counter()
        prob = predict_reference(
            program, x, samples=args.samples, rng=np.random.default_rng(args.seed)
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
        f"  {'chip (' + args.mode + ')':<22}{report.accuracy * 100:>9.2f}%"
        f"{(1 - report.accuracy) * 100:>8.2f}%{report.nll:>9.4f}{report.wall_s:>9.1f}s"
    )
    print()
    for line in format_layers(report):
        print(line)
    if report.adc_conversions:
        print(
            f"  ADC saturations: {report.adc_saturations:,} of {report.adc_conversions:,} "
            f"conversions ({report.adc_saturations / report.adc_conversions:.2%})"
        )

    if args.json:
        result = {
            "program": str(args.program),
            "chip": label,
            "chip_spec": str(args.chip),
            "sets": list(args.sets),
            "dataset": dataset,
            "n": len(y),
            "samples": args.samples,
            "mode": args.mode,
            "seed": args.seed,
            "program_seed": program_seed,
            "p_policy": args.p_policy,
            "t_s": args.t_s,
            "drift_compensation": args.drift_compensation,
            "chip_accuracy": report.accuracy,
            "chip_nll": report.nll,
            "software_accuracy": None if software is None else software["accuracy"],
            "software_nll": None if software is None else software["nll"],
            "software_wall_s": None if software is None else software["wall_s"],
            "wall_s": report.wall_s,
            "program_s": program_s,
            "report": report.to_dict(),
        }
        print(json.dumps(result))
    return 0
