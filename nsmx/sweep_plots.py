"""Figures of a sweep store: metric vs one parameter, heatmaps for two, PNG and PDF.

:func:`plot_store` reads the rows of a :class:`~nsmx.store.SweepStore` and, per metric, draws

* one varied field: the metric's mean over seeds vs the field, with ±1 standard deviation
  error bars and every seed as a faint dot;
* two or more: the same against the x field (the first varied field, or ``x``), one line per
  combination of the other fields; with exactly two fields also a heatmap of the mean.

Cost metrics (:data:`COST_METRICS`, energy, latency and area per classification from
:mod:`mapping.cost`) are plotted on a log axis; :func:`plot_pareto` draws accuracy against a cost,
one point per grid point, with the Pareto front.

Rows are never pooled across settings: rows of the same varied values but different settings (a
store written before sweep identities were checked) are drawn as separate series labelled by the
settings that differ (:func:`nsmx.provenance.settings_columns`), and titles state only what all
rows share (:func:`describe_rows`). Figures are written atomically (:mod:`nsmx.safe_io`).

Axis labels carry the unit taken from the field name's suffix (:data:`UNITS`: ``_us`` µS,
``_v`` V, ``_s`` s, ``_ohm`` Ω, ``_ua`` µA). Numeric x values spanning more than two decades use
a log axis (symmetric-log when zero is among them).
"""

from __future__ import annotations

import itertools
import math
import os
import textwrap
from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from nsmx.provenance import common_value, setting_label, settings_columns, settings_of
from nsmx.safe_io import atomic_path
from nsmx.store import SweepStore

#: Field-name suffix -> unit shown on the axis.
UNITS = {"_us": "µS", "_v": "V", "_s": "s", "_ohm": "Ω", "_ua": "µA", "_ns": "ns"}
METRICS = {
    "accuracy": ("accuracy (%)", 100.0),
    "error": ("test error (%)", 100.0),
    "nll": ("NLL (nats)", 1.0),
    "ece": ("calibration error ECE (%)", 100.0),
    # Cost per classification (mapping.cost), stored in each row's extra["cost"].
    "energy_per_classification_j": ("energy per classification (J)", 1.0),
    "energy_per_sample_j": ("energy per MC sample (J)", 1.0),
    "latency_s": ("latency per classification (s)", 1.0),
    "area_m2": ("chip area (m²)", 1.0),
    "classifications_per_j": ("classifications/s/W", 1.0),
}
#: The metrics read from a row's ``extra["cost"]`` (plotted on a log axis).
COST_METRICS = (
    "energy_per_classification_j",
    "energy_per_sample_j",
    "latency_s",
    "area_m2",
    "classifications_per_j",
)


class PlotError(ValueError):
    """The store has nothing to plot or the requested field / metric does not exist."""


def axis_label(field: str) -> str:
    """``"devices.element.sigma_d_v"`` -> ``"devices.element.sigma_d_v (V)"``; run fields and
    unitless fields keep their name."""
    for suffix, unit in UNITS.items():
        if field.endswith(suffix):
            return f"{field} ({unit})"
    if field == "run.samples":
        return "run.samples (MC samples per example)"
    return field


def _metric(row: dict[str, Any], metric: str) -> float:
    if metric == "error":
        return 1.0 - row["accuracy"]
    if metric in COST_METRICS:
        cost = row.get("extra", {}).get("cost")
        if cost is None:
            raise PlotError(
                f"metric {metric!r}: the store's rows hold no cost (written before costs were "
                "recorded); rerun the sweep into a new folder"
            )
        return float(cost[metric])
    return float(row[metric])


def _fmt(value: Any) -> str:
    if isinstance(value, str):
        return Path(value).stem if value.endswith(".nsmx") else value
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


def _is_numeric(values: Sequence[Any]) -> bool:
    return all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values)


def _series_order(groups: Any, grids: Sequence[Sequence[Any]]) -> list[tuple]:
    """The keys of ``groups`` (other fields' values, then differing settings) in grid order."""
    grid_keys = list(itertools.product(*grids))
    n = len(grids)

    def rank(key: tuple) -> tuple:
        head = key[:n]
        return (grid_keys.index(head) if head in grid_keys else len(grid_keys), str(key[n:]))

    return sorted(groups, key=rank)


