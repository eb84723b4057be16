"""The Monte-Carlo stream of a programmed chip: its units, their seeds and one unit's pass.

Monte-Carlo prediction streams over fixed *units*: a block of :data:`UNIT_EXAMPLES` examples
times a block of :data:`UNIT_SAMPLES` MC samples. Every per-read random draw of a unit comes from
``numpy.random.default_rng(SeedSequence([seed, block, sample_block, layer]))`` (and the engine's
counter-based streams keyed from it), so the result does not depend on how many units are held
in memory, on the engine's chunk sizes or on the number of numba threads; the units are the
stream definition (a different unit size would give other, equally valid, noise). Within a unit
the first crossbar layer reads the unit's examples ``n`` times (its input is the same for every
sample); later layers take the ``n·B`` sampled states as one batch read once. Memory is bounded
by one unit: the largest array is a layer's int8 im2col patches (n·B, L, K).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import numpy as np

from mapping import digital
from mapping.records import BinariseLayer, BinaryMatrixLayer, FlattenLayer, MaxPoolLayer

if TYPE_CHECKING:  # the runtime imports this module
    from mapping.runtime import ChipModel

#: Examples per unit of the MC stream (part of the stream definition, see the module docstring).
UNIT_EXAMPLES = 100
#: MC samples per unit of the MC stream (part of the stream definition).
UNIT_SAMPLES = 10


def units(n_examples: int, samples: int) -> Iterator[tuple[int, slice, int, int, int]]:
    """(block, example slice, sample block, first sample, samples) of every unit."""
    for block, start in enumerate(range(0, n_examples, UNIT_EXAMPLES)):
        rows = slice(start, min(start + UNIT_EXAMPLES, n_examples))
        for sb, s0 in enumerate(range(0, samples, UNIT_SAMPLES)):
            yield block, rows, sb, s0, min(UNIT_SAMPLES, samples - s0)


def unit_rngs(model: ChipModel, seed: int, block: int, sample_block: int) -> dict[int, Any]:
    """The read generators of one unit: per programmed layer index i,
    ``default_rng(SeedSequence([seed, block, sample_block, i]))``."""
    return {
        pl.index: np.random.default_rng(
            np.random.SeedSequence([seed, block, sample_block, pl.index])
        )
        for pl in model.layers
    }


def unit_pass(
    model: ChipModel,
    x: np.ndarray,
    n: int,
    rngs: dict[int, Any],
    *,
    mode: str,
    t_s: float,
    chunk_values: int,
    read_gain: float = 1.0,
    states: list[np.ndarray] | None = None,
    counts: dict[str, np.ndarray] | None = None,
    record: tuple[int, Any] | None = None,
) -> np.ndarray | None:
    """One unit through ``model``: B examples ``x`` x ``n`` samples. Returns logits float64
    (n, B, classes). ``states`` collects every layer's output as (n, B, *out_shape); ``counts``
    adds the +1 outputs per binary layer and neuron. With ``record = (program layer index,
    recorder)`` the unit stops at that layer and hands its converter inputs to the recorder
    instead (ADC calibration); returns None."""
    batch = x.shape[0]
    expanded = False  # whether z holds the n·B sampled states (sample-major) or the B inputs
    z: np.ndarray = x
    for i, layer in enumerate(model.program.layers):
        if isinstance(layer, BinariseLayer):
            z = digital.binarise(layer, z, np.int8)
        elif isinstance(layer, BinaryMatrixLayer):
            hl = model.programmed(i).hardware
            zp = digital.patches(layer, z, np.int8)
            rows, locations, k = zp.shape
            reads = 1 if expanded else n
            if record is not None and record[0] == i:
                hl.record_adc_signals(
                    zp.reshape(rows * locations, k), reads, record[1], rng=rngs[i], t_s=t_s
                )
                return None
            out = hl.sample(
                zp.reshape(rows * locations, k),
                reads,
                rng=rngs[i],
                mode=mode,
                t_s=t_s,
                chunk_values=chunk_values,
                read_gain=read_gain,
            )
            # (reads, rows·L, N) → (reads·rows, L, N): batch row s·B + b, sample-major.
            z = digital.fold(layer, out.reshape(reads * rows, locations, layer.fan_out))
            expanded = True
            if counts is not None:
                counts[layer.name] += np.count_nonzero(z > 0, axis=0)
        elif isinstance(layer, (MaxPoolLayer, FlattenLayer)):
            z = digital.digital_step(layer, z)
        else:  # OutputLayer
            hl = model.programmed(i).hardware
            reads = 1 if expanded else n
            if record is not None and record[0] == i:
                hl.record_adc_signals(z, reads, record[1], rng=rngs[i], t_s=t_s)
                return None
            z = hl.logits(
                z, reads, rng=rngs[i], t_s=t_s, chunk_values=chunk_values, read_gain=read_gain
            )
            z = z.reshape(n * batch, layer.fan_out)
            expanded = True
        if states is not None:
            out_z = z if z.dtype == np.int8 else np.asarray(z, dtype=np.float64)
            states.append(_per_sample(out_z, n, batch, expanded))
    return np.asarray(z, dtype=np.float64).reshape(n, batch, -1)


def _per_sample(z: np.ndarray, n: int, batch: int, expanded: bool) -> np.ndarray:
    """A layer's output as (n, B, *shape): broadcast when it does not depend on the sample yet."""
    if expanded:
        return z.reshape(n, batch, *z.shape[1:])
    return np.broadcast_to(z[None], (n, *z.shape))


__all__ = ["UNIT_EXAMPLES", "UNIT_SAMPLES", "unit_pass", "unit_rngs", "units"]
