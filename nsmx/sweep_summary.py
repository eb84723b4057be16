"""A finished sweep's summary table: one line per grid point, mean ± standard deviation over its
seeds, or the value alone for a point of one seed (a spread of one value is unknown, not zero).
``nsmx sweep`` prints it when the sweep ends, ``nsmx plot`` with the figures."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from nsmx.provenance import settings_columns, settings_of
from nsmx.store import SweepStore
from nsmx.sweep_axes import format_duration, format_value, is_numeric, is_time_field


def summary_table(store: SweepStore) -> list[dict[str, Any]]:
    """One row per grid point, in grid order: the varied values, ``seeds``, and the mean and
    standard deviation (over seeds, ddof 1) of accuracy, NLL and ECE (``accuracy`` and
    ``accuracy_std``, ...; the std is None for a point of one seed: its spread is unknown)."""
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
            entry[f"{metric}_std"] = float(values.std(ddof=1)) if len(values) > 1 else None
        out.append(entry)
    return out


def summary_caption(table: Sequence[dict[str, Any]]) -> str:
    """What the cells of :func:`format_markdown` are: ``"one seed per point"`` or ``"mean ±
    standard deviation over 3 seeds per point"`` (``1–3 seeds``: a point of one seed shows its
    value alone)."""
    counts = [e["seeds"] for e in table] or [0]
    lo, hi = min(counts), max(counts)
    if hi <= 1:
        return "one seed per point: no spread"
    text = f"mean ± standard deviation over {hi if lo == hi else f'{lo}–{hi}'} seeds per point"
    return text + ("; a point of one seed: its value alone" if lo == 1 else "")


def _cell(field: str, value: Any) -> str:
    """A table cell of a varied value; a time in seconds also in human units (``86400 (1 day)``)."""
    if is_time_field(field) and is_numeric([value]) and value != 0:
        return f"{format_value(value)} ({format_duration(value)})"
    return format_value(value)


def format_markdown(table: Sequence[dict[str, Any]]) -> list[str]:
    """:func:`summary_table` as Markdown lines (accuracy and ECE in %): ``mean ± std`` for a
    point of several seeds, the value alone for one seed (:func:`summary_caption`)."""
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

    def value(e: dict[str, Any], metric: str, factor: float, digits: int) -> str:
        std = e.get(f"{metric}_std")
        text = f"{factor * e[metric]:.{digits}f}"
        return text if std is None or e["seeds"] < 2 else f"{text} ± {factor * std:.{digits}f}"

    for e in table:
        cells = [_cell(f, e[f]) for f in fields]
        cells += [
            str(e["seeds"]),
            value(e, "accuracy", 100.0, 2),
            value(e, "nll", 1.0, 3),
            value(e, "ece", 100.0, 2),
        ]
        lines.append("| " + " | ".join(cells) + " |")
    return lines


__all__ = ["format_markdown", "summary_caption", "summary_table"]
