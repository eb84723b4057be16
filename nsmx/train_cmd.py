"""``nsmx train``: train a software NSM (or a baseline) in PyTorch.

Writes ``checkpoint.pt`` and ``metrics.csv``/``metrics.json`` into ``--out`` (see
:func:`nsm.train.train`); ``--resume`` continues the run found there.

``--model`` is a named model (:data:`nsm.models.MODELS`), a layer-list TOML file or a
``module:function`` factory returning an ``nn.Sequential`` (:mod:`nsm.architecture`). A user
architecture is recorded in the checkpoint as data (the layer list; a factory's model is
described by one, and its layers are initialised from ``--seed``), so the checkpoint
evaluates, compiles and runs like a named model's without the factory's code. ``--data
FILE.npz`` trains on the user's ``x_train``/``y_train`` and tests on ``x``/``y``.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from nsmx.args import (
    UserError,
    add_data_args,
    add_training_args,
    load_data,
    load_split,
    model_architecture,
    positive_int,
)
from nsmx.safe_io import check_output_dir


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Register ``train`` on an ``argparse`` subparsers object; returns its parser."""
    from nsm.layers import BIAS_INITS
    from nsm.models import MODELS, RULES
    from nsm.train import DEVICES

    p = subparsers.add_parser("train", help="train a software NSM (or a baseline) in PyTorch")
    p.add_argument(
        "--model",
        default="digits-mlp",
        metavar="NAME|FILE.toml|MODULE:FUNCTION",
        help=f"a named model ({', '.join(sorted(MODELS))}), a layer-list TOML file or a "
        "module:function returning an nn.Sequential (default: %(default)s)",
    )
    p.add_argument(
        "--rule", choices=list(RULES), default="nsm", help="learning rule (default: %(default)s)"
    )
    add_training_args(
        p,
        epochs_help="training epochs (default: %(default)s)",
        batch_size=None,
        batch_size_help="mini-batch size (default: the model's)",
        eval_samples=10,
        eval_samples_help="MC samples of per-epoch test metric (default: %(default)s)",
        seed_help="seed of initialisation, shuffling and noise",
        out_help="output folder (checkpoint.pt, metrics.csv/json)",
        resume_help="continue the run in --out",
    )
    p.add_argument(
        "--lr", type=float, default=None, help="Adam learning rate (default: the model's)"
    )
    p.add_argument(
        "--lr-step-epochs",
        type=positive_int,
        default=None,
        help="halve lr every N epochs (default: the model's)",
    )
    p.add_argument(
        "--device",
        choices=list(DEVICES),
        default="cpu",
        help="where to train: cpu, cuda, or auto (CUDA when torch sees a GPU) (default: "
        "%(default)s); checkpoints hold CPU tensors either way",
    )
    variants = p.add_argument_group("NSM layer variants (nsm.models.ModelOptions)")
    variants.add_argument(
        "--beta-per",
        choices=["channel", "location"],
        default="channel",
        help="one beta per conv output channel, or per channel and location (default: %(default)s)",
    )
    variants.add_argument(
        "--bias-init",
        choices=list(BIAS_INITS),
        default="zero",
        help="initial bias: zero, or uniform in +-1/sqrt(fan_in) (default: %(default)s)",
    )
    variants.add_argument(
        "--noise-structure",
        choices=["per_synapse", "per_input"],
        default="per_synapse",
        help="training noise: independent per synapse, or one per input shared by the "
        "neurons (default: %(default)s)",
    )
    variants.add_argument(
        "--noise-mode",
        choices=["clt", "exact"],
        default="clt",
        help="training noise as one Gaussian per neuron (clt) or every element drawn (exact) "
        "(default: %(default)s)",
    )
    add_data_args(p, dataset=False, limit=False, data_dir_help="folder of the IDX files")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    return p


def run(args: argparse.Namespace) -> int:
    """``nsmx train``."""
    from nsm.architecture import Architecture, model_spec
    from nsm.checkpoint import CheckpointError
    from nsm.train import TrainConfig, resolve_device, train

    architecture = model_architecture(args.model, args.data)
    try:
        device = resolve_device(args.device)
        cfg = TrainConfig(
            model=args.model if architecture is None else "custom",
            rule=args.rule,
            epochs=args.epochs,
            seed=args.seed,
            lr=args.lr,
            batch_size=args.batch_size,
            lr_step_epochs=args.lr_step_epochs,
            eval_samples=args.eval_samples,
            beta_per=args.beta_per,
            bias_init=args.bias_init,
            structure=args.noise_structure,
            noise_mode=args.noise_mode,
            architecture=architecture,
        )
    except ValueError as exc:
        raise UserError(str(exc)) from exc
    # --out must be a folder this process can write (a file, a FIFO, a read-only place: refused
    # before any data is loaded); the checkpoint is then written atomically.
    check_output_dir(args.out, "train --out")
    spec = model_spec(cfg.model, cfg.architecture)
    if args.data is not None:
        dataset = Path(args.data).name
        shape = spec.input_shape
        classes = 10 if architecture is None else Architecture.from_dict(architecture).n_classes
        x_tr, y_tr = load_data(args.data, "train", input_shape=shape, n_classes=classes)
        x_te, y_te = load_data(args.data, "test", input_shape=shape, n_classes=classes)
    else:
        dataset = spec.dataset
        if dataset is None:
            raise UserError(
                f"--model {args.model}: the architecture names no dataset; pass --data FILE.npz "
                '(or set dataset = "digits" in the layer list)'
            )
        x_tr, y_tr = load_split(dataset, "train", args.data_dir)
        x_te, y_te = load_split(dataset, "test", args.data_dir)
        if tuple(x_tr.shape[1:]) != tuple(spec.input_shape):
            raise UserError(
                f"{dataset} gives inputs of shape {tuple(x_tr.shape[1:])}, but {cfg.model} "
                f"takes {tuple(spec.input_shape)}"
            )
    print(
        f"training {cfg.model} with rule {cfg.rule} on {dataset} ({len(x_tr)} train, "
        f"{len(x_te)} test) for {cfg.epochs} epochs on {device} -> {args.out}"
    )
    try:
        train(
            cfg,
            (x_tr, y_tr, x_te, y_te),
            args.out,
            resume=args.resume,
            progress=not args.no_progress,
            device=device,
        )
    except (FileExistsError, CheckpointError) as exc:
        raise UserError(str(exc)) from exc
    return 0
