"""ADC full scales calibrated on data: record what each converter sees, then set its range.

A chip designer sets a converter's range from the signals the chip will see. With
``periphery.adc_range = "calibrated"`` a layer's ADCs are calibrated after programming: the
calibration inputs (training data, never the evaluated data) run through the programmed chip
with its real noise, every converter's input is recorded, and

    full scale = adc_cal_headroom x percentile(|signal|, adc_cal_percentile)

per converter (``numpy.percentile``'s default, linear interpolation between order statistics).
A converter whose calibration signal is identically zero (a dead column) keeps the ``"rms"``
range of :func:`crossbar.periphery.rms_full_scale`, which at least matches its devices.

Which signals form one converter's distribution (the full scale's scope), by readout path
(:attr:`crossbar.HardwareLayer.path`):

========================  =====  ======================================  ====================
path                      key    converter                                scope
========================  =====  ======================================  ====================
``tile_adc``              ``u``  I_s + a·I_d of one row-tile              per row-tile, column
``digital_sum``           ``s``  Σ I_s over the row-tiles (analog sum)    per column
``digital_sum``           ``d``  Σ I_d over the row-tiles                 per column
``digital_tile``          ``s``  I_s of one row-tile                      per row-tile, column
``digital_tile``          ``d``  I_d of one row-tile                      per row-tile, column
``output_analog``         ``d``  Σ I_d, the output layer's ADC            per column
``output_tile``           ``d``  I_d of one row-tile, the output ADC      per row-tile, column
========================  =====  ======================================  ====================

Why per column (and per row-tile): the engine models one converter per bit line and tile,
each with its own reference, so each converter's range follows the signal it converts — as
the ``"rms"`` rule already did. A column's signal scale is set by its own conductance scale
κ_i and weights, so a range shared over columns would waste most codes of the quiet ones. For
a convolution one column is one output channel: its distribution pools every output location.

:class:`SignalRecorder` keeps, per converter, only the largest values the percentile needs (an
exact order statistic, whatever the order or chunking of the reads). Units: µA.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import numpy as np

from devices.conductance import check_time
from devices.fields import check_int, check_real

from .readout import DEFAULT_CHUNK_VALUES, check_states, read_out
from .streams import Streams

if TYPE_CHECKING:  # the layer imports this module
    from .layer import HardwareLayer

__all__ = [
    "CONVERTERS",
    "SignalRecorder",
    "calibrate_layer",
    "calibrated_full_scale",
    "check_full_scales",
    "converter_keys",
    "range_rule",
    "record_signals",
    "top_count",
]

#: converter key -> what it converts (for reports and warnings)
CONVERTERS = {
    "u": "per-tile ADC of I_s + a·I_d",
    "s": "stochastic-phase ADC",
    "d": "deterministic-phase ADC",
}

#: readout path -> (converter keys, whether there is one converter per row-tile)
_PATH_CONVERTERS: dict[str, tuple[tuple[str, ...], bool]] = {
    "analog": ((), False),
    "tile_adc": (("u",), True),
    "digital_sum": (("s", "d"), False),
    "digital_tile": (("s", "d"), True),
    "output_analog": (("d",), False),
    "output_tile": (("d",), True),
}


def converter_keys(path: str) -> tuple[tuple[str, ...], bool]:
    """(converter keys, per row-tile?) of a readout path (see the module table)."""
    return _PATH_CONVERTERS[path]


def _rank(n: int, percentile: float) -> float:
    """The fractional rank h = (n − 1)·q of the percentile among n sorted values, computed as
    ``numpy.percentile``'s linear method does (so the same order statistics are chosen)."""
    q = percentile / 100.0
    return n * q + (1.0 - q) - 1.0


def top_count(n: int, percentile: float) -> int:
    """How many of the largest of ``n`` values determine their ``percentile``-th percentile
    (linear interpolation): the values of rank >= floor((n − 1)·q/100)."""
    return n - math.floor(_rank(n, percentile))


def _percentile_of_top(top: np.ndarray, n: int, percentile: float) -> np.ndarray:
    """The ``percentile`` of n values per column, from their largest ``top.shape[0]`` values
    (any order), as ``numpy.percentile(values, percentile, axis=0)`` (same order statistics,
    linear interpolation; equal up to float rounding)."""
    k = top.shape[0]
    v = np.sort(top.astype(np.float64), axis=0)
    h = _rank(n, percentile)
    lo = math.floor(h)
    i = lo - (n - k)  # rank lo among the n values is index i among the top k
    frac = h - lo
    upper = v[min(i + 1, k - 1)]
    return v[i] + frac * (upper - v[i])


