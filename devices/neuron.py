"""Threshold neuron: a comparator on the column current (units µA).

z = sign(I + offset + noise - threshold), with sign(0) = +1 (docs/hardware-model.md §5), where the
input-referred ``offset`` is fixed per neuron (drawn once, at programming, std
``offset_sigma_ua``) and ``noise`` is drawn afresh for every decision (std ``noise_sigma_ua``).
Both defaults are 0; the presets' values are illustrative (a comparator's offset and noise are
a circuit choice, not a property of the memory device).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.special import ndtr

from .elements import check_n
from .errors import ConfigTypeError
from .fields import param, validate_config
from .rng import check_rng


@dataclass(frozen=True)
class ThresholdNeuronConfig:
    """Comparator non-idealities, input-referred, in µA."""

    # Upper bound 1e6 µA (1 A): far above any crossbar column current; a larger value is a typo
    # (and its square overflows the read variance), not a comparator (illustrative bound).
    offset_sigma_ua: float = param(
        0.0,
        ge=0.0,
        le=1e6,
        unit="µA",
        doc="std of the comparator's input-referred offset, drawn once per neuron",
    )
    noise_sigma_ua: float = param(
        0.0,
        ge=0.0,
        le=1e6,
        unit="µA",
        doc="std of the comparator's input-referred noise, drawn per decision",
    )

    def __post_init__(self) -> None:
        validate_config(self)


class ThresholdNeuron:
    """A bank of comparators (vectorised over neurons)."""

    def __init__(self, config: ThresholdNeuronConfig) -> None:
        self.config = config

    def program(self, n: int, *, rng: np.random.Generator) -> np.ndarray:
        """Draw the fixed input-referred offsets (µA) of ``n`` neurons, shape (n,)."""
        n = check_n(n)
        return self.config.offset_sigma_ua * check_rng(rng).standard_normal(n)

    def decide(
        self,
        i_ua: np.ndarray,
        offsets_ua: np.ndarray,
        *,
        threshold_ua: float | np.ndarray = 0.0,
        rng: np.random.Generator | None = None,
    ) -> np.ndarray:
        """Binary decisions, int8 ±1, shape of ``i_ua`` (..., n).

        ``offsets_ua`` (n,) and ``threshold_ua`` (scalar or (n,)) broadcast against ``i_ua``.
        ``rng`` is required when ``noise_sigma_ua`` > 0 (one fresh draw per decision).
        """
        v = np.asarray(i_ua, dtype=np.float64) + offsets_ua - threshold_ua
        if self.config.noise_sigma_ua > 0.0:
            if rng is None:
                raise ConfigTypeError(
                    "rng", rng, "a numpy.random.Generator (noise_sigma_ua > 0 needs one)"
                )
            v = v + self.config.noise_sigma_ua * check_rng(rng).standard_normal(v.shape)
        return np.where(v >= 0.0, 1, -1).astype(np.int8)

    def prob_plus(
        self,
        i_ua: np.ndarray,
        offsets_ua: np.ndarray,
        *,
        threshold_ua: float | np.ndarray = 0.0,
    ) -> np.ndarray:
        """P(z = +1) for given currents: Phi((I + offset - threshold)/noise_sigma_ua)
        (a step at 0, with P = 1 at exactly 0, when the noise is 0)."""
        v = np.asarray(i_ua, dtype=np.float64) + offsets_ua - threshold_ua
        s = self.config.noise_sigma_ua
        if s == 0.0:
            return np.where(v >= 0.0, 1.0, 0.0)
        return ndtr(v / s)
