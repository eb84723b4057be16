"""The learning-curve figure of ``nsmx learn``: ``OUT/learning_curve.png`` from its metrics.

Three panels over the epochs of the run's history (:meth:`mapping.learning.Trainer.run_epoch`
rows): train and MC test accuracy (%) with the chip's accuracy before learning as a dashed
line; the gradient cosine per layer (hardware-sampled against the mean-field gradient); the
programming pulses sent so far (cumulative, all devices). Written atomically (a temporary file
in the same folder, then renamed), so a reader never sees half a PNG.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from nsm.atomic_io import atomic_path


def plot_learning_curve(
    history: list[dict[str, Any]], path: str | os.PathLike, *, title: str = ""
) -> Path:
    """Write the learning-curve PNG of ``history`` (one dict per epoch: ``epoch``,
    ``train_acc``, ``test_acc``, ``grad_cosine`` (per layer), ``pulses_sent``, optionally
    ``accuracy_before``) to ``path``; returns the path. ``ValueError`` for an empty history."""
    if not history:
        raise ValueError("history is empty: nothing to plot")
    import matplotlib

    matplotlib.use("Agg", force=False)
    from matplotlib.figure import Figure

    path = Path(path)
    epochs = [int(r["epoch"]) for r in history]
    fig = Figure(figsize=(10.5, 3.3), layout="constrained")
    ax_acc, ax_cos, ax_pulse = fig.subplots(1, 3)
    ax_acc.plot(epochs, [100 * r["train_acc"] for r in history], "o-", label="train")
    ax_acc.plot(epochs, [100 * r["test_acc"] for r in history], "s-", label="test (chip MC)")
    before = history[0].get("accuracy_before")
    if before is not None:
        ax_acc.axhline(100 * before, ls="--", color="grey", lw=1, label="before learning")
    ax_acc.set(xlabel="epoch", ylabel="accuracy (%)", title="accuracy")
    ax_acc.legend(fontsize=8)
    n_layers = len(history[0]["grad_cosine"])
    for k in range(n_layers):
        ax_cos.plot(epochs, [r["grad_cosine"][k] for r in history], "o-", label=f"L{k + 1}")
    # Cosines near 1 would otherwise get an offset axis ("1e-12 + 1"): a fixed range that
    # always shows 1 and reaches at least 0.9 reads at a glance.
    lowest = min(min(r["grad_cosine"]) for r in history)
    ax_cos.set_ylim(max(-1.0, min(0.9, lowest - 0.02)), 1.01)
    ax_cos.ticklabel_format(axis="y", useOffset=False)
    ax_cos.set(xlabel="epoch", ylabel="cosine", title="gradient cosine (hardware vs mean field)")
    ax_cos.legend(fontsize=8)
    ax_pulse.plot(epochs, [r["pulses_sent"] for r in history], "o-", color="C3")
    ax_pulse.set(xlabel="epoch", ylabel="pulses sent (cumulative)", title="programming pulses")
    from matplotlib.ticker import MaxNLocator

    for ax in (ax_acc, ax_cos, ax_pulse):
        ax.grid(alpha=0.3)
        ax.xaxis.set_major_locator(MaxNLocator(nbins=8, integer=True))
    if title:
        fig.suptitle(title, fontsize=9)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=110)
    return path


__all__ = ["plot_learning_curve"]
