"""Fixtures shared by several test modules (none is autouse: a module asks for them)."""

from __future__ import annotations

import numba
import pytest
import torch
from threadpoolctl import threadpool_limits


@pytest.fixture(scope="module")
def one_thread():
    """One numba, torch and BLAS thread for a whole module (a shared 2-core machine).

    Request it with ``pytestmark = pytest.mark.usefixtures("one_thread")``: marked fixtures
    are set up before the ones a test names, so module fixtures that train run on one thread.
    """
    numba_threads, torch_threads = numba.get_num_threads(), torch.get_num_threads()
    numba.set_num_threads(1)
    torch.set_num_threads(1)
    with threadpool_limits(limits=1):
        yield
    numba.set_num_threads(numba_threads)
    torch.set_num_threads(torch_threads)
