"""CPU threads of the ``nsmx`` commands: torch, numba and numpy's BLAS.

Importing this module makes idle OpenMP threads sleep instead of spinning (unless the
environment sets ``OMP_WAIT_POLICY``). The chip's clt path alternates numba's parallel kernels
with numpy's BLAS; with spinning idle threads each steals the other's cores (measured:
full-MNIST clt run 204 s with 2 threads of each on 2 cores, 15 s with passive waiting, 17 s
with one thread). The variable must be set before torch or numba load their OpenMP runtime,
i.e. when the CLI is imported, which imports this module first.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")


def set_threads(n: int) -> None:
    """Limit torch and numba to ``n`` threads for the rest of the process (``nsmx --threads``)."""
    import numba
    import torch

    torch.set_num_threads(n)
    numba.set_num_threads(min(n, numba.config.NUMBA_NUM_THREADS))


@contextlib.contextmanager
def blas_threads(n: int | None) -> Iterator[None]:
    """Limit numpy's BLAS to ``n`` threads within the block (None: unchanged). On a busy machine
    an unlimited BLAS oversubscribes the cores and the reference's matrix products run many
    times slower."""
    if n is None:
        yield
        return
    try:
        from threadpoolctl import threadpool_limits  # installed with scikit-learn
    except ImportError:  # pragma: no cover - scikit-learn always brings it
        yield
        return
    with threadpool_limits(limits=n):
        yield


@contextlib.contextmanager
def limit_threads(n: int | None) -> Iterator[None]:
    """numba and BLAS limited to ``n`` threads within the block (None: unchanged); numba's
    count is restored after it. Results do not depend on it (the engine's streams are
    thread-count invariant); a busy machine does."""
    if n is None:
        yield
        return
    import numba

    before = numba.get_num_threads()
    numba.set_num_threads(min(n, numba.config.NUMBA_NUM_THREADS))
    try:
        with blas_threads(n):
            yield
    finally:
        numba.set_num_threads(before)
