"""Calibrating a programmed chip's ADC ranges on data, layer by layer, with its real noise.

With ``periphery.adc_range = "calibrated"`` (the default of every realistic chip) the ADC full
scales are set after programming from the signals the chip sees on *calibration inputs*: the
first ``adc_cal_examples`` training examples in the command line, any inputs the caller gives in
the Python API — never the evaluated data. :func:`calibrate_model` runs them through the
programmed chip in exact mode at the calibration time ``t_cal_s``, ``adc_cal_samples`` reads
per example, and sets every converter's full scale to ``adc_cal_headroom`` x the
``adc_cal_percentile``-th percentile of |signal| (:mod:`crossbar.adc_range`, which also states
the scope: per column, and per row-tile for per-tile ADCs).

Layer by layer: a layer is calibrated on the states the chip's earlier layers produce with
*their* calibrated converters, as a chip would be brought up. The reads follow the runtime's
unit scheme (blocks of :data:`mapping.mc_stream.UNIT_EXAMPLES` examples x
:data:`mapping.mc_stream.UNIT_SAMPLES` reads), each unit's layer i reading from
``SeedSequence([seed, CALIBRATION_STREAM, block, sample_block, i])``, so the ranges are a
function of (chip, programming, calibration inputs, samples, seed) only — not of chunk sizes,
thread counts or sweep workers — and independent of the evaluation's read seed.

Without calibration inputs a "calibrated" chip falls back to the ``"rms"`` rule (random ±1
inputs), and :meth:`mapping.runtime.ChipModel.run` warns (:class:`AdcCalibrationWarning`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from crossbar.adc_range import CONVERTERS, SignalRecorder, converter_keys
from devices.fields import check_int, check_name
from mapping import mc_stream
from mapping.records import ConvLayer

if TYPE_CHECKING:  # the runtime imports this module lazily
    from mapping.runtime import ChipModel

__all__ = [
    "CALIBRATION_STREAM",
    "AdcCalibration",
    "AdcCalibrationWarning",
    "calibrate_model",
    "converter_table",
]

#: Second entropy word of every calibration read (keeps calibration reads apart from the
#: evaluation's streams, which are SeedSequence([seed, block, sample_block, layer])).
CALIBRATION_STREAM = 0x63616C  # "cal"


class AdcCalibrationWarning(UserWarning):
    """A chip with ``adc_range = "calibrated"`` runs without calibration on data (it uses the
    ``"rms"`` ranges of random ±1 inputs instead)."""


@dataclass(frozen=True, eq=False)
class AdcCalibration:
    """How a chip's ADCs were calibrated, and the ranges it set.

    source: what the calibration inputs were (e.g. ``"mnist train[:256]"``); examples, samples,
    seed, t_s: the calibration reads; percentile, headroom: the rule; full_scale_ua:
    ``{layer name: {converter key: full scales µA}}`` ((fan_out,) per column or (row_tiles,
    fan_out) per row-tile and column; keys as :data:`crossbar.adc_range.CONVERTERS`).
    """

    source: str
    examples: int
    samples: int
    seed: int
    t_s: float
    percentile: float
    headroom: float
    full_scale_ua: dict[str, dict[str, np.ndarray]]

    def to_dict(self, full_scales: bool = True) -> dict[str, Any]:
        """JSON-ready form (full scales as nested lists, µA; left out with ``full_scales=False``,
        e.g. where a converter table already lists them)."""
        out = {
            "source": self.source,
            "examples": self.examples,
            "samples": self.samples,
            "seed": self.seed,
            "t_s": self.t_s,
            "percentile": self.percentile,
            "headroom": self.headroom,
        }
        if full_scales:
            out["full_scale_ua"] = {
                name: {key: fs.tolist() for key, fs in scales.items()}
                for name, scales in self.full_scale_ua.items()
            }
        return out


def _locations(record: Any) -> int:
    """Output locations per example that each column converts (1 for dense / output)."""
    if isinstance(record, ConvLayer):
        return math.prod(record.out_shape[1:])
    return 1


def calibrate_model(
    model: ChipModel,
    x_cal: Any,
    *,
    samples: int | None = None,
    seed: int | None = None,
    source: str = "",
) -> AdcCalibration:
    """Calibrate every data-calibrated ADC of ``model`` on inputs ``x_cal`` (N, *input_shape)
    in [0, 1] (training data: never the evaluated data); see the module docstring.

    Args:
        samples: reads per example (default ``periphery.adc_cal_samples``).
        seed: the calibration reads' seed (default: the programming seed ``model.seed``).
        source: a description of ``x_cal`` for the report.

    Layers whose chip has ``adc_range`` "rms" or "fixed", or no ADC (or ideal ones), are left
    as they are. Returns the :class:`AdcCalibration` (also kept as ``model.adc_calibration``).
    """
    per = model.chip.periphery
    x = model._check_x(x_cal)
    n = per.adc_cal_samples if samples is None else check_int("samples", samples, ge=1)
    seed = model.seed if seed is None else check_int("seed", seed, ge=0)
    source = check_name("source", source) if source else f"{x.shape[0]} given examples"
    t_s = model.t_cal_s
    scales: dict[str, dict[str, np.ndarray]] = {}
    for pl in model.layers:
        hl = pl.hardware
        if hl.chip.periphery.adc_range != "calibrated" or hl.adc_range_rule == "none":
            continue
        lp = hl.chip.periphery
        n_values = x.shape[0] * n * _locations(pl.record)
        recorder = SignalRecorder(hl, n_values, lp.adc_cal_percentile)
        for block, rows, sb, _s0, n_s in mc_stream.units(x.shape[0], n):
            rngs = {
                q.index: np.random.default_rng(
                    np.random.SeedSequence([seed, CALIBRATION_STREAM, block, sb, q.index])
                )
                for q in model.layers
            }
            mc_stream.unit_pass(
                model,
                x[rows],
                n_s,
                rngs,
                mode="exact",
                t_s=t_s,
                chunk_values=1 << 20,
                record=(pl.index, recorder),
            )
        hl.set_adc_full_scales(recorder.full_scales(lp.adc_cal_headroom, hl.rms_full_scales))
        scales[pl.name] = {k: v.copy() for k, v in hl.adc_full_scale_ua.items()}
    return AdcCalibration(
        source=source,
        examples=int(x.shape[0]),
        samples=n,
        seed=int(seed),
        t_s=float(t_s),
        percentile=float(per.adc_cal_percentile),
        headroom=float(per.adc_cal_headroom),
        full_scale_ua=scales,
    )


def converter_table(model: ChipModel) -> list[dict[str, Any]]:
    """Every ADC of the chip, one entry per (layer, converter): layer, key, what it converts,
    scope (``"column"`` or ``"row-tile x column"``), bits, rule
    (:attr:`crossbar.HardwareLayer.adc_range_rule`) and its full scales (µA) as a list."""
    out = []
    for pl in model.layers:
        hl = pl.hardware
        if hl.adc_range_rule == "none":
            continue
        keys, per_tile = converter_keys(hl.path)
        for key in keys:
            what = "output ADC" if hl.kind == "output" else CONVERTERS[key]
            out.append(
                {
                    "layer": pl.name,
                    "converter": key,
                    "what": what + (" (per row-tile)" if per_tile and hl.kind == "output" else ""),
                    "scope": "row-tile x column" if per_tile else "column",
                    "bits": hl.adc_bits,
                    "rule": hl.adc_range_rule,
                    "full_scale_ua": hl.adc_full_scale_ua[key].tolist(),
                }
            )
    return out
