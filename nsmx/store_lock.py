"""The writer's lock of a sweep store: one sweep writes a store at a time.

The lock is an exclusive ``flock`` on ``<store>.lock`` (next to the store, holding the holder's
process id), which the system releases when the process ends however it ends: no stale lock
after a kill. A second sweep on a locked store gets a :class:`~nsmx.store_sql.StoreBusyError`
naming the holder; a folder it cannot write, a :class:`~nsmx.store_sql.StoreReadOnlyError`.
"""

from __future__ import annotations

import contextlib
import errno
import os
from pathlib import Path

from nsmx.store_sql import StoreBusyError, StoreReadOnlyError, read_only_message


class StoreLock:
    """The writer's lock of the store at ``store`` (module docstring); :meth:`acquire` takes it
    without waiting, :meth:`release` (or the end of the process) gives it back."""

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
                raise StoreReadOnlyError(read_only_message(self.store, exc.errno)) from None
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


__all__ = ["StoreLock"]
