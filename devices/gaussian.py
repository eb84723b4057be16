"""Multiplicative Gaussian noise ξ ~ N(1, sigma²) (the Gaussian NSM of Detorakis et al. 2019).

``source = "element"``: ξ is drawn by this element, independent of the conductance model's own
read noise (which the crossbar adds on top). ``source = "read_noise"``: the NSM's Gaussian noise
*is* the conductance model's cycle-to-cycle read noise (e.g. PCM 1/f noise): the element then
adds nothing (sigma must be 0, ξ ≡ 1) and the mapper derives the effective per-column sigma
from the conductance model's ``read_sigma / mean``.

Device-to-device spread of sigma (``sigma_spread_rel``, illustrative, 0 by default):
sigma_ij = sigma * max(1 + sigma_spread_rel * N(0, 1), 0).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np

from .elements import ElementModel, Structure, check_n, check_shape, device_shape
from .errors import ConfigError
from .fields import param, validate_config
from .registry import register_element_model
from .rng import check_rng


@dataclass(frozen=True)
class GaussianElementConfig:
    """ξ ~ N(1, sigma²) per read (relative std ``sigma``, dimensionless)."""

    sigma: float = param(
        0.5,
        ge=0.0,
        le=100.0,
        doc="relative std σ of the multiplicative noise ξ ~ N(1, σ²), per read",
    )  # illustrative
    sigma_spread_rel: float = param(
        0.0, ge=0.0, le=10.0, doc="device-to-device relative spread of σ, drawn once per element"
    )  # illustrative, off by default
    source: Literal["element", "read_noise"] = param(
        "element", doc="'element': ξ drawn here; 'read_noise': ξ is the cell's read noise"
    )
    structure: Structure = param(
        "per_cell", doc="'per_cell': one element per cell; 'per_row': one per row, shared"
    )

    def __post_init__(self) -> None:
        validate_config(self)
        if self.source == "read_noise" and (self.sigma != 0.0 or self.sigma_spread_rel != 0.0):
            field = "sigma" if self.sigma != 0.0 else "sigma_spread_rel"
            raise ConfigError(
                f"{type(self).__name__}.{field}",
                getattr(self, field),
                "0 when source = 'read_noise' (the noise then comes from the conductance model)",
                "is invalid",
            )


@dataclass(frozen=True, eq=False)
class GaussianState:
    """shape: (rows, cols) served; sigma_dev: realised relative std per device."""

    shape: tuple[int, int]
    sigma_dev: np.ndarray


class GaussianElement(ElementModel):
    """Multiplicative Gaussian element (see :class:`GaussianElementConfig`)."""

    noise = "gaussian"

    config: GaussianElementConfig

    @property
    def source(self) -> str:
        return self.config.source

    def program(self, shape: tuple[int, int], *, rng: np.random.Generator) -> GaussianState:
        c = self.config
        shape = check_shape(shape)
        dev = device_shape(shape, self.structure)
        check_rng(rng)
        if c.sigma_spread_rel > 0.0:
            factor = np.maximum(1.0 + c.sigma_spread_rel * rng.standard_normal(dev), 0.0)
            return GaussianState(shape, c.sigma * factor)
        return GaussianState(shape, np.full(dev, c.sigma))

    def sigma(self, state: GaussianState) -> np.ndarray:
        return state.sigma_dev.copy()

    def sample(self, state: GaussianState, n: int, *, rng: np.random.Generator) -> np.ndarray:
        """``n`` multipliers ξ = 1 + sigma_ij N(0, 1): (n, rows, cols) or (n, rows) per_row."""
        n = check_n(n)
        return 1.0 + state.sigma_dev * check_rng(rng).standard_normal((n, *state.sigma_dev.shape))


register_element_model("gaussian", GaussianElementConfig, GaussianElement)
