"""``nsmx evaluate CKPT``: Monte-Carlo test accuracy and NLL of a trained checkpoint (PyTorch).

Prints accuracy, error and NLL over ``--samples`` MC passes per test example; ``--json`` makes
the last line one JSON object (``accuracy``, ``error``, ``nll``, ``n``, ``samples``, ``seed``,
``wall_s``, ...).
"""

from __future__ import annotations

import argparse
import time
from typing import Any

from nsmx.args import (
    UserError,
    add_data_args,
    add_output_args,
    add_samples_arg,
    add_seed_arg,
    data_label,
    load_data,
    load_split,
)
from nsmx.json_output import print_json


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Register ``evaluate`` on an ``argparse`` subparsers object; returns its parser."""
    p = subparsers.add_parser("evaluate", help="Monte-Carlo test accuracy of a trained checkpoint")
    p.add_argument("checkpoint", help="training checkpoint (nsmx train's checkpoint.pt)")
    add_samples_arg(p, help="MC samples per test example")
    add_seed_arg(p, help="seed of the MC samples (torch generator)")
    add_data_args(p)
    add_output_args(p)
    return p


def run(args: argparse.Namespace) -> int:
    """``nsmx evaluate``."""
    import torch

    from nsm.checkpoint import CheckpointError, checkpoint_spec, load_model
    from nsm.evaluate import accuracy_nll, mc_predict

    try:
        model, ckpt = load_model(args.checkpoint)
        spec = checkpoint_spec(ckpt, path=args.checkpoint)  # a named model or its architecture
    except CheckpointError as exc:
        raise UserError(str(exc)) from exc
    expected = spec.input_shape
    user_data = data_label(args)
    if user_data is not None:
        dataset = user_data
        x, y = load_data(args.data, "test", input_shape=expected, n_classes=_n_classes(model))
    else:
        dataset = args.dataset or spec.dataset
        if dataset is None:
            raise UserError(
                f"{args.checkpoint}: model {ckpt['model']} names no dataset; pass --data "
                "FILE.npz or --dataset"
            )
        x, y = load_split(dataset, "test", args.data_dir)
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
        print_json(result)
    return 0


def _n_classes(model: Any) -> int:
    """The number of classes of a trained model: the width of its last ``nn.Linear``."""
    from torch import nn

    last = [m for m in model.modules() if isinstance(m, nn.Linear)][-1]
    return int(last.out_features)
