"""Figures and tables of docs/results/onchip.md from `nsmx learn` / `nsmx train` output folders.

    python benchmarks/onchip_figures.py RESULTS_DIR docs/figures

RESULTS_DIR holds one folder per run (each with metrics.json); the run names used by the
document are listed in docs/results/onchip.md with the commands that produced them.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
from matplotlib.figure import Figure

from devices.pulse import load_pulse_preset, plot_pulse_response
from mapping.estimators import exact_density, window_mean


def _history(folder: Path) -> list[dict]:
    return json.loads((folder / "metrics.json").read_text())


def pulse_figure(out: Path) -> None:
    fig = Figure(figsize=(10, 6.5), layout="constrained")
    for i, name in enumerate(("ideal", "fefet", "rram", "pcm")):
        sub = plot_pulse_response(
            load_pulse_preset(name),
            rng=np.random.default_rng(0),
            n_up=150 if name != "ideal" else 1000,
            n_down=150 if name != "ideal" else 1000,
            n_devices=50,
            title=name,
        )
        # copy the single-axes figure's artists into a panel (re-plot from the data)
        ax = fig.add_subplot(2, 2, i + 1)
        src = sub.axes[0]
        for line in src.lines:
            ax.plot(
                line.get_xdata(),
                line.get_ydata(),
                color=line.get_color(),
                lw=line.get_linewidth(),
                ls=line.get_linestyle(),
            )
        for coll in src.collections:
            for path in coll.get_paths():
                v = path.vertices
                ax.fill(v[:, 0], v[:, 1], color="C0", alpha=0.25, lw=0)
        ax.set_title(f"{name}: {load_pulse_preset(name).reset} reset")
        ax.set_xlabel("pulse number (up, then down)")
        ax.set_ylabel("G (µS)")
    fig.savefig(out / "onchip_pulse_response.png", dpi=110)


def window_figure(out: Path) -> None:
    """Analytic bias and per-read std of the window estimator vs Δ (σ = 1)."""
    deltas = np.geomspace(0.05, 3.0, 60)
    fig = Figure(figsize=(9, 3.6), layout="constrained")
    ax1, ax2 = fig.subplots(1, 2)
    for x in (0.0, 1.0, 2.0):
        f = exact_density(np.array(x), 1.0)
        mean = window_mean(np.array(x), 1.0, deltas)
        ax1.plot(deltas, (mean - f) / f * 100, label=f"m/σ = {x:g}")
        q = mean * 2 * deltas  # P(|u| < Δ)
        sd = np.sqrt(q * (1 - q)) / (2 * deltas)
        ax2.plot(deltas, sd / f, label=f"m/σ = {x:g}")
    ax1.set_xscale("log")
    ax1.set_xlabel("Δ (units of σ)")
    ax1.set_ylabel("relative bias of E[window] (%)")
    ax1.legend()
    ax2.set_xscale("log")
    ax2.set_yscale("log")
    ax2.set_xlabel("Δ (units of σ)")
    ax2.set_ylabel("std of one read / dP/dm")
    fig.savefig(out / "onchip_window_estimator.png", dpi=110)


def curves_figure(res: Path, out: Path, runs: dict[str, str], name: str, title: str) -> None:
    fig = Figure(figsize=(10, 3.8), layout="constrained")
    ax1, ax2 = fig.subplots(1, 2)
    for label, folder in runs.items():
        path = res / folder
        if not (path / "metrics.json").exists():
            continue
        h = _history(path)
        ep = [r["epoch"] for r in h]
        acc = [r.get("test_acc", r.get("test_accuracy", np.nan)) for r in h]
        acc = [a * 100 if a <= 1 else a for a in acc]
        ax1.plot(ep, acc, marker="o", label=label)
        if "grad_cosine" in h[0]:
            cos = np.array([r["grad_cosine"] for r in h])
            for k in range(cos.shape[1]):
                ax2.plot(
                    ep,
                    cos[:, k],
                    marker=".",
                    ls=["-", "--", ":"][k % 3],
                    color=ax1.lines[-1].get_color(),
                    label=f"{label} L{k + 1}" if k == 0 else None,
                )
    ax1.set_xlabel("epoch")
    ax1.set_ylabel("test accuracy (%)")
    ax1.set_title(title)
    ax1.legend(fontsize=8)
    ax2.set_xlabel("epoch")
    ax2.set_ylabel("cos(hardware grad, exact grad)\nper layer (- L1, -- L2, : L3)")
    ax2.legend(fontsize=7)
    fig.savefig(out / name, dpi=110)


def main(res: str, out: str) -> None:
    res_p, out_p = Path(res), Path(out)
    out_p.mkdir(parents=True, exist_ok=True)
    pulse_figure(out_p)
    window_figure(out_p)
    curves_figure(
        res_p,
        out_p,
        {
            "software (torch)": "mnist_sw",
            "ideal": "mnist_ideal",
            "fefet": "mnist_fefet",
            "rram": "mnist_rram",
            "pcm": "mnist_pcm",
        },
        "onchip_mnist_curves.png",
        "MNIST mnist-mlp, in situ vs software",
    )
    est = {f"window Δ={d}": f"d_window_{d}" for d in ("0.1", "0.25", "0.5", "1.0", "2.0")}
    est.update(
        {
            "software (torch)": "d_sw",
            "exact": "d_exact",
            "two_read Δ=0.5": "d_two_read",
            "score": "d_score",
        }
    )
    curves_figure(
        res_p,
        out_p,
        est,
        "onchip_digits_estimators.png",
        "digits-mlp: estimator and Δ (ideal devices)",
    )


def tables(res: str) -> str:
    """Markdown rows (last epoch of every run folder in ``res``) for docs/results/onchip.md."""
    lines = [
        "| run | epochs | test acc (%) | train loss | grad cosine per layer | pulses/device "
        "mean (max) per layer | refreshed pairs |",
        "|---|---|---|---|---|---|---|",
    ]
    for path in sorted(Path(res).glob("*/metrics.json")):
        h = _history(path.parent)
        r = h[-1]
        if "grad_cosine" not in r:
            acc = r["test_accuracy"] * 100
            lines.append(
                f"| {path.parent.name} (software) | {r['epoch']} | {acc:.2f} | "
                f"{r['train_loss']:.3f} | | | |"
            )
            continue
        cos = ", ".join(f"{c:.3f}" for c in r["grad_cosine"])
        pul = ", ".join(f"{p['mean']:.0f} ({p['max']})" for p in r["pulses"])
        lines.append(
            f"| {path.parent.name} | {r['epoch']} | {r['test_acc'] * 100:.2f} | "
            f"{r['train_loss']:.3f} | {cos} | {pul} | {r['refreshed_pairs']} |"
        )
    return "\n".join(lines)


if __name__ == "__main__":
    if sys.argv[1] == "--tables":
        print(tables(sys.argv[2]))
    else:
        main(*sys.argv[1:3])
