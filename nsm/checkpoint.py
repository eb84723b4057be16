"""Training checkpoints: a versioned dict of tensors and plain values, loaded with ``weights_only``.

A checkpoint is data, never code: ``torch.load(..., weights_only=True)`` refuses pickled objects,
and every field is validated on load so a checkpoint of another model or rule, or a damaged file,
fails with a message naming the file and the problem.

Integrity, in the order it is checked on load:

1. the zip container's CRC-32 of every member (``torch.save`` writes a zip archive), so a flipped
   bit anywhere in the stored weights is refused before anything is unpickled;
2. version 2 checkpoints (written since the content hash was added) carry ``content_sha256``, a
   SHA-256 over the model, rule, epoch, config and every state-dict tensor (name, dtype, shape,
   bytes), recomputed on load; version 1 files (the committed checkpoints among them) have none
   and are read as before;
3. semantic ranges: ``epoch`` an integer >= 0, ``config`` a dict, every floating-point weight
   finite (a NaN or inf weight would evaluate to chance level without a word).

A checkpoint of the user's own architecture records it as data in ``config["architecture"]``
(the layer list of :mod:`nsm.architecture`, hashed with the config); ``model`` is its name.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import zipfile
from pathlib import Path
from typing import Any

import torch
from torch import nn

from nsm.architecture import build, model_spec
from nsm.atomic_io import write_bytes
from nsm.models import MODELS, RULES, ModelOptions, ModelSpec

FORMAT = "nsmx-checkpoint"
VERSION = 2
#: Versions this code reads: 1 (no content hash) and 2.
SUPPORTED_VERSIONS = (1, 2)


class CheckpointError(ValueError):
    """A checkpoint file is missing, damaged, of another format/version, or of another model."""


def content_hash(ckpt: dict[str, Any]) -> str:
    """SHA-256 (hex) of a checkpoint's content: model, rule, epoch, config and the state dict.

    Tensors enter as name, dtype, shape and raw bytes in sorted name order, so the hash does not
    depend on how ``torch.save`` laid the archive out.
    """
    h = hashlib.sha256()
    head = {k: ckpt.get(k) for k in ("model", "rule", "epoch", "config")}
    h.update(json.dumps(head, sort_keys=True, default=str).encode())
    for name in sorted(ckpt["state_dict"]):
        t = ckpt["state_dict"][name].detach().cpu().contiguous()
        h.update(f"{name}|{t.dtype}|{tuple(t.shape)}|".encode())
        h.update(t.view(torch.uint8).numpy().tobytes() if t.numel() else b"")
    return h.hexdigest()


def save_checkpoint(path: str | os.PathLike, payload: dict[str, Any]) -> None:
    """Write ``payload`` (plus format, version and content hash) atomically
    (:func:`nsm.atomic_io.write_bytes`): a crash never leaves half a file and a failed write
    removes its temporary file. The archive is built in memory first, so a full disk or a
    file-size limit is an :class:`OSError` naming ``path`` (``ENOSPC``, ``EFBIG``), not an
    error from inside the archive writer."""
    ckpt = {"format": FORMAT, "version": VERSION, **payload}
    ckpt["content_sha256"] = content_hash(ckpt)
    buffer = io.BytesIO()
    torch.save(ckpt, buffer)
    write_bytes(path, buffer.getbuffer())


def _check_zip(path: Path) -> None:
    """Refuse a damaged archive before unpickling: every member's CRC-32 is verified."""
    try:
        with zipfile.ZipFile(path) as zf:
            bad = zf.testzip()
    except zipfile.BadZipFile as exc:
        raise CheckpointError(f"{path}: not a readable nsmx checkpoint ({exc})") from exc
    except (OSError, RuntimeError, ValueError, EOFError) as exc:
        raise CheckpointError(f"{path}: damaged checkpoint ({type(exc).__name__}: {exc})") from exc
    if bad is not None:
        raise CheckpointError(
            f"{path}: damaged checkpoint: member {bad!r} fails its CRC check (the file was "
            "corrupted after it was written)"
        )


