"""Training loop of the paper (Adam, batch 100, lr halved every 50 epochs) with exact resume.

Reproducibility: every epoch draws its shuffling and its noise from generators seeded by
``SeedSequence([seed, epoch, stream])``, and the model is initialised from ``seed``. A run
interrupted after any epoch and resumed from its checkpoint therefore produces the same weights as
an uninterrupted run (on the same machine and thread count: float reductions are deterministic on
the CPU for a fixed thread count).
"""

from __future__ import annotations

import csv
import io
import json
import math
import os
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from tqdm.auto import tqdm

from nsm.architecture import Architecture, build, model_spec
from nsm.atomic_io import write_text
from nsm.checkpoint import CheckpointError, load_checkpoint, model_from_checkpoint, save_checkpoint
from nsm.evaluate import accuracy_nll, mc_predict
from nsm.layers import use_generator
from nsm.models import MODELS, RULES, ModelOptions
from nsm.progress import bar_options

CHECKPOINT_NAME = "checkpoint.pt"

# Streams of SeedSequence([seed, epoch, stream]).
_SHUFFLE, _NOISE, _EVAL = 0, 1, 2


@dataclass(frozen=True)
class TrainConfig:
    """Hyper-parameters of one training run. ``None`` fields take the model's paper defaults.

    ``architecture``: the user's own layer list (:mod:`nsm.architecture`, dict form) instead of
    a named ``model``; ``model`` then becomes its name and the ``None`` fields its training
    defaults (else the paper's). It is recorded in the checkpoint's config, as data.
    """

    model: str = "digits-mlp"
    rule: str = "nsm"
    epochs: int = 10
    seed: int = 0
    lr: float | None = None
    weight_decay: float | None = None
    batch_size: int | None = None
    lr_step_epochs: int | None = None
    eval_samples: int = 10  # MC samples for the per-epoch test metric (final evaluation: 100)
    # NSM layer variants (nsm.models.ModelOptions): the authors' MNIST code uses β per location,
    # uniform bias initialisation and exact per-input noise; the project defaults differ.
    beta_per: str = "channel"
    bias_init: str = "zero"
    structure: str = "per_synapse"
    noise_mode: str = "clt"
    architecture: dict[str, Any] | None = None

    def __post_init__(self) -> None:
        if self.architecture is not None:
            arch = Architecture.from_dict(self.architecture)  # ArchitectureError: a ValueError
            object.__setattr__(self, "architecture", arch.to_dict())
            object.__setattr__(self, "model", arch.name)
        elif self.model not in MODELS:
            raise ValueError(f"model={self.model!r} is not one of {sorted(MODELS)}")
        if self.rule not in RULES:
            raise ValueError(f"rule={self.rule!r} is not one of {sorted(RULES)}")
        self._at_least(epochs=1, seed=0, eval_samples=1)
        self.model_options()  # validates the variant fields
        spec = model_spec(self.model, self.architecture)
        # Resolve the paper defaults so a checkpoint records the values actually used.
        for name in ("lr", "weight_decay", "batch_size", "lr_step_epochs"):
            if getattr(self, name) is None:
                object.__setattr__(self, name, getattr(spec, name))
        if not (self.lr > 0 and math.isfinite(self.lr)):
            raise ValueError(f"lr={self.lr} must be a positive finite number")
        self._at_least(weight_decay=0, batch_size=1, lr_step_epochs=1)

    def _at_least(self, **lowest: float) -> None:
        """Refuse (``ValueError`` naming field and value) a field below its lowest value."""
        for name, low in lowest.items():
            if getattr(self, name) < low:
                raise ValueError(f"{name}={getattr(self, name)} must be >= {low}")

    def model_options(self) -> ModelOptions:
        """The NSM layer variants of this run."""
        return ModelOptions.from_config(asdict(self))


DEVICES = ("auto", "cpu", "cuda")


