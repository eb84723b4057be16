"""Files written whole or not at all (standard library only: ``nsm`` stays torch-only, and
``nsmx`` and ``mapping`` write their files through it without loading torch).

:func:`atomic_path` gives a temporary path in the target's folder; when the block ends normally
the file there is flushed to disk and renamed over the target (``os.replace``: atomic within a
file system), otherwise it is removed. A reader therefore sees the old file or the new one,
never half of one, and a failed write (a full disk, a file-size limit, Ctrl-C) leaves no
temporary file. An :class:`OSError` of the write or of the rename is raised naming the target,
so that one line ``PATH: reason`` tells the user what could not be written.
"""

from __future__ import annotations

import contextlib
import os
import uuid
from collections.abc import Iterator
from pathlib import Path


def _target(path: str | os.PathLike[str]) -> Path:
    """The file a write replaces: a symbolic link's target (the link stays a link)."""
    path = Path(path)
    return Path(os.path.realpath(path)) if path.is_symlink() else path


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike[str]) -> Iterator[Path]:
    """A temporary path next to ``path`` (``.NAME.<random>.tmp`` + the same suffix, so that
    writers that read the format from the name, like matplotlib, keep working) to write;
    renamed over ``path`` (over a symbolic link's target) when the block ends normally,
    removed otherwise (module docstring)."""
    path = _target(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex[:12]}.tmp{path.suffix}")
    try:
        yield tmp
        os.replace(tmp, path)
    except BaseException as exc:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        if isinstance(exc, OSError) and exc.filename in (None, str(tmp), tmp):
            raise OSError(exc.errno, exc.strerror, str(path)) from exc
        raise


def write_bytes(path: str | os.PathLike[str], data: bytes | bytearray | memoryview) -> None:
    """Write ``data`` to ``path`` atomically (flushed and synced before the rename)."""
    with atomic_path(path) as tmp, open(tmp, "xb") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())


def write_text(path: str | os.PathLike[str], text: str, *, newline: str | None = None) -> None:
    """Write ``text`` (UTF-8; ``newline`` as :func:`open` takes it) to ``path`` atomically."""
    with atomic_path(path) as tmp, open(tmp, "x", encoding="utf-8", newline=newline) as fh:
        fh.write(text)
        fh.flush()
        os.fsync(fh.fileno())


__all__ = ["atomic_path", "write_bytes", "write_text"]
