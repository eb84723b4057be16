"""Operation counters of a hardware layer: the inputs of the energy model (docs/cost.md).

One *evaluation* is one (MC sample, batch row) pass through a layer. Counts are totals since the
layer was built (or since ``reset_counters``); :meth:`Counters.per_evaluation` divides by the
number of evaluations.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass


@dataclass(frozen=True)
class Counters:
    """Totals (all non-negative integers).

    evaluations: (sample, batch row) passes.
    device_reads: cell reads (one per cell on a driven row per read phase; the two cells of a
        differential pair count as two).
    tile_reads: array read operations (one per tile, read phase and evaluation).
    comparator_decisions: analog comparator decisions.
    digital_decisions: decisions taken digitally (after ADCs).
    adc_conversions: ADC conversions; adc_saturations: those whose code clipped.
    """

    evaluations: int = 0
    device_reads: int = 0
    tile_reads: int = 0
    comparator_decisions: int = 0
    digital_decisions: int = 0
    adc_conversions: int = 0
    adc_saturations: int = 0

    def __add__(self, other: Counters) -> Counters:
        if not isinstance(other, Counters):
            return NotImplemented
        return Counters(
            **{
                f.name: getattr(self, f.name) + getattr(other, f.name)
                for f in dataclasses.fields(self)
            }
        )

    def per_evaluation(self) -> dict[str, float]:
        """Each count divided by ``evaluations`` (all 0.0 before the first evaluation)."""
        n = self.evaluations
        return {
            f.name: (getattr(self, f.name) / n if n else 0.0)
            for f in dataclasses.fields(self)
            if f.name != "evaluations"
        }

    @property
    def saturation_rate(self) -> float:
        """Fraction of ADC conversions that clipped (0.0 without conversions)."""
        return self.adc_saturations / self.adc_conversions if self.adc_conversions else 0.0
