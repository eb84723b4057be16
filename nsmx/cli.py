"""The ``nsmx`` command: train, evaluate and demo (more subcommands join as the project grows).

Every subcommand validates its arguments before doing any work and reports user errors as one
line on stderr with exit status 2 (no traceback); ``--json`` makes the last line of stdout one JSON
object for scripts.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence

from nsmx import chips_cmd, compile_cmd, demo, learn_cmd, run_cmd, sweep_cmd
from nsmx.argtypes import nonnegative_int as _nonnegative_int
from nsmx.argtypes import positive_int as _positive_int


class UserError(Exception):
    """A problem with the user's input: printed as one line, exit status 2."""


def _add_data_args(p: argparse.ArgumentParser, *, default_dataset: str | None) -> None:
    p.add_argument(
        "--dataset",
        choices=["digits", "mnist", "fashion-mnist"],
        default=default_dataset,
        help="dataset (default: the one the model was trained on)",
    )
    p.add_argument(
        "--data-dir",
        default=None,
        help="folder of the IDX files (default: $NSMX_MNIST_DIR or $NSMX_FASHION_MNIST_DIR)",
    )


def build_parser() -> argparse.ArgumentParser:
    from nsm.models import MODELS, RULES

    parser = argparse.ArgumentParser(
        prog="nsmx",
        description="Neural Sampling Machines on crossbar arrays of non-volatile memory.",
    )
    parser.add_argument(
        "--threads",
        type=_positive_int,
        default=None,
        help="CPU threads for torch and numba (default: all cores; use 1 on a busy machine)",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("train", help="train a software NSM (or a baseline) in PyTorch")
    p.add_argument("--model", choices=sorted(MODELS), default="digits-mlp")
    p.add_argument("--rule", choices=list(RULES), default="nsm")
    p.add_argument("--epochs", type=_positive_int, default=10)
    p.add_argument("--seed", type=_nonnegative_int, default=0)
    p.add_argument("--out", required=True, help="output folder (checkpoint.pt, metrics.csv/json)")
    p.add_argument("--resume", action="store_true", help="continue the run in --out")
    p.add_argument("--lr", type=float, default=None, help="Adam learning rate (default: paper)")
    p.add_argument("--batch-size", type=_positive_int, default=None)
    p.add_argument(
        "--lr-step-epochs", type=_positive_int, default=None, help="halve lr every N epochs"
    )
    p.add_argument(
        "--eval-samples", type=_positive_int, default=10, help="MC samples of per-epoch test metric"
    )
    p.add_argument("--data-dir", default=None, help="folder of the IDX files")
    p.add_argument("--no-progress", action="store_true")

    p = sub.add_parser("evaluate", help="Monte-Carlo test accuracy of a trained checkpoint")
    p.add_argument("checkpoint")
    p.add_argument("--samples", type=_positive_int, default=100)
    p.add_argument("--seed", type=_nonnegative_int, default=0)
    _add_data_args(p, default_dataset=None)
    p.add_argument("--limit", type=_positive_int, default=None, help="first N test examples only")
    p.add_argument("--json", action="store_true", help="last line of output: one JSON object")
    p.add_argument("--no-progress", action="store_true")

    demo.add_parser(sub)
    compile_cmd.add_parser(sub)
    run_cmd.add_parser(sub)
    chips_cmd.add_parser(sub)
    learn_cmd.add_parser(sub)
    sweep_cmd.add_parser(sub)
    return parser


def _load_split(name: str, split: str, root: str | None):
    from nsm.data import DatasetError, load_dataset

    try:
        return load_dataset(name, split=split, root=root)
    except (DatasetError, FileNotFoundError) as exc:
        raise UserError(str(exc)) from exc


def cmd_train(args: argparse.Namespace) -> int:
    from nsm.checkpoint import CheckpointError
    from nsm.models import MODELS
    from nsm.train import TrainConfig, train

    try:
        cfg = TrainConfig(
            model=args.model,
            rule=args.rule,
            epochs=args.epochs,
            seed=args.seed,
            lr=args.lr,
            batch_size=args.batch_size,
            lr_step_epochs=args.lr_step_epochs,
            eval_samples=args.eval_samples,
        )
    except ValueError as exc:
        raise UserError(str(exc)) from exc
    dataset = MODELS[cfg.model].dataset
    x_tr, y_tr = _load_split(dataset, "train", args.data_dir)
    x_te, y_te = _load_split(dataset, "test", args.data_dir)
    print(
        f"training {cfg.model} with rule {cfg.rule} on {dataset} ({len(x_tr)} train, "
        f"{len(x_te)} test) for {cfg.epochs} epochs -> {args.out}"
    )
    try:
        train(
            cfg,
            (x_tr, y_tr, x_te, y_te),
            args.out,
            resume=args.resume,
            progress=not args.no_progress,
        )
    except (FileExistsError, CheckpointError) as exc:
        raise UserError(str(exc)) from exc
    return 0


def cmd_evaluate(args: argparse.Namespace) -> int:
    import time

    import torch

    from nsm.checkpoint import CheckpointError, load_model
    from nsm.evaluate import accuracy_nll, mc_predict
    from nsm.models import MODELS

    try:
        model, ckpt = load_model(args.checkpoint)
    except CheckpointError as exc:
        raise UserError(str(exc)) from exc
    dataset = args.dataset or MODELS[ckpt["model"]].dataset
    x, y = _load_split(dataset, "test", args.data_dir)
    expected = MODELS[ckpt["model"]].input_shape
    if tuple(x.shape[1:]) != expected:
        raise UserError(
            f"--dataset {dataset} gives inputs of shape {tuple(x.shape[1:])}, but model "
            f"{ckpt['model']} expects {expected}"
        )
    if args.limit:
        x, y = x[: args.limit], y[: args.limit]
    t0 = time.perf_counter()
    prob = mc_predict(
        model,
        x,
        samples=args.samples,
        generator=torch.Generator().manual_seed(args.seed),
        progress=not args.no_progress,
    )
    wall_s = time.perf_counter() - t0
    accuracy, nll = accuracy_nll(prob, y)
    result = {
        "checkpoint": str(args.checkpoint),
        "model": ckpt["model"],
        "rule": ckpt["rule"],
        "epochs": int(ckpt["epoch"]),
        "dataset": dataset,
        "n": len(y),
        "samples": args.samples,
        "seed": args.seed,
        "accuracy": accuracy,
        "error": 1.0 - accuracy,
        "nll": nll,
        "wall_s": wall_s,
    }
    print(
        f"{ckpt['model']} ({ckpt['rule']}, {ckpt['epoch']} epochs) on {dataset} test, "
        f"{len(y)} examples, {args.samples} MC samples:"
    )
    print(
        f"  accuracy {accuracy * 100:.2f} %   error {(1 - accuracy) * 100:.2f} %   "
        f"NLL {nll:.4f}   ({wall_s:.1f} s)"
    )
    if args.json:
        print(json.dumps(result))
    return 0


def _set_threads(n: int) -> None:
    import numba
    import torch

    torch.set_num_threads(n)
    numba.set_num_threads(min(n, numba.config.NUMBA_NUM_THREADS))


COMMANDS = {
    "train": cmd_train,
    "evaluate": cmd_evaluate,
    "demo": demo.run,
    "compile": compile_cmd.run,
    "run": run_cmd.run,
    "chips": chips_cmd.run,
    "learn": learn_cmd.run,
    "sweep": sweep_cmd.run,
    "plot": sweep_cmd.plot,
}


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.threads is not None:
        _set_threads(args.threads)
    try:
        return COMMANDS[args.command](args)
    except UserError as exc:
        print(f"nsmx {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"nsmx {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
