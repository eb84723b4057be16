"""A sweep's results as data: one pandas DataFrame row per stored (point, seed).

:func:`load_results` flattens each store row (:mod:`nsmx.store`) into columns:

* identity: ``sweep`` (the sweep's name), ``point_index``, ``point_hash``, ``seed``,
  ``program_seed``, ``read_seed``;
* every setting, varied or fixed, by the dotted field name ``--vary``/``--set`` use: the chip
  (``devices.conductance.model``, ``periphery.adc_bits``, ``tile.rows``, ...), the run settings
  (``run.samples``, ``run.mode``, ``run.t_s``, ...), ``program`` and ``program_sha256``,
  ``dataset``, ``limit`` and, for the user's own data, ``data`` and ``data_sha256``; a varied
  ``run.program`` is the value as given;
* metrics: ``accuracy``, ``error``, ``nll``, ``ece``, ``n``, ``samples``, ``program_s``,
  ``run_s``, ``finished_at`` and the scalar cost metrics (``energy_per_classification_j``, ...)
  where the store holds them.

Two sweeps' frames concatenate into one table (``pandas.concat``): the settings that told them
apart are columns. :func:`varied_columns` names the columns whose value differs between rows.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

# The metric columns (``error`` is 1 − accuracy): the store's, one list.
from nsmx.store_schema import METRICS
from nsmx.store_table import row_metrics

#: The scalar cost metrics a row may hold (``extra.cost``, from
#: :meth:`mapping.cost.CostReport.metrics`; a test ties the names): columns beside METRICS.
COST_METRICS = (
    "energy_per_classification_j",
    "energy_per_sample_j",
    "latency_s",
    "area_m2",
    "throughput_per_s",
    "power_w",
    "classifications_per_j",
)


def _flatten(prefix: str, value: Any, out: dict[str, Any]) -> None:
    if isinstance(value, Mapping):
        for key, item in value.items():
            _flatten(f"{prefix}.{key}" if prefix else str(key), item, out)
    elif isinstance(value, list):  # a list setting stays one cell (a tuple: hashable)
        out[prefix] = tuple(value)
    else:
        out[prefix] = value


def row_columns(row: Mapping[str, Any], sweep: Mapping[str, Any]) -> dict[str, Any]:
    """One store row (:meth:`nsmx.store.SweepStore.rows`) as flat columns (module docstring)."""
    config = row["config"]
    out: dict[str, Any] = {
        "sweep": sweep.get("name", ""),
        "point_index": row["point_index"],
        "point_hash": row["point_hash"],
        "seed": row["seed"],
        "program_seed": row["program_seed"],
        "read_seed": row["read_seed"],
    }
    _flatten("", config.get("chip", {}), out)
    _flatten("run", config.get("run", {}), out)
    program = config.get("program", {})
    out["program"] = program.get("name")
    out["program_sha256"] = program.get("sha256")
    out["dataset"] = config.get("dataset")
    out["limit"] = config.get("limit")
    if "data" in config:
        out["data"] = config["data"].get("name")
        out["data_sha256"] = config["data"].get("sha256")
    for name, value in row["params"].items():  # the varied values as given (run.program)
        if name not in out or name == "run.program":
            out[name] = value
    out.update(row_metrics(row))
    cost = row.get("extra", {}).get("cost") or {}
    for name, value in cost.items():
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            out[name] = value
    return out


def load_results(out_dir: str | os.PathLike[str]) -> Any:
    """The sweep store of run folder ``out_dir`` (or a ``.sqlite`` path) as a pandas
    ``DataFrame``: one row per stored (point, seed), in the store's order (point, then seed),
    with every varied and fixed setting and the metrics as columns (module docstring)."""
    import pandas as pd

    from nsmx.store import open_store

    with open_store(out_dir) as store:
        sweep = store.sweep
        rows = [row_columns(row, sweep) for row in store.rows()]
    return pd.DataFrame(rows)


def varied_columns(frame: Any) -> list[str]:
    """The setting columns whose value is not the same in every row (what a sweep varied, or
    what tells concatenated sweeps apart), in column order; keys, seeds, :data:`METRICS` and
    :data:`COST_METRICS` are results, not settings."""
    skip = {"point_index", "point_hash", "seed", "program_seed", "read_seed", *METRICS}
    skip.update(COST_METRICS)
    out = []
    for name in frame.columns:
        if name in skip:
            continue
        if frame[name].astype(str).nunique(dropna=False) > 1:
            out.append(name)
    return out


__all__ = ["COST_METRICS", "METRICS", "load_results", "row_columns", "varied_columns"]
