"""The layout of a sweep store, declared once, and the check that a file has it.

``meta(key TEXT PRIMARY KEY, value TEXT)``
    ``format`` (:data:`FORMAT`), ``version`` (:data:`VERSION`), ``created`` (UTC ISO time),
    ``sweep`` (the sweep definition as JSON) and ``identity`` (:mod:`nsmx.provenance`).
``runs``
    one row per (point, seed), the columns :data:`COLUMNS` (``id`` is assigned by SQLite):
    keys and seeds, the JSON of the varied values and the resolved configuration, the metrics
    :data:`STORED_METRICS`, package versions and extras (firing rates, ADC counters, cost).
    ``UNIQUE(point_hash, seed)`` makes a duplicate row impossible.

:data:`METRICS` is the metric columns of every table made from the rows (the CSV export, the
pandas frame of :mod:`nsmx.results`): the stored ones with ``error`` (1 − accuracy) after
``accuracy``.
"""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

from nsmx.store_sql import StoreError, store_error

#: ``meta.format`` of a sweep store.
FORMAT = "nsmx-sweep-store"
#: Current store format version (readers refuse newer versions).
VERSION = 1
#: File name of the store inside a run folder.
STORE_NAME = "sweep.sqlite"

# (column, SQLite type) of ``runs``, in order: the keys of a row, then its metrics, then extras.
_KEY_COLUMNS = (
    ("point_hash", "TEXT"),
    ("seed", "INTEGER"),
    ("point_index", "INTEGER"),
    ("params_json", "TEXT"),
    ("config_json", "TEXT"),
    ("program_seed", "INTEGER"),
    ("read_seed", "INTEGER"),
)
_METRIC_COLUMNS = (
    ("accuracy", "REAL"),
    ("nll", "REAL"),
    ("ece", "REAL"),
    ("n", "INTEGER"),
    ("samples", "INTEGER"),
    ("program_s", "REAL"),
    ("run_s", "REAL"),
    ("finished_at", "TEXT"),
)
_EXTRA_COLUMNS = (("versions_json", "TEXT"), ("extra_json", "TEXT"))
_TYPED_COLUMNS = (*_KEY_COLUMNS, *_METRIC_COLUMNS, *_EXTRA_COLUMNS)

#: Columns of ``runs`` written by :meth:`nsmx.store.SweepStore.insert`.
COLUMNS: tuple[str, ...] = tuple(name for name, _ in _TYPED_COLUMNS)
#: The metrics a row stores (accuracy, NLL, ECE, test examples, MC samples, timing).
STORED_METRICS: tuple[str, ...] = tuple(name for name, _ in _METRIC_COLUMNS)
#: The metric columns of tables made from the rows, in order (``error`` is 1 − accuracy).
METRICS: tuple[str, ...] = (STORED_METRICS[0], "error", *STORED_METRICS[1:])
#: JSON columns of ``runs``, decoded under their name without ``_json`` when rows are read.
JSON_COLUMNS: tuple[str, ...] = tuple(name for name in COLUMNS if name.endswith("_json"))

#: The statements that make an empty store.
SCHEMA: tuple[str, ...] = (
    "CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)",
    "CREATE TABLE runs (\n    id INTEGER PRIMARY KEY,\n"
    + "".join(f"    {name} {kind} NOT NULL,\n" for name, kind in _TYPED_COLUMNS)
    + "    UNIQUE (point_hash, seed)\n)",
)
_REQUIRED_TABLES = {"meta", "runs"}


def validate_store(conn: sqlite3.Connection, path: Path) -> None:
    """Refuse (:class:`~nsmx.store_sql.StoreError` naming ``path``) a database that is not a
    sweep store of a supported version or that is damaged (integrity check, columns, JSON)."""
    try:
        tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    except sqlite3.DatabaseError as exc:
        raise store_error(path, "read the store", exc) from None
    if not tables >= _REQUIRED_TABLES:
        raise StoreError(
            f"{path}: an SQLite database but not an nsmx sweep store (tables: "
            f"{sorted(tables) or 'none'}; expected {sorted(_REQUIRED_TABLES)})"
        )
    try:
        meta = dict(conn.execute("SELECT key, value FROM meta").fetchall())
        columns = {r[1] for r in conn.execute("PRAGMA table_info(runs)")}
        check = conn.execute("PRAGMA quick_check").fetchone()[0]
    except sqlite3.DatabaseError as exc:
        raise store_error(path, "read the store", exc) from None
    if meta.get("format") != FORMAT:
        raise StoreError(
            f"{path}: not an nsmx sweep store (meta format {meta.get('format')!r}, expected "
            f"{FORMAT!r})"
        )
    version = meta.get("version", "")
    if not version.isdigit() or int(version) > VERSION or int(version) < 1:
        raise StoreError(
            f"{path}: sweep store version {version!r} is not supported (this nsmx reads "
            f"versions 1..{VERSION})"
        )
    if check != "ok":
        raise StoreError(f"{path}: damaged sweep store (integrity check: {check})")
    if not set(COLUMNS) <= columns:
        lacking = sorted(set(COLUMNS) - columns)
        raise StoreError(f"{path}: damaged sweep store (runs lacks columns {lacking})")
    try:
        json.loads(meta.get("sweep", ""))
    except json.JSONDecodeError:
        raise StoreError(f"{path}: damaged sweep store (meta 'sweep' is not JSON)") from None


__all__ = [
    "COLUMNS",
    "FORMAT",
    "JSON_COLUMNS",
    "METRICS",
    "SCHEMA",
    "STORED_METRICS",
    "STORE_NAME",
    "VERSION",
    "validate_store",
]
