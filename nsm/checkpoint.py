"""Training checkpoints: a versioned dict of tensors and plain values, loaded with ``weights_only``.

A checkpoint is data, never code: ``torch.load(..., weights_only=True)`` refuses pickled objects,
and every field is validated on load so a checkpoint of another model or rule, or a damaged file,
fails with a message naming the file and the problem.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch
from torch import nn

from nsm.models import MODELS, RULES, ModelOptions, build_model

FORMAT = "nsmx-checkpoint"
VERSION = 1


class CheckpointError(ValueError):
    """A checkpoint file is missing, damaged, of another format/version, or of another model."""


def save_checkpoint(path: str | os.PathLike, payload: dict[str, Any]) -> None:
    """Write ``payload`` (plus format and version) atomically: a crash never leaves half a file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    torch.save({"format": FORMAT, "version": VERSION, **payload}, tmp)
    os.replace(tmp, path)


def load_checkpoint(path: str | os.PathLike) -> dict[str, Any]:
    """Load and validate a checkpoint; raises :class:`CheckpointError` with the file named."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: checkpoint file not found")
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises many types for damaged / foreign files
        raise CheckpointError(
            f"{path}: not a readable nsmx checkpoint ({type(exc).__name__}: {exc})"
        ) from exc
    if not isinstance(ckpt, dict) or ckpt.get("format") != FORMAT:
        raise CheckpointError(f"{path}: not an nsmx checkpoint (missing format tag {FORMAT!r})")
    if ckpt.get("version") != VERSION:
        raise CheckpointError(
            f"{path}: checkpoint version {ckpt.get('version')!r} is not supported "
            f"(this nsm-crossbar reads version {VERSION})"
        )
    for key in ("model", "rule", "state_dict", "epoch", "config"):
        if key not in ckpt:
            raise CheckpointError(f"{path}: checkpoint lacks the field {key!r}")
    if ckpt["model"] not in MODELS:
        raise CheckpointError(f"{path}: model {ckpt['model']!r} is not one of {sorted(MODELS)}")
    if ckpt["rule"] not in RULES:
        raise CheckpointError(f"{path}: rule {ckpt['rule']!r} is not one of {sorted(RULES)}")
    return ckpt


def model_from_checkpoint(
    ckpt: dict[str, Any], *, path: str | os.PathLike = "<checkpoint>"
) -> nn.Sequential:
    """Rebuild the model named in ``ckpt`` (with its recorded layer variants) and load its weights
    strictly."""
    config = ckpt["config"] if isinstance(ckpt.get("config"), dict) else {}
    try:
        options = ModelOptions.from_config(config)
    except (ValueError, TypeError) as exc:
        raise CheckpointError(f"{path}: invalid model options in the config: {exc}") from exc
    model = build_model(ckpt["model"], ckpt["rule"], options)
    try:
        model.load_state_dict(ckpt["state_dict"], strict=True)
    except RuntimeError as exc:
        raise CheckpointError(
            f"{path}: weights do not fit model {ckpt['model']!r} with rule {ckpt['rule']!r}: {exc}"
        ) from exc
    return model


def save_slim_checkpoint(src: str | os.PathLike, dst: str | os.PathLike) -> None:
    """Copy a checkpoint without its optimizer/scheduler state (a small file for distribution).

    The result evaluates and compiles like the original but cannot be resumed.
    """
    ckpt = load_checkpoint(src)
    keep = {
        k: v for k, v in ckpt.items() if k not in ("format", "version", "optimizer", "scheduler")
    }
    save_checkpoint(dst, keep)


def load_model(path: str | os.PathLike) -> tuple[nn.Sequential, dict[str, Any]]:
    """Load a checkpoint file and return ``(model in eval mode, checkpoint dict)``."""
    ckpt = load_checkpoint(path)
    model = model_from_checkpoint(ckpt, path=path)
    model.eval()
    return model, ckpt
