"""nsmx.threads: the thread policy never asks for more threads than there are free cores."""

from __future__ import annotations

import numba
import pytest

from nsmx import threads


@pytest.mark.parametrize(
    ("requested", "free", "cores", "want"),
    [
        (2, 2.0, 2, 2),  # quiet machine: as asked
        (2, 1.6, 2, 2),  # a core counts when at least half of it is idle
        (2, 1.4, 2, 1),
        (2, 0.0, 2, 1),  # every core busy: one thread, never zero
        (4, 3.0, 2, 2),  # never more than the usable cores
        (None, 2.0, 2, 2),  # None: all usable cores
        (None, 0.3, 2, 1),
        (1, 2.0, 2, 1),
    ],
)
def test_threads_for_caps_by_free_and_usable_cores(requested, free, cores, want):
    assert threads.threads_for(requested, free, cores) == want


@pytest.mark.parametrize("bad", [0, -1])
def test_thread_count_below_one_is_refused_with_the_value(bad):
    with pytest.raises(ValueError, match=f"threads: got {bad}, expected an integer >= 1"):
        threads.threads_for(bad, 2.0, 2)
    with pytest.raises(ValueError, match=f"got {bad}"):
        threads.choose_threads(bad)


def test_free_cores_is_within_the_usable_cores():
    free = threads.free_cores(interval=0.05)
    assert 0.0 <= free <= threads.usable_cores()


def test_choose_threads_one_thread_is_not_measured_and_cap_can_be_turned_off(monkeypatch):
    one = threads.choose_threads(1)
    assert (one.used, one.free, one.capped) == (1, None, False)
    monkeypatch.setattr(threads, "free_cores", lambda interval=threads.SAMPLE_S: 0.0)
    monkeypatch.setattr(threads, "usable_cores", lambda: 2)
    busy = threads.choose_threads(2)
    assert (busy.used, busy.free, busy.capped) == (1, 0.0, True)
    assert "using 1 of 2 threads: 0.0 of 2 cores free" in busy.message()
    assert "NSMX_ADAPTIVE_THREADS=0" in busy.message()
    monkeypatch.setenv("NSMX_ADAPTIVE_THREADS", "0")
    fixed = threads.choose_threads(2)
    assert (fixed.used, fixed.free, fixed.capped) == (2, None, False)


def test_limit_threads_uses_the_choice_and_restores_numba(monkeypatch):
    monkeypatch.setattr(threads, "free_cores", lambda interval=threads.SAMPLE_S: 0.0)
    monkeypatch.setattr(threads, "usable_cores", lambda: 2)
    before = numba.get_num_threads()
    with threads.limit_threads(2) as choice:
        assert choice.used == 1
        assert numba.get_num_threads() == 1
    assert numba.get_num_threads() == before
    with threads.limit_threads(None) as choice:
        assert choice is None
