"""Reading a programmed layer: the samples of one evaluation, streamed block by block.

:func:`read_out` walks column-tiles x batch chunks x sample chunks (each block bounded by
``chunk_values`` float32 values) and, per block, draws the reads of the layer's path:

- ``analog``: bit-line currents summed in analog, comparator with offset and noise — one
  Gaussian per neuron when the moments do not change between samples (clt mode, Gaussian
  elements, deterministic layers), else every cell's or row's element drawn (exact mode);
- ``tile_adc`` / ``digital_sum`` / ``digital_tile``: the phases' values through ADCs, summed and
  compared digitally; ``output_analog`` / ``output_tile``: the output layer's logits.

All randomness comes from counter-based streams (:class:`crossbar.streams.Streams`) indexed by
(tile, column-tile, sample, example), so the result does not depend on the chunking or the
number of threads. Units: µA, µA².
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import numpy as np

from . import periphery
from .counters import Counters
from .moment_tables import (
    deterministic_tables,
    moment_tables,
    tile_mean_table,
    tile_var_table,
)
from .products import InputCodes, all_ternary, driven_sum, encode_inputs, signed_product
from .sampling import sample_cells, sample_row_currents
from .streams import Streams, decide_gaussian, noisy_sum, standard_normals

if TYPE_CHECKING:  # the layer imports this module
    from .adc_range import SignalRecorder
    from .layer import HardwareLayer

#: the two read modes of the same engine
MODES = ("exact", "clt")

#: float32 values per (samples x batch x columns) block processed at once (bounded memory).
DEFAULT_CHUNK_VALUES = 1 << 20

# Samples per input the exact kernel reads together (crossbar._kernels._READS_PER_TASK).
_EXACT_SAMPLES = 8


def check_states(z: Any, fan_in: int) -> np.ndarray:
    """Input states as a C-contiguous int8 (batch, fan_in) array of ±1 (0 = an undriven row,
    e.g. conv zero padding); errors name the shape, dtype or offending value."""
    arr = np.asarray(z)
    if arr.ndim == 1:
        raise ValueError(
            f"z has shape {arr.shape}; expected (batch, {fan_in}) "
            "(use z[None, :] for a single input)"
        )
    if arr.ndim != 2 or arr.shape[1] != fan_in or arr.shape[0] < 1:
        raise ValueError(f"z has shape {arr.shape}; expected (batch, {fan_in})")
    if arr.dtype == bool or not (
        np.issubdtype(arr.dtype, np.integer) or np.issubdtype(arr.dtype, np.floating)
    ):
        raise TypeError(
            f"z must be an integer or float array of ±1 (0 = undriven row), got dtype {arr.dtype}"
        )
    if arr.dtype == np.int8 and all_ternary(arr):  # one pass, no temporaries
        return np.ascontiguousarray(arr)
    ok = (arr == 1) | (arr == -1) | (arr == 0)
    if not np.all(ok):
        raise ValueError(
            f"z contains {arr[~ok].ravel()[0].item()!r}; states must be -1 or +1 "
            "(0 for an undriven row, e.g. conv zero padding)"
        )
    return np.ascontiguousarray(arr, dtype=np.int8)


def read_out(
    layer: HardwareLayer,
    z8: np.ndarray,
    n_samples: int,
    *,
    streams: Streams,
    mode: str,
    t_s: float,
    read_gain: float,
    chunk_values: int,
    decide: bool,
    record: SignalRecorder | None = None,
) -> tuple[np.ndarray, Counters]:
    """``n_samples`` reads of ``layer`` for states ``z8`` (validated int8 (batch, fan_in)).

    Returns (int8 ±1 decisions if ``decide`` else the float32 pre-decision values or logits,
    shape (n_samples, batch, fan_out); the counts of this evaluation). With ``record``, every
    converter's input is handed to it before conversion (ADC calibration on data).
    """
    arrays = layer.read_arrays(t_s, read_gain)
    batch = z8.shape[0]
    out = np.empty((n_samples, batch, layer.fan_out), dtype=np.int8 if decide else np.float32)
    counts = Counters(evaluations=n_samples * batch)
    # The exact per-cell kernel shares each row's work among up to 8 samples of one input:
    # give it that many per block (fewer batch rows per block instead; results do not depend
    # on the blocks).
    per_input = min(n_samples, _EXACT_SAMPLES) if mode == "exact" else 1
    for c, cs in enumerate(layer.col_slices):
        width = cs.stop - cs.start
        b_step = max(1, min(batch, chunk_values // (width * per_input)))
        for b0 in range(0, batch, b_step):
            zb = z8[b0 : b0 + b_step]
            block = _Block(layer, arrays, c, zb, streams, mode, b0, (t_s, read_gain), record)
            s_step = max(1, chunk_values // (zb.shape[0] * width))
            for s0 in range(0, n_samples, s_step):
                n = min(s_step, n_samples - s0)
                values, block_counts = block.run(s0, n, decide)
                out[s0 : s0 + n, b0 : b0 + zb.shape[0], cs] = values
                counts = counts + block_counts
    return out, counts


def _accumulate(acc: np.ndarray | None, x: np.ndarray) -> np.ndarray:
    return x if acc is None else acc + x


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
        record: SignalRecorder | None = None,
    ) -> None:
        self.layer = layer
        self.record = record
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

    # -- products with the inputs, (batch, width), memoised per block; each row summed in one
    # fixed float32 order of its own inputs (crossbar.products), whatever the batch chunk
    def _memoised(self, key: Any, compute: Callable[[], Any]) -> Any:
        """``compute()``, once per block and ``key``."""
        if key not in self._memo:
            self._memo[key] = compute()
        return self._memo[key]

    def _tile_codes(self, t: int) -> InputCodes:
        return self._memoised(("codes", t), lambda: encode_inputs(np.ascontiguousarray(self.zt[t])))

    def _mean(self, t: int, name: str) -> np.ndarray:
        t_s, gain = self.read
        return self._memoised(
            ("m", t, name),
            lambda: signed_product(
                self._tile_codes(t), tile_mean_table(self.layer, t_s, gain, t, self.c, name)
            ),
        )

    def _var(self, t: int, *names: str) -> np.ndarray:
        t_s, gain = self.read
        return self._memoised(
            ("v", t, names),
            lambda: driven_sum(
                self._tile_codes(t), tile_var_table(self.layer, t_s, gain, t, self.c, names)
            ),
        )

    def _moments(self) -> tuple[np.ndarray, np.ndarray]:
        """Mean and variance of the analog comparator input (sample-invariant case), float32
        (batch, width): offset + z M and σ_n² + (z∘z) Q with the layer's cached coefficients
        (the numbers of :meth:`HardwareLayer.hardware_probability`), each row summed in one
        fixed float32 order that depends on its own inputs only (:mod:`crossbar.products`), so
        the values do not depend on the batch chunk or the thread count."""
        return self._fixed_products("moments", moment_tables)

    def _fixed_products(self, key: str, tables: Any) -> tuple[np.ndarray, np.ndarray]:
        """Memoised under ``key``: the inputs' signed product with the mean table and driven
        sum with the variance table of ``tables(layer, t_s, c, gain)`` (float32 (batch,
        width), µA and µA²)."""
        t_s, gain = self.read

        def compute() -> tuple[np.ndarray, np.ndarray]:
            mean_table, var_table = tables(self.layer, t_s, self.c, gain)
            codes = self._codes()
            return signed_product(codes, mean_table), driven_sum(codes, var_table)

        return self._memoised(key, compute)

    # -- the stochastic read of one row-tile: (base, var_s, var_c) in µA / µA²
    def _stochastic(self, t: int, s0: int, n: int):
        ta = self.tiles[t]
        v = np.float32(self.v)
        zero1 = np.zeros((1, self.batch, self.width), dtype=np.float32)
        zero2 = np.zeros((self.batch, self.width))
        # Per-row drivers are shared by the column-tiles of a row-tile (one physical driver per
        # input row): one stream per row-tile, so every column-tile sees the same draw ξ_j of a
        # read. Per-cell elements have one stream per tile.
        if ta.kind in ("bernoulli_row", "gaussian_row"):
            key = self.streams.key("element", t)
        else:
            key = self.streams.key("element", t, self.c)
        kw = dict(samples=n, key=key, sample_offset=s0, batch_offset=self.b0)
        if ta.kind == "bernoulli_cell" and self.mode == "exact":
            res = sample_cells(ta.cells, self.zt[t], **kw)  # differential: G⁻ read with −z
        elif ta.kind == "bernoulli_row":
            res = sample_row_currents(
                ta.row_g, self.zt[t], ta.row_planes, read_var=ta.row_var, **kw
            )
        elif ta.kind == "gaussian_row":
            r = ta.row_g.shape[0]
            eps = standard_normals(key, n, self.batch, r, sample_offset=s0, batch_offset=self.b0)
            xi_z = (1.0 + ta.row_sigma.astype(np.float32) * eps) * self.zt[t].astype(np.float32)
            # float64 product rounded once: a float32 BLAS row changes with the rows per call
            # (chunking); float64 rows differ by ~1e-16, which the rounding absorbs.
            cur = (xi_z.reshape(n * self.batch, r).astype(np.float64) @ ta.m_d).astype(np.float32)
            cur = cur.reshape(n, self.batch, self.width)
            return v * cur, zero1, self._var(t, "v_rd")
        else:  # clt, or per-cell Gaussian elements (exactly Gaussian given the cells)
            return self._mean(t, "m_s")[None], zero1, self._var(t, "v_el", "v_rd")
        if isinstance(res, tuple):
            return v * res[0], (v * v) * res[1], zero2
        return v * res, zero1, zero2

    def _cells_sum(self, s0: int, n: int) -> tuple[np.ndarray, np.ndarray]:
        """The exact per-cell reads of every row-tile summed in row-tile order, V·I (µA) and
        V²·V_read (µA², or a zero row without read noise), float32 (n, batch, width): the
        kernel scales by V and adds each tile into one pair of buffers (the same numbers as
        summing :meth:`_stochastic`'s per-tile arrays)."""
        v = np.float32(self.v)
        base = var_s = None
        for t, ta in enumerate(self.tiles):
            cells = ta.cells
            kw = dict(
                samples=n,
                key=self.streams.key("element", t, self.c),
                sample_offset=s0,
                batch_offset=self.b0,
                scale=v,
            )
            has_var = cells.read_var is not None
            if base is None:
                res = sample_cells(cells, self.zt[t], **kw)
                base, var_s = res if has_var else (res, None)
                continue
            if has_var and var_s is None:
                var_s = np.zeros_like(base)
            sample_cells(cells, self.zt[t], out=(base, var_s) if has_var else base, **kw)
        if var_s is None:
            var_s = np.zeros((1, self.batch, self.width), dtype=np.float32)
        return base, var_s

    def _codes(self) -> InputCodes:
        return self._memoised("codes", lambda: encode_inputs(self.z8))

    def _deterministic(self) -> tuple[np.ndarray, np.ndarray]:
        """The sample-invariant terms of the analog sum when the stochastic read is drawn:
        offset + Σ_t a V (z m_d) and σ_n² + Σ_t a² V² (z∘z v_d) over the row-tiles (µA, µA²),
        float32 (batch, width), each row in one fixed order (:mod:`crossbar.products`)."""
        return self._fixed_products("deterministic", deterministic_tables)

    def _noisy(self, base, shift, var_s, var_c, key, s0, n) -> np.ndarray:
        """The value x = base + shift + √(var_s + var_c)·N of samples s0 .. s0 + n − 1 of this
        chunk, float32 (n, batch, width), N from ``key`` (no decision: the ADC paths)."""
        return noisy_sum(
            base,
            shift,
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
        key = self.streams.key("read_d", t, self.c)
        return self._noisy(zero1, self._mean(t, "m_d"), zero1, self._var(t, "v_d"), key, s0, n)

    def _read_s(self, t: int, s0: int, n: int) -> np.ndarray:
        """The stochastic read of row-tile t with its read noise, float32 (n, batch, width)."""
        base, var_s, var_c = self._stochastic(t, s0, n)
        shift = np.zeros((self.batch, self.width))
        return self._noisy(base, shift, var_s, var_c, self.streams.key("read_s", t, self.c), s0, n)

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
        if self.mode == "exact" and all(ta.kind == "bernoulli_cell" for ta in self.tiles):
            base, var_s = self._cells_sum(s0, n)
            shift, var_c = self._deterministic()
            return noisy_sum(base, shift, var_s, var_c, theta, key, decide=decide, **kw)
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
        var_c = var_c + layer.neuron.config.noise_sigma_ua**2
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

        def adc(x, fs, bits, key, tile=None):
            nonlocal conversions, saturations
            if self.record is not None:  # calibration: the converter's input, before clipping
                self.record.add(key, tile, self.c, x)
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
                u = adc(sum(reads), fs["d"][cs], bits, "d")
            else:
                u = sum(adc(x, fs["d"][t, cs], bits, "d", t) for t, x in enumerate(reads))
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
                key = self.streams.key("read_s", t, self.c)
                x = self._noisy(base, shift, var_s, var_c, key, s0, n)
                u = _accumulate(u, adc(x, fs["u"][t, cs], bits, "u", t))
        elif path == "digital_sum":
            xs = sum(self._read_s(t, s0, n) for t in range(n_tiles))
            xd = sum(self._read_d(t, s0, n) for t in range(n_tiles))
            u = adc(xs, fs["s"][cs], bits, "s") + a * adc(xd, fs["d"][cs], bits, "d")
        else:  # digital_tile
            us = sum(
                adc(self._read_s(t, s0, n), fs["s"][t, cs], bits, "s", t) for t in range(n_tiles)
            )
            ud = sum(
                adc(self._read_d(t, s0, n), fs["d"][t, cs], bits, "d", t) for t in range(n_tiles)
            )
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
