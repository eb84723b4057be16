"""Stochastic elements (the NSM's multiplicative noise ξ): protocol and shared helpers.

An element is either ``noise == "bernoulli"`` (ξ ∈ {0, 1}: the cell conducts or not on each
read, with probability p) or ``noise == "gaussian"`` (ξ ~ N(1, sigma²) multiplies the cell's
conductance on each read), and either

- ``structure == "per_cell"``: one element per cell, independent draws per cell and read;
  realised parameters have shape (rows, cols);
- ``structure == "per_row"``: one stochastic driver per row, so one draw per row and read is
  shared by all the row's cells; realised parameters have shape (rows,).

``program(shape, rng=)`` draws the device-to-device variation once; ``p(state)`` /
``sigma(state)`` expose the *realised* per-device parameter so the mapper can set the
periphery from the actual hardware; ``sample(state, n, rng=)`` is a reference sampler for
tests and validation (the crossbar has its own fast kernels that consume p() / sigma()).
"""

from __future__ import annotations

from typing import Any, Literal, Protocol, runtime_checkable

import numpy as np

from .errors import ConfigError, ConfigTypeError

Structure = Literal["per_cell", "per_row"]


@runtime_checkable
class StochasticElement(Protocol):
    """A stochastic element model, built from a frozen config (``model_cls(config)``)."""

    config: Any
    noise: str  # "bernoulli" or "gaussian"

    @property
    def structure(self) -> str: ...

    def program(self, shape: tuple[int, int], *, rng: np.random.Generator) -> Any:
        """Draw device-to-device variation for a (rows, cols) array; returns the state."""
        ...

    def p(self, state: Any) -> np.ndarray:
        """Realised conducting probability: (rows, cols) per_cell or (rows,) per_row."""
        ...

    def sigma(self, state: Any) -> np.ndarray:
        """Realised relative std of ξ ~ N(1, sigma²) (gaussian elements), same shapes as p."""
        ...

    def sample(self, state: Any, n: int, *, rng: np.random.Generator) -> np.ndarray:
        """``n`` draws of ξ: (n, rows, cols) per_cell or (n, rows) per_row."""
        ...


class ElementModel:
    """The base of the shipped elements (the :class:`StochasticElement` protocol): built from a
    frozen ``config`` with a ``structure`` field. A Bernoulli element overrides :meth:`p`, a
    Gaussian one :meth:`sigma`; the other raises a ``TypeError`` naming the element's noise."""

    noise: str

    def __init__(self, config: Any) -> None:
        self.config = config

    @property
    def structure(self) -> str:
        return self.config.structure

    def p(self, state: Any) -> np.ndarray:
        return no_p(self)

    def sigma(self, state: Any) -> np.ndarray:
        return no_sigma(self)


def check_shape(shape: Any) -> tuple[int, int]:
    """A (rows, cols) pair of positive integers."""
    try:
        rows, cols = shape
    except (TypeError, ValueError):
        raise ConfigTypeError("shape", shape, "a (rows, cols) pair of integers >= 1") from None
    for name, v in (("shape[0] (rows)", rows), ("shape[1] (cols)", cols)):
        if isinstance(v, bool) or not isinstance(v, (int, np.integer)):
            raise ConfigTypeError(name, v, "an integer >= 1")
        if v < 1:
            raise ConfigError(name, v, "integer >= 1", "is out of range")
    return int(rows), int(cols)


def check_n(n: Any) -> int:
    """A number of samples: an integer >= 1."""
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)):
        raise ConfigTypeError("n", n, "an integer >= 1")
    if n < 1:
        raise ConfigError("n", n, "integer >= 1", "is out of range")
    return int(n)


def device_shape(shape: tuple[int, int], structure: str) -> tuple[int, ...]:
    """Shape of the per-device parameter arrays: (rows, cols) per_cell, (rows,) per_row."""
    return shape if structure == "per_cell" else (shape[0],)


def no_p(element: Any) -> np.ndarray:
    raise TypeError(
        f"a {element.noise} element has no conducting probability p; use sigma(state) "
        "(ξ ~ N(1, sigma²))"
    )


def no_sigma(element: Any) -> np.ndarray:
    raise TypeError(
        f"a {element.noise} element has no Gaussian sigma; use p(state) (ξ ~ Bernoulli(p))"
    )


def as_cells(samples: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """View ``n`` element samples as per-cell values, shape (n, rows, cols).

    Per-cell samples (n, rows, cols) are returned unchanged; per-row samples (n, rows) are
    broadcast along the columns (a read-only view, no copy): every cell of a row sees its
    row driver's draw.
    """
    rows, cols = check_shape(shape)
    samples = np.asarray(samples)
    if samples.ndim == 3 and samples.shape[1:] == (rows, cols):
        return samples
    if samples.ndim == 2 and samples.shape[1] == rows:
        return np.broadcast_to(samples[:, :, None], (samples.shape[0], rows, cols))
    raise ConfigError(
        "samples.shape", samples.shape, f"(n, {rows}, {cols}) or (n, {rows})", "does not fit"
    )
