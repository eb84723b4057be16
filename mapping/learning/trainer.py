"""The epoch loop of in-situ learning: :class:`Trainer` (metrics, diagnostics, checkpoints)."""

from __future__ import annotations

import dataclasses
import json
import time
from pathlib import Path
from typing import Any

import numpy as np

from .network import OnChipNetwork

CHECKPOINT_VERSION = 1


def cosine(a: np.ndarray, b: np.ndarray) -> float:
    na, nb = np.linalg.norm(a), np.linalg.norm(b)
    return float(np.sum(a * b) / (na * nb)) if na > 0 and nb > 0 else 0.0


class Trainer:
    """Epoch loop with per-epoch metrics, diagnostics and (optional) checkpoints.

    Randomness: epoch e uses generators seeded by (seed, stream, e), so a resumed run
    continues exactly as an uninterrupted one.
    """

    def __init__(
        self,
        net: OnChipNetwork,
        x_train: np.ndarray,
        y_train: np.ndarray,
        x_test: np.ndarray,
        y_test: np.ndarray,
    ) -> None:
        self.net = net
        self.x_train, self.y_train = np.asarray(x_train), np.asarray(y_train)
        self.x_test, self.y_test = np.asarray(x_test), np.asarray(y_test)
        self.epoch = 0
        self.history: list[dict[str, Any]] = []

    def _rng(self, stream: int, epoch: int) -> np.random.Generator:
        return np.random.default_rng(np.random.SeedSequence([self.net.config.seed, stream, epoch]))

    def evaluate(self, epoch: int) -> float:
        proba = self.net.predict_proba(
            self.x_test, self.net.config.eval_samples, rng=self._rng(2, epoch)
        )
        return float(np.mean(np.argmax(proba, axis=1) == self.y_test))

    def run_epoch(self, progress: Any = None) -> dict[str, Any]:
        net, cfg = self.net, self.net.config
        e = self.epoch
        t0 = time.perf_counter()
        rng = self._rng(1, e)
        order = rng.permutation(len(self.x_train))
        lr = cfg.resolved_lr_pulses(net.pulse) * cfg.lr_decay**e
        bs = cfg.batch_size
        loss_sum, correct, seen = 0.0, 0, 0
        batches = range(0, len(order), bs)
        for s0 in batches:
            idx = order[s0 : s0 + bs]
            step_rng = np.random.default_rng(rng.integers(2**63))
            res = net.step(self.x_train[idx], self.y_train[idx], lr_pulses=lr, rng=step_rng)
            loss_sum += res.loss * len(idx)
            correct += res.correct
            seen += len(idx)
            if progress is not None:
                progress(len(idx))
        # Gradient cosine on a fixed diagnostic batch (without updating the chip).
        diag_rng = self._rng(3, e)
        n_diag = min(len(self.x_train), max(100, bs))
        idx = diag_rng.choice(len(self.x_train), n_diag, replace=False)
        res = net.step(
            self.x_train[idx], self.y_train[idx], lr_pulses=lr, rng=diag_rng, apply=False
        )
        exact = net.exact_gradients(res.cache, self.y_train[idx])
        cos_layers = [cosine(h, g) for h, g in zip(res.grads, exact, strict=True)]
        test_acc = self.evaluate(e)
        self.epoch += 1
        row = {
            "epoch": self.epoch,
            "train_loss": loss_sum / seen,
            "train_acc": correct / seen,
            "test_acc": test_acc,
            "lr_pulses": lr,
            "grad_cosine": cos_layers,
            "pulses": net.pulse_stats(),
            "refreshed_pairs": net.refreshed,
            "updates": net.updates,
            "wall_s": time.perf_counter() - t0,
        }
        self.history.append(row)
        return row

    # -- checkpoints: arrays in .npz (allow_pickle=False), the rest in JSON
    def save(self, path: str | Path, meta: dict[str, Any] | None = None) -> Path:
        path = Path(path)
        arrays = self.net.state_arrays()
        arrays = {k: np.asarray(v) for k, v in arrays.items()}
        info = {
            "version": CHECKPOINT_VERSION,
            "epoch": self.epoch,
            "updates": self.net.updates,
            "refreshed": self.net.refreshed,
            "adam_t": self.net.adam.t,
            "config": dataclasses.asdict(self.net.config),
            "chip": self.net.chip.to_dict(),
            "pulse": dataclasses.asdict(self.net.pulse),
            "history": self.history,
            "meta": meta or {},
        }
        tmp = path.with_suffix(".tmp.npz")
        np.savez(tmp, meta=np.frombuffer(json.dumps(info).encode(), dtype=np.uint8), **arrays)
        tmp.replace(path)
        return path

    @staticmethod
    def read_checkpoint(path: str | Path) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
        with np.load(Path(path), allow_pickle=False) as npz:
            arrays = {k: npz[k] for k in npz.files}
        info = json.loads(arrays.pop("meta").tobytes().decode())
        if info.get("version") != CHECKPOINT_VERSION:
            raise ValueError(
                f"{path}: checkpoint version {info.get('version')!r} is not "
                f"supported (expected {CHECKPOINT_VERSION})"
            )
        return info, arrays

    def load(self, info: dict[str, Any], arrays: dict[str, np.ndarray]) -> None:
        if info["config"] != dataclasses.asdict(self.net.config):
            raise ValueError("checkpoint was written with a different learning configuration")
        self.net.load_state_arrays(arrays)
        self.net.updates, self.net.refreshed = int(info["updates"]), int(info["refreshed"])
        self.net.adam.t = int(info["adam_t"])
        self.epoch = int(info["epoch"])
        self.history = list(info["history"])
