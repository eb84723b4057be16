"""Checks for the explicit random generators every stochastic function takes (``rng=``)."""

from __future__ import annotations

from typing import Any

import numpy as np

from .errors import ConfigTypeError


def check_rng(rng: Any, name: str = "rng") -> np.random.Generator:
    """``rng`` must be a ``numpy.random.Generator`` (no global state, no bare seeds)."""
    if not isinstance(rng, np.random.Generator):
        raise ConfigTypeError(
            name, rng, "a numpy.random.Generator (e.g. numpy.random.default_rng(seed))"
        )
    return rng
