"""Run a crossbar program on a virtual chip: the programmed model and its Monte-Carlo prediction.

:func:`program_chip` turns a chip-independent :class:`~mapping.program.Program` and a
:class:`~crossbar.ChipConfig` into a :class:`ChipModel`: its crossbar layers programmed once
(:mod:`mapping.programming`: read conditions, ``p_policy``, device randomness) and the digital
steps (input binariser, max-pool over ±1 states, flatten; :mod:`mapping.digital`) in numpy.
:meth:`ChipModel.run` takes the run settings as a :class:`~mapping.run_config.RunConfig`.

Monte-Carlo prediction streams over fixed *units* of examples x samples, each with its own
seeds (:mod:`mapping.mc_stream`, the stream definition), so the result does not depend on how
many units are held in memory, on the engine's chunk sizes or on the number of numba threads.
"""

from __future__ import annotations

import dataclasses
import time
import warnings
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from scipy.special import log_softmax

from crossbar import ChipConfig, Counters
from crossbar.layer import DEFAULT_CHUNK_VALUES, EffectiveParameters
from devices.errors import ArgumentError
from devices.fields import check_bool, check_int, check_real
from mapping import mc_stream
from mapping.program import Program
from mapping.programming import (
    MappingError,
    ProgrammedLayer,
    program_layers,
    read_conditions,
    selector_mean_p,
)
from mapping.records import (
    OutputLayer,
)
from mapping.run_config import MODES, P_POLICIES, RunConfig, as_run_config

#: The RunConfig fields a run may change (p_policy is fixed when the chip is programmed).
_RUN_CHANGES = ("samples", "mode", "t_s", "drift_compensation", "seed")


# ------------------------------------------------------------------------------ the model


@dataclass(frozen=True, eq=False)
class ChipRun:
    """The result of :meth:`ChipModel.run`.

    probabilities: (N, classes) float64 MC-averaged softmax. log_probabilities: log of the same,
    computed stably. firing_rate: per crossbar binary layer name, the fraction of +1 outputs over
    neurons, samples and examples. firing_counts: per binary layer, +1 counts per neuron
    (out_shape) summed over samples and examples. counters: per crossbar layer name, the engine's
    operation counts of this run. config: the run's settings (its ``p_policy`` is the one the
    model was programmed with); n: examples; wall_s: seconds of the MC loop.
    """

    probabilities: np.ndarray
    log_probabilities: np.ndarray
    firing_rate: dict[str, float]
    firing_counts: dict[str, np.ndarray]
    counters: dict[str, Counters]
    config: RunConfig
    n: int
    wall_s: float

    @property
    def samples(self) -> int:
        return self.config.samples

    @property
    def mode(self) -> str:
        return self.config.mode

    @property
    def t_s(self) -> float:
        return self.config.t_s

    @property
    def seed(self) -> int:
        return self.config.seed