def describe_rows(rows: Sequence[dict[str, Any]], sweep: dict[str, Any]) -> str:
    """The settings every row shares, as a figure's subtitle: chip, dataset and size, MC samples,
    mode, seeds; a setting the rows do not share reads 'varied' (never one row's value)."""

    def shared(get: Any, fmt: Any) -> str:
        same, value = common_value(rows, get)
        return fmt(value) if same else fmt(None)

    chip = Path(str(sweep.get("chip"))).name
    same_chip, _ = common_value(rows, lambda r: r["config"]["chip"])
    chip_text = f"chip {chip} {' '.join(sweep.get('sets', []))}".rstrip()
    if not same_chip:
        chip_text += " (chip fields varied)"
    dataset = shared(lambda r: r["config"]["dataset"], lambda v: v or "dataset varied")
    n = shared(lambda r: r["n"], lambda v: "n varied" if v is None else f"n={v}")
    samples = shared(lambda r: r["samples"], lambda v: "S varied" if v is None else f"S={v}")
    mode = shared(
        lambda r: r["config"]["run"]["mode"], lambda v: "mode varied" if v is None else f"mode {v}"
    )
    seeds = len({r["seed"] for r in rows})
    return f"{chip_text}; {dataset} {n}, {samples}, {mode}, {seeds} seed(s)"


