"""The epoch loop of in-situ learning: :class:`Trainer` (metrics, diagnostics, checkpoints)."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np

from .chip_state import (
    VERSION,
    ChipStateError,
    _program_from_bytes,
    check_same_chip,
    read_chip_state,
    same_program,
    save_chip_state,
)
from .network import OnChipNetwork

CHECKPOINT_VERSION = VERSION  # the chip-state file's version


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

    def eval_seed(self, epoch: int) -> int:
        """The read seed of every evaluation (before learning and after each epoch): the
        learning seed, so that accuracies are paired (the same read noise on every test
        example) and ``nsmx run --chip-state FILE --samples S --seed SEED`` reproduces them."""
        return self.net.config.seed

    def evaluate(self, epoch: int) -> float:
        """MC test accuracy of the chip as it is (:meth:`ChipModel.run`)."""
        cfg = self.net.config
        return self.net.accuracy(self.x_test, self.y_test, cfg.eval_samples, self.eval_seed(epoch))

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
            "pulses_sent": net.total_pulses(),
            "wall_s": time.perf_counter() - t0,
        }
        self.history.append(row)
        return row

    # -- checkpoints: the chip-state file (mapping.learning.chip_state)
    def position(self) -> dict[str, Any]:
        net = self.net
        return {
            "epoch": self.epoch,
            "updates": net.updates,
            "refreshed": net.refreshed,
            "adam_t": net.adam.t,
            "history": self.history,
        }

    def save(self, path: str | Path, meta: dict[str, Any] | None = None) -> Path:
        """Write the chip state (and the training position) to ``path``."""
        return save_chip_state(
            path, self.net, position=self.position(), scratch=self.net.scratch, meta=meta
        )

    def resume(self, path: str | Path, data: dict[str, Any] | None = None) -> None:
        """Continue from a chip-state file written by :meth:`save` with the same learning
        configuration, chip, pulse device, initial program and (when ``data``, a
        :func:`~mapping.learning.chip_state.data_identity`, is given) data; else
        ``ChipStateError`` naming what differs."""
        manifest, arrays = read_chip_state(path)
        check_same_chip(manifest, self.net, path, data)
        if not self.net.scratch:
            try:
                stored = _program_from_bytes(arrays.pop("program"))
            except Exception as exc:  # the program loader's errors, for a damaged member
                raise ChipStateError(f"{path}: its stored program is unreadable ({exc})") from None
            if not same_program(stored, self.net.initial_program):
                raise ChipStateError(
                    f"{path}: written for another program (--program: its layers or arrays "
                    "differ); cannot resume"
                )
        for k, layer in enumerate(self.net.layers):
            for side, mask in (("plus", layer.stuck_plus), ("minus", layer.stuck_minus)):
                stored_mask = arrays.pop(f"l{k}_{side}_stuck", None)
                if stored_mask is None or not np.array_equal(stored_mask, mask):
                    raise ChipStateError(f"{path}: the chip's stuck cells differ; cannot resume")
        try:
            self.net.load_state_arrays(arrays)
        except ValueError as exc:
            raise ChipStateError(f"{path}: {exc}") from None
        pos = manifest["position"]
        self.net.updates, self.net.refreshed = int(pos["updates"]), int(pos["refreshed"])
        self.net.adam.t = int(pos["adam_t"])
        self.epoch = int(pos["epoch"])
        self.history = list(pos["history"])
