"""The results store of a sweep: one SQLite database (standard library) per run folder.

The store's layout is :mod:`nsmx.store_schema` (``meta``: format, version, the sweep definition
and identity; ``runs``: one row per (point, seed), ``UNIQUE(point_hash, seed)``). This module
opens, creates and writes it (:class:`SweepStore`); its connections and the failures they tell
are :mod:`nsmx.store_sql`, the writer's lock :mod:`nsmx.store_lock`, tables made from its rows
(settings that tell rows apart, CSV) :mod:`nsmx.store_table`. Their public names are importable
from here too.

``meta.identity`` (written since sweep identities exist; :mod:`nsmx.provenance`) is the sweep's
identity: program hashes, chip and its resolved content, data, run settings, grid. A store
without it (written before) gets it on its first resume, after its definition and rows are
checked.

Each finished (point, seed) is written by one ``INSERT`` in its own transaction, with the
database in WAL mode: a process killed at any moment (SIGINT, SIGKILL) leaves the store holding
exactly the rows committed before, never a half-written row. A new store appears whole: it is
built under a temporary name and linked into place (two processes creating one store at once get
one store). A sweep writes a store only while it holds the store's lock (``sweep.sqlite.lock``
next to it, an ``flock`` the system releases when the process ends, however it ends): a second
sweep on the same store is told plainly that the store is busy. Files that are not SQLite
databases, SQLite databases of another application, stores of a newer format version and
damaged files are refused with :class:`StoreError` naming the file and the problem; a store on a
read-only file system is read (``plot``, ``export``) and reported as read-only to a sweep; a store
locked by another process for more than :data:`BUSY_TIMEOUT_S` seconds, and a full disk, are told
as such.
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import errno
import json
import os
import sqlite3
import uuid
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from nsmx.store_lock import StoreLock
from nsmx.store_schema import (
    COLUMNS,
    FORMAT,
    JSON_COLUMNS,
    METRICS,
    SCHEMA,
    STORE_NAME,
    VERSION,
    validate_store,
)
from nsmx.store_sql import (
    BUSY_TIMEOUT_S,
    StoreBusyError,
    StoreError,
    StoreReadOnlyError,
    check_writable,
    connect,
    connect_readonly,
    sql_errors,
)
from nsmx.store_table import flatten, settings_columns, settings_of, write_csv


def utc_now() -> str:
    """Current UTC time, ISO 8601 with seconds."""
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")


def store_path(run_dir: str | os.PathLike[str]) -> Path:
    """``run_dir/sweep.sqlite`` (a path ending in ``.sqlite`` is taken as the store itself)."""
    path = Path(run_dir)
    return path if path.suffix == ".sqlite" else path / STORE_NAME


class SweepStore:
    """An open sweep store; create with :meth:`create` or :meth:`open` (or :func:`open_store`,
    :func:`open_for_writing`).

    Use as a context manager (closes the connection and releases the lock, if held).
    """

    def __init__(self, conn: sqlite3.Connection, path: Path, lock: StoreLock | None = None) -> None:
        self._conn = conn
        self.path = path
        self._lock = lock

    # ---------------------------------------------------------------- opening

    @classmethod
    def create(
        cls,
        path: str | os.PathLike[str],
        sweep: Mapping[str, Any],
        identity: Mapping[str, Any] | None = None,
    ) -> SweepStore:
        """A new, empty store at ``path`` (which must not exist) for the sweep definition
        ``sweep`` (a JSON-serialisable mapping) and its ``identity``.

        The store is built under a temporary name in the same folder and hard-linked into
        place, so no process ever sees a half-made store and of two processes creating the
        same store one gets it and the other a :class:`StoreError` (it may then open it)."""
        path = Path(path)
        if path.exists():
            raise StoreError(f"{path}: already exists; open it to resume")
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex[:12]}.tmp")
        meta = [
            ("format", FORMAT),
            ("version", str(VERSION)),
            ("created", utc_now()),
            ("sweep", json.dumps(dict(sweep), sort_keys=True)),
        ]
        if identity is not None:
            meta.append(("identity", json.dumps(dict(identity), sort_keys=True)))
        try:
            with sql_errors(path, "create the store"):
                conn = connect(tmp)
                try:
                    with conn:  # schema and meta in one transaction
                        conn.execute("BEGIN")
                        for statement in SCHEMA:
                            conn.execute(statement)
                        conn.executemany("INSERT INTO meta (key, value) VALUES (?, ?)", meta)
                finally:
                    conn.close()  # the last connection: the WAL is folded into the file
            try:
                os.link(tmp, path)
            except FileExistsError:
                raise StoreError(f"{path}: already exists; open it to resume") from None
            except OSError as exc:  # a file system without hard links: rename (not exclusive)
                if exc.errno not in (errno.EPERM, errno.EOPNOTSUPP, errno.ENOTSUP, errno.EXDEV):
                    raise
                if path.exists():
                    raise StoreError(f"{path}: already exists; open it to resume") from None
                os.rename(tmp, path)
        finally:
            for name in (tmp, Path(f"{tmp}-wal"), Path(f"{tmp}-shm")):
                with contextlib.suppress(OSError):
                    os.unlink(name)
        with sql_errors(path, "open the new store"):
            return cls(connect(path), path)

    @classmethod
    def open(cls, path: str | os.PathLike[str], *, readonly: bool = False) -> SweepStore:
        """Open an existing store, refusing foreign, damaged or newer-version files.

        ``readonly``: open for reading only (``plot``, ``export``); works on a read-only file
        system. Otherwise a store that cannot be written is a :class:`StoreReadOnlyError`."""
        path = Path(path)
        if not path.is_file():
            raise StoreError(f"{path}: store not found")
        try:
            with open(path, "rb") as fh:
                head = fh.read(16)
        except OSError as exc:
            raise StoreError(f"{path}: cannot read the store ({exc.strerror})") from None
        if head != b"SQLite format 3\x00":
            if head == b"" and path.stat().st_size == 0:
                raise StoreError(
                    f"{path}: an empty file, not a sweep store (a store is created whole, so "
                    "this file was made by something else); move it away or choose another --out"
                )
            raise StoreError(
                f"{path}: not an nsmx sweep store (not an SQLite database: the file starts "
                f"with {head[:16]!r}); move it away or choose another --out"
            )
        if not readonly:
            check_writable(path)
        conn = connect_readonly(path) if readonly else None
        try:
            if conn is None:
                with sql_errors(path, "open the store"):
                    conn = connect(path)
            validate_store(conn, path)
        except BaseException:
            if conn is not None:
                conn.close()
            raise
        return cls(conn, path)

    def close(self) -> None:
        self._conn.close()
        if self._lock is not None:
            self._lock.release()
            self._lock = None

    def __enter__(self) -> SweepStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ---------------------------------------------------------------- meta

    def meta(self) -> dict[str, str]:
        with sql_errors(self.path, "read the store"):
            return dict(self._conn.execute("SELECT key, value FROM meta").fetchall())

    @property
    def sweep(self) -> dict[str, Any]:
        """The sweep definition recorded in ``meta``."""
        return json.loads(self.meta()["sweep"])

    @property
    def identity(self) -> dict[str, Any] | None:
        """The sweep identity recorded in ``meta`` (None: a store written before identities)."""
        text = self.meta().get("identity")
        return None if text is None else json.loads(text)

    def set_sweep(
        self, sweep: Mapping[str, Any], identity: Mapping[str, Any] | None = None
    ) -> None:
        """Record ``sweep`` as the store's definition (a grid grown with new points) and, if
        given, ``identity`` (in one transaction)."""
        values = [("sweep", json.dumps(dict(sweep), sort_keys=True))]
        if identity is not None:
            values.append(("identity", json.dumps(dict(identity), sort_keys=True)))
        with sql_errors(self.path, "update the store"), self._conn:
            self._conn.executemany("INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)", values)

    # ---------------------------------------------------------------- rows

    def done(self) -> set[tuple[str, int]]:
        """The (point_hash, seed) pairs already stored."""
        with sql_errors(self.path, "read the store"):
            return set(self._conn.execute("SELECT point_hash, seed FROM runs").fetchall())

    def point_configs(self) -> dict[str, tuple[dict[str, Any], dict[str, Any]]]:
        """point_hash -> (varied values, resolved configuration) of every stored point."""
        with sql_errors(self.path, "read the store"):
            cur = self._conn.execute(
                "SELECT point_hash, params_json, config_json FROM runs GROUP BY point_hash"
            )
            return {h: (json.loads(p), json.loads(c)) for h, p, c in cur.fetchall()}

    def insert(self, row: Mapping[str, Any]) -> bool:
        """Write one finished (point, seed) atomically. Returns False (and writes nothing) if
        that (point_hash, seed) is already stored."""
        missing = [c for c in COLUMNS if c not in row]
        if missing:
            raise ValueError(f"row is missing columns {missing}")
        values = [_column_value(c, row[c]) for c in COLUMNS]
        try:
            with (
                sql_errors(self.path, "write a row"),
                self._conn,
            ):  # one transaction: whole or nothing
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
        with sql_errors(self.path, "read the store"):
            cur = self._conn.execute(
                f"SELECT id, {', '.join(COLUMNS)} FROM runs ORDER BY point_index, point_hash, seed"
            )
            names = [d[0] for d in cur.description]
            fetched = cur.fetchall()
        out = []
        for values in fetched:
            row = dict(zip(names, values, strict=True))
            for key in JSON_COLUMNS:
                row[key.removesuffix("_json")] = json.loads(row.pop(key))
            out.append(row)
        return out

    def count(self) -> int:
        with sql_errors(self.path, "read the store"):
            return int(self._conn.execute("SELECT COUNT(*) FROM runs").fetchone()[0])

    def export_csv(self, path: str | os.PathLike[str]) -> int:
        """Write the store's flat table to ``path`` atomically
        (:func:`~nsmx.store_table.write_csv`: varied parameters, the settings that tell rows
        apart, seeds, metrics); returns the number of rows."""
        return write_csv(self.rows(), self.sweep, path)


def open_for_writing(
    path: str | os.PathLike[str],
    sweep: Mapping[str, Any],
    identity: Mapping[str, Any] | None = None,
) -> tuple[SweepStore, bool]:
    """The store at ``path`` for a sweep: its lock taken (:class:`StoreLock`; a busy store is a
    :class:`StoreBusyError`), then opened, or created for ``sweep`` / ``identity`` when it does
    not exist. Returns ``(store, created)``; closing the store releases the lock."""
    path = Path(path)
    lock = StoreLock(path).acquire()
    try:
        if path.exists():
            store, created = SweepStore.open(path), False
        else:
            store, created = SweepStore.create(path, sweep, identity), True
    except BaseException:
        lock.release()
        raise
    store._lock = lock
    return store, created


def open_store(path: str | os.PathLike[str], *, readonly: bool = True) -> SweepStore:
    """:meth:`SweepStore.open` of ``run_dir/sweep.sqlite`` (or of a ``.sqlite`` path), for
    reading unless ``readonly=False``."""
    return SweepStore.open(store_path(path), readonly=readonly)


def _column_value(name: str, value: Any) -> Any:
    if name.endswith("_json"):
        return value if isinstance(value, str) else json.dumps(value, sort_keys=True)
    return value


__all__ = [
    "BUSY_TIMEOUT_S",
    "COLUMNS",
    "FORMAT",
    "METRICS",
    "STORE_NAME",
    "VERSION",
    "StoreBusyError",
    "StoreError",
    "StoreLock",
    "StoreReadOnlyError",
    "SweepStore",
    "check_writable",
    "flatten",
    "open_for_writing",
    "open_store",
    "settings_columns",
    "settings_of",
    "store_path",
    "utc_now",
]