def calibrated_full_scale(
    values: np.ndarray, percentile: float, headroom: float, fallback_ua: np.ndarray
) -> np.ndarray:
    """Full scale per column = headroom x percentile(|values|, axis 0), µA.

    ``values`` (n, columns) the converter inputs (µA); where the percentile is 0 (a column whose
    signal is identically zero) ``fallback_ua`` (columns,) is used instead.
    """
    x = np.abs(np.asarray(values, dtype=np.float64))
    q = check_real("percentile", percentile, gt=0.0, le=100.0)
    pct = np.percentile(x, q, axis=0)
    return _full_scale(pct, check_real("headroom", headroom, ge=1.0), fallback_ua)


def _full_scale(pct: np.ndarray, headroom: float, fallback_ua: np.ndarray) -> np.ndarray:
    fs = headroom * pct
    return np.where(fs > 0, fs, np.asarray(fallback_ua, dtype=np.float64))


class SignalRecorder:
    """The inputs of a layer's converters over calibration reads, reduced to what the
    percentile needs.

    Args:
        layer: the programmed :class:`~crossbar.HardwareLayer` whose converters are recorded.
        n_values: how many values each converter will see in total (reads x inputs that reach
            it; for a convolution, x output locations). Required up front: only the largest
            :func:`top_count` of them are kept, per converter and column.
        percentile: the percentile (0, 100] to compute.

    :meth:`add` takes the values as :func:`crossbar.readout.read_out` produces them (any
    chunking or order); :meth:`full_scales` returns ``headroom`` x the percentile per
    converter, in the layout of ``layer.adc_full_scale_ua``.
    """

    def __init__(self, layer: HardwareLayer, n_values: int, percentile: float) -> None:
        self.layer = layer
        self.n_values = check_int("n_values", n_values, ge=1)
        self.percentile = check_real("percentile", percentile, gt=0.0, le=100.0)
        self.k = top_count(self.n_values, self.percentile)
        keys, per_tile = converter_keys(layer.path)
        tiles = len(layer.row_slices) if per_tile else 1
        self.per_tile = per_tile
        self._converters = [(key, t) for key in keys for t in range(tiles)]
        self._tops: dict[tuple[str, int, int], np.ndarray] = {}
        self._seen: dict[tuple[str, int, int], int] = {}

    def add(self, key: str, tile: int | None, c: int, x: np.ndarray) -> None:
        """Record converter ``key`` of row-tile ``tile`` (None: the one after the analog tile
        sum) for column-tile ``c``: ``x`` (..., width) µA, one value per conversion."""
        t = 0 if tile is None else int(tile)
        if (key, t) not in self._converters:
            raise ValueError(f"the layer's path {self.layer.path!r} has no converter {key!r}/{t}")
        cs = self.layer.col_slices[c]
        width = cs.stop - cs.start
        new = np.abs(np.asarray(x, dtype=np.float32)).reshape(-1, width)
        slot = (key, t, c)
        seen = self._seen.get(slot, 0) + new.shape[0]
        if seen > self.n_values:
            raise ValueError(
                f"converter {key!r} got {seen} values, more than the n_values={self.n_values} "
                "the recorder was made for"
            )
        self._seen[slot] = seen
        both = new if slot not in self._tops else np.vstack([self._tops[slot], new])
        if both.shape[0] > self.k:
            both = np.partition(both, both.shape[0] - self.k, axis=0)[-self.k :]
        self._tops[slot] = both

    def full_scales(self, headroom: float, fallback_ua: Mapping[str, np.ndarray]) -> dict:
        """headroom x percentile per converter: ``{key: (fan_out,) or (row_tiles, fan_out)}``
        µA, float64; ``fallback_ua`` (same layout) stands in where the percentile is 0."""
        h = check_real("headroom", headroom, ge=1.0)
        out: dict[str, np.ndarray] = {}
        for key, t in self._converters:
            fb = np.asarray(fallback_ua[key], dtype=np.float64)
            if key not in out:
                out[key] = np.empty(fb.shape)
            for c, cs in enumerate(self.layer.col_slices):
                slot = (key, t, c)
                if self._seen.get(slot, 0) != self.n_values:
                    raise ValueError(
                        f"converter {key!r} of row-tile {t}, column-tile {c} saw "
                        f"{self._seen.get(slot, 0)} values; expected n_values={self.n_values}"
                    )
                pct = _percentile_of_top(self._tops[slot], self.n_values, self.percentile)
                if self.per_tile:
                    out[key][t, cs] = _full_scale(pct, h, fb[t, cs])
                else:
                    out[key][cs] = _full_scale(pct, h, fb[cs])
        return out


