"""Output files written whole or not at all, output targets checked before any work, and
operating-system errors told in one line naming the path.

Every ``nsmx`` writer (``train --out``, ``learn --out``, ``sweep --out``, ``plot -o``,
``export -o``, ``compile -o``) checks its target with :func:`check_output_file` or
:func:`check_output_dir` before it starts: a target that is a FIFO, a device, a socket or a folder
where a file is expected (or a file where a folder is expected) is refused, and so is a folder the
process cannot write (a read-only file system, no permission). Files are then written through
:func:`atomic_path` (:func:`nsm.atomic_io.atomic_path`, one implementation for the project) /
:func:`atomic_write`: into a temporary file next to the target, renamed over
it when complete (``os.replace``, atomic within a file system), the temporary file removed when
anything fails (a full disk, a file-size limit, Ctrl-C). :func:`os_error_message` is the one-line
text ``nsmx`` prints for an :class:`OSError`; :func:`json_text` is the strict JSON (no ``NaN``) of
every ``--json``.
"""

from __future__ import annotations

import contextlib
import errno
import json
import math
import os
import stat
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

from nsm.atomic_io import atomic_path
from nsmx.args import UserError

#: errno -> the reason printed (the rest use the system's text).
_REASONS = {
    errno.ENOSPC: "no space left on the device",
    errno.EDQUOT: "disk quota exceeded",
    errno.EFBIG: "file too large (the file-size limit, ulimit -f, was reached)",
    errno.EROFS: "read-only file system",
    errno.EACCES: "permission denied",
    errno.EPERM: "operation not permitted",
    errno.EPIPE: "broken pipe (the reading end was closed)",
    errno.EBADF: "closed file descriptor",
    errno.ENOTDIR: "a part of the path is not a folder",
    errno.EISDIR: "is a folder",
    errno.EIO: "input/output error",
}


def os_error_message(exc: OSError, path: str | os.PathLike[str] | None = None) -> str:
    """``"PATH: reason"`` for an :class:`OSError` (``path`` when the error names none)."""
    reason = _REASONS.get(exc.errno, exc.strerror or str(exc)) if exc.errno else str(exc)
    name = exc.filename if exc.filename is not None else path
    if name is None:
        return reason
    if exc.filename2 is not None:
        return f"{name} -> {exc.filename2}: {reason}"
    return f"{name}: {reason}"


def _kind(mode: int) -> str:
    for test, name in (
        (stat.S_ISFIFO, "a FIFO (named pipe)"),
        (stat.S_ISCHR, "a character device"),
        (stat.S_ISBLK, "a block device"),
        (stat.S_ISSOCK, "a socket"),
        (stat.S_ISDIR, "a folder"),
        (stat.S_ISREG, "a file"),
    ):
        if test(mode):
            return name
    return "not a regular file"


def _writable_ancestor(path: Path, what: str) -> None:
    """The nearest existing ancestor of ``path`` must be a folder this process can write."""
    parent = path.parent if str(path.parent) else Path(".")
    while not parent.exists():
        if parent == parent.parent:
            break
        parent = parent.parent
    if not parent.is_dir():
        raise UserError(f"{path}: {parent} is not a folder; {what} needs a folder there")
    if not os.access(parent, os.W_OK | os.X_OK):
        reason = "read-only file system" if _read_only(parent) else "permission denied"
        raise UserError(f"{path}: cannot write in {parent} ({reason}); choose another {what}")


def _read_only(path: Path) -> bool:
    try:
        return bool(os.statvfs(path).f_flag & os.ST_RDONLY)
    except OSError:
        return False


def check_output_file(path: str | os.PathLike[str], what: str = "output file") -> Path:
    """Refuse (:class:`~nsmx.args.UserError`) an output file path that exists and is not a
    regular file (a FIFO, a device, a socket, a folder), or whose folder cannot be written."""
    path = Path(path)
    if path.exists():
        mode = os.stat(path).st_mode
        if not stat.S_ISREG(mode):
            raise UserError(
                f"{path} is {_kind(mode)}, not a regular file; {what} must be a file path "
                "(nsmx never replaces special files or folders)"
            )
    _writable_ancestor(path, what)
    return path


def check_output_dir(path: str | os.PathLike[str], what: str = "output folder") -> Path:
    """Refuse an output folder path that exists and is not a folder, or that cannot be written
    (itself when it exists, else its nearest existing ancestor)."""
    path = Path(path)
    if path.exists():
        mode = os.stat(path).st_mode
        if not stat.S_ISDIR(mode):
            raise UserError(f"{path} is {_kind(mode)}, not a folder; {what} must be a folder")
        if not os.access(path, os.W_OK | os.X_OK):
            reason = "read-only file system" if _read_only(path) else "permission denied"
            raise UserError(f"{path}: cannot write in it ({reason}); choose another {what}")
        return path
    _writable_ancestor(path, what)
    return path


@contextlib.contextmanager
def atomic_write(
    path: str | os.PathLike[str], mode: str = "w", **open_kwargs: Any
) -> Iterator[IO[Any]]:
    """Open a temporary file next to ``path`` for writing (``open``'s ``mode`` and keywords);
    flushed, synced and renamed over ``path`` when the block ends normally, removed otherwise
    (see :func:`atomic_path`)."""
    if "w" not in mode and "x" not in mode:
        raise ValueError(f"atomic_write mode {mode!r} must write ('w')")
    with atomic_path(path) as tmp, open(tmp, mode.replace("w", "x"), **open_kwargs) as fh:
        yield fh
        fh.flush()
        os.fsync(fh.fileno())


def strict_json(value: Any) -> Any:
    """``value`` with every non-finite float (NaN, ±inf) replaced by None, recursively through
    dicts, lists and tuples: what JSON can say (``null``) instead of the non-JSON ``NaN``."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: strict_json(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [strict_json(v) for v in value]
    return value


def json_text(value: Any, **kwargs: Any) -> str:
    """Strict JSON text of ``value`` (:func:`strict_json`, then ``allow_nan=False``): what every
    ``--json`` prints and every JSON file ``nsmx`` writes holds."""
    kwargs.pop("allow_nan", None)  # always strict
    return json.dumps(strict_json(value), allow_nan=False, **kwargs)


__all__ = [
    "atomic_path",
    "atomic_write",
    "check_output_dir",
    "check_output_file",
    "json_text",
    "os_error_message",
    "strict_json",
]
