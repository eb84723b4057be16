"""A layer on the chip: weights mapped to tiles, programmed once, sampled many times.

:meth:`HardwareLayer.build` maps a trained layer (weight (fan_in, fan_out), β, bias, trained p
or σ) onto a :class:`~crossbar.config.ChipConfig` in three steps, one module each:

1. :mod:`crossbar.build`: per-column scale κ_i (µS per weight unit), differential targets
   G± = g_min + κ_i·max(±w, 0), row-tiles (<= tile.rows/2 inputs: a weight takes two rows) x
   column-tiles (<= tile.cols neurons), every tile programmed with its own child generator;
2. :mod:`crossbar.calibration`: the periphery calibrated from the chip's *programmed* state at
   ``t_cal_s``: the gain a_i, the comparator threshold θ_i for the bias, the ADC full scales;
   comparator offsets and gain errors drawn;
3. :mod:`crossbar.readout`: reads (every sample) ``t_s`` seconds after programming, in one of
   two modes of the same engine: ``exact`` (every cell's element drawn by the numba samplers)
   or ``clt`` (one Gaussian per neuron — or per row-tile partial sum when ADCs sit between
   tiles — from the exact mean and variance). Per-row elements always draw the drivers (mask
   the inputs, dense product), and Gaussian elements are exactly Gaussian given the cells, so
   for them both modes coincide.

The column mean/variance coefficients come from :func:`crossbar.moments.column_moments`, the
ideal NSM unit from :mod:`crossbar.unit`, the analytic probabilities from
:mod:`crossbar.analytic`. Units: conductance µS, voltage V, current µA, time s.
See docs/crossbar.md.
"""

from __future__ import annotations

from typing import Any, TypedDict, Unpack

import numpy as np

from devices.conductance import check_time
from devices.fields import check_choice, check_int, check_real

from . import adc_range, analytic, calibration, realised
from .build import (
    KINDS,
    SCALES,
    column_scale_us,
    differential_targets,
    program_tiles,
    tile_slices,
    trained_parameters,
)
from .calibration import Calibration, EffectiveParameters
from .config import ChipConfig
from .counters import Counters
from .moments import column_moments
from .readout import DEFAULT_CHUNK_VALUES, MODES, check_states, read_out
from .streams import Streams
from .tile import Tile, TileArrays, read_arrays, scale_arrays

__all__ = [
    "DEFAULT_CHUNK_VALUES",
    "EffectiveParameters",
    "HardwareLayer",
    "OutputReadOptions",
    "ReadOptions",
]


class OutputReadOptions(TypedDict, total=False):
    """The keyword options of :meth:`HardwareLayer.logits` (defaults: ``t_s`` 0.0 s,
    ``chunk_values`` :data:`DEFAULT_CHUNK_VALUES`, ``read_gain`` 1.0; see
    :meth:`HardwareLayer.sample`)."""

    t_s: float
    chunk_values: int
    read_gain: float


class ReadOptions(OutputReadOptions, total=False):
    """The keyword options of :meth:`HardwareLayer.sample` and
    :meth:`HardwareLayer.preactivation`: those of :class:`OutputReadOptions` and ``mode``
    ("exact", the default, or "clt")."""

    mode: str


#: entries of the read-time caches kept (bounded memory across many read times)
_CACHED_READ_TIMES = 4


