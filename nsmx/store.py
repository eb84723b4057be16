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
import csv
import datetime as _dt
import errno
import json
import os
import sqlite3
import uuid
from collections.abc import Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

#: ``meta.format`` of a sweep store.
FORMAT = "nsmx-sweep-store"
#: Current store format version (readers refuse newer versions).
VERSION = 1
#: File name of the store inside a run folder.
STORE_NAME = "sweep.sqlite"
#: Seconds a statement waits for another process's lock on the database before giving up.
BUSY_TIMEOUT_S = 30.0

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
    """A store file is foreign, damaged, of an unsupported version or of another sweep, or it
    cannot be used now (busy, read-only, disk full)."""


class StoreBusyError(StoreError):
    """Another process holds the store (its sweep lock, or a database lock for too long)."""


class StoreReadOnlyError(StoreError):
    """The store cannot be written (read-only file system or no permission)."""


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
            with _sql(path, "create the store"):
                conn = _connect(tmp)
                try:
                    with conn:  # schema and meta in one transaction
                        conn.execute("BEGIN")
                        for statement in _SCHEMA.strip().split(";"):
                            if statement.strip():
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
        with _sql(path, "open the new store"):
            return cls(_connect(path), path)

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
        conn = _connect_readonly(path) if readonly else None
        try:
            if conn is None:
                with _sql(path, "open the store"):
                    conn = _connect(path)
            _validate(conn, path)
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
        with _sql(self.path, "read the store"):
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
        with _sql(self.path, "update the store"), self._conn:
            self._conn.executemany("INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)", values)

    # ---------------------------------------------------------------- rows

    def done(self) -> set[tuple[str, int]]:
        """The (point_hash, seed) pairs already stored."""
        with _sql(self.path, "read the store"):
            return set(self._conn.execute("SELECT point_hash, seed FROM runs").fetchall())

    def point_configs(self) -> dict[str, tuple[dict[str, Any], dict[str, Any]]]:
        """point_hash -> (varied values, resolved configuration) of every stored point."""
        with _sql(self.path, "read the store"):
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
            with _sql(self.path, "write a row"), self._conn:  # one transaction: whole or nothing
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
        with _sql(self.path, "read the store"):
            cur = self._conn.execute(
                f"SELECT id, {', '.join(COLUMNS)} FROM runs ORDER BY point_index, point_hash, seed"
            )
            names = [d[0] for d in cur.description]
            fetched = cur.fetchall()
        out = []
        for values in fetched:
            row = dict(zip(names, values, strict=True))
            for key in ("params_json", "config_json", "versions_json", "extra_json"):
                row[key.removesuffix("_json")] = json.loads(row.pop(key))
            out.append(row)
        return out

    def count(self) -> int:
        with _sql(self.path, "read the store"):
            return int(self._conn.execute("SELECT COUNT(*) FROM runs").fetchone()[0])

    def export_csv(self, path: str | os.PathLike[str]) -> int:
        """Write the flat table (one row per (point, seed): varied parameters as columns, the
        settings that tell rows of the same varied values apart (:func:`settings_columns`; none
        for a store of one sweep), then seeds, metrics, timing) to
        ``path``, atomically; returns the number of rows."""
        from nsmx.safe_io import atomic_write

        rows = self.rows()
        params = _param_names(rows, self.sweep)
        settings = settings_columns(rows)
        header = [
            "point_index",
            "point_hash",
            "seed",
            *params,
            *settings,
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
        with atomic_write(path, "w", newline="", encoding="utf-8") as fh:
            writer = csv.writer(fh)
            writer.writerow(header)
            for r in rows:
                writer.writerow(
                    [
                        r["point_index"],
                        r["point_hash"],
                        r["seed"],
                        *[_csv_value(r["params"].get(p)) for p in params],
                        *[_csv_value(v) for v in settings_of(r, settings)],
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


class StoreLock:
    """The writer's lock of a store: an exclusive ``flock`` on ``<store>.lock``, released by the
    system when the process ends however it ends (no stale lock after a kill)."""

    def __init__(self, store: str | os.PathLike[str]) -> None:
        self.store = Path(store)
        self.path = Path(f"{self.store}.lock")
        self._fd: int | None = None

    def acquire(self) -> StoreLock:
        import fcntl

        self.store.parent.mkdir(parents=True, exist_ok=True)
        try:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as exc:
            if exc.errno in (errno.EROFS, errno.EACCES, errno.EPERM):
                raise StoreReadOnlyError(_read_only_message(self.store, exc.errno)) from None
            raise
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 32, 0).decode(errors="replace").strip()
            os.close(fd)
            who = f" (pid {holder})" if holder.isdigit() else ""
            raise StoreBusyError(
                f"{self.store}: busy: another nsmx sweep{who} is writing this store; wait for it "
                "to finish (rerun the same command then to resume) or use another --out"
            ) from None
        except OSError as exc:  # a file system without flock: creation stays atomic
            if exc.errno not in (errno.ENOLCK, errno.EOPNOTSUPP, errno.ENOTSUP, errno.EINVAL):
                os.close(fd)
                raise
        with contextlib.suppress(OSError):
            os.ftruncate(fd, 0)
            os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        self._fd = fd
        return self

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)  # closing the descriptor releases the flock
            self._fd = None


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


# -------------------------------------------------------------------------------- helpers


def _connect(path: Path) -> sqlite3.Connection:
    conn = sqlite3.connect(path, timeout=BUSY_TIMEOUT_S)
    try:
        # WAL: a commit is durable against a killed process, readers never see a half-written row.
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=NORMAL")  # WAL + NORMAL: durable against process crashes
    except BaseException:
        conn.close()
        raise
    return conn


def _connect_readonly(path: Path) -> sqlite3.Connection:
    """A read-only connection; on a read-only file system (where SQLite cannot make the WAL's
    shared-memory file) the file is opened as immutable, which nothing can change there."""
    uri = path.absolute().as_uri()
    last: sqlite3.Error | None = None
    for query in ("?mode=ro", "?mode=ro&immutable=1"):
        if query.endswith("immutable=1") and not _read_only(path):
            break
        try:
            conn = sqlite3.connect(uri + query, uri=True, timeout=BUSY_TIMEOUT_S)
        except sqlite3.Error as exc:
            last = exc
            continue
        try:
            conn.execute("SELECT COUNT(*) FROM sqlite_master").fetchone()
        except sqlite3.OperationalError as exc:
            conn.close()
            last = exc
            continue
        except sqlite3.DatabaseError as exc:
            conn.close()
            raise StoreError(f"{path}: damaged sweep store ({exc})") from None
        return conn
    raise _store_error(path, "open the store", last)  # type: ignore[arg-type]


def _read_only(path: Path) -> bool:
    """Whether ``path``'s file system is mounted read-only."""
    try:
        return bool(os.statvfs(path).f_flag & os.ST_RDONLY)
    except OSError:
        return False


def _read_only_message(path: Path, code: int | None = None) -> str:
    reason = (
        "read-only file system"
        if code == errno.EROFS or _read_only(path)
        else "no write permission"
    )
    return (
        f"{path}: the store is read-only ({reason}): a sweep cannot add rows to it; copy the "
        "run folder to a writable place to resume it, or use another --out (plot and export "
        "read it as it is)"
    )


def check_writable(path: Path) -> None:
    """Refuse (:class:`StoreReadOnlyError`) a store a sweep could not write: the file or its
    folder (SQLite's WAL files live next to it) not writable."""
    for target in (path, path.parent):
        if target.exists() and not os.access(target, os.W_OK):
            raise StoreReadOnlyError(_read_only_message(path))


def _store_error(path: Path, doing: str, exc: sqlite3.Error) -> StoreError:
    """The :class:`StoreError` for an SQLite failure while ``doing`` something with ``path``."""
    text = str(exc).lower()
    if "locked" in text or "busy" in text:
        return StoreBusyError(
            f"{path}: the store is locked by another process (waited {BUSY_TIMEOUT_S:g} s to "
            f"{doing}); wait until that process ends, or use another --out"
        )
    if "readonly" in text or "read-only" in text:
        return StoreReadOnlyError(_read_only_message(path))
    if "full" in text:
        return StoreError(
            f"{path}: cannot {doing}: the disk is full ({exc}); the rows committed so far are "
            "kept: free some space and rerun the same command to resume"
        )
    if "unable to open" in text or "disk i/o" in text:
        return StoreError(f"{path}: cannot {doing} ({exc})")
    return StoreError(f"{path}: damaged sweep store ({exc})")


@contextlib.contextmanager
def _sql(path: Path, doing: str) -> Iterator[None]:
    """SQLite's operational failures (locks, read-only, full disk, I/O) as a :class:`StoreError`
    naming the store; constraint violations pass through."""
    try:
        yield
    except sqlite3.IntegrityError:
        raise
    except sqlite3.DatabaseError as exc:
        raise _store_error(path, doing, exc) from None


def _validate(conn: sqlite3.Connection, path: Path) -> None:
    try:
        tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    except sqlite3.DatabaseError as exc:
        raise _store_error(path, "read the store", exc) from None
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
        raise _store_error(path, "read the store", exc) from None
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


def flatten(value: Any, prefix: str = "") -> dict[str, Any]:
    """Nested mappings as ``{"a.b.c": leaf}`` (lists and scalars are leaves)."""
    if isinstance(value, Mapping):
        out: dict[str, Any] = {}
        for key, item in value.items():
            out.update(flatten(item, f"{prefix}{key}."))
        return out if out or not prefix else {prefix[:-1]: {}}
    return {prefix[:-1]: value}


def _canonical(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"))


def _params_key(row: Mapping[str, Any]) -> str:
    return _canonical(row["params"])


def settings_columns(rows: Sequence[Mapping[str, Any]]) -> list[str]:
    """The configuration entries (dotted, e.g. ``run.samples``, ``program.sha256``) that differ
    between rows with the same varied values: rows of different settings that a plot or table
    must keep apart. Empty for a store written by one sweep."""
    groups: dict[str, list[dict[str, Any]]] = {}
    for r in rows:
        groups.setdefault(_params_key(r), []).append(flatten(r["config"]))
    columns: set[str] = set()
    for flats in groups.values():
        if len(flats) < 2:
            continue
        keys = set().union(*flats)
        for key in keys:
            if len({_canonical(f.get(key, None)) for f in flats}) > 1:
                columns.add(key)
    return sorted(columns)


def settings_of(row: Mapping[str, Any], columns: Sequence[str]) -> tuple[Any, ...]:
    """The row's values of ``columns`` (:func:`settings_columns`; None where absent)."""
    flat = flatten(row["config"])
    return tuple(flat.get(c) for c in columns)


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
    "BUSY_TIMEOUT_S",
    "COLUMNS",
    "FORMAT",
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
