"""One hidden NSM layer of a programmed chip, made learnable: :class:`ChipLayer`.

It wraps the engine's own :class:`~crossbar.layer.HardwareLayer` (the tiles of a
:class:`~mapping.runtime.ChipModel`) and adds what learning needs:

- pulse-programmed devices (:mod:`devices.pulse`) behind the tiles' conductances: one
  :class:`~devices.pulse.PulseArray` per side of the differential pairs, over the layer's
  (fan_in, fan_out) matrix. After every pulse train the arrays are written back into the tiles'
  programmed conductances G₀ (:meth:`sync_conductances`), so the conductance model keeps giving
  read noise, drift and the IR-drop attenuation of the new state; a stuck cell (a programming
  fault) keeps its stuck conductance whatever pulses it receives;
- the periphery registers: the gain register a_i (quantised on the layer's gain grid, with the
  gain error drawn at programming) and the threshold t_i in units of the column's σ at
  programming (θ_i = t_i σ⁰_i, µA).

Its read is the HardwareLayer's read; :meth:`margins` gives the noise-free margin E[u|z] − θ and
the σ of the comparator input from :meth:`~crossbar.layer.HardwareLayer.moment_coefficients`
(which take them from :func:`crossbar.moments.column_moments`).
"""

from __future__ import annotations

import dataclasses

import numpy as np

from crossbar import periphery
from crossbar.calibration import calibrate
from crossbar.moments import stack_coefficients
from devices.pulse import PulseConfig, PulseDevice

from ..programming import ProgrammedLayer


def chip_pulse(pulse: PulseConfig, g_min_us: float, g_max_us: float) -> PulseConfig:
    """The pulse response ``pulse`` on the chip's conductance window [g_min, g_max] (µS): the
    same number of steps across the window (steps scaled by the ratio of the windows)."""
    ratio = (g_max_us - g_min_us) / pulse.span_us
    return dataclasses.replace(
        pulse,
        g_min_us=float(g_min_us),
        g_max_us=float(g_max_us),
        dg_up_us=pulse.dg_up_us * ratio,
        dg_down_us=pulse.dg_down_us * ratio,
    )


def invalidate_reads(hl) -> None:
    """Drop the HardwareLayer's read-time caches (tile arrays, moment coefficients and tables)
    after its conductances or gains changed in place."""
    hl._cache.clear()
    hl._coef_cache.clear()
    hl._table_cache.clear()


def _on_grid(a: np.ndarray, grid: periphery.GainGrid, gain_range: float) -> np.ndarray:
    """a on an existing fitted gain grid (the grid is fixed at programming)."""
    c = np.clip(a, -gain_range, gain_range) + grid.offset
    if grid.ratio == 1.0 or grid.lo == 0.0:
        q = np.full(c.shape, grid.lo)
    else:
        with np.errstate(divide="ignore"):
            k = np.rint(np.log(np.abs(c) / grid.lo) / np.log(grid.ratio))
        q = grid.lo * grid.ratio ** np.clip(np.nan_to_num(k, neginf=0.0), 0, grid.levels - 1)
    q = np.where(c < 0, -q, q)
    return np.clip(q - grid.offset, -gain_range, gain_range)


