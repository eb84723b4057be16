"""Figures of a sweep store: metric vs one parameter, heatmaps for two; PNG, PDF or SVG.

:func:`plot_store` reads the rows of a :class:`~nsmx.store.SweepStore` and, per metric, draws

* one varied field: the metric against the field; with several seeds per point the mean over
  seeds with ±1 standard deviation error bars and every seed as a faint dot, with one seed the
  value alone (the axis label says which: :func:`spread_text`);
* two or more: the same against the x field (the first varied field, or ``x``), one line per
  combination of the other fields; with exactly two fields also a heatmap of the mean;
* optional dashed horizontal reference lines (``references``: e.g. the software accuracy and
  an ideal chip's, which the store does not hold; ``nsmx plot --reference``).

Axes (:func:`axis_scale`): a numeric field gets a numeric axis, ticked at the grid values when
there are few; values that are log-spaced (all positive, near-constant ratios) or span two
decades or more get a log axis (symmetric-log when zero is among them); strings and booleans
are categories. A field in seconds (name ending ``_s``, e.g. ``run.t_s``) is ticked in human
units (:func:`format_duration`: s, min, h, days, years). ``xscale``/``yscale`` override the
choice. Cost metrics (:data:`COST_METRICS`, energy, latency and area per classification from
:mod:`mapping.cost`) are plotted on a log axis; :func:`plot_pareto` draws accuracy against a
cost, one point per grid point, with the Pareto front.

Rows are never pooled across settings: rows of the same varied values but different settings (a
store written before sweep identities were checked) are drawn as separate series labelled by the
settings that differ (:func:`nsmx.provenance.settings_columns`), and titles state only what all
rows share (:func:`describe_rows`). Figures are written atomically (:mod:`nsmx.safe_io`).

Axis labels carry the unit taken from the field name's suffix (:data:`UNITS`: ``_us`` µS,
``_v`` V, ``_s`` s, ``_ohm`` Ω, ``_ua`` µA, ``_ns`` ns). The axis rules live in
:mod:`nsmx.sweep_axes` and the summary table in :mod:`nsmx.sweep_summary`; their names are
re-exported here.
"""

from __future__ import annotations

import itertools
import math
import os
import textwrap
from collections import defaultdict
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from nsmx.provenance import common_value, setting_label, settings_columns, settings_of
from nsmx.safe_io import atomic_path
from nsmx.store import SweepStore
from nsmx.sweep_axes import (
    TIME_UNITS,
    UNITS,
    axis_label,
    axis_scale,
    format_duration,
    is_numeric,
    is_time_axis,
    is_time_field,
    seeds_text,
    spread_text,
    style_x,
    tick_text,
    time_unit,
)
from nsmx.sweep_summary import format_markdown, summary_caption, summary_table

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
    "throughput_per_s": ("throughput (classifications/s)", 1.0),
    "power_w": ("power (W)", 1.0),
}
#: The metrics read from a row's ``extra["cost"]`` (plotted on a log axis).
COST_METRICS = (
    "energy_per_classification_j",
    "energy_per_sample_j",
    "latency_s",
    "area_m2",
    "classifications_per_j",
    "throughput_per_s",
    "power_w",
)


#: File formats a figure can be written in.
FORMATS = ("png", "pdf", "svg")
#: Axis scales :func:`plot_store` accepts (``auto``: :func:`axis_scale`).
SCALES = ("auto", "linear", "log", "symlog")


class PlotError(ValueError):
    """The store has nothing to plot or the requested field / metric does not exist."""


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


def parse_reference(text: str) -> tuple[str, float]:
    """``"software=0.972"`` or ``"ideal chip=97.2%"`` -> ``("software", 0.972)``: a reference
    accuracy as a fraction in [0, 1] (or a percentage with ``%``)."""
    label, sep, value = str(text).rpartition("=")
    label = label.strip()
    form = "must have the form LABEL=ACCURACY (e.g. software=0.972 or 'ideal chip=97.2%')"
    if not sep or not label:
        raise PlotError(f"--reference {text!r} {form}")
    value = value.strip()
    percent = value.endswith("%")
    try:
        number = float(value.removesuffix("%"))
    except ValueError:
        raise PlotError(f"--reference {text!r} {form}") from None
    if percent:
        number /= 100.0
    if not 0.0 <= number <= 1.0:
        raise PlotError(
            f"--reference {text!r}: the accuracy {value} is outside [0, 1] "
            "(a fraction, or a percentage with %)"
        )
    return label, number


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
    per_point: dict[str, set[int]] = defaultdict(set)
    for r in rows:
        per_point[r["point_hash"]].add(r["seed"])
    seeds = seeds_text([len(s) for s in per_point.values()] or [0])
    return f"{chip_text}; {dataset} {n}, {samples}, {mode}, {seeds}"