def plot_store(
    store: SweepStore,
    *,
    metrics: Sequence[str] = ("accuracy",),
    x: str | None = None,
    out_dir: str | os.PathLike[str] = ".",
    stem: str = "sweep",
    formats: Sequence[str] = ("png", "pdf"),
) -> list[Path]:
    """Draw the store's figures into ``out_dir`` as ``{stem}_{metric}[_heatmap].{fmt}``;
    returns the paths written."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = store.rows()
    if not rows:
        raise PlotError(f"{store.path}: no finished runs to plot yet")
    sweep = store.sweep
    fields = [f for f, _ in sweep.get("vary", [])]
    if not fields:
        raise PlotError(f"{store.path}: the sweep varies no field (nothing to plot against)")
    for metric in metrics:
        if metric not in METRICS:
            raise PlotError(f"metric {metric!r} is unknown; choose one of {list(METRICS)}")
    x = x or fields[0]
    if x not in fields:
        raise PlotError(f"--x {x!r} is not a varied field; choose one of {fields}")
    others = [f for f in fields if f != x]
    order = {f: list(v) for f, v in sweep["vary"]}
    for r in rows:  # values of rows from a grid since extended
        for f in fields:
            if r["params"].get(f) not in order[f]:
                order[f].append(r["params"].get(f))
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    title = sweep.get("name") or stem
    # Rows of the same varied values but other settings (an old store): separate series.
    extras = settings_columns(rows)
    subtitle = describe_rows(rows, sweep)
    subtitle = "\n".join(textwrap.wrap(subtitle, 72))
    written: list[Path] = []
    for metric in metrics:
        label, scale = METRICS[metric]
        groups: dict[tuple, dict[Any, list[float]]] = defaultdict(lambda: defaultdict(list))
        for r in rows:
            key = tuple(r["params"].get(f) for f in others) + settings_of(r, extras)
            groups[key][r["params"].get(x)].append(_metric(r, metric) * scale)
        xs_all = [v for v in order[x] if any(v in g for g in groups.values())]
        numeric = _is_numeric(xs_all)
        fig, ax = plt.subplots(figsize=(6.4, 4.4))
        # Series in grid order of the other fields, then by the differing settings.
        for key in _series_order(groups, [order[f] for f in others]):
            g = groups[key]
            xs = [v for v in xs_all if v in g]
            pos = np.array(xs, dtype=float) if numeric else np.array([xs_all.index(v) for v in xs])
            mean = np.array([np.mean(g[v]) for v in xs])
            std = np.array([np.std(g[v], ddof=1) if len(g[v]) > 1 else 0.0 for v in xs])
            name = ", ".join(
                [
                    *(f"{f.split('.')[-1]}={_fmt(k)}" for f, k in zip(others, key, strict=False)),
                    *(setting_label(c, v) for c, v in zip(extras, key[len(others) :], strict=True)),
                ]
            )
            line = ax.errorbar(pos, mean, yerr=std, marker="o", capsize=3, label=name or None)
            for p, v in zip(pos, xs, strict=True):
                ax.plot([p] * len(g[v]), g[v], ".", color=line[0].get_color(), alpha=0.3)
        if numeric:
            vals = np.array(xs_all, dtype=float)
            pos_vals = vals[vals > 0]
            if pos_vals.size and pos_vals.max() / pos_vals.min() > 100:
                if (vals == 0).any():
                    ax.set_xscale("symlog", linthresh=float(pos_vals.min()), linscale=0.5)
                else:
                    ax.set_xscale("log")
                ax.set_xticks(vals, [_fmt(v) for v in xs_all], fontsize=8)
                ax.minorticks_off()
        else:
            ax.set_xticks(range(len(xs_all)), [_fmt(v) for v in xs_all])
        if metric in COST_METRICS:
            ax.set_yscale("log")
        ax.set_xlabel(axis_label(x))
        ax.set_ylabel(f"{label}\nmean ± std over seeds")
        ax.set_title(f"{title}\n{subtitle}", fontsize=9)
        ax.grid(alpha=0.3)
        if others or extras:
            ax.legend(fontsize=7, loc="best")
        fig.tight_layout()
        for fmt in formats:
            written.append(_save(fig, out_dir / f"{stem}_{metric}.{fmt}"))
        plt.close(fig)

        if len(fields) == 2 and not extras:  # one cell per point: only rows of one setting
            y = others[0]
            ys = order[y]
            grid = np.full((len(ys), len(xs_all)), np.nan)
            for i, yv in enumerate(ys):
                g = groups.get((yv,), {})
                for j, xv in enumerate(xs_all):
                    if xv in g:
                        grid[i, j] = np.mean(g[xv])
            fig, ax = plt.subplots(figsize=(6.4, 4.4))
            im = ax.imshow(grid, origin="lower", aspect="auto", cmap="viridis")
            ax.set_xticks(range(len(xs_all)), [_fmt(v) for v in xs_all])
            ax.set_yticks(range(len(ys)), [_fmt(v) for v in ys])
            lo, hi = np.nanmin(grid), np.nanmax(grid)
            for i, j in itertools.product(range(len(ys)), range(len(xs_all))):
                if np.isfinite(grid[i, j]):
                    bright = hi > lo and (grid[i, j] - lo) / (hi - lo) > 0.6  # viridis: yellow
                    ax.text(
                        j,
                        i,
                        f"{grid[i, j]:.3g}",
                        ha="center",
                        va="center",
                        fontsize=8,
                        color="k" if bright else "w",
                    )
            ax.set_xlabel(axis_label(x))
            ax.set_ylabel(axis_label(y))
            fig.colorbar(im, ax=ax, label=f"{label} (mean over seeds)")
            ax.set_title(f"{title}\n{subtitle}", fontsize=9)
            fig.tight_layout()
            for fmt in formats:
                written.append(_save(fig, out_dir / f"{stem}_{metric}_heatmap.{fmt}"))
            plt.close(fig)
    return written


def _save(fig: Any, path: Path) -> Path:
    """``fig`` written to ``path`` whole or not at all (a temporary file renamed into place)."""
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=120, format=path.suffix.lstrip("."))
    return path


def pareto_front(points: Sequence[tuple[float, float]]) -> list[int]:
    """Indices of the points (cost, value) no other point beats: none with cost <= and value >=
    and one of them strict. Sorted by cost."""
    order = sorted(range(len(points)), key=lambda i: (points[i][0], -points[i][1]))
    front: list[int] = []
    best = -math.inf
    for i in order:
        if points[i][1] > best:
            front.append(i)
            best = points[i][1]
    return front


def plot_pareto(
    store: SweepStore,
    *,
    cost: str = "energy_per_classification_j",
    metric: str = "accuracy",
    out_dir: str | os.PathLike[str] = ".",
    stem: str = "sweep",
    formats: Sequence[str] = ("png", "pdf"),
) -> list[Path]:
    """Draw ``metric`` against ``cost`` (a :data:`COST_METRICS` name), one point per grid point
    (mean over seeds, labelled by its varied values), the Pareto front joined; writes
    ``{stem}_{metric}_vs_{cost}.{fmt}`` and returns the paths."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    if cost not in COST_METRICS:
        raise PlotError(f"cost {cost!r} is unknown; choose one of {list(COST_METRICS)}")
    if metric not in METRICS or metric in COST_METRICS:
        names = [m for m in METRICS if m not in COST_METRICS]
        raise PlotError(f"metric {metric!r} is unknown; choose one of {names}")
    rows = store.rows()
    if not rows:
        raise PlotError(f"{store.path}: no finished runs to plot yet")
    fields = [f for f, _ in store.sweep.get("vary", [])]
    extras = settings_columns(rows)
    groups: dict[str, list[dict[str, Any]]] = {}
    for r in rows:
        groups.setdefault(r["point_hash"], []).append(r)
    points, labels = [], []
    for group in sorted(groups.values(), key=lambda g: g[0]["point_index"]):
        xs = [_metric(r, cost) for r in group]
        ys = [_metric(r, metric) * METRICS[metric][1] for r in group]
        points.append((float(np.mean(xs)), float(np.mean(ys))))
        params = group[0]["params"]
        labels.append(
            ", ".join(
                [
                    *(f"{f.split('.')[-1]}={_fmt(params.get(f))}" for f in fields),
                    *(
                        setting_label(c, v)
                        for c, v in zip(extras, settings_of(group[0], extras), strict=True)
                    ),
                ]
            )
        )
    fig, ax = plt.subplots(figsize=(6.4, 4.4))
    xy = np.array(points)
    ax.plot(xy[:, 0], xy[:, 1], "o", alpha=0.6)
    front = pareto_front(points)
    ax.plot(xy[front, 0], xy[front, 1], "-", color="C1", label="Pareto front")
    for (px, py), text in zip(points, labels, strict=True):
        ax.annotate(text, (px, py), fontsize=6, xytext=(3, 3), textcoords="offset points")
    ax.set_xscale("log")
    ax.set_xlabel(METRICS[cost][0])
    ax.set_ylabel(f"{METRICS[metric][0]} (mean over seeds)")
    ax.set_title(store.sweep.get("name") or stem, fontsize=9)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    fig.tight_layout()
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    written = [_save(fig, out_dir / f"{stem}_{metric}_vs_{cost}.{fmt}") for fmt in formats]
    plt.close(fig)
    return written


