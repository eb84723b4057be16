"""CPU threads of the ``nsmx`` commands: torch, numba and numpy's BLAS.

Importing this module makes idle OpenMP threads sleep instead of spinning (unless the
environment sets ``OMP_WAIT_POLICY``). The chip's clt path alternates numba's parallel kernels
with numpy's BLAS; with spinning idle threads each steals the other's cores (measured:
full-MNIST clt run 204 s with 2 threads of each on 2 cores, 15 s with passive waiting, 17 s
with one thread). The variable must be set before torch or numba load their OpenMP runtime,
i.e. when the CLI is imported, which imports this module first.

**Busy machines.** More threads than there are free cores do not buy CPU time: Linux shares the
CPUs between sessions (scheduler autogroups) or between threads of all jobs, so on a machine
whose cores other jobs keep busy a process gets about the same CPU time with 2 threads as
with 1 (measured on 2 cores with three one-thread jobs: 0.38 of a core either way), and the
second thread only adds waiting at the end of every parallel region (the clt run of the MLP
19 % slower, torch's reference 55 % slower). :func:`set_threads` and :func:`limit_threads`
therefore use at most as many threads as there are free cores when they are called
(:func:`free_cores`: idle time of ``/proc/stat`` over a quarter of a second, else the load
average; a core counts when at least half of it is idle), never fewer than one, and say so on
stderr. ``NSMX_ADAPTIVE_THREADS=0`` in the environment turns the cap off. Results do not
depend on the thread count (the engine's random streams and sums are thread-count invariant).
"""

from __future__ import annotations

import contextlib
import math
import os
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

#: Seconds over which :func:`free_cores` measures the idle time.
SAMPLE_S = 0.25


@dataclass(frozen=True)
class ThreadChoice:
    """Threads asked for and used, with the measurement behind the choice.

    requested: threads asked for (None: all usable cores); used: threads set (>= 1);
    cores: CPUs this process may run on (``os.sched_getaffinity``); free: cores found idle
    (None: not measured, the cap was off or not needed); load: 1-minute load average.
    """

    requested: int | None
    used: int
    cores: int
    free: float | None
    load: float

    @property
    def capped(self) -> bool:
        """True when fewer threads are used than were asked for because the cores are busy."""
        return self.used < min(self.requested or self.cores, self.cores)

    def message(self) -> str:
        """One line for the user: the threads used and why."""
        asked = self.requested if self.requested is not None else self.cores
        free = "unknown" if self.free is None else f"{self.free:.1f}"
        text = (
            f"using {self.used} of {asked} threads: {free} of {self.cores} cores free "
            f"(load {self.load:.1f})"
        )
        if self.capped:
            text += (
                "; more threads than free cores would be slower (NSMX_ADAPTIVE_THREADS=0: use all)"
            )
        return text


