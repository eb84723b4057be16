"""A layer on the chip: weights mapped to tiles, programmed once, sampled many times.

:meth:`HardwareLayer.build` maps a trained layer (weight (fan_in, fan_out), β, bias, trained p
or σ) onto a :class:`~crossbar.config.ChipConfig`:

1. per-column scale κ_i = (g_max − g_min)/max_j |w_ij| (µS per weight unit; weight normalisation
   makes it free, β absorbs it) or one global κ; differential targets G± = g_min + κ_i·max(±w, 0);
2. split into row-tiles (≤ tile.rows/2 inputs: a weight takes two rows) x column-tiles (≤
   tile.cols neurons); program every tile with its own child generator;
3. calibrate the periphery from the chip's *programmed* state at ``t_cal_s``: the gain a_i
   (:func:`crossbar.periphery.solve_gain`, quantised to ``gain_bits``), the comparator threshold
   θ_i for the bias, the ADC full scales; draw comparator offsets and gain errors.

Reads (every sample) happen ``t_s`` seconds after programming, in one of two modes of the same
engine: ``exact`` (every cell's element drawn by the numba samplers) or ``clt`` (one Gaussian per
neuron — or per row-tile partial sum when ADCs sit between tiles — from the exact mean and
variance). Per-row elements always draw the drivers (mask the inputs, dense product), and
Gaussian elements are exactly Gaussian given the cells, so for them both modes coincide.

Units: conductance µS, voltage V, current µA, time s. See docs/crossbar.md.
"""

from __future__ import annotations

import numbers
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy.special import ndtr

from devices.conductance import check_time

from . import periphery, unit
from .config import ChipConfig
from .counters import Counters
from .moments import column_moments, layer_moments, stack_coefficients
from .sampling import sample_cells, sample_row_currents
from .streams import Streams, decide_gaussian, noisy_sum, standard_normals
from .tile import Tile, TileArrays, program_tile, read_arrays, scale_arrays

KINDS = ("binary", "output")
NOISES = ("bernoulli", "gaussian", "none")
MODES = ("exact", "clt")
SCALES = ("per_column", "global")

#: float32 values per (samples x batch x columns) block processed at once (bounded memory).
DEFAULT_CHUNK_VALUES = 1 << 20


@dataclass(frozen=True)
class EffectiveParameters:
    """What the chip realises per neuron, (fan_out,) arrays (binary layers).

    beta: effective gain, E[u|z] projected on ŵ over √(2 Var u) (trained β on an ideal chip).
    bias_tilde: effective normalised bias (comparator offset included), as b̃ of DESIGN §2.
    alignment: cosine between the realised mean-weight vector μ_i and the trained w_i
        (1 = the direction is preserved; programming noise, faults, p spread lower it).
    gain: the realised a_i.
    """

    beta: np.ndarray
    bias_tilde: np.ndarray
    alignment: np.ndarray
    gain: np.ndarray


# ------------------------------------------------------------------------- validation helpers


def _real_array(name: str, value: Any, ndim: int, shape: tuple[int, ...] | None = None):
    arr = np.asarray(value)
    if arr.dtype == bool or not (
        np.issubdtype(arr.dtype, np.integer) or np.issubdtype(arr.dtype, np.floating)
    ):
        raise TypeError(f"{name} must be a real numeric array, got dtype {arr.dtype}")
    if arr.ndim != ndim or (shape is not None and arr.shape != shape):
        want = shape if shape is not None else f"a {ndim}-D array"
        raise ValueError(f"{name} has shape {arr.shape}; expected {want}")
    if arr.size == 0:
        raise ValueError(f"{name} is empty; expected at least one element")
    arr = arr.astype(np.float64)
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{name} contains non-finite values (inf or nan)")
    return arr


def _choice(name: str, value: Any, allowed: tuple[str, ...]) -> str:
    if value not in allowed:
        raise ValueError(
            f"{name}={value!r} is not allowed; expected one of " + ", ".join(map(repr, allowed))
        )
    return value


def _count(name: str, value: Any, minimum: int = 1) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name}={value!r} must be an integer >= {minimum}")
    if value < minimum:
        raise ValueError(f"{name}={value!r} is out of range; allowed: integers >= {minimum}")
    return int(value)


def _positive(name: str, value: Any, upper: float | None = None) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name}={value!r} must be a real number")
    v = float(value)
    ok = np.isfinite(v) and v > 0 and (upper is None or v < upper)
    if not ok:
        rng = f"(0, {upper:g})" if upper is not None else "(0, inf)"
        raise ValueError(f"{name}={value!r} is out of range; allowed: {rng}")
    return v


def _accumulate(acc: np.ndarray | None, x: np.ndarray) -> np.ndarray:
    return x if acc is None else acc + x


# ------------------------------------------------------------------------- the layer


