"""The output layer held in the digital periphery during learning: :class:`PeripheryOutput`.

In-situ learning keeps the real-valued output layer digital (its weights are learned by Adam in
the periphery, docs/onchip.md). :class:`PeripheryOutput` stands in for the output layer's
:class:`~crossbar.layer.HardwareLayer` inside a :class:`~mapping.runtime.ChipModel`, so that
:meth:`ChipModel.run` evaluates the learned chip exactly as training reads it: logits =
z W + b in float64, no converter, no read noise, no counters.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from crossbar import Counters


class PeripheryOutput:
    """logits = z·w + b (float64) for ±1 states z (batch, fan_in); ``w`` (fan_in, classes) and
    ``b`` (classes,) are the periphery's registers (updated in place by the optimiser)."""

    kind = "output"
    stochastic = False
    needs_adc_calibration = False
    adc_range_rule = "none"
    adc_calibrated = False

    def __init__(self, w: np.ndarray, b: np.ndarray, chip: Any) -> None:
        self.w, self.b, self.chip = w, b, chip
        self.adc_full_scale_ua: dict[str, np.ndarray] = {}
        self.counters = Counters()

    @property
    def fan_in(self) -> int:
        return int(self.w.shape[0])

    @property
    def fan_out(self) -> int:
        return int(self.w.shape[1])

    def logits(self, z: Any, samples: int = 1, **_: Any) -> np.ndarray:
        """(samples, batch, classes) float64; samples are identical (no read noise)."""
        out = np.asarray(z, dtype=np.float64) @ self.w + self.b
        return np.broadcast_to(out, (samples, *out.shape))

    def reset_counters(self) -> Counters:
        out, self.counters = self.counters, Counters()
        return out

    def drift_signal_us(self, t_s: float) -> float:
        return 0.0  # no cells: the global drift gain is the crossbar layers'


__all__ = ["PeripheryOutput"]
