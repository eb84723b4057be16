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
    add_seed_arg,
    load_data,
    load_split,
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
    p.add_argument(
        "--epochs", type=positive_int, default=10, help="training epochs (default: %(default)s)"
    )
    add_seed_arg(p, help="seed of initialisation, shuffling and noise")
    p.add_argument("--out", required=True, help="output folder (checkpoint.pt, metrics.csv/json)")
    p.add_argument("--resume", action="store_true", help="continue the run in --out")
    p.add_argument(
        "--lr", type=float, default=None, help="Adam learning rate (default: the model's)"
    )
    p.add_argument(
        "--batch-size",
        type=positive_int,
        default=None,
        help="mini-batch size (default: the model's)",
    )
    p.add_argument(
        "--lr-step-epochs",
        type=positive_int,
        default=None,
        help="halve lr every N epochs (default: the model's)",
    )
    p.add_argument(
        "--eval-samples",
        type=positive_int,
        default=10,
        help="MC samples of per-epoch test metric (default: %(default)s)",
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


def _architecture(spec: str, data: str | None, data_dir: str | None) -> dict[str, Any] | None:
    """The user architecture ``--model`` names (dict form), or None for a named model; a
    ``module:function`` factory's model is described by a layer list whose input shape is the
    training inputs' (an (H, W) image becomes (1, H, W))."""
    from nsm.architecture import ArchitectureError, load_architecture
    from nsm.factory import architecture_of, call_factory
    from nsm.models import MODELS

    if spec in MODELS:
        return None
    try:
        if spec.endswith(".toml") or Path(spec).is_file():
            return load_architecture(spec).to_dict()
        if ":" not in spec:
            raise UserError(
                f"--model {spec!r} is not a named model ({', '.join(sorted(MODELS))}), a "
                "layer-list .toml file or module:function"
            )
        if data is None:
            raise UserError(f"--model {spec}: a factory's model trains on --data FILE.npz")
        x, _ = load_data(data, "train")
        shape = tuple(x.shape[1:])
        shape = (1, *shape) if len(shape) == 2 else shape
        model = call_factory(spec)
        name = spec.rpartition(":")[2].replace("_", "-")
        return architecture_of(model, shape, name=name, source=spec).to_dict()
    except ArchitectureError as exc:
        raise UserError(str(exc)) from exc


def run(args: argparse.Namespace) -> int:
    """``nsmx train``."""
    from nsm.architecture import Architecture, model_spec
    from nsm.checkpoint import CheckpointError
    from nsm.train import TrainConfig, resolve_device, train

    architecture = _architecture(args.model, args.data, args.data_dir)
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