def summary_table(store: SweepStore) -> list[dict[str, Any]]:
    """One row per grid point, in grid order: the varied values, seeds, and mean ± standard
    deviation (over seeds, ddof 1) of accuracy, NLL and ECE."""
    rows = store.rows()
    fields = [f for f, _ in store.sweep.get("vary", [])]
    extras = settings_columns(rows)  # rows of other settings: their own lines, the setting shown
    points: dict[str, list[dict[str, Any]]] = {}
    for r in rows:
        points.setdefault(r["point_hash"], []).append(r)
    out = []
    for group in sorted(points.values(), key=lambda g: g[0]["point_index"]):
        entry: dict[str, Any] = {f: group[0]["params"].get(f) for f in fields}
        entry.update(zip(extras, settings_of(group[0], extras), strict=True))
        entry["seeds"] = len(group)
        for metric in ("accuracy", "nll", "ece"):
            values = np.array([r[metric] for r in group])
            entry[metric] = float(values.mean())
            entry[f"{metric}_std"] = float(values.std(ddof=1)) if len(values) > 1 else 0.0
        out.append(entry)
    return out


def format_markdown(table: Sequence[dict[str, Any]]) -> list[str]:
    """:func:`summary_table` as Markdown lines (accuracy and ECE in %)."""
    if not table:
        return []
    fields = [
        k
        for k in table[0]
        if k not in ("seeds", "accuracy", "accuracy_std", "nll", "nll_std", "ece", "ece_std")
    ]
    lines = [
        "| " + " | ".join([*fields, "seeds", "accuracy (%)", "NLL", "ECE (%)"]) + " |",
        "|" + "---|" * (len(fields) + 4),
    ]
    for e in table:
        cells = [_fmt(e[f]) for f in fields]
        cells += [
            str(e["seeds"]),
            f"{100 * e['accuracy']:.2f} ± {100 * e['accuracy_std']:.2f}",
            f"{e['nll']:.3f} ± {e['nll_std']:.3f}",
            f"{100 * e['ece']:.2f} ± {100 * e['ece_std']:.2f}",
        ]
        lines.append("| " + " | ".join(cells) + " |")
    return lines


__all__ = [
    "COST_METRICS",
    "METRICS",
    "UNITS",
    "PlotError",
    "axis_label",
    "describe_rows",
    "format_markdown",
    "pareto_front",
    "plot_pareto",
    "plot_store",
    "summary_table",
]