class HardwareLayer:
    """A trained layer programmed onto a chip (build with :meth:`build`).

    Attributes (read-only by convention): ``kind``, ``noise``, ``chip``, ``weight`` (fan_in,
    fan_out), ``beta``, ``bias``, ``kappa_us`` (fan_out,) µS per weight unit, ``tiles`` (list of
    row-tiles, each a list of :class:`~crossbar.tile.Tile` per column-tile), ``gain_set``
    (a_i the mapper set, after quantisation), ``gain`` (a_i realised, with gain error),
    ``threshold_ua`` (comparator threshold θ_i for the bias, µA), ``offsets_ua`` (comparator
    offsets, µA), ``adc_full_scale_ua`` (dict of full-scale arrays), ``effective`` (the
    :class:`EffectiveParameters` at calibration), ``counters``.
    """

    def __init__(self) -> None:  # use HardwareLayer.build
        self.counters = Counters()
        self._cache: dict[tuple[float, float], list[list[TileArrays]]] = {}
        self._coef_cache: dict[tuple[float, float, int], tuple[np.ndarray, np.ndarray]] = {}

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
            bias: (fan_out,) raw biases b_i (DESIGN §2), or None for zeros.
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
        self = cls()
        if not isinstance(chip, ChipConfig):
            raise TypeError(f"chip={chip!r} must be a crossbar.ChipConfig")
        if not isinstance(rng, np.random.Generator):
            raise TypeError(f"rng={rng!r} must be a numpy.random.Generator")
        self.kind = _choice("kind", kind, KINDS)
        self.scale = _choice("scale", scale, SCALES)
        self.chip = chip
        self.t_cal_s = check_time(t_cal_s)
        w = _real_array("weight", weight, 2)
        fan_in, fan_out = w.shape
        self.weight = w
        self.bias = np.zeros(fan_out) if bias is None else _real_array("bias", bias, 1, (fan_out,))
        self._cond = chip.devices.conductance_model()
        self._neuron = chip.devices.neuron_model()
        self._elem = None
        self.p_trained: float | None = None
        self.sigma_trained: float | None = None
        if self.kind == "output":
            if beta is not None:
                raise ValueError("beta must be None for kind='output' (a real-valued layer)")
            self.noise = "none"
            self.beta = np.ones(fan_out)
        else:
            if beta is None:
                raise ValueError("beta is required for kind='binary' (shape (fan_out,))")
            self.beta = _real_array("beta", beta, 1, (fan_out,))
            self.noise = _choice("noise", noise, NOISES)
            self._check_noise(p, sigma)

        g_min, g_max = float(self._cond.g_min_us), float(self._cond.g_max_us)
        reach = np.max(np.abs(w), axis=0)
        if self.scale == "global":
            reach = np.full(fan_out, reach.max())
        # A column of zeros has no scale of its own; any κ maps it to G⁺ = G⁻ = g_min.
        self.kappa_us = (g_max - g_min) / np.where(reach > 0, reach, 1.0)
        target_plus = np.clip(g_min + self.kappa_us * np.maximum(w, 0.0), g_min, g_max)
        target_minus = np.clip(g_min + self.kappa_us * np.maximum(-w, 0.0), g_min, g_max)

        rows_w, cols = chip.tile.weight_rows, chip.tile.cols
        self.row_slices = [slice(j, min(j + rows_w, fan_in)) for j in range(0, fan_in, rows_w)]
        self.col_slices = [slice(i, min(i + cols, fan_out)) for i in range(0, fan_out, cols)]
        rng_tiles, rng_neuron, rng_gain = rng.spawn(3)
        tile_rngs = rng_tiles.spawn(len(self.row_slices) * len(self.col_slices))
        self.tiles: list[list[Tile]] = [
            [
                program_tile(
                    target_plus[rs, cs],
                    target_minus[rs, cs],
                    rows=rs,
                    cols=cs,
                    conductance=self._cond,
                    element=self._elem,
                    rng=tile_rngs[t * len(self.col_slices) + c],
                )
                for c, cs in enumerate(self.col_slices)
            ]
            for t, rs in enumerate(self.row_slices)
        ]
        self.offsets_ua = self._neuron.program(fan_out, rng=rng_neuron)
        self._calibrate(rng_gain)
        return self

    def _check_noise(self, p: Any, sigma: Any) -> None:
        element_noise = None
        if self.noise != "none":
            self._elem = self.chip.devices.element_model()
            element_noise = self._elem.noise
            if element_noise != self.noise:
                raise ValueError(
                    f"noise={self.noise!r} (as trained) needs a {self.noise} stochastic element, "
                    f"but chip.devices.element is a {element_noise} element "
                    f"({type(self.chip.devices.element).__name__})"
                )
        if self.noise == "bernoulli":
            self.p_trained = _positive("p", p, upper=1.0)
            if sigma is not None:
                raise ValueError(f"sigma={sigma!r} must be None for noise='bernoulli'")
        elif self.noise == "gaussian":
            self.sigma_trained = _positive("sigma", sigma)
            if p is not None:
                raise ValueError(f"p={p!r} must be None for noise='gaussian'")
        elif p is not None or sigma is not None:
            raise ValueError("p and sigma must be None for noise='none' (a deterministic layer)")

    # ------------------------------------------------------------------ structure

    @property
    def fan_in(self) -> int:
        return int(self.weight.shape[0])

    @property
    def fan_out(self) -> int:
        return int(self.weight.shape[1])

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
    def noise_scale(self) -> float:
        """c = √(2 Var ξ) of the trained noise (0 for deterministic layers)."""
        if self.noise == "bernoulli":
            return float(np.sqrt(2.0 * self.p_trained * (1.0 - self.p_trained)))
        if self.noise == "gaussian":
            return float(np.sqrt(2.0) * self.sigma_trained)
        return 0.0

    def _arrays(self, t_s: float, read_gain: float = 1.0) -> list[list[TileArrays]]:
        """The tiles' arrays at ``t_s`` read through a noiseless gain ``read_gain`` (global
        drift compensation; 1 = none), cached per (t_s, gain) (the exact sampler's prepared
        arrays live in the entries)."""
        key = (float(t_s), float(read_gain))
        if key not in self._cache:
            if read_gain != 1.0:
                base = self._arrays(t_s)
                arrays = [[scale_arrays(ta, read_gain) for ta in row] for row in base]
            else:
                elem = self._elem if self.stochastic else None
                arrays = [
                    [
                        read_arrays(
                            tile,
                            conductance=self._cond,
                            element=elem,
                            t_s=t_s,
                            r_wire_ohm=self.chip.wires.r_wire_ohm,
                        )
                        for tile in row
                    ]
                    for row in self.tiles
                ]
            if len(self._cache) >= 4:  # keep memory bounded across many read times
                self._cache.pop(next(iter(self._cache)))
            self._cache[key] = arrays
        return self._cache[key]

    def _moment_coefficients(
        self,
        t_s: float,
        c: int,
        read_gain: float = 1.0,
    ) -> tuple[np.ndarray, np.ndarray]:
        """Mean and variance per unit input of column-tile ``c``'s analog sum u_i = I_s + a_i I_d
        over all row-tiles (DESIGN §5), float64 (fan_in, width) in µA and µA²:
        E[u|z] = z M and Var[u|z] = (z∘z) Q, with M = V (m_s + a m_d) and
        Q = V² (v_el + v_rd + a² v_d) stacked over the row-tiles (a = 0 without a deterministic
        read). Cached per (t_s, c, read_gain): they do not depend on the inputs."""
        key = (float(t_s), int(c), float(read_gain))
        if key not in self._coef_cache:
            cs = self.col_slices[c]
            a = self.gain[cs] if self.reads_deterministic else np.zeros(cs.stop - cs.start)
            v = self.chip.v_read_v
            col = [row[c] for row in self._arrays(t_s, read_gain)]
            m, q = column_moments(col, a, v)
            if len(self._coef_cache) >= 4 * len(self.col_slices):  # bounded, as _arrays
                self._coef_cache.pop(next(iter(self._coef_cache)))
            self._coef_cache[key] = (m, q)
        return self._coef_cache[key]

    def drift_signal_us(self, t_s: float) -> float:
        """Σ over the layer's cells of the mean conductance G(t_s) (µS): what a global drift
        compensation measures (the column currents of an all-ones calibration read)."""
        t = check_time(t_s)
        return float(
            sum(
                np.sum(self._cond.mean(tile.g_plus, t)) + np.sum(self._cond.mean(tile.g_minus, t))
                for row in self.tiles
                for tile in row
            )
        )

    def _stack(self, arrays: list[list[TileArrays]], name: str) -> np.ndarray:
        """One coefficient matrix over the whole layer (fan_in, fan_out)."""
        return np.block([[getattr(ta, name) for ta in row] for row in arrays])

    # ------------------------------------------------------------------ calibration

    def _calibrate(self, rng: np.random.Generator) -> None:
        per = self.chip.periphery
        v = self.chip.v_read_v
        arrays = self._arrays(self.t_cal_s)
        # The stochastic read alone (a = 0) and the deterministic read alone, per volt: the
        # gain solver weighs the two phases against each other.
        m_s, q_s = layer_moments(arrays, 0.0, 1.0)
        m_d = stack_coefficients(arrays, "m_d")
        var_s = v**2 * q_s.sum(axis=0)
        var_d = v**2 * stack_coefficients(arrays, "v_d").sum(axis=0)
        norm = np.linalg.norm(self.weight, axis=0)
        w_hat = self.weight / np.where(norm > 0, norm, 1.0)
        fallback = -self.bias * self.kappa_us * v

        if self.kind == "output":
            a_set = np.zeros(self.fan_out)
            theta = np.zeros(self.fan_out)
        elif not self.stochastic:  # sign layer: polarity ±1 (swap the comparator's inputs)
            a_set = np.where(self.beta < 0, -1.0, 1.0)
            with np.errstate(divide="ignore"):
                theta = np.where(
                    self.beta != 0,
                    fallback / np.abs(np.where(self.beta != 0, self.beta, 1.0)),
                    np.where(self.bias >= 0, -np.inf, np.inf),
                )
        else:
            if per.beta_mode == "none":
                a_set = np.zeros(self.fan_out)
            else:
                big_a = v * np.sum(m_s * w_hat, axis=0)
                big_b = v * np.sum(m_d * w_hat, axis=0)
                a = periphery.solve_gain(big_a, big_b, var_s, var_d, self.beta)
                a_set = periphery.quantise_gain(a, per.gain_bits, per.gain_range)
            theta = periphery.bias_threshold(
                self.bias, self.noise_scale, norm, var_s + a_set**2 * var_d, fallback
            )
        gain_error = rng.standard_normal(self.fan_out) * per.gain_error_sigma
        self.gain_set = a_set
        analog_gain = self.stochastic and per.beta_mode == "two_phase"
        self.gain = a_set * (1.0 + gain_error) if analog_gain else a_set.copy()
        self.threshold_ua = theta
        self._calibrate_adcs(arrays)
        self.effective = self.effective_parameters(self.t_cal_s) if self.kind == "binary" else None

    def _calibrate_adcs(self, arrays: list[list[TileArrays]]) -> None:
        """Full scales (µA) for every ADC of this layer's path (at calibration, fixed after)."""
        per = self.chip.periphery
        v = self.chip.v_read_v
        a = self.gain_set
        path = self.path
        fs: dict[str, np.ndarray] = {}

        def full_scale(m: np.ndarray, var: np.ndarray) -> np.ndarray:
            if per.adc_range == "fixed":
                return np.full(m.shape[1], per.adc_full_scale_ua)
            return periphery.rms_full_scale(m, var, v, per.adc_range_sigmas)

        def per_tile(fn) -> np.ndarray:
            out = np.empty((len(self.row_slices), self.fan_out))
            for t, row in enumerate(arrays):
                for c, ta in enumerate(row):
                    out[t, self.col_slices[c]] = fn(ta, a[self.col_slices[c]])
            return out

        def whole(fn) -> np.ndarray:
            out = np.empty(self.fan_out)
            for c, cs in enumerate(self.col_slices):
                col = [row[c] for row in arrays]
                m, var = zip(*(fn(ta, a[cs]) for ta in col), strict=True)
                out[cs] = full_scale(np.vstack(m), np.vstack(var))
            return out

        def u_coef(ta, ac):
            return column_moments(ta, ac, 1.0)

        def s_coef(ta, ac):
            return column_moments(ta, 0.0, 1.0)

        def d_coef(ta, ac):
            return ta.m_d, ta.v_d

        if path == "tile_adc":
            fs["u"] = per_tile(lambda ta, ac: full_scale(*u_coef(ta, ac)))
        elif path == "digital_sum":
            fs["s"], fs["d"] = whole(s_coef), whole(d_coef)
        elif path == "digital_tile":
            fs["s"] = per_tile(lambda ta, ac: full_scale(*s_coef(ta, ac)))
            fs["d"] = per_tile(lambda ta, ac: full_scale(*d_coef(ta, ac)))
        elif path == "output_analog":
            fs["d"] = whole(d_coef)
        elif path == "output_tile":
            fs["d"] = per_tile(lambda ta, ac: full_scale(*d_coef(ta, ac)))
        self.adc_full_scale_ua = fs

    # ------------------------------------------------------------------ analytic views

    def _check_inputs(self, z: Any) -> np.ndarray:
        arr = np.asarray(z)
        if arr.ndim == 1:
            raise ValueError(
                f"z has shape {arr.shape}; expected (batch, {self.fan_in}) "
                "(use z[None, :] for a single input)"
            )
        if arr.ndim != 2 or arr.shape[1] != self.fan_in or arr.shape[0] < 1:
            raise ValueError(f"z has shape {arr.shape}; expected (batch, {self.fan_in})")
        if arr.dtype == bool or not (
            np.issubdtype(arr.dtype, np.integer) or np.issubdtype(arr.dtype, np.floating)
        ):
            raise TypeError(
                f"z must be an integer or float array of ±1 (0 = undriven row), "
                f"got dtype {arr.dtype}"
            )
        ok = (arr == 1) | (arr == -1) | (arr == 0)
        if not np.all(ok):
            raise ValueError(
                f"z contains {arr[~ok].ravel()[0].item()!r}; states must be -1 or +1 "
                "(0 for an undriven row, e.g. conv zero padding)"
            )
        return np.ascontiguousarray(arr, dtype=np.int8)

    def firing_probability(self, z: Any) -> np.ndarray:
        """The ideal analytic P(z_i = +1 | z), float64 (batch, fan_out), from the trained
        (weight, β, bias, p or σ): ½[1 + erf(β_i m_i/n_i + b_i/(c n_i))], m = zᵀW,
        n_i = √Σ_j z_j² w_ji² (DESIGN §2); sign layers: 1[β_i m_i + b_i >= 0]."""
        if self.kind != "binary":
            raise ValueError("firing_probability is defined for kind='binary' layers only")
        zf = self._check_inputs(z).astype(np.float64)
        m = zf @ self.weight
        if not self.stochastic:
            return (self.beta * m + self.bias >= 0).astype(np.float64)
        n = np.sqrt(np.square(zf) @ np.square(self.weight))
        s = unit.normalised_preactivation(m, n, self.beta, self.bias, self.noise_scale)
        return unit.firing_probability(s)

    def _moments(self, z8: np.ndarray, t_s: float) -> tuple[np.ndarray, np.ndarray]:
        """E and Var (µA, µA²) of the value compared with θ, without ADCs (batch, fan_out)."""
        zf = z8.astype(np.float64)
        z2 = np.square(zf)
        mean = np.empty((z8.shape[0], self.fan_out))
        var = np.empty_like(mean)
        for c, cs in enumerate(self.col_slices):
            m, q = self._moment_coefficients(t_s, c)
            mean[:, cs] = zf @ m
            var[:, cs] = z2 @ q
        if self.analog_comparator:
            mean += self.offsets_ua
            var += self._neuron.config.noise_sigma_ua**2
        return mean, var

    def hardware_probability(self, z: Any, t_s: float = 0.0) -> np.ndarray:
        """P(z_i = +1 | z) predicted for this programmed chip at ``t_s`` (float64 (batch,
        fan_out)): Φ((E[u_i|z] + offset_i − θ_i)/√(Var[u_i|z] + σ_n²)) from the exact mean and
        variance of the pre-comparator value (p spread, g_min, read noise, drift, IR drop, gain
        quantisation and error, comparator offset and noise). ADC quantisation and clipping are
        not included (they are not Gaussian; :meth:`sample` includes them)."""
        if self.kind != "binary":
            raise ValueError("hardware_probability is defined for kind='binary' layers only")
        mean, var = self._moments(self._check_inputs(z), check_time(t_s))
        x = mean - self.threshold_ua
        with np.errstate(divide="ignore", invalid="ignore"):
            p = ndtr(x / np.sqrt(var))
        return np.where(var > 0, p, (x >= 0).astype(np.float64))

    def effective_parameters(self, t_s: float = 0.0) -> EffectiveParameters:
        """The β, b̃ and direction the chip realises at ``t_s`` (see :class:`EffectiveParameters`).

        With μ_i = V (m^s_i + a_i m^d_i) (the mean weight vector, µA per unit input) and
        Var_i = V² Σ_j (v_el + v_rd + a_i² v_d)_ji (+ σ_n² with an analog comparator):
        β_i = μ_i·ŵ_i/√(2 Var_i), b̃_i = (offset_i − θ_i)/√(2 Var_i), alignment = μ̂_i·ŵ_i.
        """
        if self.kind != "binary":
            raise ValueError("effective_parameters is defined for kind='binary' layers only")
        t = check_time(t_s)
        v = self.chip.v_read_v
        arrays = self._arrays(t)
        a = self.gain
        m, q = layer_moments(arrays, a, 1.0)  # per volt: V and V² applied after the sums
        mu = v * m
        var = v**2 * q.sum(axis=0)
        offset = np.zeros(self.fan_out)
        if self.analog_comparator:
            var = var + self._neuron.config.noise_sigma_ua**2
            offset = self.offsets_ua
        norm = np.linalg.norm(self.weight, axis=0)
        w_hat = self.weight / np.where(norm > 0, norm, 1.0)
        proj = np.sum(mu * w_hat, axis=0)
        mu_norm = np.linalg.norm(mu, axis=0)
        scale = np.sqrt(2.0 * var)
        with np.errstate(divide="ignore", invalid="ignore"):
            # A noiseless neuron (sign layers, p = 1) has an infinite gain; 0/0 (an all-zero
            # column) realises no gain and no bias: report 0 rather than nan.
            beta = np.where(scale > 0, proj / scale, np.sign(proj) * np.inf)
            bias = offset - self.threshold_ua
            bias = np.where(scale > 0, bias / scale, np.sign(bias) * np.inf)
            align = np.where(mu_norm > 0, proj / mu_norm, 0.0)
        beta = np.nan_to_num(beta, nan=0.0, posinf=np.inf, neginf=-np.inf)
        bias = np.nan_to_num(bias, nan=0.0, posinf=np.inf, neginf=-np.inf)
        return EffectiveParameters(
            beta=beta, bias_tilde=bias, alignment=align, gain=self.gain.copy()
        )

    # ------------------------------------------------------------------ sampling

    def reset_counters(self) -> Counters:
        """Return the counts so far and start again from zero."""
        out, self.counters = self.counters, Counters()
        return out

    def sample(
        self,
        z: Any,
        samples: int,
        *,
        rng: np.random.Generator,
        mode: str = "exact",
        t_s: float = 0.0,
        chunk_values: int = DEFAULT_CHUNK_VALUES,
        read_gain: float = 1.0,
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
        """
        return self._run(
            z,
            samples,
            rng=rng,
            mode=mode,
            t_s=t_s,
            chunk_values=chunk_values,
            decide=True,
            read_gain=read_gain,
        )

    def preactivation(
        self,
        z: Any,
        samples: int,
        *,
        rng: np.random.Generator,
        mode: str = "exact",
        t_s: float = 0.0,
        chunk_values: int = DEFAULT_CHUNK_VALUES,
        read_gain: float = 1.0,
    ) -> np.ndarray:
        """The value each decision compares with ``threshold_ua``, float32 (samples, batch,
        fan_out), µA: the comparator input u_i + offset_i + noise_i (analog path) or the
        digital sum (ADC paths). With the same ``rng`` state, :meth:`sample` equals
        ``where(preactivation >= threshold_ua, 1, -1)``: element for element on the ADC paths,
        and up to float rounding at the threshold (about 1e-7 per decision) on the analog path,
        whose decisions compare the uniform behind the Gaussian instead of computing it."""
        return self._run(
            z,
            samples,
            rng=rng,
            mode=mode,
            t_s=t_s,
            chunk_values=chunk_values,
            decide=False,
            read_gain=read_gain,
        )

    def logits(
        self,
        z: Any,
        samples: int = 1,
        *,
        rng: np.random.Generator,
        t_s: float = 0.0,
        chunk_values: int = DEFAULT_CHUNK_VALUES,
        read_gain: float = 1.0,
    ) -> np.ndarray:
        """Output layer: logits = ADC(V zᵀ(G⁺ − G⁻) + read noise)/(κ_i V) + b_i, float32
        (samples, batch, fan_out); samples differ only by read noise."""
        if self.kind != "output":
            raise ValueError("logits() is for kind='output' layers; use sample() for binary")
        return self._run(
            z,
            samples,
            rng=rng,
            mode="exact",
            t_s=t_s,
            chunk_values=chunk_values,
            decide=False,
            read_gain=read_gain,
        )

    def _run(
        self, z, samples, *, rng, mode, t_s, chunk_values, decide, read_gain=1.0
    ) -> np.ndarray:
        if self.kind == "output" and decide:
            raise ValueError("sample() is for kind='binary' layers; use logits() for output")
        z8 = self._check_inputs(z)
        n_samples = _count("samples", samples)
        mode = _choice("mode", mode, MODES)
        t = check_time(t_s)
        chunk_values = _count("chunk_values", chunk_values)
        gain = float(read_gain)
        if not (np.isfinite(gain) and gain > 0):
            raise ValueError(f"read_gain={read_gain!r} is out of range; allowed: finite > 0")
        streams = Streams.from_rng(rng)
        arrays = self._arrays(t, gain)
        batch = z8.shape[0]
        out = np.empty((n_samples, batch, self.fan_out), dtype=np.int8 if decide else np.float32)
        counts = Counters(evaluations=n_samples * batch)
        for c, cs in enumerate(self.col_slices):
            width = cs.stop - cs.start
            b_step = max(1, min(batch, chunk_values // width))
            for b0 in range(0, batch, b_step):
                zb = z8[b0 : b0 + b_step]
                block = _Block(self, arrays, c, zb, streams, mode, b0, (t, gain))
                s_step = max(1, chunk_values // (zb.shape[0] * width))
                for s0 in range(0, n_samples, s_step):
                    n = min(s_step, n_samples - s0)
                    values, block_counts = block.run(s0, n, decide)
                    out[s0 : s0 + n, b0 : b0 + zb.shape[0], cs] = values
                    counts = counts + block_counts
        self.counters = self.counters + counts
        return out


class _Block:
    """One column-tile x batch-chunk of an evaluation: moments computed once, samples streamed."""

    def __init__(
        self,
        layer: HardwareLayer,
        arrays,
        c: int,
        z8: np.ndarray,
        streams: Streams,
        mode: str,
        b0: int,
        read: tuple[float, float],
    ) -> None:
        self.layer = layer
        self.read = read  # (t_s, read_gain) of the arrays
        self.c = c
        self.cs = layer.col_slices[c]
        self.tiles = [row[c] for row in arrays]
        self.z8 = z8
        self.streams = streams
        self.mode = mode
        self.b0 = b0
        self.batch = z8.shape[0]
        self.width = self.cs.stop - self.cs.start
        self.v = layer.chip.v_read_v
        self.a = layer.gain[self.cs]
        self.zt = [z8[:, rs] for rs in layer.row_slices]
        # Driven (z ≠ 0) entries per row-tile over the batch chunk (one contiguous count when
        # every input is ±1, the usual case).
        if np.count_nonzero(z8) == z8.size:
            n_driven = [self.batch * (rs.stop - rs.start) for rs in layer.row_slices]
        else:
            n_driven = [int(np.count_nonzero(zt)) for zt in self.zt]
        # z_j² = 1 for ±1 inputs: then Σ_j z_j² v_ji is a column sum, no product needed.
        self.full = [n == zt.size for n, zt in zip(n_driven, self.zt, strict=True)]
        self._memo: dict[Any, np.ndarray] = {}
        # Cells on driven rows (both devices of a pair), per tile, summed over the batch chunk.
        self.driven = [2 * n * self.width for n in n_driven]
        # Whether every tile's stochastic read has moments that do not change between samples
        # (then one Gaussian per neuron is exact or is the clt mode itself).
        kinds = {ta.kind for ta in self.tiles}
        self.invariant = (
            not layer.stochastic
            or kinds <= {"gaussian_cell"}
            or (mode == "clt" and kinds <= {"bernoulli_cell", "gaussian_cell"})
        )

    # -- products with the inputs, (batch, width), memoised per block
    def _mean(self, t: int, name: str) -> np.ndarray:
        key = ("m", t, name)
        if key not in self._memo:
            m = getattr(self.tiles[t], name)
            self._memo[key] = self.v * (self.zt[t].astype(np.float64) @ m)
        return self._memo[key]

    def _var(self, t: int, *names: str) -> np.ndarray:
        key = ("v", t, names)
        if key not in self._memo:
            ta = self.tiles[t]
            v = sum(getattr(ta, n) for n in names)
            if self.full[t]:
                out = np.broadcast_to(v.sum(axis=0), (self.batch, self.width))
            else:
                out = np.square(self.zt[t].astype(np.float64)) @ v
            self._memo[key] = self.v**2 * out
        return self._memo[key]

    def _moments(self) -> tuple[np.ndarray, np.ndarray]:
        """Mean and variance of the analog comparator input (sample-invariant case), float32
        (batch, width), from one product per block with the layer's cached coefficients (the
        same numbers as :meth:`HardwareLayer.hardware_probability`)."""
        if "moments" not in self._memo:
            layer = self.layer
            t_s, gain = self.read
            m, q = layer._moment_coefficients(t_s, self.c, gain)
            zf = self.z8.astype(np.float64)
            mean = zf @ m
            mean += layer.offsets_ua[self.cs]
            sigma2_n = layer._neuron.config.noise_sigma_ua**2
            if all(self.full):  # z_j² = 1: the variance is a column sum
                var = np.empty(mean.shape, dtype=np.float32)
                var[:] = (q.sum(axis=0) + sigma2_n).astype(np.float32)
            else:
                var = (np.square(zf) @ q + sigma2_n).astype(np.float32)
            self._memo["moments"] = (mean.astype(np.float32), var)
        return self._memo["moments"]

    # -- the stochastic read of one row-tile: (base, var_s, var_c) in µA / µA²
    def _stochastic(self, t: int, s0: int, n: int):
        ta = self.tiles[t]
        v = np.float32(self.v)
        zero1 = np.zeros((1, self.batch, self.width), dtype=np.float32)
        zero2 = np.zeros((self.batch, self.width))
        key = self.streams.key("element", t, self.c)
        kw = dict(samples=n, key=key, sample_offset=s0, batch_offset=self.b0)
        if ta.kind == "bernoulli_cell" and self.mode == "exact":
            zt = self.zt[t]
            res = sample_cells(ta.cells, np.concatenate([zt, -zt], axis=1), **kw)
        elif ta.kind == "bernoulli_row":
            res = sample_row_currents(
                ta.row_g, self.zt[t], ta.row_planes, read_var=ta.row_var, **kw
            )
        elif ta.kind == "gaussian_row":
            r = ta.row_g.shape[0]
            eps = standard_normals(key, n, self.batch, r, sample_offset=s0, batch_offset=self.b0)
            xi_z = (1.0 + ta.row_sigma.astype(np.float32) * eps) * self.zt[t].astype(np.float32)
            cur = (xi_z.reshape(n * self.batch, r) @ ta.row_g).reshape(n, self.batch, self.width)
            return v * cur, zero1, self._var(t, "v_rd")
        else:  # clt, or per-cell Gaussian elements (exactly Gaussian given the cells)
            return self._mean(t, "m_s")[None], zero1, self._var(t, "v_el", "v_rd")
        if isinstance(res, tuple):
            return v * res[0], (v * v) * res[1], zero2
        return v * res, zero1, zero2

    def _noisy(self, base, var_s, var_c, key, s0, n) -> np.ndarray:
        return noisy_sum(
            base,
            np.zeros((self.batch, self.width)),
            var_s,
            var_c,
            np.zeros(self.width),
            key,
            n_samples=n,
            sample_offset=s0,
            batch_offset=self.b0,
            decide=False,
        )

    def _read_d(self, t: int, s0: int, n: int) -> np.ndarray:
        """The deterministic read of row-tile t with its read noise, float32 (n, batch, width)."""
        zero1 = np.zeros((1, self.batch, self.width), dtype=np.float32)
        return noisy_sum(
            zero1,
            self._mean(t, "m_d"),
            zero1,
            self._var(t, "v_d"),
            np.zeros(self.width),
            self.streams.key("read_d", t, self.c),
            n_samples=n,
            sample_offset=s0,
            batch_offset=self.b0,
            decide=False,
        )

    def _read_s(self, t: int, s0: int, n: int) -> np.ndarray:
        """The stochastic read of row-tile t with its read noise, float32 (n, batch, width)."""
        base, var_s, var_c = self._stochastic(t, s0, n)
        return self._noisy(base, var_s, var_c, self.streams.key("read_s", t, self.c), s0, n)

    def _analog(self, s0: int, n: int, decide: bool) -> np.ndarray:
        """Bit lines summed in analog, comparator with offset and noise (one Gaussian/neuron)."""
        layer = self.layer
        theta = layer.threshold_ua[self.cs]
        key = self.streams.key("decision", self.c)
        kw = dict(n_samples=n, sample_offset=s0, batch_offset=self.b0)
        if self.invariant:
            mean, var = self._moments()
            if decide:  # U >= Φ(t), one table look-up per decision (see crossbar._noise)
                return decide_gaussian(mean, var, theta, key, **kw)
            zero1 = np.zeros((1, self.batch, self.width), dtype=np.float32)
            return noisy_sum(zero1, mean, zero1, var, theta, key, decide=False, **kw)
        base = var_s = None
        var_c = np.zeros((self.batch, self.width))
        for t in range(len(self.tiles)):
            b_, vs_, vc_ = self._stochastic(t, s0, n)
            base, var_s = _accumulate(base, b_), _accumulate(var_s, vs_)
            var_c = var_c + vc_
        shift = np.broadcast_to(layer.offsets_ua[self.cs], (self.batch, self.width))
        if layer.reads_deterministic:
            for t in range(len(self.tiles)):
                shift = shift + self.a * self._mean(t, "m_d")
                var_c = var_c + self.a**2 * self._var(t, "v_d")
        var_c = var_c + layer._neuron.config.noise_sigma_ua**2
        return noisy_sum(base, shift, var_s, var_c, theta, key, decide=decide, **kw)

    def run(self, s0: int, n: int, decide: bool) -> tuple[np.ndarray, Counters]:
        layer = self.layer
        path = layer.path
        per = layer.chip.periphery
        cs = self.cs
        n_tiles = len(self.tiles)
        evals = n * self.batch
        phases = int(layer.stochastic) + int(layer.reads_deterministic)
        counts = dict(
            device_reads=phases * sum(self.driven) * n, tile_reads=phases * n_tiles * evals
        )
        decisions = evals * self.width
        if path == "analog":
            return self._analog(s0, n, decide), Counters(comparator_decisions=decisions, **counts)
        a = self.a.astype(np.float32)
        conversions = 0
        saturations = 0

        def adc(x, fs, bits):
            nonlocal conversions, saturations
            y, sat = periphery.adc_convert(x, fs, bits)
            conversions += x.size  # every x here is one conversion per (sample, row, column)
            saturations += sat
            return y

        fs = layer.adc_full_scale_ua
        bits = per.adc_bits
        if path in ("output_analog", "output_tile"):
            bits = per.output_adc_bits
            reads = [self._read_d(t, s0, n) for t in range(n_tiles)]
            if path == "output_analog":
                u = adc(sum(reads), fs["d"][cs], bits)
            else:
                u = sum(adc(x, fs["d"][t, cs], bits) for t, x in enumerate(reads))
            logits = u / (layer.kappa_us[cs] * self.v) + layer.bias[cs]
            return logits.astype(np.float32), Counters(
                adc_conversions=conversions, adc_saturations=saturations, **counts
            )
        if path == "tile_adc":
            u = None
            zero1 = np.zeros((1, self.batch, self.width), dtype=np.float32)
            for t in range(n_tiles):
                # I_s + a·I_d of one row-tile: both reads' noises are independent Gaussians
                # given the cells, so they travel as one Gaussian of the summed variance.
                if layer.stochastic:
                    base, var_s, var_c = self._stochastic(t, s0, n)
                else:
                    base, var_s, var_c = zero1, zero1, np.zeros((self.batch, self.width))
                shift = np.zeros((self.batch, self.width))
                if layer.reads_deterministic:
                    shift = self.a * self._mean(t, "m_d")
                    var_c = var_c + self.a**2 * self._var(t, "v_d")
                x = noisy_sum(
                    base,
                    shift,
                    var_s,
                    var_c,
                    np.zeros(self.width),
                    self.streams.key("read_s", t, self.c),
                    n_samples=n,
                    sample_offset=s0,
                    batch_offset=self.b0,
                    decide=False,
                )
                u = _accumulate(u, adc(x, fs["u"][t, cs], bits))
        elif path == "digital_sum":
            xs = sum(self._read_s(t, s0, n) for t in range(n_tiles))
            xd = sum(self._read_d(t, s0, n) for t in range(n_tiles))
            u = adc(xs, fs["s"][cs], bits) + a * adc(xd, fs["d"][cs], bits)
        else:  # digital_tile
            us = sum(adc(self._read_s(t, s0, n), fs["s"][t, cs], bits) for t in range(n_tiles))
            ud = sum(adc(self._read_d(t, s0, n), fs["d"][t, cs], bits) for t in range(n_tiles))
            u = us + a * ud
        u = np.asarray(u, dtype=np.float32)
        counter = Counters(
            digital_decisions=decisions,
            adc_conversions=conversions,
            adc_saturations=saturations,
            **counts,
        )
        if decide:
            theta = layer.threshold_ua[cs].astype(np.float32)
            return np.where(u >= theta, 1, -1).astype(np.int8), counter
        return u, counter
