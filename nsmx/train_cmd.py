"""``nsmx train``: train a software NSM (or a baseline) in PyTorch.

Writes ``checkpoint.pt`` and ``metrics.csv``/``metrics.json`` into ``--out`` (see
:func:`nsm.train.train`); ``--resume`` continues the run found there.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from nsmx.args import (
    UserError,
    add_data_args,
    add_seed_arg,
    load_data,
    load_split,
    positive_int,
)


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Register ``train`` on an ``argparse`` subparsers object; returns its parser."""
    from nsm.models import MODELS, RULES

    p = subparsers.add_parser("train", help="train a software NSM (or a baseline) in PyTorch")
    p.add_argument(
        "--model", choices=sorted(MODELS), default="digits-mlp", help="(default: %(default)s)"
    )
    p.add_argument(
        "--rule", choices=list(RULES), default="nsm", help="learning rule (default: %(default)s)"
    )
    p.add_argument("--epochs", type=positive_int, default=10, help="(default: %(default)s)")
    add_seed_arg(p, help="seed of initialisation, shuffling and noise")
    p.add_argument("--out", required=True, help="output folder (checkpoint.pt, metrics.csv/json)")
    p.add_argument("--resume", action="store_true", help="continue the run in --out")
    p.add_argument("--lr", type=float, default=None, help="Adam learning rate (default: paper)")
    p.add_argument("--batch-size", type=positive_int, default=None, help="(default: the model's)")
    p.add_argument(
        "--lr-step-epochs", type=positive_int, default=None, help="halve lr every N epochs"
    )
    p.add_argument(
        "--eval-samples",
        type=positive_int,
        default=10,
        help="MC samples of per-epoch test metric (default: %(default)s)",
    )
    add_data_args(p, dataset=False, limit=False, data_dir_help="folder of the IDX files")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    return p


def run(args: argparse.Namespace) -> int:
    """``nsmx train``."""
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
    if args.data is not None:
        dataset = Path(args.data).name
        shape = MODELS[cfg.model].input_shape
        x_tr, y_tr = load_data(args.data, "train", input_shape=shape, n_classes=10)
        x_te, y_te = load_data(args.data, "test", input_shape=shape, n_classes=10)
    else:
        dataset = MODELS[cfg.model].dataset
        x_tr, y_tr = load_split(dataset, "train", args.data_dir)
        x_te, y_te = load_split(dataset, "test", args.data_dir)
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