class ChipLayer:
    """A programmed hidden layer with pulse-programmed devices and learnable periphery."""

    def __init__(
        self,
        programmed: ProgrammedLayer,
        *,
        pulse: PulseConfig,
        pair_update: str,
        rng: np.random.Generator,
        init: tuple[np.ndarray, float] | None = None,
    ) -> None:
        """``init = (w0, init_fill)``: learning from scratch — the pairs are re-programmed from
        w0 for pulse learning (``bidirectional``: G⁻ a reference at mid-window, G⁺ = G⁻ + κw;
        ``set_only``: G± = g_min + κ max(±w, 0); the largest |w| of a column uses
        ``init_fill`` of the window) and the periphery recalibrated. None: keep the program's
        conductances (fine-tuning a programmed chip)."""
        self.programmed = programmed
        hl = self.hw = programmed.hardware
        if hl.kind != "binary" or not hl.stochastic:
            raise ValueError(f"layer {programmed.name!r}: learning needs a stochastic NSM layer")
        self.pulse, self.pair_update = pulse, pair_update
        self.v = float(hl.chip.v_read_v)
        rng_init, rng_cal, rng_p, rng_m = rng.spawn(4)
        if init is not None:
            self._reprogram(*init, rng_init)
            invalidate_reads(hl)
            hl._apply(calibrate(hl, rng_cal))  # the periphery calibrated on the new state
        self.stuck_plus = self._assemble("stuck") != 0
        self.stuck_minus = self._assemble("stuck", minus=True) != 0
        self._stuck_g = (self._assemble("g0_us"), self._assemble("g0_us", minus=True))
        self.g_plus = self._pulse_array(self._stuck_g[0], rng_p)
        self.g_minus = self._pulse_array(self._stuck_g[1], rng_m)
        self.sync_conductances()
        # Periphery registers.
        self.a = np.array(hl.gain_set, dtype=np.float64)
        with np.errstate(divide="ignore", invalid="ignore"):
            self.gain_factor = np.where(hl.gain_set != 0, hl.gain / hl.gain_set, 1.0)
        _, sigma = self.margins(np.ones((1, hl.fan_in), dtype=np.int8))
        self.sigma0 = np.where(sigma[0] > 0, sigma[0], 1.0)
        self.t = hl.threshold_ua / self.sigma0
        self.apply_registers()

    # ------------------------------------------------------------------ conductances

    def _assemble(self, field: str, minus: bool = False) -> np.ndarray:
        side = "g_minus" if minus else "g_plus"
        return np.block(
            [[np.asarray(getattr(getattr(t, side), field)) for t in row] for row in self.hw.tiles]
        ).astype(np.float64 if field != "stuck" else np.int8)

    def _reprogram(self, w0: np.ndarray, init_fill: float, rng: np.random.Generator) -> None:
        hl, pulse = self.hw, self.pulse
        span, g_min = pulse.span_us, pulse.g_min_us
        reach = np.max(np.abs(w0), axis=0)
        if self.pair_update == "set_only":
            kappa = init_fill * span / np.where(reach > 0, reach, 1.0)
            gp0, gm0 = g_min + kappa * np.maximum(w0, 0), g_min + kappa * np.maximum(-w0, 0)
        else:  # bidirectional: G⁻ a reference at mid-window, G⁺ = G⁻ + κw
            kappa = init_fill * 0.5 * span / np.where(reach > 0, reach, 1.0)
            gm0 = np.full(w0.shape, g_min + 0.5 * span)
            gp0 = gm0 + kappa * w0
        rngs = rng.spawn(len(hl.row_slices) * len(hl.col_slices))
        for t, rs in enumerate(hl.row_slices):
            for c, cs in enumerate(hl.col_slices):
                tile = hl.tiles[t][c]
                r_p, r_m = rngs[t * len(hl.col_slices) + c].spawn(2)
                for state, target, r in ((tile.g_plus, gp0, r_p), (tile.g_minus, gm0, r_m)):
                    new = hl.conductance.program(target[rs, cs], rng=r)
                    for f in ("g_level_us", "g0_us", "nu", "stuck"):
                        np.copyto(getattr(state, f), getattr(new, f))

    def _pulse_array(self, g0: np.ndarray, rng: np.random.Generator):
        """Pulse devices at the programmed G₀ (programming error may leave a cell just outside
        the window: it keeps its G₀ until a pulse moves it, which lands inside)."""
        p = self.pulse
        arr = PulseDevice(p).init(np.clip(g0, p.g_min_us, p.g_max_us), rng=rng)
        if p.n_levels == 0:
            arr.g_us[...] = g0
        return arr

    def sync_conductances(self) -> None:
        """Write the pulse arrays into the tiles' G₀ (stuck cells keep theirs)."""
        for arr, stuck, g_stuck in (
            (self.g_plus, self.stuck_plus, self._stuck_g[0]),
            (self.g_minus, self.stuck_minus, self._stuck_g[1]),
        ):
            arr.g_us[stuck] = g_stuck[stuck]
        for row in self.hw.tiles:
            for tile in row:
                for state, arr in ((tile.g_plus, self.g_plus), (tile.g_minus, self.g_minus)):
                    g = arr.g_us[tile.rows, tile.cols]
                    state.g0_us[...] = g
                    state.g_level_us[...] = g
        invalidate_reads(self.hw)

    # ------------------------------------------------------------------ periphery

    def a_q(self) -> np.ndarray:
        """The gain register on the layer's grid (the value the periphery sets)."""
        per = self.hw.chip.periphery
        if self.hw.gain_grid is not None:
            return _on_grid(self.a, self.hw.gain_grid, per.gain_range)
        return periphery.quantise_gain(self.a, per.gain_bits, per.gain_range)

    def apply_registers(self) -> None:
        """Set the HardwareLayer's realised gain and threshold from the registers."""
        hl = self.hw
        a_set = self.a_q()
        hl.gain_set = a_set
        hl.gain = a_set * self.gain_factor
        hl.threshold_ua = self.t * self.sigma0
        hl._coef_cache.clear()
        hl._table_cache.clear()

    # ------------------------------------------------------------------ analytic read

    def margins(self, z: np.ndarray, t_s: float = 0.0) -> tuple[np.ndarray, np.ndarray]:
        """(E[u|z] − θ, σ(u|z)) of the decision (µA, float64 (batch, fan_out)) for states z."""
        hl = self.hw
        zf = np.asarray(z, dtype=np.float64)
        mean = np.empty((zf.shape[0], hl.fan_out))
        var = np.empty_like(mean)
        for c, cs in enumerate(hl.col_slices):
            m, q = hl.moment_coefficients(t_s, c)
            mean[:, cs] = zf @ m
            var[:, cs] = np.square(zf) @ q
        if hl.analog_comparator:
            mean += hl.offsets_ua
            var += hl.neuron.config.noise_sigma_ua**2
        return mean - hl.threshold_ua, np.sqrt(np.maximum(var, 1e-30))

    def coefficient(self, name: str, t_s: float = 0.0) -> np.ndarray:
        """One tile coefficient (m_s, m_d, v_d, ...) over the layer (fan_in, fan_out)."""
        return stack_coefficients(self.hw.read_arrays(t_s), name)

    def alpha(self, t_s: float = 0.0) -> np.ndarray:
        """Per column, ᾱ_i = Σ_j m_s m_d / Σ_j m_d² (the stochastic read relative to the
        deterministic one: p for Bernoulli cells, 1 for Gaussian elements), (fan_out,)."""
        m_s, m_d = self.coefficient("m_s", t_s), self.coefficient("m_d", t_s)
        den = np.sum(m_d * m_d, axis=0)
        return np.where(den > 0, np.sum(m_s * m_d, axis=0) / np.where(den > 0, den, 1.0), 0.0)

    @property
    def shape(self) -> tuple[int, int]:
        return self.g_plus.shape  # type: ignore[return-value]