def plot_store(
    store: SweepStore,
    *,
    metrics: Sequence[str] = ("accuracy",),
    x: str | None = None,
    out_dir: str | os.PathLike[str] = ".",
    stem: str = "sweep",
    formats: Sequence[str] = ("png", "pdf"),
    xscale: str = "auto",
    yscale: str = "auto",
    references: Mapping[str, float] | None = None,
) -> list[Path]:
    """Draw the store's figures (:func:`sweep_figures`) into ``out_dir`` as
    ``{stem}_{metric}[_heatmap].{fmt}`` for each of ``formats`` (:data:`FORMATS`); returns the
    paths written."""
    import matplotlib.pyplot as plt

    for fmt in formats:
        if fmt not in FORMATS:
            raise PlotError(f"format {fmt!r} is unknown; choose one of {list(FORMATS)}")
    figures = sweep_figures(
        store, metrics=metrics, x=x, xscale=xscale, yscale=yscale, references=references
    )
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    try:
        for name, fig in figures.items():
            for fmt in formats:
                written.append(_save(fig, out_dir / f"{stem}_{name}.{fmt}"))
    finally:
        for fig in figures.values():
            plt.close(fig)
    return written


def sweep_figures(
    store: SweepStore,
    *,
    metrics: Sequence[str] = ("accuracy",),
    x: str | None = None,
    xscale: str = "auto",
    yscale: str = "auto",
    references: Mapping[str, float] | None = None,
) -> dict[str, Any]:
    """The store's figures as matplotlib ``Figure`` objects, by name: ``"{metric}"`` for each
    metric and, for a grid of two fields, ``"{metric}_heatmap"`` (the caller closes them).

    Args:
        metrics: names of :data:`METRICS`.
        x: the varied field on the x axis (default: the first).
        xscale, yscale: ``"auto"`` (:func:`axis_scale`; log for cost metrics), ``"linear"``,
            ``"log"`` (symmetric-log when zero is among the values) or ``"symlog"``.
        references: label -> accuracy (a fraction): dashed horizontal lines on the accuracy
            and error figures (error: 1 − accuracy), e.g. the software reference and an ideal
            chip; the store does not hold them (``nsmx run`` prints both).
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    for name, value in (("xscale", xscale), ("yscale", yscale)):
        if value not in SCALES:
            raise PlotError(f"{name} {value!r} is unknown; choose one of {list(SCALES)}")
    references = dict(references or {})
    for name, value in references.items():
        if not (isinstance(value, (int, float)) and 0.0 <= value <= 1.0):
            raise PlotError(f"reference {name!r}: {value!r} is not an accuracy in [0, 1]")
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
    title = sweep.get("name") or Path(str(store.path)).parent.name
    # Rows of the same varied values but other settings (an old store): separate series.
    extras = settings_columns(rows)
    subtitle = describe_rows(rows, sweep)
    subtitle = "\n".join(textwrap.wrap(subtitle, 72))
    figures: dict[str, Any] = {}
    for metric in metrics:
        label, scale = METRICS[metric]
        groups: dict[tuple, dict[Any, list[float]]] = defaultdict(lambda: defaultdict(list))
        for r in rows:
            key = tuple(r["params"].get(f) for f in others) + settings_of(r, extras)
            groups[key][r["params"].get(x)].append(_metric(r, metric) * scale)
        xs_all = [v for v in order[x] if any(v in g for g in groups.values())]
        numeric = is_numeric(xs_all)
        chosen = xscale
        if chosen == "auto":
            chosen = axis_scale(xs_all) if numeric else "linear"
        elif chosen != "linear" and not numeric:
            raise PlotError(f"xscale {xscale!r}: {x} has values that are not numbers")
        elif chosen != "linear" and not any(float(v) > 0 for v in xs_all):
            raise PlotError(f"xscale {xscale!r}: {x} has no positive values")
        fig, ax = plt.subplots(figsize=(6.4, 4.4))
        positions, x_label = style_x(ax, x, xs_all, chosen)
        where = dict(zip(map(_key, xs_all), positions, strict=True))
        counts = [len(g[v]) for g in groups.values() for v in g]
        # Series in grid order of the other fields, then by the differing settings.
        for key in _series_order(groups, [order[f] for f in others]):
            g = groups[key]
            xs = [v for v in xs_all if v in g]
            pos = np.array([where[_key(v)] for v in xs])
            mean = np.array([np.mean(g[v]) for v in xs])
            # No bar where a point has one seed (a spread of one value is not zero, it is unknown).
            std = np.array([np.std(g[v], ddof=1) if len(g[v]) > 1 else np.nan for v in xs])
            name = ", ".join(
                [
                    *(
                        f"{f.split('.')[-1]}={tick_text(f, k)}"
                        for f, k in zip(others, key, strict=False)
                    ),
                    *(setting_label(c, v) for c, v in zip(extras, key[len(others) :], strict=True)),
                ]
            )
            bars = std if np.isfinite(std).any() else None
            line = ax.errorbar(pos, mean, yerr=bars, marker="o", capsize=3, label=name or None)
            for p, v in zip(pos, xs, strict=True):
                if len(g[v]) > 1:  # every seed as a faint dot
                    ax.plot([p] * len(g[v]), g[v], ".", color=line[0].get_color(), alpha=0.3)
        if metric in ("accuracy", "error"):
            for i, (ref_name, value) in enumerate(references.items()):
                ref = value if metric == "accuracy" else 1.0 - value
                ax.axhline(
                    ref * scale,
                    linestyle="--",
                    linewidth=1.2,
                    color=f"C{(7 + i) % 10}",
                    label=f"{ref_name} ({ref * scale:.2f} %)",
                )
        y_chosen = yscale if yscale != "auto" else ("log" if metric in COST_METRICS else "linear")
        if y_chosen != "linear":
            ax.set_yscale(y_chosen)
        ax.set_xlabel(x_label)
        ax.set_ylabel(f"{label}\n{spread_text(counts)}")
        ax.set_title(f"{title}\n{subtitle}", fontsize=9)
        ax.grid(alpha=0.3)
        if ax.get_legend_handles_labels()[1]:
            ax.legend(fontsize=7, loc="best")
        fig.tight_layout()
        figures[metric] = fig

        if len(fields) == 2 and not extras:  # one cell per point: only rows of one setting
            figures[f"{metric}_heatmap"] = _heatmap(
                groups,
                xs_all,
                order[others[0]],
                x,
                others[0],
                label,
                counts,
                f"{title}\n{subtitle}",
            )
    return figures


def _key(value: Any) -> str:
    """A grid value as a dictionary key (1 and 1.0 and True kept apart)."""
    return f"{type(value).__name__}:{value!r}"


def _heatmap(
    groups: Mapping[tuple, Mapping[Any, list[float]]],
    xs: Sequence[Any],
    ys: Sequence[Any],
    x: str,
    y: str,
    label: str,
    counts: Sequence[int],
    title: str,
) -> Any:
    """The mean over seeds of each (x, y) point as a coloured grid with its value written in (a
    matplotlib ``Figure``)."""
    import matplotlib.pyplot as plt

    grid = np.full((len(ys), len(xs)), np.nan)
    for i, yv in enumerate(ys):
        g = groups.get((yv,), {})
        for j, xv in enumerate(xs):
            if xv in g:
                grid[i, j] = np.mean(g[xv])
    fig, ax = plt.subplots(figsize=(6.4, 4.4))
    im = ax.imshow(grid, origin="lower", aspect="auto", cmap="viridis")
    ax.set_xticks(range(len(xs)), [tick_text(x, v) for v in xs])
    ax.set_yticks(range(len(ys)), [tick_text(y, v) for v in ys])
    lo, hi = np.nanmin(grid), np.nanmax(grid)
    for i, j in itertools.product(range(len(ys)), range(len(xs))):
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
    ax.set_xlabel(f"{x} (time)" if is_time_axis(x, xs) else axis_label(x))
    ax.set_ylabel(f"{y} (time)" if is_time_axis(y, ys) else axis_label(y))
    what = "one seed per point" if max(counts) == 1 else f"mean over {seeds_text(counts)}"
    fig.colorbar(im, ax=ax, label=f"{label} ({what})")
    ax.set_title(title, fontsize=9)
    fig.tight_layout()
    return fig


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
    for fmt in formats:
        if fmt not in FORMATS:
            raise PlotError(f"format {fmt!r} is unknown; choose one of {list(FORMATS)}")
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
                    *(f"{f.split('.')[-1]}={tick_text(f, params.get(f))}" for f in fields),
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
    counts = [len(g) for g in groups.values()]
    what = "one seed per point" if max(counts) == 1 else f"mean over {seeds_text(counts)}"
    ax.set_ylabel(f"{METRICS[metric][0]} ({what})")
    ax.set_title(store.sweep.get("name") or stem, fontsize=9)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    fig.tight_layout()
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    written = [_save(fig, out_dir / f"{stem}_{metric}_vs_{cost}.{fmt}") for fmt in formats]
    plt.close(fig)
    return written


__all__ = [
    "COST_METRICS",
    "FORMATS",
    "METRICS",
    "SCALES",
    "TIME_UNITS",
    "UNITS",
    "PlotError",
    "axis_label",
    "axis_scale",
    "describe_rows",
    "format_duration",
    "format_markdown",
    "is_time_field",
    "pareto_front",
    "parse_reference",
    "plot_pareto",
    "plot_store",
    "seeds_text",
    "spread_text",
    "summary_caption",
    "summary_table",
    "sweep_figures",
    "time_unit",
]