def usable_cores() -> int:
    """CPUs this process may run on (its affinity mask; ``os.cpu_count()`` where unknown)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):  # pragma: no cover - not Linux
        return max(1, os.cpu_count() or 1)


def _cpu_times() -> tuple[float, float] | None:
    """(idle, total) jiffies of all CPUs from /proc/stat (None where unreadable)."""
    try:
        with open("/proc/stat", encoding="ascii") as f:
            fields = f.readline().split()
    except OSError:
        return None
    if not fields or fields[0] != "cpu" or len(fields) < 5:
        return None
    values = [float(v) for v in fields[1:9]]  # user nice system idle iowait irq softirq steal
    idle = values[3] + (values[4] if len(values) > 4 else 0.0)
    return idle, sum(values)


def free_cores(interval: float = SAMPLE_S) -> float:
    """Cores left idle by every process over the next ``interval`` seconds (this process
    included: the calling thread sleeps meanwhile), at most :func:`usable_cores`. From the
    idle and iowait time in /proc/stat; where that is unavailable, the usable cores less the
    1-minute load average."""
    cores = usable_cores()
    before = _cpu_times()
    if before is not None:
        time.sleep(interval)
    after = _cpu_times()
    if before is None or after is None or after[1] <= before[1]:
        return max(0.0, min(float(cores), cores - os.getloadavg()[0]))
    idle_fraction = (after[0] - before[0]) / (after[1] - before[1])
    return max(0.0, min(float(cores), idle_fraction * (os.cpu_count() or cores)))


def threads_for(requested: int | None, free: float, cores: int) -> int:
    """Threads to use: ``requested`` (None: ``cores``), at most ``cores`` and at most the free
    cores rounded half up (a core counts when at least half of it is idle), at least 1."""
    if requested is not None and requested < 1:
        raise ValueError(f"threads: got {requested}, expected an integer >= 1")
    asked = min(requested or cores, cores)
    return max(1, min(asked, math.floor(free + 0.5)))


def _adaptive() -> bool:
    return os.environ.get("NSMX_ADAPTIVE_THREADS", "1").strip().lower() not in ("0", "false", "no")


def choose_threads(requested: int | None) -> ThreadChoice:
    """The threads to use for ``requested`` (None: all usable cores) on this machine now:
    capped by :func:`free_cores` unless ``NSMX_ADAPTIVE_THREADS=0``; one thread needs no
    measurement."""
    if requested is not None and requested < 1:
        raise ValueError(f"threads: got {requested}, expected an integer >= 1")
    cores = usable_cores()
    asked = min(requested or cores, cores)
    load = os.getloadavg()[0]
    if asked <= 1 or not _adaptive():
        return ThreadChoice(requested, max(1, asked), cores, None, load)
    free = free_cores()
    return ThreadChoice(requested, threads_for(requested, free, cores), cores, free, load)


def _set_pools(n: int) -> None:
    import numba
    import torch

    torch.set_num_threads(n)
    numba.set_num_threads(min(n, numba.config.NUMBA_NUM_THREADS))


_chosen: ThreadChoice | None = None


def set_threads(n: int | None) -> ThreadChoice:
    """Limit torch, numba and numpy's BLAS to ``n`` threads (None: all usable cores) for the
    rest of the process (``nsmx --threads``), fewer where the cores are busy
    (:func:`choose_threads`; a line on stderr says so). Returns the choice."""
    global _chosen
    choice = choose_threads(n)
    _set_pools(choice.used)
    with contextlib.suppress(ImportError):  # threadpoolctl comes with scikit-learn
        from threadpoolctl import threadpool_limits

        threadpool_limits(limits=choice.used)  # applies at once, for the process
    _chosen = choice
    if choice.capped:
        print(f"nsmx: {choice.message()}", file=sys.stderr)
    return choice


@contextlib.contextmanager
def blas_threads(n: int | None) -> Iterator[None]:
    """Limit numpy's BLAS to ``n`` threads within the block (None: unchanged), and to no more
    than :func:`set_threads` chose. On a busy machine an unlimited BLAS oversubscribes the
    cores and the reference's matrix products run many times slower."""
    if n is None:
        yield
        return
    if _chosen is not None:
        n = min(n, _chosen.used)
    try:
        from threadpoolctl import threadpool_limits  # installed with scikit-learn
    except ImportError:  # pragma: no cover - scikit-learn always brings it
        yield
        return
    with threadpool_limits(limits=n):
        yield


@contextlib.contextmanager
def limit_threads(n: int | None) -> Iterator[ThreadChoice | None]:
    """numba and BLAS limited to ``n`` threads within the block (None: unchanged), fewer where
    the cores are busy (:func:`choose_threads`, measured on entry); numba's count is restored
    after it. Yields the choice (None for ``n=None``). Results do not depend on it (the
    engine's streams are thread-count invariant); a busy machine does."""
    if n is None:
        yield None
        return
    import numba

    choice = choose_threads(n)
    before = numba.get_num_threads()
    numba.set_num_threads(min(choice.used, numba.config.NUMBA_NUM_THREADS))
    try:
        with blas_threads(choice.used):
            yield choice
    finally:
        numba.set_num_threads(before)
