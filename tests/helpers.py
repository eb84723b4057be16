"""Plain helpers shared by several test modules (``from helpers import ...``: pytest puts
``tests/`` on ``sys.path`` for its modules, which have no ``__init__.py``)."""

from __future__ import annotations

import contextlib
import io
import json
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from nsmx.cli import main


def run_cli(argv: list[str]) -> tuple[int, str, str]:
    """``nsmx ARGV`` in this process: (exit code, stdout, stderr)."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(argv)
    return code, out.getvalue(), err.getvalue()


def last_json(text: str) -> dict:
    """The JSON object on the last line of ``text``."""
    return json.loads(text.strip().splitlines()[-1])


@contextlib.contextmanager
def tmpfs(mount: Path, options: str, what: str = "a tmpfs") -> Iterator[Path]:
    """A tmpfs mounted with ``-o OPTIONS`` at the new directory ``mount``, lazily unmounted
    after; the test is skipped (naming ``what``) where it cannot be mounted (needs root)."""
    mount.mkdir()
    try:
        subprocess.run(
            ["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(mount)],
            check=True,
            capture_output=True,
        )
    except (OSError, subprocess.CalledProcessError) as exc:
        pytest.skip(f"cannot mount {what} here ({exc}); needs root")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False, capture_output=True)