def check_full_scales(layer: HardwareLayer, full_scales: Mapping[str, Any]) -> dict:
    """``full_scales`` validated against ``layer``'s converters (keys, shapes, finite and
    positive µA), as float64 copies."""
    expected = layer.adc_full_scale_ua
    if not isinstance(full_scales, Mapping) or set(full_scales) != set(expected):
        got = sorted(full_scales) if isinstance(full_scales, Mapping) else full_scales
        raise ValueError(
            f"full_scales must have the converters {sorted(expected)} of path "
            f"{layer.path!r}, got {got!r}"
        )
    out = {}
    for key, ref in expected.items():
        fs = np.array(full_scales[key], dtype=np.float64)
        if fs.shape != ref.shape:
            raise ValueError(f"full_scales[{key!r}] has shape {fs.shape}; expected {ref.shape}")
        if not np.all(np.isfinite(fs)) or np.any(fs <= 0):
            raise ValueError(f"full_scales[{key!r}] must be finite and > 0 µA")
        out[key] = fs
    return out


def range_rule(layer: HardwareLayer) -> str:
    """How ``layer``'s full scales were set: ``"none"`` (no ADC, or ideal ones), ``"fixed"``,
    ``"rms"``, ``"calibrated"`` (on data), or ``"rms (not calibrated)"`` (``adc_range`` is
    ``"calibrated"`` but no calibration data was given yet: the rms ranges stand in)."""
    if not layer.adc_full_scale_ua or layer.adc_bits == 0:
        return "none"
    rule = layer.chip.periphery.adc_range
    if rule == "calibrated" and not layer.adc_calibrated:
        return "rms (not calibrated)"
    return rule


def record_signals(
    layer: HardwareLayer,
    z: Any,
    samples: int,
    recorder: SignalRecorder,
    *,
    rng: np.random.Generator,
    t_s: float | None = None,
    chunk_values: int = DEFAULT_CHUNK_VALUES,
) -> None:
    """Read ``layer`` ``samples`` times per input ``z`` (batch, fan_in) in exact mode at
    ``t_s`` (default its calibration time ``t_cal_s``) and hand every converter's input to
    ``recorder``; nothing else changes (counters included). The reads are those
    :meth:`~crossbar.HardwareLayer.sample` / ``logits`` make with the same ``rng`` state."""
    z8 = check_states(z, layer.fan_in)
    n_samples = check_int("samples", samples, ge=1)
    t = layer.t_cal_s if t_s is None else check_time(t_s)
    read_out(
        layer,
        z8,
        n_samples,
        streams=Streams.from_rng(rng),
        mode="exact",
        t_s=t,
        read_gain=1.0,
        chunk_values=check_int("chunk_values", chunk_values, ge=1),
        decide=False,
        record=recorder,
    )


def calibrate_layer(
    layer: HardwareLayer,
    z: Any,
    samples: int | None = None,
    *,
    rng: np.random.Generator,
    t_s: float | None = None,
    chunk_values: int = DEFAULT_CHUNK_VALUES,
) -> dict[str, np.ndarray]:
    """Calibrate ``layer``'s ADC full scales on its own calibration inputs ``z`` (batch,
    fan_in): ``samples`` exact reads per input (default ``periphery.adc_cal_samples``) at
    ``t_s`` (default ``t_cal_s``), then full scale = ``adc_cal_headroom`` x the
    ``adc_cal_percentile``-th percentile of |signal| per converter. Returns the new full
    scales; a layer without converters (or with ideal ones) is left as it is."""
    per = layer.chip.periphery
    z8 = check_states(z, layer.fan_in)
    n = per.adc_cal_samples if samples is None else check_int("samples", samples, ge=1)
    if range_rule(layer) == "none":
        return dict(layer.adc_full_scale_ua)
    recorder = SignalRecorder(layer, n * z8.shape[0], per.adc_cal_percentile)
    record_signals(layer, z8, n, recorder, rng=rng, t_s=t_s, chunk_values=chunk_values)
    layer.set_adc_full_scales(recorder.full_scales(per.adc_cal_headroom, layer.rms_full_scales))
    return dict(layer.adc_full_scale_ua)