@dataclass(eq=False, repr=False)
class ChipModel:
    """A program programmed onto a chip; build with :func:`program_chip`.

    Attributes: ``program``, ``chip`` (as given), ``layers`` (the :class:`ProgrammedLayer` of
    every crossbar layer, in order), ``seed`` (programming seed), ``p_policy``, ``t_cal_s``,
    ``adc_calibration`` (the :class:`~mapping.adc_calibration.AdcCalibration` of the last
    :meth:`calibrate`, or None).
    """

    program: Program
    chip: ChipConfig
    layers: tuple[ProgrammedLayer, ...]
    seed: int = field(kw_only=True)
    p_policy: str = field(kw_only=True)
    t_cal_s: float = field(kw_only=True)
    adc_calibration: Any = field(default=None, init=False)

    def __post_init__(self) -> None:
        self._by_index = {pl.index: pl for pl in self.layers}

    # ---------------------------------------------------------------- ADC calibration

    @property
    def needs_adc_calibration(self) -> bool:
        """Whether some layer's chip asks for ADC ranges calibrated on data
        (``periphery.adc_range = "calibrated"``) and :meth:`calibrate` has not run yet."""
        return any(pl.hardware.needs_adc_calibration for pl in self.layers)

    def calibrate(
        self, x_cal: Any, samples: int | None = None, *, seed: int | None = None, source: str = ""
    ) -> Any:
        """Set the data-calibrated ADC ranges from calibration inputs ``x_cal`` (N,
        *input_shape) in [0, 1] — training data, never the evaluated data — read through the
        programmed chip with its real noise, layer by layer (:mod:`mapping.adc_calibration`:
        full scale = ``adc_cal_headroom`` x the ``adc_cal_percentile``-th percentile of
        |signal| per converter). ``samples`` reads per example (default
        ``periphery.adc_cal_samples``); ``seed`` the calibration reads' seed (default the
        programming seed); ``source`` describes ``x_cal`` in the report. Returns the
        :class:`~mapping.adc_calibration.AdcCalibration` (also ``self.adc_calibration``)."""
        from mapping.adc_calibration import calibrate_model

        self.adc_calibration = calibrate_model(
            self, x_cal, samples=samples, seed=seed, source=source
        )
        return self.adc_calibration

    def _warn_uncalibrated(self) -> None:
        if self.needs_adc_calibration:
            from mapping.adc_calibration import AdcCalibrationWarning

            names = [repr(pl.name) for pl in self.layers if pl.hardware.needs_adc_calibration]
            warnings.warn(
                f"periphery.adc_range = 'calibrated' but the chip was not calibrated on data: "
                f"the ADCs of layer {', '.join(names)} use the 'rms' ranges of random ±1 inputs. "
                "Call model.calibrate(x_cal) with training inputs (or program_chip(..., "
                "calibration=x_cal)), or set periphery.adc_range = 'rms' to mean it",
                AdcCalibrationWarning,
                stacklevel=3,
            )

    # ---------------------------------------------------------------- views

    @property
    def binary_layers(self) -> tuple[ProgrammedLayer, ...]:
        """The programmed dense / conv layers (those with ±1 outputs)."""
        return tuple(pl for pl in self.layers if not isinstance(pl.record, OutputLayer))

    def effective_parameters(
        self, t_s: float = 0.0, drift_compensation: bool = False
    ) -> dict[str, EffectiveParameters]:
        """Per binary layer name: the β, b̃, alignment and gain the chip realises at ``t_s``
        (:meth:`crossbar.HardwareLayer.effective_parameters`; per channel for convolutions),
        with the global drift gain :meth:`drift_gain` applied when ``drift_compensation`` (as
        :meth:`run` applies it)."""
        t = check_real("t_s", t_s, ge=0.0, unit="s")
        gain = self.drift_gain(t) if check_bool("drift_compensation", drift_compensation) else 1.0
        return {pl.name: pl.hardware.effective_parameters(t, gain) for pl in self.binary_layers}

    def drift_gain(self, t_s: float) -> float:
        """The global drift compensation factor α(t) = Σ G(t_cal) / Σ G(t_s) over every cell
        of the chip (one scalar for the whole chip, as measured by a calibration read with all
        inputs on; after Joshi et al., Nat. Commun. 11, 2473 (2020), "global drift
        compensation"). 1 on a chip without drift."""
        t = check_real("t_s", t_s, ge=0.0, unit="s")
        now = sum(pl.hardware.drift_signal_us(t) for pl in self.layers)
        then = sum(pl.hardware.drift_signal_us(self.t_cal_s) for pl in self.layers)
        return float(then / now) if now > 0 else 1.0

    def cells(self) -> int:
        """Physical cells programmed (two per weight: differential pairs)."""
        return sum(2 * pl.hardware.fan_in * pl.hardware.fan_out for pl in self.layers)

    # ---------------------------------------------------------------- the stream

    def programmed(self, index: int) -> ProgrammedLayer:
        """The :class:`ProgrammedLayer` of program layer ``index`` (a crossbar layer)."""
        return self._by_index[index]

    # ---------------------------------------------------------------- streaming

    def _check_x(self, x: Any) -> np.ndarray:
        if hasattr(x, "detach"):  # a torch tensor (torch is not imported here)
            x = x.detach().cpu().numpy()
        x = np.asarray(x)
        if x.dtype == bool or not (
            np.issubdtype(x.dtype, np.integer) or np.issubdtype(x.dtype, np.floating)
        ):
            raise TypeError(f"x must be a real array of inputs in [0, 1], got dtype {x.dtype}")
        shape = self.program.input_shape
        if x.ndim != len(shape) + 1 or tuple(x.shape[1:]) != shape or x.shape[0] < 1:
            raise ValueError(
                f"x has shape {tuple(x.shape)}; the program expects (N >= 1, "
                f"{', '.join(map(str, shape))})"
            )
        if not np.all(np.isfinite(x)):
            raise ValueError("x contains non-finite values (NaN or inf)")
        return x

    #: (block, example slice, sample block, first sample, samples) of every unit
    #: (:func:`mapping.mc_stream.units`).
    units = staticmethod(mc_stream.units)

    def _run_config(self, config: RunConfig | int | None, changes: dict[str, Any]) -> RunConfig:
        """The run's settings; ``p_policy`` is fixed at programming (:func:`program_chip`)."""
        cfg = as_run_config(config, allowed=_RUN_CHANGES, **changes)
        return dataclasses.replace(cfg, p_policy=self.p_policy)

    def run(
        self,
        x: Any,
        config: RunConfig | int | None = None,
        *,
        progress: bool = False,
        chunk_values: int = DEFAULT_CHUNK_VALUES,
        **changes: Any,
    ) -> ChipRun:
        """MC prediction with statistics (see :meth:`predict` for ``x``, ``config`` and the
        settings).

        ``chunk_values`` bounds the engine's (samples x batch x columns) blocks inside a unit; it
        never changes the result. With ``drift_compensation`` every column signal passes through
        the noiseless global gain :meth:`drift_gain` (t_s) before the comparators and ADCs
        (means x α, variances x α²); the comparator offsets and noise, bias thresholds and ADC
        ranges stay as calibrated.
        """
        from tqdm.auto import tqdm

        x = self._check_x(x)
        cfg = self._run_config(config, changes)
        self._warn_uncalibrated()
        chunk_values = check_int("chunk_values", chunk_values, ge=1)
        samples, seed = cfg.samples, cfg.seed
        read_gain = self.drift_gain(cfg.t_s) if cfg.drift_compensation else 1.0
        for pl in self.layers:
            pl.hardware.reset_counters()
        n = x.shape[0]
        classes = self.program.n_classes
        total = np.zeros((n, classes))
        counts = {
            pl.name: np.zeros(pl.record.out_shape, dtype=np.int64) for pl in self.binary_layers
        }
        units = list(self.units(n, samples))
        t0 = time.perf_counter()
        with tqdm(total=len(units), desc="chip MC", unit="unit", disable=not progress) as bar:
            for block, rows, sb, _s0, n_s in units:
                rngs = mc_stream.unit_rngs(self, seed, block, sb)
                logits = mc_stream.unit_pass(
                    self,
                    x[rows],
                    n_s,
                    rngs,
                    mode=cfg.mode,
                    t_s=cfg.t_s,
                    chunk_values=chunk_values,
                    read_gain=read_gain,
                    counts=counts,
                )
                # Softmax summed over the unit's samples, added in unit order (fixed).
                total[rows] += np.exp(log_softmax(logits, axis=2)).sum(axis=0)
                bar.update(1)
        wall_s = time.perf_counter() - t0
        prob = total / samples
        with np.errstate(divide="ignore"):
            log_prob = np.log(prob)
        firing_rate = {name: float(c.sum()) / (c.size * n * samples) for name, c in counts.items()}
        return ChipRun(
            probabilities=prob,
            log_probabilities=log_prob,
            firing_rate=firing_rate,
            firing_counts=counts,
            counters={pl.name: pl.hardware.counters for pl in self.layers},
            config=cfg,
            n=n,
            wall_s=wall_s,
        )

    def predict(
        self,
        x: Any,
        config: RunConfig | int | None = None,
        *,
        progress: bool = False,
        **changes: Any,
    ) -> np.ndarray:
        """MC-averaged softmax probabilities (N, classes) float64 of inputs x (N, *input_shape)
        in [0, 1] (numpy array or torch tensor).

        ``config``: a :class:`~mapping.run_config.RunConfig`, an int (``samples``) or None
        (``RunConfig()``); keyword ``changes`` replace its fields:

            samples: MC samples per example (fresh element draws, read noise, comparator noise).
            t_s: read time after programming (s): drift and read noise at t.
            mode: "exact" (every cell's stochastic element drawn) or "clt" (one Gaussian per
                neuron from the exact mean and variance; the same engine, see crossbar.layer).
            seed: the read randomness (programming randomness is fixed by :func:`program_chip`).
            drift_compensation: the global drift gain at ``t_s`` (:meth:`run`).

        ``p_policy`` is a programming setting (:func:`program_chip`), not a run setting.
        ``progress``: a progress bar over units.
        """
        return self.run(x, config, progress=progress, **changes).probabilities

    def sample_states(
        self,
        x: Any,
        config: RunConfig | int | None = None,
        **changes: Any,
    ) -> list[np.ndarray]:
        """Every layer's output for every MC sample: a list (one entry per program layer) of
        arrays (samples, N, *out_shape) (int8 ±1 states, float64 logits last). The same stream
        as :meth:`run` with the same settings (``config`` and ``changes`` as for
        :meth:`predict`; ``samples`` defaults to 1 here); memory grows with N x samples (use for
        inspection)."""
        x = self._check_x(x)
        if config is None:
            config = RunConfig(samples=1)
        cfg = self._run_config(config, changes)
        self._warn_uncalibrated()
        read_gain = self.drift_gain(cfg.t_s) if cfg.drift_compensation else 1.0
        # per layer, per block: the unit outputs (n_s, B, ...) in sample-block order
        parts: list[dict[int, list[np.ndarray]]] = [{} for _ in self.program.layers]
        for block, rows, sb, _s0, n_s in self.units(x.shape[0], cfg.samples):
            states: list[np.ndarray] = []
            mc_stream.unit_pass(
                self,
                x[rows],
                n_s,
                mc_stream.unit_rngs(self, cfg.seed, block, sb),
                mode=cfg.mode,
                t_s=cfg.t_s,
                chunk_values=DEFAULT_CHUNK_VALUES,
                read_gain=read_gain,
                states=states,
            )
            for i, s in enumerate(states):
                parts[i].setdefault(block, []).append(s)
        return [
            np.concatenate([np.concatenate(p[b], axis=0) for b in sorted(p)], axis=1) for p in parts
        ]


