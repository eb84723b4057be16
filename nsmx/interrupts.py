"""How an ``nsmx`` command ends when something stops it: one line on stderr, no traceback.

:func:`run_guarded` (the CLI's one handler, around every subcommand):

* a :class:`~nsmx.args.UserError` (bad input, refused output target, ...): ``error: ...``,
  exit status 2;
* an :class:`OSError` (a full disk, a file-size limit, a read-only file system, a closed
  stdout or pipe): ``error: PATH: reason``, exit status 1;
* Ctrl-C and SIGTERM: ``interrupted``, exit status 130 / 143.

``nsmx`` installs :func:`terminate_on_sigterm` around every command: SIGTERM raises
:class:`Terminated` (a :class:`BaseException`, like :class:`KeyboardInterrupt`) in the main
thread, so ``finally`` blocks and context managers run for SIGTERM exactly as for Ctrl-C: worker
pools are terminated, temporary files removed, sweep rows already committed kept.

A signal that arrives while a numba kernel (or another C extension) runs is delivered when the
kernel returns; CPython then reports ``SystemError: ... returned a result with an exception set``
with the :class:`KeyboardInterrupt` / :class:`Terminated` as its cause or context.
:func:`interruption` finds the interrupt in such a chain, so the command still ends as
interrupted.
"""

from __future__ import annotations

import contextlib
import errno
import os
import signal
import sys
from collections.abc import Callable, Iterator
from typing import Any

#: Exit status of a command ended by Ctrl-C (128 + SIGINT).
EXIT_SIGINT = 128 + signal.SIGINT
#: Exit status of a command ended by SIGTERM (128 + SIGTERM).
EXIT_SIGTERM = 128 + signal.SIGTERM


class Terminated(BaseException):
    """SIGTERM received (raised in the main thread by the handler of
    :func:`terminate_on_sigterm`)."""

    def __init__(self, signum: int = signal.SIGTERM) -> None:
        super().__init__(f"terminated by signal {signum}")
        self.signum = signum


def _raise_terminated(signum: int, frame: Any) -> None:
    raise Terminated(signum)


@contextlib.contextmanager
def terminate_on_sigterm() -> Iterator[None]:
    """While the block runs, SIGTERM raises :class:`Terminated` (the previous handler is
    restored after). Outside the main thread (where handlers cannot be set) a no-op."""
    try:
        previous = signal.signal(signal.SIGTERM, _raise_terminated)
    except ValueError:  # not the main thread
        yield
        return
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def interruption(exc: BaseException | None) -> int | None:
    """The exit status when ``exc`` is, or was caused by, an interrupt: 130 for Ctrl-C
    (:class:`KeyboardInterrupt`), 143 for SIGTERM (:class:`Terminated`); None otherwise.

    Follows ``__cause__`` and ``__context__`` (the ``SystemError`` CPython raises when an
    interrupt lands inside a C extension such as a numba kernel)."""
    seen: set[int] = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        if isinstance(exc, KeyboardInterrupt):
            return EXIT_SIGINT
        if isinstance(exc, Terminated):
            return EXIT_SIGTERM
        exc = exc.__cause__ or exc.__context__
    return None


_STDOUT_ERRORS = (errno.EPIPE, errno.EBADF, errno.ENOSPC, errno.EFBIG, errno.EDQUOT, errno.EIO)


def _raised_by_print(exc: BaseException) -> bool:
    """Whether the error was raised right in nsmx's own code (its prints to stdout: a builtin
    leaves no frame of its own), not inside a library writing a file."""
    tb = exc.__traceback__
    while tb is not None and tb.tb_next is not None:
        tb = tb.tb_next
    if tb is None:
        return False
    name = os.path.basename(tb.tb_frame.f_code.co_filename)
    here = os.path.dirname(os.path.abspath(__file__))
    return os.path.dirname(os.path.abspath(tb.tb_frame.f_code.co_filename)) == here and (
        name != "safe_io.py"
    )


def _flush_stdout() -> None:
    """Flush stdout now (a full or closed stdout is an error of the command, not of exit)."""
    try:
        sys.stdout.flush()
    except OSError as exc:
        raise OSError(exc.errno, exc.strerror, "<stdout>") from None


def _silence_stdout() -> None:
    """Point stdout at /dev/null, so the interpreter's final flush cannot fail again."""
    with contextlib.suppress(OSError, ValueError, AttributeError):
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)


def run_guarded(prog: str, call: Callable[[], int]) -> int:
    """Run ``call()`` (a subcommand) with SIGTERM raising :class:`Terminated`; return its exit
    status, or end it as the module docstring says, with ``prog`` (``"nsmx sweep"``) leading
    the line on stderr."""
    from nsmx.args import UserError
    from nsmx.safe_io import os_error_message

    if sys.stdout is None:  # started with stdout closed: a file opened now could become fd 1
        print(
            f"{prog}: error: stdout is closed; give the command somewhere to write "
            "(e.g. > out.txt or > /dev/null)",
            file=sys.stderr,
        )
        return 2
    try:
        with terminate_on_sigterm():
            status = call()
            _flush_stdout()
            return status
    except UserError as exc:
        print(f"{prog}: error: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:
        # Files are written through nsmx.safe_io (their errors name the path): an unnamed
        # write error is stdout's (a closed pipe, a full disk or /dev/full behind it).
        if exc.filename is None and exc.errno in _STDOUT_ERRORS and _raised_by_print(exc):
            exc = OSError(exc.errno, exc.strerror, "<stdout>")
        if exc.filename == "<stdout>":
            _silence_stdout()
        status = interruption(exc.__context__)
        if status is not None:  # an interrupt while writing: say so
            print(f"{prog}: interrupted", file=sys.stderr)
            return status
        print(f"{prog}: error: {os_error_message(exc)}", file=sys.stderr)
        return 1
    except BaseException as exc:
        status = interruption(exc)
        if status is None:
            raise
        print(f"{prog}: interrupted", file=sys.stderr)
        return status


__all__ = [
    "EXIT_SIGINT",
    "EXIT_SIGTERM",
    "Terminated",
    "interruption",
    "run_guarded",
    "terminate_on_sigterm",
]
