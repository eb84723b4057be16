"""Progress bars that suit a terminal and a log file alike.

On a terminal a tqdm bar redraws ten times a second; when stderr is a file or a pipe (a log, CI,
``nohup``) every redraw would be another line fragment, so the bar redraws at most once per
:data:`LOG_INTERVAL_S` seconds, each line carrying the count, the rate and tqdm's ETA.
"""

from __future__ import annotations

import sys
from typing import Any

#: Seconds between redraws when stderr is not a terminal.
LOG_INTERVAL_S = 30.0


def bar_options(stream: Any = None) -> dict[str, Any]:
    """Keyword arguments for ``tqdm(...)``: a large ``mininterval`` (and ``maxinterval``) when
    ``stream`` (default: ``sys.stderr``) is not a terminal; nothing otherwise."""
    stream = sys.stderr if stream is None else stream
    try:
        tty = bool(stream.isatty())
    except (AttributeError, ValueError):  # closed or foreign streams
        tty = False
    if tty:
        return {}
    return {"mininterval": LOG_INTERVAL_S, "maxinterval": LOG_INTERVAL_S}


__all__ = ["LOG_INTERVAL_S", "bar_options"]