# ------------------------------------------------------------------------------ programming


def program_chip(
    program: Program,
    chip: ChipConfig,
    *,
    seed: int = 0,
    p_policy: str | None = None,
    t_cal_s: float = 0.0,
    config: RunConfig | None = None,
    calibration: Any = None,
) -> ChipModel:
    """Program ``program`` onto ``chip`` and return the :class:`ChipModel`.

    Args:
        program: a compiled program (:func:`mapping.compiler.compile_model` or
            :func:`mapping.program.load_program`).
        chip: the chip (:func:`crossbar.resolve_chip`).
        seed: programming randomness: ``SeedSequence(seed)`` spawned once per program layer
            (layer i always gets child i, so a layer's devices do not change when another
            layer is added or its chip settings change).
        p_policy: "trained" or "chip" (:mod:`mapping.programming`); default ``config.p_policy``, or
            "trained" without a config.
        t_cal_s: seconds after programming at which the periphery is calibrated.
        config: a :class:`~mapping.run_config.RunConfig` whose ``p_policy`` is used (the other
            fields are the run's: pass the same config to :meth:`ChipModel.run`).
        calibration: calibration inputs (N, *input_shape) in [0, 1] for the chip's
            data-calibrated ADCs (``periphery.adc_range = "calibrated"``, the realistic
            presets' default): training data, never the evaluated data. They are read with
            the chip's defaults (:meth:`ChipModel.calibrate`). Without them such a chip uses
            the ``"rms"`` ranges and its runs warn (:class:`~mapping.adc_calibration.
            AdcCalibrationWarning`).

    Raises :class:`MappingError` if a layer cannot run on the chip (noise type, per-location
    β, reference-column encoding), ``ValueError``/``TypeError`` for bad arguments.
    """
    if config is not None and not isinstance(config, RunConfig):
        raise TypeError(f"config must be a mapping.RunConfig, got {type(config).__name__}")
    if p_policy is None:
        p_policy = config.p_policy if config is not None else "trained"
    if config is not None and config.p_policy != p_policy:
        raise ArgumentError(
            "p_policy", p_policy, f"config.p_policy ({config.p_policy!r})", "contradicts config"
        )
    layers = program_layers(program, chip, seed=seed, p_policy=p_policy, t_cal_s=t_cal_s)
    # program_layers validated the arguments: store them as it read them.
    model = ChipModel(
        program, chip, layers, seed=int(seed), p_policy=p_policy, t_cal_s=float(t_cal_s)
    )
    if calibration is not None:
        model.calibrate(calibration)
    return model


def replace_chip(model: ChipModel, **changes: Any) -> ChipModel:
    """Reprogram the same program with some of (chip, seed, p_policy, t_cal_s) changed (the new
    model is not ADC-calibrated: call its :meth:`ChipModel.calibrate`)."""
    kwargs = dict(chip=model.chip, seed=model.seed, p_policy=model.p_policy, t_cal_s=model.t_cal_s)
    unknown = set(changes) - set(kwargs)
    if unknown:
        raise TypeError(f"replace_chip() got unknown fields {sorted(unknown)}")
    kwargs.update(changes)
    chip = kwargs.pop("chip")
    return program_chip(model.program, chip, **kwargs)


__all__ = [
    "MODES",
    "P_POLICIES",
    "ChipModel",
    "ChipRun",
    "MappingError",
    "ProgrammedLayer",
    "program_chip",
    "read_conditions",
    "replace_chip",
    "selector_mean_p",
]
