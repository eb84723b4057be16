"""Plots of the device models for the docs and for users (matplotlib, no pyplot state).

Each function returns a ``matplotlib.figure.Figure`` (save it with ``fig.savefig(path)``).
matplotlib is imported inside the functions, so ``import devices`` does not pull it in.
Regenerate the documentation figures with::

    python -m devices.plots docs/figures
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import numpy as np
from scipy.special import ndtr

from .conductance import quantise
from .config import DeviceConfig
from .pcm import PCMConfig
from .registry import build
from .selector import Selector, SelectorConfig


def _figure(width_in: float = 6.4, height_in: float = 4.2) -> Any:
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width_in, height_in), layout="constrained")
    return fig


def plot_selector_switching(
    config: SelectorConfig | None = None,
    *,
    rng: np.random.Generator,
    n_devices: int = 400,
    n_reads: int = 400,
    n_show: int = 4,
    v_points: int = 121,
) -> Any:
    """Switching probability vs read voltage for a population of selectors.

    Shows the population mean of the realised p_ij(V) = Phi((V - mu_ij)/sigma_c), the 5-95 %
    device-to-device band, the closed-form population curve Phi((V - mu)/sqrt(sigma_c² +
    sigma_d²)), and, for ``n_show`` devices, the switching frequency measured with the
    reference sampler (``n_reads`` reads per voltage) on top of each device's own curve.
    """
    c = config or SelectorConfig()
    sel = Selector(c)
    state = sel.program((1, n_devices), rng=rng)
    spread = float(np.hypot(c.sigma_c_v, c.sigma_d_v))
    v = np.linspace(max(c.mu_v - 4 * spread, 0.0), c.mu_v + 4 * spread, v_points)
    p = np.stack([sel.p(state, vi)[0] for vi in v])  # (v_points, n_devices)

    fig = _figure()
    ax = fig.add_subplot()
    lo, hi = np.percentile(p, [5, 95], axis=1)
    ax.fill_between(v, lo, hi, color="C0", alpha=0.25, label="5–95 % of devices (σ_d)")
    ax.plot(v, p.mean(axis=1), color="C0", lw=2, label=f"mean of {n_devices} devices")
    ax.plot(v, ndtr((v - c.mu_v) / spread), "k--", lw=1, label="Φ((V−μ)/√(σ_c²+σ_d²))")
    v_coarse = v[:: max(1, v_points // 16)]
    for k in range(min(n_show, n_devices)):
        freq = [sel.sample(state, n_reads, rng=rng, v_read_v=vi)[:, 0, k].mean() for vi in v_coarse]
        color = f"C{k + 1}"
        ax.plot(v, p[:, k], color=color, lw=0.8)
        ax.plot(
            v_coarse, freq, "o", ms=3.5, color=color, label="sampled devices" if k == 0 else None
        )
    ax.axvline(c.v_read_v, color="grey", lw=0.8, ls=":", label=f"V_read = {c.v_read_v:g} V")
    ax.set_xlabel("read voltage V_in (V)")
    ax.set_ylabel("switching probability p")
    ax.set_title(f"Selector: μ = {c.mu_v:g} V, σ_c = {c.sigma_c_v:g} V, σ_d = {c.sigma_d_v:g} V")
    ax.set_ylim(-0.02, 1.02)
    ax.legend(fontsize=8, loc="upper left")
    return fig


def plot_pcm_drift(
    config: PCMConfig | None = None,
    *,
    rng: np.random.Generator,
    targets_us: tuple[float, ...] = (2.5, 5.0, 10.0, 15.0, 20.0, 25.0),
    n_devices: int = 500,
    t_max_s: float = 3.15e7,
    t_points: int = 40,
) -> Any:
    """PCM conductance vs time after programming (log time) for several target levels.

    For each target, ``n_devices`` devices are programmed once and read once at each time:
    the median read and the 5-95 % band (programming error, drift-exponent spread and 1/f
    read noise together) are drawn; the dashed line is the population mean conductance.
    """
    c = config or PCMConfig()
    model = build("conductance", c)
    t = np.logspace(np.log10(c.t0_s), np.log10(t_max_s), t_points)
    fig = _figure()
    ax = fig.add_subplot()
    for k, g in enumerate(targets_us):
        state = model.program(np.full(n_devices, g), rng=rng)
        reads = np.stack([model.read(state, ti, rng=rng) for ti in t])  # (t_points, n_devices)
        lo, med, hi = np.percentile(reads, [5, 50, 95], axis=1)
        color = f"C{k}"
        ax.fill_between(t, lo, hi, color=color, alpha=0.2)
        ax.plot(t, med, color=color, lw=1.8, label=f"target {g:g} µS")
        ax.plot(t, [model.mean(state, ti).mean() for ti in t], color=color, lw=0.8, ls="--")
    ax.set_xscale("log")
    ax.set_xlabel("time after programming t (s)")
    ax.set_ylabel("conductance G (µS)")
    ax.set_title("PCM: drift with ν spread + 1/f read noise (median, 5–95 %)")
    ax.legend(fontsize=8, ncol=2)
    return fig


def plot_programming_error(
    config: Any | None = None,
    *,
    rng: np.random.Generator,
    targets_us: tuple[float, ...] | None = None,
    n_devices: int = 4000,
    bins: int = 60,
) -> Any:
    """Histogram of the programming error G0 - level per target level, for any conductance
    model config (default: PCM). Stuck devices are excluded (they ignore programming).
    The legend gives the measured std per level."""
    c = config if config is not None else PCMConfig()
    model = build("conductance", c)
    if targets_us is None:
        # Away from 0 µS, where the non-negativity of G would fold the error distribution.
        span_us = model.g_max_us - model.g_min_us
        targets_us = tuple(model.g_min_us + span_us * f for f in (0.1, 0.3, 0.5, 0.7, 1.0))
        if getattr(c, "n_levels", 0):
            targets_us = tuple(
                quantise(np.asarray(targets_us), model.g_min_us, model.g_max_us, c.n_levels)
            )
    states = [model.program(np.full(n_devices, g), rng=rng) for g in targets_us]
    errors = [(s.g0_us - s.g_level_us)[s.stuck == 0] for s in states]
    span = max(float(np.abs(e).max()) for e in errors if e.size) or 1.0
    edges = np.linspace(-span, span, bins + 1)
    fig = _figure()
    ax = fig.add_subplot()
    for k, (g, e) in enumerate(zip(targets_us, errors, strict=True)):
        ax.hist(
            e,
            bins=edges,
            histtype="step",
            lw=1.5,
            color=f"C{k}",
            label=f"{g:g} µS: std {e.std():.3f} µS",
        )
    ax.set_xlabel("programming error G₀ − target level (µS)")
    ax.set_ylabel(f"devices (of {n_devices})")
    ax.set_title(f"Programming error per target level ({type(c).__name__})")
    ax.legend(fontsize=8, title="target level", title_fontsize=8)
    return fig


def generate_docs_figures(out_dir: str | Path, *, seed: int = 2024) -> list[Path]:
    """Write the documentation figures ``devices_*.png`` into ``out_dir``; return the paths."""
    from .library import load_preset

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    streams = [np.random.default_rng(s) for s in np.random.SeedSequence(seed).spawn(4)]
    selector_cfg: DeviceConfig = load_preset("selector-fefet")
    rram_cfg: DeviceConfig = load_preset("rram-selector")
    figures = {
        "devices_selector_switching.png": plot_selector_switching(
            selector_cfg.element, rng=streams[0]
        ),
        "devices_pcm_drift.png": plot_pcm_drift(PCMConfig(), rng=streams[1]),
        "devices_programming_error_pcm.png": plot_programming_error(PCMConfig(), rng=streams[2]),
        "devices_programming_error_rram.png": plot_programming_error(
            rram_cfg.conductance, rng=streams[3]
        ),
    }
    paths = []
    for name, fig in figures.items():
        path = out / name
        fig.savefig(path, dpi=120)
        paths.append(path)
    return paths


if __name__ == "__main__":  # pragma: no cover - documentation helper
    for written in generate_docs_figures(sys.argv[1] if len(sys.argv) > 1 else "docs/figures"):
        print(written)