def resolve_device(device: str | torch.device = "cpu") -> torch.device:
    """``"auto"``: CUDA when torch sees a GPU, else the CPU; ``"cpu"``/``"cuda"`` as named.

    Raises ``ValueError`` for an unknown name and for ``"cuda"`` on a machine without a GPU.
    """
    if isinstance(device, torch.device):
        return device
    if device not in DEVICES:
        raise ValueError(f"device={device!r} is not one of {list(DEVICES)}")
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device == "cuda" and not torch.cuda.is_available():
        raise ValueError("device='cuda' but torch sees no GPU here; use --device cpu or auto")
    return torch.device(device)


def _generator(
    seed: int, epoch: int, stream: int, device: torch.device | str = "cpu"
) -> torch.Generator:
    state = np.random.SeedSequence([seed, epoch, stream]).generate_state(2, dtype=np.uint32)
    return torch.Generator(device=device).manual_seed(int(state[0]) << 32 | int(state[1]))


def _make_optimizer(model: nn.Module, cfg: TrainConfig):
    optimizer = torch.optim.Adam(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    scheduler = torch.optim.lr_scheduler.StepLR(optimizer, step_size=cfg.lr_step_epochs, gamma=0.5)
    return optimizer, scheduler


def _resumable_fields(cfg: TrainConfig) -> dict[str, Any]:
    # Everything but the epoch count must match for a resume to continue the same run.
    return {f.name: getattr(cfg, f.name) for f in fields(cfg) if f.name != "epochs"}


def _saved_value(saved: dict[str, Any], name: str) -> Any:
    # Fields added after a checkpoint was written take their default (the behaviour then).
    if name in saved:
        return saved[name]
    default = next(f.default for f in fields(TrainConfig) if f.name == name)
    return default


def train(
    cfg: TrainConfig,
    data: tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor],
    out_dir: str | os.PathLike,
    *,
    resume: bool = False,
    progress: bool = True,
    device: str | torch.device = "cpu",
    log: Callable[[str], None] = print,
) -> list[dict[str, float]]:
    """Train ``cfg.model`` with ``cfg.rule`` on ``data = (x_train, y_train, x_test, y_test)``.

    Images are float tensors (N, 1, H, W) in [0, 1]; labels int64 (N,). Writes to ``out_dir``:
    ``checkpoint.pt`` after every epoch (atomic), ``metrics.csv`` and ``metrics.json``. Returns
    the per-epoch metrics (train loss and accuracy of the single-sample forward, test MC accuracy
    and NLL with ``cfg.eval_samples`` samples, learning rate, wall time). ``device``: where the
    model trains (:func:`resolve_device`); checkpoints always hold CPU tensors.
    """
    x_train, y_train, x_test, y_test = data
    dev = resolve_device(device)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    ckpt_path = out / CHECKPOINT_NAME

    with torch.random.fork_rng():  # initialise from the seed without touching global RNG state
        torch.manual_seed(cfg.seed)
        model = build(cfg.model, cfg.rule, cfg.model_options(), architecture=cfg.architecture).to(
            dev
        )
    optimizer, scheduler = _make_optimizer(model, cfg)
    history: list[dict[str, float]] = []
    start_epoch = 0
    if ckpt_path.exists():
        if not resume:
            raise FileExistsError(
                f"{ckpt_path} exists: pass --resume to continue that run, or choose another --out"
            )
        ckpt = load_checkpoint(ckpt_path)
        saved = ckpt["config"]
        mismatched = {
            k: (_saved_value(saved, k), v)
            for k, v in _resumable_fields(cfg).items()
            if _saved_value(saved, k) != v
        }
        if mismatched:
            detail = ", ".join(
                f"{k}: checkpoint {a!r} vs now {b!r}" for k, (a, b) in mismatched.items()
            )
            raise CheckpointError(f"{ckpt_path}: cannot resume a different run ({detail})")
        if "optimizer" not in ckpt or "scheduler" not in ckpt:
            raise CheckpointError(
                f"{ckpt_path}: a slim (weights-only) checkpoint cannot be resumed: it has no "
                "optimizer state"
            )
        model = model_from_checkpoint(ckpt, path=ckpt_path).to(dev)
        optimizer, scheduler = _make_optimizer(model, cfg)
        optimizer.load_state_dict(ckpt["optimizer"])
        scheduler.load_state_dict(ckpt["scheduler"])
        history = list(ckpt.get("history", []))
        start_epoch = int(ckpt["epoch"])
        log(f"resuming {ckpt_path} after epoch {start_epoch}")
        if start_epoch >= cfg.epochs:
            log(f"nothing to do: {start_epoch} of {cfg.epochs} epochs already trained")
            return history

    n = len(x_train)
    for epoch in range(start_epoch, cfg.epochs):
        t0 = time.perf_counter()
        model.train()
        order = torch.randperm(n, generator=_generator(cfg.seed, epoch, _SHUFFLE))
        loss_sum, correct = 0.0, 0
        batches = range(0, n, cfg.batch_size)
        bar = tqdm(
            batches,
            desc=f"epoch {epoch + 1}/{cfg.epochs}",
            unit="batch",
            disable=not progress,
            leave=False,
            **bar_options(),  # no per-batch redraws into a log file
        )
        # Shuffling stays on the CPU (the same order on every device); noise on the device.
        with use_generator(model, _generator(cfg.seed, epoch, _NOISE, dev)):
            for start in bar:
                idx = order[start : start + cfg.batch_size]
                xb, yb = x_train[idx].to(dev), y_train[idx].to(dev)
                logits = model(xb)
                loss = F.cross_entropy(logits, yb)
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
                loss_sum += float(loss.detach()) * len(idx)
                correct += int((logits.argmax(1) == yb).sum())
                bar.set_postfix(loss=f"{float(loss.detach()):.3f}")
        lr = optimizer.param_groups[0]["lr"]
        scheduler.step()
        train_s = time.perf_counter() - t0
        prob = mc_predict(
            model, x_test, samples=cfg.eval_samples, generator=_generator(cfg.seed, epoch, _EVAL)
        )
        test_acc, test_nll = accuracy_nll(prob, y_test)
        row = {
            "epoch": epoch + 1,
            "train_loss": loss_sum / n,
            "train_accuracy": correct / n,
            "test_accuracy": test_acc,
            "test_nll": test_nll,
            "eval_samples": cfg.eval_samples,
            "lr": lr,
            "train_s": train_s,
            "epoch_s": time.perf_counter() - t0,
        }
        history.append(row)
        save_checkpoint(
            ckpt_path,
            {
                "model": cfg.model,
                "rule": cfg.rule,
                "state_dict": {k: v.cpu() for k, v in model.state_dict().items()},
                "optimizer": optimizer.state_dict(),
                "scheduler": scheduler.state_dict(),
                "epoch": epoch + 1,
                "config": asdict(cfg),
                "history": history,
            },
        )
        _write_metrics(out, history)
        log(
            f"epoch {epoch + 1:3d}/{cfg.epochs}  loss {row['train_loss']:.4f}  "
            f"train acc {row['train_accuracy']:.4f}  test acc ({cfg.eval_samples} MC) "
            f"{test_acc:.4f}  nll {test_nll:.4f}  {row['epoch_s']:.1f} s"
        )
    return history


def _write_metrics(out: Path, history: list[dict[str, float]]) -> None:
    """``metrics.csv`` and ``metrics.json`` of ``history`` in ``out``, each written atomically."""
    table = io.StringIO()
    writer = csv.DictWriter(table, fieldnames=list(history[0]))
    writer.writeheader()
    writer.writerows(history)
    write_text(out / "metrics.csv", table.getvalue(), newline="")
    write_text(out / "metrics.json", json.dumps(history, indent=1) + "\n")
