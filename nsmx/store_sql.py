"""SQLite connections of a sweep store and its failures told as :class:`StoreError`.

A writer's connection runs in WAL mode (a commit is durable against a killed process; readers
never see a half-written row); a reader's is read-only and, on a read-only file system (where
SQLite cannot make the WAL's shared-memory file), immutable. SQLite's operational failures
become one :class:`StoreError` naming the store and the problem: busy for more than
:data:`BUSY_TIMEOUT_S` seconds (:class:`StoreBusyError`), read-only (:class:`StoreReadOnlyError`),
a full disk, an I/O failure, and otherwise a damaged file.
"""

from __future__ import annotations

import contextlib
import errno
import os
import sqlite3
from collections.abc import Iterator
from pathlib import Path

#: Seconds a statement waits for another process's lock on the database before giving up.
BUSY_TIMEOUT_S = 30.0


class StoreError(ValueError):
    """A store file is foreign, damaged, of an unsupported version or of another sweep, or it
    cannot be used now (busy, read-only, disk full)."""


class StoreBusyError(StoreError):
    """Another process holds the store (its sweep lock, or a database lock for too long)."""


class StoreReadOnlyError(StoreError):
    """The store cannot be written (read-only file system or no permission)."""


def connect(path: Path) -> sqlite3.Connection:
    """A read-write connection to ``path`` in WAL mode (waits up to :data:`BUSY_TIMEOUT_S`)."""
    conn = sqlite3.connect(path, timeout=BUSY_TIMEOUT_S)
    try:
        # WAL: a commit is durable against a killed process, readers never see a half-written row.
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=NORMAL")  # WAL + NORMAL: durable against process crashes
    except BaseException:
        conn.close()
        raise
    return conn


def connect_readonly(path: Path) -> sqlite3.Connection:
    """A read-only connection; on a read-only file system (where SQLite cannot make the WAL's
    shared-memory file) the file is opened as immutable, which nothing can change there."""
    uri = path.absolute().as_uri()
    last: sqlite3.Error | None = None
    for query in ("?mode=ro", "?mode=ro&immutable=1"):
        if query.endswith("immutable=1") and not read_only_fs(path):
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
    raise store_error(path, "open the store", last)  # type: ignore[arg-type]


def read_only_fs(path: Path) -> bool:
    """Whether ``path``'s file system is mounted read-only."""
    try:
        return bool(os.statvfs(path).f_flag & os.ST_RDONLY)
    except OSError:
        return False


def read_only_message(path: Path, code: int | None = None) -> str:
    """The one-line refusal of a sweep on a store it cannot write (``code``: the errno seen)."""
    reason = (
        "read-only file system"
        if code == errno.EROFS or read_only_fs(path)
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
            raise StoreReadOnlyError(read_only_message(path))


#: Free bytes below which a failed write is put down to a full disk.
_LOW_SPACE = 1 << 20
#: Bytes under the file-size limit at which a failed write is put down to that limit (more
#: than the pages of one row's commit).
_NEAR_LIMIT = 1 << 16


#: What a sweep does when it writes rows (the ``doing`` of :func:`store_error`).
_WRITING = ("write a row", "update the store", "create the store")


def write_failure_cause(path: Path) -> tuple[str, str] | None:
    """(reason, remedy) of a failed write to the store at ``path``, as far as the system tells
    it (SQLite reports only "disk full" or "disk I/O error"): little space left on its file
    system, or one of its files (the database, its WAL) at the process's file-size limit
    (``ulimit -f``); None when neither."""
    try:
        stats = os.statvfs(path.parent)
        if stats.f_bavail * stats.f_frsize < _LOW_SPACE:
            return "no space left on the device", "free some space"
    except OSError:
        pass
    import resource

    limit = resource.getrlimit(resource.RLIMIT_FSIZE)[0]
    if limit == resource.RLIM_INFINITY:
        return None
    for name in (path, Path(f"{path}-wal"), Path(f"{path}-journal")):
        with contextlib.suppress(OSError):
            if name.stat().st_size + _NEAR_LIMIT >= limit:
                return (
                    f"file too large (the file-size limit, ulimit -f, {limit} bytes, was reached)",
                    "raise the limit",
                )
    return None


def store_error(path: Path, doing: str, exc: sqlite3.Error) -> StoreError:
    """The :class:`StoreError` for an SQLite failure while ``doing`` something with ``path``."""
    text = str(exc).lower()
    if "locked" in text or "busy" in text:
        return StoreBusyError(
            f"{path}: the store is locked by another process (waited {BUSY_TIMEOUT_S:g} s to "
            f"{doing}); wait until that process ends, or use another --out"
        )
    if "readonly" in text or "read-only" in text:
        return StoreReadOnlyError(read_only_message(path))
    if "full" in text or "disk i/o" in text:
        cause = write_failure_cause(path)
        if cause is None and "full" in text:
            cause = "the disk is full", "free some space"
        if cause is not None:
            reason, remedy = cause
            after = (  # a writer's rows are safe; a reader (plot, export) just reruns
                f"the rows committed so far are kept: {remedy} and rerun the same command to resume"
                if doing in _WRITING
                else f"{remedy} and rerun the command"
            )
            return StoreError(f"{path}: cannot {doing}: {reason} ({exc}); {after}")
    if "unable to open" in text or "disk i/o" in text:
        return StoreError(f"{path}: cannot {doing} ({exc})")
    return StoreError(f"{path}: damaged sweep store ({exc})")


@contextlib.contextmanager
def sql_errors(path: Path, doing: str) -> Iterator[None]:
    """SQLite's operational failures (locks, read-only, full disk, I/O) as a :class:`StoreError`
    naming the store; constraint violations pass through."""
    try:
        yield
    except sqlite3.IntegrityError:
        raise
    except sqlite3.DatabaseError as exc:
        raise store_error(path, doing, exc) from None


__all__ = [
    "BUSY_TIMEOUT_S",
    "StoreBusyError",
    "StoreError",
    "StoreReadOnlyError",
    "check_writable",
    "connect",
    "connect_readonly",
    "read_only_fs",
    "read_only_message",
    "sql_errors",
    "store_error",
    "write_failure_cause",
]