def _check_content(path: Path, ckpt: dict[str, Any]) -> None:
    epoch = ckpt["epoch"]
    if isinstance(epoch, bool) or not isinstance(epoch, int) or epoch < 0:
        raise CheckpointError(f"{path}: epoch = {epoch!r} is invalid; allowed: an integer >= 0")
    if not isinstance(ckpt["config"], dict):
        raise CheckpointError(f"{path}: config is {type(ckpt['config']).__name__}, not a dict")
    state = ckpt["state_dict"]
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise CheckpointError(f"{path}: state_dict is not a dict of tensors")
    for name, t in state.items():
        if t.is_floating_point() and not bool(torch.isfinite(t).all()):
            bad = int((~torch.isfinite(t)).sum())
            raise CheckpointError(
                f"{path}: weight {name!r} has {bad} non-finite values (NaN or inf); "
                "allowed: finite values"
            )
    if ckpt["version"] >= 2:
        stored = ckpt.get("content_sha256")
        if not isinstance(stored, str) or stored != content_hash(ckpt):
            raise CheckpointError(
                f"{path}: content hash mismatch: the checkpoint was modified after it was written"
            )


def load_checkpoint(path: str | os.PathLike) -> dict[str, Any]:
    """Load and validate a checkpoint; raises :class:`CheckpointError` with the file named."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: checkpoint file not found")
    _check_zip(path)
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises many types for damaged / foreign files
        raise CheckpointError(
            f"{path}: not a readable nsmx checkpoint ({type(exc).__name__}: {exc})"
        ) from exc
    if not isinstance(ckpt, dict) or ckpt.get("format") != FORMAT:
        raise CheckpointError(f"{path}: not an nsmx checkpoint (missing format tag {FORMAT!r})")
    if ckpt.get("version") not in SUPPORTED_VERSIONS:
        raise CheckpointError(
            f"{path}: checkpoint version {ckpt.get('version')!r} is not supported "
            f"(this nsm-crossbar reads versions {list(SUPPORTED_VERSIONS)})"
        )
    for key in ("model", "rule", "state_dict", "epoch", "config"):
        if key not in ckpt:
            raise CheckpointError(f"{path}: checkpoint lacks the field {key!r}")
    architecture = architecture_of_checkpoint(ckpt)
    if architecture is None and ckpt["model"] not in MODELS:
        raise CheckpointError(
            f"{path}: model {ckpt['model']!r} is not one of {sorted(MODELS)} and the checkpoint "
            "records no architecture"
        )
    if ckpt["rule"] not in RULES:
        raise CheckpointError(f"{path}: rule {ckpt['rule']!r} is not one of {sorted(RULES)}")
    _check_content(path, ckpt)
    return ckpt


def architecture_of_checkpoint(ckpt: dict[str, Any]) -> dict[str, Any] | None:
    """The user architecture a checkpoint records (the layer-list dict), or None for a named
    model."""
    config = ckpt.get("config")
    arch = config.get("architecture") if isinstance(config, dict) else None
    return arch if isinstance(arch, dict) else None


def checkpoint_spec(ckpt: dict[str, Any], *, path: str | os.PathLike = "<checkpoint>") -> ModelSpec:
    """The :class:`~nsm.models.ModelSpec` of a checkpoint's model: a named one, or the recorded
    user architecture's (input shape, dataset or None)."""
    try:
        return model_spec(ckpt["model"], architecture_of_checkpoint(ckpt))
    except ValueError as exc:
        raise CheckpointError(f"{path}: invalid architecture: {exc}") from exc


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
    try:
        model = build(
            ckpt["model"], ckpt["rule"], options, architecture=architecture_of_checkpoint(ckpt)
        )
    except ValueError as exc:  # an invalid recorded architecture (ArchitectureError)
        raise CheckpointError(f"{path}: invalid architecture: {exc}") from exc
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
    drop = ("format", "version", "content_sha256", "optimizer", "scheduler")
    keep = {k: v for k, v in ckpt.items() if k not in drop}
    save_checkpoint(dst, keep)


def load_model(path: str | os.PathLike) -> tuple[nn.Sequential, dict[str, Any]]:
    """Load a checkpoint file and return ``(model in eval mode, checkpoint dict)``."""
    ckpt = load_checkpoint(path)
    model = model_from_checkpoint(ckpt, path=path)
    model.eval()
    return model, ckpt
