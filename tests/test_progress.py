"""Progress bars redraw rarely when stderr is not a terminal (a log file, a pipe)."""

from __future__ import annotations

import io

from nsm.progress import LOG_INTERVAL_S, bar_options


class _Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_bar_options_terminal_and_log():
    assert bar_options(_Tty()) == {}
    assert bar_options(io.StringIO()) == {
        "mininterval": LOG_INTERVAL_S,
        "maxinterval": LOG_INTERVAL_S,
    }