class HardwareLayer:
    """A trained layer programmed onto a chip (build with :meth:`build`).

    Attributes (read-only by convention), all set in ``__init__``:
        kind, noise, scale: as built ("binary"/"output"; "bernoulli"/"gaussian"/"none";
            "per_column"/"global").
        chip: the :class:`~crossbar.config.ChipConfig`. t_cal_s: calibration time (s).
        weight (fan_in, fan_out), beta (fan_out,), bias (fan_out,): the trained parameters
            (float64; β = 1 for output layers); fan_in, fan_out: their sizes (ints).
            p_trained, sigma_trained: the trained noise.
        conductance, element, neuron: the chip's device models (element None when the layer
            reads no stochastic element).
        kappa_us: (fan_out,) µS per weight unit. row_slices, col_slices: the tiling.
        tiles: ``tiles[row_tile][column_tile]``, each a :class:`~crossbar.tile.Tile`.
        offsets_ua: comparator offsets (µA).
        gain_set, gain_grid, gain, threshold_ua, adc_full_scale_ua: the calibration
            (:class:`~crossbar.calibration.Calibration`); with ``adc_range = "calibrated"``
            the full scales are the ``"rms"`` ones until :meth:`calibrate_adcs` (or
            :meth:`set_adc_full_scales`) sets them from data. adc_calibrated: whether it did.
        effective: the :class:`EffectiveParameters` at calibration (None for output layers).
        counters: :class:`~crossbar.counters.Counters` since build or :meth:`reset_counters`.
    """

    def __init__(
        self,
        *,
        kind: str,
        noise: str,
        scale: str,
        chip: ChipConfig,
        weight: np.ndarray,
        beta: np.ndarray,
        bias: np.ndarray,
        p_trained: float | None,
        sigma_trained: float | None,
        element: Any | None,
        t_cal_s: float,
    ) -> None:
        """The layer's trained parameters and chip, not yet mapped (use :meth:`build`)."""
        self.kind = kind
        self.noise = noise
        self.scale = scale
        self.chip = chip
        self.t_cal_s = t_cal_s
        self.weight = weight
        self.beta = beta
        self.bias = bias
        self.p_trained = p_trained
        self.sigma_trained = sigma_trained
        self.conductance = chip.devices.conductance_model()
        self.element = element
        self.neuron = chip.devices.neuron_model()
        fan_in, fan_out = weight.shape
        self.fan_in, self.fan_out = int(fan_in), int(fan_out)
        # Mapping and programming (build).
        self.kappa_us = np.zeros(fan_out)
        self.row_slices = tile_slices(fan_in, chip.tile.weight_rows)
        self.col_slices = tile_slices(fan_out, chip.tile.cols)
        self.tiles: list[list[Tile]] = []
        self.offsets_ua = np.zeros(fan_out)
        # Calibration (calibrate).
        self.gain_set = np.zeros(fan_out)
        self.gain_grid: Any = None
        self.gain = np.zeros(fan_out)
        self.threshold_ua = np.zeros(fan_out)
        self.adc_full_scale_ua: dict[str, np.ndarray] = {}
        # Whether the full scales were calibrated on data (adc_range = "calibrated").
        self.adc_calibrated = False
        self.effective: EffectiveParameters | None = None
        self.counters = Counters()
        # Read-time caches: tile arrays per (t_s, read_gain), column moments per (t_s, c, gain).
        self._cache: dict[tuple[float, float], list[list[TileArrays]]] = {}
        self._coef_cache: dict[tuple[float, int, float], tuple[np.ndarray, np.ndarray]] = {}
        # Fixed-order product tables of the CLT / exact read terms (crossbar.moment_tables).
        self._table_cache: dict[tuple, Any] = {}

    # ------------------------------------------------------------------ build

    @classmethod
    def build(
        cls,
        weight: np.ndarray,
        beta: np.ndarray | None = None,
        bias: np.ndarray | None = None,
        *,
        noise: str = "bernoulli",
        p: float | None = None,
        sigma: float | None = None,
        chip: ChipConfig,
        rng: np.random.Generator,
        kind: str = "binary",
        scale: str = "per_column",
        t_cal_s: float = 0.0,
    ) -> HardwareLayer:
        """Map, program and calibrate a layer.

        Args:
            weight: (fan_in, fan_out) trained weights (rows = inputs, columns = neurons).
            beta: (fan_out,) trained gains β_i (binary layers; None for ``kind="output"``).
            bias: (fan_out,) raw biases b_i (docs/model.md §1), or None for zeros.
            noise: the trained noise: "bernoulli" (with ``p``), "gaussian" (with ``sigma``), or
                "none" for a deterministic sign layer z_i = sign(β_i w_i·z + b_i).
            p, sigma: the trained Bernoulli p in (0, 1) / Gaussian σ > 0.
            chip: the chip configuration. Its stochastic element must match ``noise``.
            rng: programming randomness (device-to-device, programming noise, faults, element
                variation, comparator offsets, gain errors), split with ``rng.spawn``.
            kind: "binary" (±1 outputs through comparators) or "output" (real-valued logits
                through the output ADC).
            scale: "per_column" (κ_i per neuron, full conductance range for every column) or
                "global" (one κ for the layer).
            t_cal_s: seconds after programming at which the periphery is calibrated.
        """
        if not isinstance(chip, ChipConfig):
            raise TypeError(f"chip={chip!r} must be a crossbar.ChipConfig")
        if not isinstance(rng, np.random.Generator):
            raise TypeError(f"rng={rng!r} must be a numpy.random.Generator")
        kind = check_choice("kind", kind, KINDS)
        scale = check_choice("scale", scale, SCALES)
        t_cal_s = check_time(t_cal_s)
        trained = trained_parameters(
            weight, beta, bias, kind=kind, noise=noise, p=p, sigma=sigma, chip=chip
        )
        self = cls(scale=scale, chip=chip, t_cal_s=t_cal_s, **trained)
        w = self.weight
        g_min, g_max = float(self.conductance.g_min_us), float(self.conductance.g_max_us)
        self.kappa_us = column_scale_us(w, g_min, g_max, scale)
        target_plus, target_minus = differential_targets(w, self.kappa_us, g_min, g_max)
        rng_tiles, rng_neuron, rng_gain = rng.spawn(3)
        self.tiles = program_tiles(
            target_plus,
            target_minus,
            self.row_slices,
            self.col_slices,
            conductance=self.conductance,
            element=self.element,
            rng=rng_tiles,
        )
        self.offsets_ua = self.neuron.program(self.fan_out, rng=rng_neuron)
        self._apply(calibration.calibrate(self, rng_gain))
        return self

    def _apply(self, cal: Calibration) -> None:
        self.gain_set = cal.gain_set
        self.gain_grid = cal.gain_grid
        self.gain = cal.gain
        self.threshold_ua = cal.threshold_ua
        self.adc_full_scale_ua = cal.adc_full_scale_ua
        self.effective = self.effective_parameters(self.t_cal_s) if self.kind == "binary" else None

    # ------------------------------------------------------------------ structure

    @property
    def stochastic(self) -> bool:
        """Whether the layer has a stochastic read phase (binary NSM layers)."""
        return self.kind == "binary" and self.noise != "none"

    @property
    def reads_deterministic(self) -> bool:
        """Whether a deterministic-phase read happens on every evaluation."""
        if not self.stochastic:
            return True
        return self.chip.periphery.beta_mode != "none"

    @property
    def path(self) -> str:
        """How partial values become a decision / logit.

        "analog": currents summed on the bit lines, analog comparator (two_phase / none / sign
        layers with analog partial sums); "tile_adc": (I_s + a I_d) per row-tile through an ADC,
        digital sum and decision; "digital_sum": both phases summed in analog, each through an
        ADC, combined digitally; "digital_tile": both phases per row-tile through ADCs;
        "output_analog" / "output_tile": the output layer's ADC after / before the tile sum.
        """
        per = self.chip.periphery
        tile_adc = per.partial_sums == "adc"
        if self.kind == "output":
            return "output_tile" if tile_adc else "output_analog"
        if self.stochastic and per.beta_mode == "digital":
            return "digital_tile" if tile_adc else "digital_sum"
        return "tile_adc" if tile_adc else "analog"

    @property
    def analog_comparator(self) -> bool:
        """Whether the decision is taken by an analog comparator (offset and noise apply)."""
        return self.path == "analog"

    @property
    def adc_bits(self) -> int:
        """Bits of this layer's ADCs (``output_adc_bits`` for the output layer; 0 = ideal)."""
        per = self.chip.periphery
        return per.output_adc_bits if self.kind == "output" else per.adc_bits

    @property
    def adc_range_rule(self) -> str:
        """How the full scales were set: ``"none"`` (no ADC, or ideal ones), ``"fixed"``,
        ``"rms"``, ``"calibrated"`` (on data), or ``"rms (not calibrated)"``."""
        return adc_range.range_rule(self)

    @property
    def needs_adc_calibration(self) -> bool:
        """Whether the chip asks for data-calibrated ADCs that have not been calibrated yet."""
        return self.adc_range_rule == "rms (not calibrated)"

    def record_adc_signals(
        self, z: Any, samples: int, recorder: Any, *, rng: np.random.Generator, **kw: Any
    ) -> None:
        """Hand every converter's input over ``samples`` exact reads per input to ``recorder``
        (:func:`crossbar.adc_range.record_signals`; ``t_s``, ``chunk_values``)."""
        adc_range.record_signals(self, z, samples, recorder, rng=rng, **kw)

    def set_adc_full_scales(self, full_scales: Any) -> None:
        """Set the full scales (µA) of every converter from data: ``{key: array}`` in the
        layout of :attr:`adc_full_scale_ua` (see :mod:`crossbar.adc_range`)."""
        self.adc_full_scale_ua = adc_range.check_full_scales(self, full_scales)
        self.adc_calibrated = True

    def calibrate_adcs(
        self, z: Any, samples: int | None = None, *, rng: np.random.Generator, **kw: Any
    ) -> dict[str, np.ndarray]:
        """Calibrate the ADC full scales on calibration inputs ``z`` (batch, fan_in) — training
        data, never the evaluated data (:func:`crossbar.adc_range.calibrate_layer`; ``t_s``,
        ``chunk_values``). Returns the new full scales."""
        return adc_range.calibrate_layer(self, z, samples, rng=rng, **kw)

    @property
    def rms_full_scales(self) -> dict[str, np.ndarray]:
        """The ``"rms"`` rule's full scales of this layer's converters (µA), from the
        programmed state at ``t_cal_s``; the stand-in for a dead column on data."""
        arrays = self.read_arrays(self.t_cal_s)
        return calibration.adc_full_scales(self, arrays, self.gain_set, rule="rms")

    @property
    def noise_scale(self) -> float:
        """c = √(2 Var ξ) of the trained noise (0 for deterministic layers)."""
        if self.noise == "bernoulli":
            return float(np.sqrt(2.0 * self.p_trained * (1.0 - self.p_trained)))
        if self.noise == "gaussian":
            return float(np.sqrt(2.0) * self.sigma_trained)
        return 0.0

    # ------------------------------------------------------------------ the tiles at read time

    def read_arrays(self, t_s: float, read_gain: float = 1.0) -> list[list[TileArrays]]:
        """The tiles' :class:`~crossbar.tile.TileArrays` ``t_s`` seconds after programming,
        read through a noiseless gain ``read_gain`` (global drift compensation; 1 = none), as
        ``arrays[row_tile][column_tile]``. Cached per (t_s, read_gain) (the exact sampler's
        prepared arrays live in the entries); treat them as read-only."""
        key = (float(t_s), float(read_gain))
        if key not in self._cache:
            if read_gain != 1.0:
                base = self.read_arrays(t_s)
                arrays = [[scale_arrays(ta, read_gain) for ta in row] for row in base]
            else:
                elem = self.element if self.stochastic else None
                arrays = [
                    [
                        read_arrays(
                            tile,
                            conductance=self.conductance,
                            element=elem,
                            t_s=t_s,
                            r_wire_ohm=self.chip.wires.r_wire_ohm,
                        )
                        for tile in row
                    ]
                    for row in self.tiles
                ]
            if len(self._cache) >= _CACHED_READ_TIMES:
                self._cache.pop(next(iter(self._cache)))
            self._cache[key] = arrays
        return self._cache[key]

    def moment_coefficients(
        self, t_s: float, c: int, read_gain: float = 1.0
    ) -> tuple[np.ndarray, np.ndarray]:
        """(M, Q) of :func:`~crossbar.moments.column_moments` for column-tile ``c`` at ``t_s``
        with this layer's realised gains, over all row-tiles: float64 (fan_in, width), µA and
        µA² per unit input (a = 0 without a deterministic read). Cached per (t_s, c,
        read_gain): they do not depend on the inputs."""
        key = (float(t_s), int(c), float(read_gain))
        if key not in self._coef_cache:
            cs = self.col_slices[c]
            a = self.gain[cs] if self.reads_deterministic else np.zeros(cs.stop - cs.start)
            col = [row[c] for row in self.read_arrays(t_s, read_gain)]
            m, q = column_moments(col, a, self.chip.v_read_v)
            if len(self._coef_cache) >= _CACHED_READ_TIMES * len(self.col_slices):
                self._coef_cache.pop(next(iter(self._coef_cache)))
            self._coef_cache[key] = (m, q)
        return self._coef_cache[key]

    def drift_signal_us(self, t_s: float) -> float:
        """Σ over the layer's cells of the mean conductance G(t_s) (µS): what a global drift
        compensation measures (the column currents of an all-ones calibration read)."""
        t = check_time(t_s)
        mean = self.conductance.mean
        return float(
            sum(
                np.sum(mean(tile.g_plus, t)) + np.sum(mean(tile.g_minus, t))
                for row in self.tiles
                for tile in row
            )
        )

    # ------------------------------------------------------------------ analytic views

    def firing_probability(self, z: Any) -> np.ndarray:
        """The ideal analytic P(z_i = +1 | z), float64 (batch, fan_out), from the trained
        (weight, β, bias, p or σ) (:func:`crossbar.analytic.ideal_probability`)."""
        return analytic.ideal_probability(self, z)

    def hardware_probability(self, z: Any, t_s: float = 0.0, read_gain: float = 1.0) -> np.ndarray:
        """P(z_i = +1 | z) predicted for this programmed chip at ``t_s`` (float64 (batch,
        fan_out)) from the exact mean and variance of the pre-comparator value (p spread,
        g_min, read noise, drift, IR drop, gain quantisation and error, comparator offset and
        noise), the column signals read through the noiseless gain ``read_gain`` (global drift
        compensation, as :meth:`sample`); ADC quantisation and clipping are not included
        (:func:`crossbar.analytic.hardware_probability`)."""
        return analytic.hardware_probability(self, z, t_s, read_gain)

    def effective_parameters(self, t_s: float = 0.0, read_gain: float = 1.0) -> EffectiveParameters:
        """The β, b̃ and direction the chip realises at ``t_s`` with the column signals read
        through the noiseless gain ``read_gain`` (global drift compensation; 1 = none) (see
        :class:`EffectiveParameters` and :func:`crossbar.calibration.effective_parameters`; the
        comparator's offset and noise count on the analog path)."""
        if self.kind != "binary":
            raise ValueError("effective_parameters is defined for kind='binary' layers only")
        analog = self.analog_comparator
        gain = check_real("read_gain", read_gain, gt=0.0)
        return calibration.effective_parameters(
            self.read_arrays(check_time(t_s), gain),
            weight=self.weight,
            gain=self.gain,
            threshold_ua=self.threshold_ua,
            offsets_ua=self.offsets_ua if analog else np.zeros(self.fan_out),
            noise_sigma_ua=self.neuron.config.noise_sigma_ua if analog else 0.0,
            v_read_v=self.chip.v_read_v,
        )

    def device_parameters(self, t_s: float = 0.0) -> dict[str, np.ndarray]:
        """The realised parameters of every device of the programmed layer, as the engine reads
        them (:func:`crossbar.realised.device_parameters`: G₀, G(t_s), ν, faults, and the
        elements' p — 16-bit quantised as sampled — or σ; per cell, or per input row)."""
        return realised.device_parameters(self, check_time(t_s))

    # ------------------------------------------------------------------ sampling

    def reset_counters(self) -> Counters:
        """Return the counts so far and start again from zero."""
        out, self.counters = self.counters, Counters()
        return out

    def sample(
        self, z: Any, samples: int, *, rng: np.random.Generator, **read: Unpack[ReadOptions]
    ) -> np.ndarray:
        """MC samples of the layer's binary outputs, int8 ±1 of shape (samples, batch, fan_out).

        Args:
            z: (batch, fan_in) input states ±1 (int or float; 0 = undriven row, e.g. padding).
            samples: independent reads per input.
            rng: source of this call's keys (advanced by one draw); all per-read randomness
                comes from counter-based streams keyed from it, so the result does not depend on
                ``chunk_values`` or the number of numba threads.
            mode: "exact" (every cell's element drawn) or "clt" (Gaussian from exact moments).
            t_s: read time after programming (s): drift and read noise at t.
            chunk_values: bound on the values of one (samples x batch x columns) block.
            read_gain: a noiseless gain > 0 on every column signal (global drift compensation).
        """
        return self._run(z, samples, rng, decide=True, **read)

    def preactivation(
        self, z: Any, samples: int, *, rng: np.random.Generator, **read: Unpack[ReadOptions]
    ) -> np.ndarray:
        """The value each decision compares with ``threshold_ua``, float32 (samples, batch,
        fan_out), µA: the comparator input u_i + offset_i + noise_i (analog path) or the
        digital sum (ADC paths). With the same ``rng`` state, :meth:`sample` equals
        ``where(preactivation >= threshold_ua, 1, -1)``: element for element on the ADC paths,
        and up to float rounding at the threshold (about 1e-7 per decision) on the analog path,
        whose decisions compare the uniform behind the Gaussian instead of computing it."""
        return self._run(z, samples, rng, decide=False, **read)

    def logits(
        self,
        z: Any,
        samples: int = 1,
        *,
        rng: np.random.Generator,
        **read: Unpack[OutputReadOptions],
    ) -> np.ndarray:
        """Output layer: logits = ADC(V zᵀ(G⁺ − G⁻) + read noise)/(κ_i V) + b_i, float32
        (samples, batch, fan_out); samples differ only by read noise."""
        if self.kind != "output":
            raise ValueError("logits() is for kind='output' layers; use sample() for binary")
        return self._run(z, samples, rng, decide=False, mode="exact", **read)

    def _run(
        self,
        z: Any,
        samples: Any,
        rng: np.random.Generator,
        *,
        decide: bool,
        mode: Any = "exact",
        t_s: Any = 0.0,
        chunk_values: Any = DEFAULT_CHUNK_VALUES,
        read_gain: Any = 1.0,
    ) -> np.ndarray:
        """The read of :meth:`sample` (``decide``), :meth:`preactivation` and :meth:`logits`;
        the defaults of :class:`ReadOptions` live here."""
        if self.kind == "output" and decide:
            raise ValueError("sample() is for kind='binary' layers; use logits() for output")
        z8 = check_states(z, self.fan_in)
        n_samples = check_int("samples", samples, ge=1)
        mode = check_choice("mode", mode, MODES)
        t = check_time(t_s)
        chunk_values = check_int("chunk_values", chunk_values, ge=1)
        gain = check_real("read_gain", read_gain, gt=0.0)
        out, counts = read_out(
            self,
            z8,
            n_samples,
            streams=Streams.from_rng(rng),
            mode=mode,
            t_s=t,
            read_gain=gain,
            chunk_values=chunk_values,
            decide=decide,
        )
        self.counters = self.counters + counts
        return out
