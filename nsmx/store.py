"""The results store of a sweep: one SQLite database (standard library) per run folder.

Layout (format :data:`FORMAT`, version :data:`VERSION`):

``meta(key TEXT PRIMARY KEY, value TEXT)``
    ``format`` (:data:`FORMAT`), ``version``, ``created`` (UTC ISO time), ``sweep`` (the sweep
    definition as JSON: program(s), chip, overrides, varied fields, run settings, root seed).
``runs``
    one row per (point, seed): ``point_hash`` (SHA-256 of the point's canonical configuration),
    ``seed`` (the seed index 0..N-1), ``point_index``, ``params_json`` (the varied values),
    ``config_json`` (the fully resolved configuration: chip dict, run settings, program digest,
    dataset), the derived ``program_seed`` / ``read_seed``, metrics (``accuracy``, ``nll``,
    ``ece``), ``n``, ``samples``, timing (``program_s``, ``run_s``, ``finished_at``),
    ``versions_json`` (package versions) and ``extra_json`` (firing rates, ADC counters).
    ``UNIQUE(point_hash, seed)`` makes a duplicate row impossible.

Each finished (point, seed) is written by one ``INSERT`` in its own transaction, with the
database in WAL mode: a process killed at any moment (SIGINT, SIGKILL) leaves the store holding
exactly the rows committed before, never a half-written row. Files that are not SQLite
databases, SQLite databases of another application, stores of a newer format version and
damaged files are refused with :class:`StoreError` naming the file and the problem.
"""

from __future__ import annotations

import csv
import datetime as _dt
import json
import os
import sqlite3
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

#: ``meta.format`` of a sweep store.
FORMAT = "nsmx-sweep-store"
#: Current store format version (readers refuse newer versions).
VERSION = 1
#: File name of the store inside a run folder.
STORE_NAME = "sweep.sqlite"

_SCHEMA = """
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE runs (
    id INTEGER PRIMARY KEY,
    point_hash TEXT NOT NULL,
    seed INTEGER NOT NULL,
    point_index INTEGER NOT NULL,
    params_json TEXT NOT NULL,
    config_json TEXT NOT NULL,
    program_seed INTEGER NOT NULL,
    read_seed INTEGER NOT NULL,
    accuracy REAL NOT NULL,
    nll REAL NOT NULL,
    ece REAL NOT NULL,
    n INTEGER NOT NULL,
    samples INTEGER NOT NULL,
    program_s REAL NOT NULL,
    run_s REAL NOT NULL,
    finished_at TEXT NOT NULL,
    versions_json TEXT NOT NULL,
    extra_json TEXT NOT NULL,
    UNIQUE (point_hash, seed)
);
"""

#: Columns of ``runs`` written by :meth:`SweepStore.insert` (``id`` is assigned by SQLite).
COLUMNS = (
    "point_hash",
    "seed",
    "point_index",
    "params_json",
    "config_json",
    "program_seed",
    "read_seed",
    "accuracy",
    "nll",
    "ece",
    "n",
    "samples",
    "program_s",
    "run_s",
    "finished_at",
    "versions_json",
    "extra_json",
)
_REQUIRED_TABLES = {"meta", "runs"}


class StoreError(ValueError):
    """A store file is foreign, damaged, of an unsupported version or of another sweep."""


def utc_now() -> str:
    """Current UTC time, ISO 8601 with seconds."""
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")


def store_path(run_dir: str | os.PathLike[str]) -> Path:
    """``run_dir/sweep.sqlite`` (a path ending in ``.sqlite`` is taken as the store itself)."""
    path = Path(run_dir)
    return path if path.suffix == ".sqlite" else path / STORE_NAME


