"""Stored rows as tables: the settings that tell rows apart, the metrics and the CSV export.

Rows here are those of :meth:`nsmx.store.SweepStore.rows` (JSON columns decoded: ``params``,
``config``, ``versions``, ``extra``). :func:`settings_columns` names the configuration entries
(dotted) that differ between rows of the same varied values, which a plot or a table must keep
apart; :func:`row_metrics` is a row's :data:`~nsmx.store_schema.METRICS`; :func:`write_csv` the
flat table of a store.
"""

from __future__ import annotations

import csv
import json
import os
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from nsmx.store_schema import METRICS


def flatten(value: Any, prefix: str = "") -> dict[str, Any]:
    """Nested mappings as ``{"a.b.c": leaf}`` (lists and scalars are leaves)."""
    if isinstance(value, Mapping):
        out: dict[str, Any] = {}
        for key, item in value.items():
            out.update(flatten(item, f"{prefix}{key}."))
        return out if out or not prefix else {prefix[:-1]: {}}
    return {prefix[:-1]: value}


def canonical(value: Any) -> str:
    """``value`` as canonical JSON (sorted keys, no spaces): equal values, equal text."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"))


def settings_columns(rows: Sequence[Mapping[str, Any]]) -> list[str]:
    """The configuration entries (dotted, e.g. ``run.samples``, ``program.sha256``) that differ
    between rows with the same varied values: rows of different settings that a plot or table
    must keep apart. Empty for a store written by one sweep."""
    groups: dict[str, list[dict[str, Any]]] = {}
    for r in rows:
        groups.setdefault(canonical(r["params"]), []).append(flatten(r["config"]))
    columns: set[str] = set()
    for flats in groups.values():
        if len(flats) < 2:
            continue
        keys = set().union(*flats)
        for key in keys:
            if len({canonical(f.get(key, None)) for f in flats}) > 1:
                columns.add(key)
    return sorted(columns)


def settings_of(row: Mapping[str, Any], columns: Sequence[str]) -> tuple[Any, ...]:
    """The row's values of ``columns`` (:func:`settings_columns`; None where absent)."""
    flat = flatten(row["config"])
    return tuple(flat.get(c) for c in columns)


def row_metrics(row: Mapping[str, Any]) -> dict[str, Any]:
    """The row's :data:`~nsmx.store_schema.METRICS`, in order (``error`` = 1 − accuracy)."""
    return {name: 1.0 - row["accuracy"] if name == "error" else row[name] for name in METRICS}


def param_names(rows: Iterable[Mapping[str, Any]], sweep: Mapping[str, Any]) -> list[str]:
    """The varied fields: the sweep's grid in order, then any other a row holds."""
    names = [v[0] for v in sweep.get("vary", [])]
    for r in rows:
        for k in r["params"]:
            if k not in names:
                names.append(k)
    return names


def _csv_value(value: Any) -> Any:
    return json.dumps(value) if isinstance(value, (list, dict)) else value


def write_csv(
    rows: Sequence[Mapping[str, Any]], sweep: Mapping[str, Any], path: str | os.PathLike[str]
) -> int:
    """Write the flat table of ``rows`` (one per (point, seed): varied parameters as columns,
    the settings that tell rows of the same varied values apart (:func:`settings_columns`; none
    for a store of one sweep), then seeds and :data:`~nsmx.store_schema.METRICS`) to ``path``,
    atomically; returns the number of rows."""
    from nsmx.safe_io import atomic_write

    params = param_names(rows, sweep)
    settings = settings_columns(rows)
    keys = ["point_index", "point_hash", "seed"]
    seeds = ["program_seed", "read_seed"]
    with atomic_write(path, "w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow([*keys, *params, *settings, *seeds, *METRICS])
        for r in rows:
            writer.writerow(
                [
                    *(r[k] for k in keys),
                    *(_csv_value(r["params"].get(p)) for p in params),
                    *(_csv_value(v) for v in settings_of(r, settings)),
                    *(r[k] for k in seeds),
                    *row_metrics(r).values(),
                ]
            )
    return len(rows)


__all__ = [
    "canonical",
    "flatten",
    "param_names",
    "row_metrics",
    "settings_columns",
    "settings_of",
    "write_csv",
]
