"""``--json`` output: one JSON document on stdout, everything else on stderr.

:func:`json_output` wraps a command (``nsmx.cli`` does it for the commands of
``nsmx.cli.PURE_JSON``); inside it :func:`print_json` is the one way to reach the real stdout.
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Iterator
from typing import Any

from nsmx.safe_io import json_text

#: The real stdout while :func:`json_output` sends everything else to stderr (None: not active).
_JSON_STREAM: Any = None


@contextlib.contextmanager
def json_output(enabled: bool) -> Iterator[None]:
    """With ``enabled`` (a command's ``--json``), everything printed to stdout inside the block
    goes to stderr, except :func:`print_json`: stdout holds the one JSON document alone, the
    human report stays readable on the terminal. Without ``enabled`` nothing changes."""
    global _JSON_STREAM
    if not enabled:
        yield
        return
    saved, _JSON_STREAM = _JSON_STREAM, sys.stdout
    try:
        with contextlib.redirect_stdout(sys.stderr):
            yield
    finally:
        _JSON_STREAM = saved


def print_json(value: Any, **kwargs: Any) -> None:
    """Print ``value`` as strict JSON (:func:`nsmx.safe_io.json_text`; ``kwargs`` as for
    ``json.dumps``) on the real stdout, also inside :func:`json_output`."""
    print(json_text(value, **kwargs), file=_JSON_STREAM or sys.stdout, flush=True)


__all__ = ["json_output", "print_json"]