class SweepStore:
    """An open sweep store; create with :meth:`create` or :meth:`open` (or :func:`open_store`).

    Use as a context manager (closes the connection).
    """

    def __init__(self, conn: sqlite3.Connection, path: Path) -> None:
        self._conn = conn
        self.path = path

    # ---------------------------------------------------------------- opening

    @classmethod
    def create(cls, path: str | os.PathLike[str], sweep: Mapping[str, Any]) -> SweepStore:
        """A new, empty store at ``path`` (which must not exist) for the sweep definition
        ``sweep`` (a JSON-serialisable mapping)."""
        path = Path(path)
        if path.exists():
            raise StoreError(f"{path}: already exists; open it to resume")
        path.parent.mkdir(parents=True, exist_ok=True)
        conn = _connect(path)
        try:
            with conn:  # schema and meta in one transaction: a killed create leaves no store
                conn.execute("BEGIN")
                for statement in _SCHEMA.strip().split(";"):
                    if statement.strip():
                        conn.execute(statement)
                conn.executemany(
                    "INSERT INTO meta (key, value) VALUES (?, ?)",
                    [
                        ("format", FORMAT),
                        ("version", str(VERSION)),
                        ("created", utc_now()),
                        ("sweep", json.dumps(dict(sweep), sort_keys=True)),
                    ],
                )
        except BaseException:
            conn.close()
            raise
        return cls(conn, path)

    @classmethod
    def open(cls, path: str | os.PathLike[str]) -> SweepStore:
        """Open an existing store, refusing foreign, damaged or newer-version files."""
        path = Path(path)
        if not path.is_file():
            raise StoreError(f"{path}: store not found")
        with open(path, "rb") as fh:
            head = fh.read(16)
        if head != b"SQLite format 3\x00":
            raise StoreError(
                f"{path}: not an nsmx sweep store (not an SQLite database: the file starts "
                f"with {head[:16]!r}); move it away or choose another --out"
            )
        try:
            conn = _connect(path)
        except sqlite3.DatabaseError as exc:
            raise StoreError(f"{path}: damaged sweep store ({exc})") from None
        try:
            _validate(conn, path)
        except BaseException:
            conn.close()
            raise
        return cls(conn, path)

    def close(self) -> None:
        self._conn.close()

    def __enter__(self) -> SweepStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ---------------------------------------------------------------- meta

    def meta(self) -> dict[str, str]:
        return dict(self._conn.execute("SELECT key, value FROM meta").fetchall())

    @property
    def sweep(self) -> dict[str, Any]:
        """The sweep definition recorded in ``meta``."""
        return json.loads(self.meta()["sweep"])

    def set_sweep(self, sweep: Mapping[str, Any]) -> None:
        """Record ``sweep`` as the store's definition (a grid grown with new points)."""
        with self._conn:
            self._conn.execute(
                "UPDATE meta SET value = ? WHERE key = 'sweep'",
                (json.dumps(dict(sweep), sort_keys=True),),
            )

    # ---------------------------------------------------------------- rows

    def done(self) -> set[tuple[str, int]]:
        """The (point_hash, seed) pairs already stored."""
        return set(self._conn.execute("SELECT point_hash, seed FROM runs").fetchall())

    def insert(self, row: Mapping[str, Any]) -> bool:
        """Write one finished (point, seed) atomically. Returns False (and writes nothing) if
        that (point_hash, seed) is already stored."""
        missing = [c for c in COLUMNS if c not in row]
        if missing:
            raise ValueError(f"row is missing columns {missing}")
        values = [_column_value(c, row[c]) for c in COLUMNS]
        try:
            with self._conn:  # one transaction: the row is committed whole or not at all
                self._conn.execute(
                    f"INSERT INTO runs ({', '.join(COLUMNS)}) "
                    f"VALUES ({', '.join('?' for _ in COLUMNS)})",
                    values,
                )
        except sqlite3.IntegrityError:
            return False
        return True

    def rows(self) -> list[dict[str, Any]]:
        """Every stored row as a dict (JSON columns decoded), ordered by point then seed."""
        cur = self._conn.execute(
            f"SELECT id, {', '.join(COLUMNS)} FROM runs ORDER BY point_index, point_hash, seed"
        )
        names = [d[0] for d in cur.description]
        out = []
        for values in cur.fetchall():
            row = dict(zip(names, values, strict=True))
            for key in ("params_json", "config_json", "versions_json", "extra_json"):
                row[key.removesuffix("_json")] = json.loads(row.pop(key))
            out.append(row)
        return out

    def count(self) -> int:
        return int(self._conn.execute("SELECT COUNT(*) FROM runs").fetchone()[0])

    def export_csv(self, path: str | os.PathLike[str]) -> int:
        """Write the flat table (one row per (point, seed): varied parameters as columns, then
        seeds, metrics, timing) to ``path``; returns the number of rows."""
        rows = self.rows()
        params = _param_names(rows, self.sweep)
        header = [
            "point_index",
            "point_hash",
            "seed",
            *params,
            "program_seed",
            "read_seed",
            "accuracy",
            "error",
            "nll",
            "ece",
            "n",
            "samples",
            "program_s",
            "run_s",
            "finished_at",
        ]
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(path, "w", newline="", encoding="utf-8") as fh:
            writer = csv.writer(fh)
            writer.writerow(header)
            for r in rows:
                writer.writerow(
                    [
                        r["point_index"],
                        r["point_hash"],
                        r["seed"],
                        *[_csv_value(r["params"].get(p)) for p in params],
                        r["program_seed"],
                        r["read_seed"],
                        r["accuracy"],
                        1.0 - r["accuracy"],
                        r["nll"],
                        r["ece"],
                        r["n"],
                        r["samples"],
                        r["program_s"],
                        r["run_s"],
                        r["finished_at"],
                    ]
                )
        return len(rows)


def open_store(path: str | os.PathLike[str]) -> SweepStore:
    """:meth:`SweepStore.open` of ``run_dir/sweep.sqlite`` (or of a ``.sqlite`` path)."""
    return SweepStore.open(store_path(path))


# -------------------------------------------------------------------------------- helpers


def _connect(path: Path) -> sqlite3.Connection:
    conn = sqlite3.connect(path, timeout=30.0)
    # WAL: a commit is durable against a killed process, readers never see a half-written row.
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=NORMAL")  # WAL + NORMAL: durable against process crashes
    return conn


def _validate(conn: sqlite3.Connection, path: Path) -> None:
    try:
        tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    except sqlite3.DatabaseError as exc:
        raise StoreError(f"{path}: damaged sweep store ({exc})") from None
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
        raise StoreError(f"{path}: damaged sweep store ({exc})") from None
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


def _column_value(name: str, value: Any) -> Any:
    if name.endswith("_json"):
        return value if isinstance(value, str) else json.dumps(value, sort_keys=True)
    return value


def _csv_value(value: Any) -> Any:
    return json.dumps(value) if isinstance(value, (list, dict)) else value


def _param_names(rows: Iterable[Mapping[str, Any]], sweep: Mapping[str, Any]) -> list[str]:
    names = [v[0] for v in sweep.get("vary", [])]
    for r in rows:
        for k in r["params"]:
            if k not in names:
                names.append(k)
    return names


__all__ = [
    "COLUMNS",
    "FORMAT",
    "STORE_NAME",
    "VERSION",
    "StoreError",
    "SweepStore",
    "open_store",
    "store_path",
    "utc_now",
]
