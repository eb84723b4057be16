"""What a chip run reports: accuracy, NLL, per-layer firing rate, counters, effective β spread,
the ADC ranges and how they were set, and warnings.

:func:`chip_report` condenses a :class:`~mapping.runtime.ChipRun` of a
:class:`~mapping.runtime.ChipModel` (and the labels) into a :class:`ChipReport`, a frozen record
with a JSON form (:meth:`ChipReport.to_dict`) and a text table (:func:`format_layers`).
:func:`saturation_warnings` names every layer whose converters clipped more than
:data:`SATURATION_WARN` of their conversions, and the field that changes their range.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from crossbar import Counters
from mapping.runtime import ChipModel, ChipRun

#: Probability floor for the NLL (log 1e-12 ≈ −27.6): one certain mistake must not make it inf.
P_FLOOR = 1e-12

#: Fraction of a layer's ADC conversions above which a run warns that they saturate.
SATURATION_WARN = 0.01

#: ADC range rule -> the field(s) that change a converter's range under it.
RANGE_FIELDS = {
    "calibrated": "periphery.adc_cal_headroom (or periphery.adc_cal_percentile)",
    "rms": "periphery.adc_range_sigmas (or periphery.adc_range = 'calibrated')",
    "rms (not calibrated)": "calibration on training data (ChipModel.calibrate), or "
    "periphery.adc_range_sigmas",
    "fixed": "periphery.adc_full_scale_ua",
}


@dataclass(frozen=True)
class Spread:
    """mean, std, min, max of a set of values (NaN and inf dropped; count kept)."""

    mean: float
    std: float
    min: float
    max: float
    count: int

    @classmethod
    def of(cls, values: Any) -> Spread | None:
        v = np.asarray(values, dtype=np.float64).ravel()
        v = v[np.isfinite(v)]
        if v.size == 0:
            return None
        return cls(float(v.mean()), float(v.std()), float(v.min()), float(v.max()), int(v.size))

    def to_dict(self) -> dict[str, float]:
        return dataclasses.asdict(self)

    def __str__(self) -> str:
        return f"{self.mean:.3g} ± {self.std:.2g} [{self.min:.3g}, {self.max:.3g}]"


@dataclass(frozen=True)
class LayerReport:
    """One crossbar layer of a run.

    matrix: (fan_in, fan_out); tiles: (row-tiles, column-tiles); read: read conditions;
    firing_rate: fraction of +1 outputs (None for the output layer); counters: the engine's
    operation counts of the run; beta: the effective β the chip realises (per neuron or channel);
    beta_ratio: effective / trained β (neurons with |β| > 1e-3); alignment: cosine between the
    realised and trained weight direction. The last three are None for deterministic and output
    layers.
    """

    name: str
    kind: str
    matrix: tuple[int, int]
    tiles: tuple[int, int]
    read: str
    firing_rate: float | None
    counters: Counters
    beta: Spread | None
    beta_ratio: Spread | None
    alignment: Spread | None

    def to_dict(self) -> dict[str, Any]:
        out = {
            "name": self.name,
            "kind": self.kind,
            "matrix": list(self.matrix),
            "tiles": list(self.tiles),
            "read": self.read,
            "firing_rate": self.firing_rate,
            "counters": dataclasses.asdict(self.counters),
        }
        for key in ("beta", "beta_ratio", "alignment"):
            value = getattr(self, key)
            out[key] = None if value is None else value.to_dict()
        return out


@dataclass(frozen=True)
class ChipReport:
    """A run's summary (see the module docstring); ``accuracy``/``nll`` are None without labels.

    adc: every ADC of the chip (:func:`mapping.adc_calibration.converter_table`: layer,
    converter, what it converts, scope, bits, range rule, full scales in µA); adc_calibration:
    how the ranges were calibrated on data (source, examples, samples, seed, rule), None when
    they were not; warnings: :func:`saturation_warnings` of the run.
    """

    chip: str
    accuracy: float | None
    nll: float | None
    n: int
    samples: int
    mode: str
    t_s: float
    seed: int
    program_seed: int
    p_policy: str
    wall_s: float
    layers: tuple[LayerReport, ...]
    adc: tuple[dict[str, Any], ...] = ()
    adc_calibration: dict[str, Any] | None = None
    warnings: tuple[str, ...] = ()

    @property
    def adc_saturations(self) -> int:
        return sum(layer.counters.adc_saturations for layer in self.layers)

    @property
    def adc_conversions(self) -> int:
        return sum(layer.counters.adc_conversions for layer in self.layers)

    def to_dict(self) -> dict[str, Any]:
        skip = ("layers", "adc", "warnings")
        out = {
            f.name: getattr(self, f.name) for f in dataclasses.fields(self) if f.name not in skip
        }
        out["adc_saturations"] = self.adc_saturations
        out["adc_conversions"] = self.adc_conversions
        out["layers"] = [layer.to_dict() for layer in self.layers]
        out["adc"] = [dict(entry) for entry in self.adc]
        out["warnings"] = list(self.warnings)
        return out


def accuracy_nll(probabilities: np.ndarray, y: Any) -> tuple[float, float]:
    """Accuracy of the argmax and the mean negative log-likelihood of the labels ``y`` (N,)."""
    if hasattr(y, "detach"):
        y = y.detach().cpu().numpy()
    y = np.asarray(y)
    prob = np.asarray(probabilities, dtype=np.float64)
    if y.shape != prob.shape[:1] or not np.issubdtype(y.dtype, np.integer):
        raise ValueError(
            f"labels y must be integers of shape ({prob.shape[0]},), got {y.dtype} {y.shape}"
        )
    if y.size and (y.min() < 0 or y.max() >= prob.shape[1]):
        raise ValueError(f"labels y must lie in [0, {prob.shape[1] - 1}]")
    accuracy = float(np.mean(prob.argmax(axis=1) == y))
    nll = float(-np.mean(np.log(np.maximum(prob[np.arange(y.size), y], P_FLOOR))))
    return accuracy, nll


def saturation_warnings(model: ChipModel, counters: dict[str, Counters]) -> list[str]:
    """One line per layer whose ADCs clipped more than :data:`SATURATION_WARN` of their
    conversions in a run (``counters``: per layer name, e.g. ``ChipRun.counters``), naming the
    converters, their range rule and the field that changes their range."""
    from crossbar.adc_range import CONVERTERS, converter_keys

    out = []
    for pl in model.layers:
        c = counters.get(pl.name)
        if c is None or c.saturation_rate <= SATURATION_WARN:
            continue
        hl = pl.hardware
        keys, per_tile = converter_keys(hl.path)
        what = (
            "output ADC"
            if hl.kind == "output"
            else " and ".join(CONVERTERS[k].removeprefix("per-tile ") for k in keys)
        )
        scope = "per row-tile" if per_tile else "per column"
        rule = hl.adc_range_rule
        out.append(
            f"layer {pl.name!r}: {c.saturation_rate:.1%} of the {what} conversions "
            f"({scope}, {hl.adc_bits} bits, range rule {rule!r}) saturated "
            f"({c.adc_saturations:,} of {c.adc_conversions:,}); its range is set by "
            f"{RANGE_FIELDS.get(rule, 'periphery.adc_range')}"
        )
    return out


def chip_report(model: ChipModel, run: ChipRun, y: Any = None, *, chip: str = "") -> ChipReport:
    """The :class:`ChipReport` of ``run`` (from ``model.run``); ``y`` the labels or None."""
    from mapping.adc_calibration import converter_table

    accuracy = nll = None
    if y is not None:
        accuracy, nll = accuracy_nll(run.probabilities, y)
    read_gain = model.drift_gain(run.t_s) if run.config.drift_compensation else 1.0
    layers = []
    for pl in model.layers:
        hl = pl.hardware
        beta = ratio = align = None
        firing = run.firing_rate.get(pl.name)
        if hl.kind == "binary" and hl.stochastic:
            eff = hl.effective_parameters(run.t_s, read_gain)
            trained = np.asarray(pl.record.beta, dtype=np.float64)
            beta = Spread.of(eff.beta)
            ok = np.abs(trained) > 1e-3
            ratio = Spread.of(eff.beta[ok] / trained[ok])
            align = Spread.of(eff.alignment)
        layers.append(
            LayerReport(
                name=pl.name,
                kind=pl.record.kind,
                matrix=(hl.fan_in, hl.fan_out),
                tiles=pl.tiles,
                read=pl.read,
                firing_rate=firing,
                counters=run.counters[pl.name],
                beta=beta,
                beta_ratio=ratio,
                alignment=align,
            )
        )
    return ChipReport(
        chip=chip or model.chip.description,
        accuracy=accuracy,
        nll=nll,
        n=run.n,
        samples=run.samples,
        mode=run.mode,
        t_s=run.t_s,
        seed=run.seed,
        program_seed=model.seed,
        p_policy=model.p_policy,
        wall_s=run.wall_s,
        layers=tuple(layers),
        adc=tuple(converter_table(model)),
        adc_calibration=(
            None if model.adc_calibration is None else model.adc_calibration.to_dict(False)
        ),
        warnings=tuple(saturation_warnings(model, run.counters)),
    )


def _fmt(x: float | None, spec: str) -> str:
    return "" if x is None or (isinstance(x, float) and math.isnan(x)) else format(x, spec)


def format_layers(report: ChipReport) -> list[str]:
    """The per-layer table of a report as text lines."""
    header = (
        "layer",
        "kind",
        "matrix",
        "tiles",
        "read",
        "fire +1",
        "beta_eff/beta",
        "alignment",
        "ADC sat",
    )
    rows = [header]
    for layer in report.layers:
        c = layer.counters
        sat = f"{c.adc_saturations}/{c.adc_conversions}" if c.adc_conversions else ""
        ratio = layer.beta_ratio
        rows.append(
            (
                layer.name,
                layer.kind,
                f"{layer.matrix[0]}x{layer.matrix[1]}",
                f"{layer.tiles[0]}x{layer.tiles[1]}",
                layer.read,
                _fmt(layer.firing_rate, ".3f"),
                "" if ratio is None else f"{ratio.mean:.3f} ± {ratio.std:.3f}",
                "" if layer.alignment is None else f"{layer.alignment.min:.4f} (min)",
                sat,
            )
        )
    widths = [max(len(r[i]) for r in rows) for i in range(len(header))]
    return [
        "  " + "  ".join(r[i].ljust(widths[i]) for i in range(len(header))).rstrip() for r in rows
    ]
