"""Constant-p Bernoulli blank-out: ξ ~ Bernoulli(p), the same p for every device (the NSM of
Detorakis et al., NeurIPS 2019, in software: p = 0.5 in fully connected layers). No
device-to-device variation; an idealisation rather than a device."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .elements import ElementModel, Structure, check_n, check_shape, device_shape
from .fields import param, validate_config
from .registry import register_element_model
from .rng import check_rng


@dataclass(frozen=True)
class BernoulliConfig:
    """ξ ~ Bernoulli(p) with the same p everywhere (p = 1 means the element always conducts)."""

    p: float = param(
        0.5,
        gt=0.0,
        le=1.0,
        doc="probability that the element conducts on a read (the same everywhere)",
    )  # NSM paper's fully connected layers (p = 0.5)
    structure: Structure = param(
        "per_cell", doc="'per_cell': one element per cell; 'per_row': one per row, shared"
    )

    def __post_init__(self) -> None:
        validate_config(self)


@dataclass(frozen=True, eq=False)
class BernoulliState:
    """shape: (rows, cols) served; p_dev: realised p per device, see ``device_shape``."""

    shape: tuple[int, int]
    p_dev: np.ndarray


class BernoulliElement(ElementModel):
    """Constant-p Bernoulli element (see :class:`BernoulliConfig`)."""

    noise = "bernoulli"

    config: BernoulliConfig

    def program(self, shape: tuple[int, int], *, rng: np.random.Generator) -> BernoulliState:
        check_rng(rng)  # nothing to draw: a constant p has no device-to-device variation
        shape = check_shape(shape)
        return BernoulliState(shape, np.full(device_shape(shape, self.structure), self.config.p))

    def p(self, state: BernoulliState) -> np.ndarray:
        return state.p_dev.copy()

    def sample(self, state: BernoulliState, n: int, *, rng: np.random.Generator) -> np.ndarray:
        """``n`` boolean masks (True = conducts): (n, rows, cols) or (n, rows) per_row."""
        n = check_n(n)
        return check_rng(rng).random((n, *state.p_dev.shape)) < state.p_dev


register_element_model("bernoulli", BernoulliConfig, BernoulliElement)
