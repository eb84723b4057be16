"""Random streams of one sampling call: keys per purpose and tile, and per-read Gaussian draws.

Every per-read random quantity of the engine (stochastic elements, read noise, comparator noise)
is a pure function of a key and its coordinates (global sample index s, global batch row b,
counter n) through the counter-based generator of :mod:`crossbar.rng`. The keys of one call are
derived from one base entropy drawn from the caller's ``numpy.random.Generator``:

    key(purpose, *index) = sampler_key(SeedSequence(entropy, spawn_key=(code(purpose), *index)))

so each (purpose, tile) has an independent stream, and a result never depends on how the
samples or the batch are split into chunks, nor on the number of threads.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from . import _noise
from .rng import SamplerKey, sampler_key

#: purpose -> first element of the spawn key (fixed forever: changing them changes all results)
PURPOSES = {"element": 0, "read_s": 1, "read_d": 2, "decision": 3}


@dataclass(frozen=True)
class Streams:
    """The keys of one sampling call (see the module docstring)."""

    entropy: tuple[int, ...]

    @classmethod
    def from_rng(cls, rng: np.random.Generator) -> Streams:
        """Draw 128 bits of base entropy from ``rng`` (advancing it)."""
        if not isinstance(rng, np.random.Generator):
            raise TypeError(
                f"rng={rng!r} must be a numpy.random.Generator (e.g. numpy.random.default_rng(0))"
            )
        words = rng.integers(0, 2**64, size=2, dtype=np.uint64)
        return cls(tuple(int(w) for w in words))

    def key(self, purpose: str, *index: int) -> SamplerKey:
        """The key of ``purpose`` (one of :data:`PURPOSES`) for tile/column-tile ``index``."""
        seq = np.random.SeedSequence(
            entropy=list(self.entropy), spawn_key=(PURPOSES[purpose], *map(int, index))
        )
        return sampler_key(seq)


def standard_normals(
    key: SamplerKey,
    n_samples: int,
    batch: int,
    n: int,
    *,
    sample_offset: int = 0,
    batch_offset: int = 0,
    counter_offset: int = 0,
) -> np.ndarray:
    """float32 (n_samples, batch, n) standard normals at global (sample, batch row, counter)."""
    return _noise.standard_normals(
        *_read_coordinates(key, sample_offset, batch_offset, n_samples),
        np.int64(batch),
        np.int64(n),
        np.int64(counter_offset),
    )


def _read_coordinates(
    key: SamplerKey, sample_offset: int, batch_offset: int, n_samples: int
) -> tuple[np.uint64, np.uint64, np.int64, np.int64, np.int64]:
    """The leading arguments of every kernel of :mod:`crossbar._noise`: the key's two words,
    the global index of the first sample and of the first batch row, and the sample count."""
    k0, k1 = key.words
    return k0, k1, np.int64(sample_offset), np.int64(batch_offset), np.int64(n_samples)


def _f32(a: np.ndarray, ndim: int) -> np.ndarray:
    out = np.ascontiguousarray(a, dtype=np.float32)
    if out.ndim != ndim:
        raise ValueError(f"internal: expected a {ndim}-D array, got shape {out.shape}")
    return out


def noisy_sum(
    base: np.ndarray,
    shift: np.ndarray,
    var_s: np.ndarray,
    var_c: np.ndarray,
    threshold: np.ndarray,
    key: SamplerKey,
    *,
    n_samples: int,
    sample_offset: int,
    batch_offset: int,
    decide: bool,
) -> np.ndarray:
    """x = base + shift + √(var_s + var_c)·N per (sample, batch row, column), N from ``key``.

    ``base`` (1 or n_samples, batch, n), ``shift`` and ``var_c`` (batch, n), ``var_s`` (1 or
    n_samples, batch, n), ``threshold`` (n,). Returns int8 ±1 decisions [x >= threshold] when
    ``decide`` (decided as U >= Φ(t) without computing N: the same event up to float rounding),
    else x as float32 (n_samples, batch, n).
    """
    out_i, out_f = _noise.noisy_sum(
        _f32(base, 3),
        _f32(shift, 2),
        _f32(var_s, 3),
        _f32(var_c, 2),
        _f32(threshold, 1),
        *_read_coordinates(key, sample_offset, batch_offset, n_samples),
        np.int64(0),
        bool(decide),
    )
    return out_i if decide else out_f


def decide_gaussian(
    mean: np.ndarray,
    var: np.ndarray,
    threshold: np.ndarray,
    key: SamplerKey,
    *,
    n_samples: int,
    sample_offset: int,
    batch_offset: int,
) -> np.ndarray:
    """int8 ±1 decisions [mean + √var·N >= threshold], N from ``key``, for moments that do not
    change from sample to sample: mean (batch, n), var (batch, n) or a row broadcast over the
    batch (float32, or converted to it), threshold (n,).

    :func:`noisy_sum`'s decision with base = 0, shift = mean, var_c = var (bit for bit): the
    event U >= Φ((threshold − mean)/√var), one table look-up per value (module docstring of
    :mod:`crossbar._noise`).
    """
    mean32 = _f32(mean, 2)
    var_arr = np.asarray(var)
    if var_arr.ndim == 2 and var_arr.shape[0] > 1 and var_arr.strides[0] == 0:
        var_arr = var_arr[:1]  # one row for the whole batch: no copy
    return _noise.decide_moments(
        mean32,
        _f32(var_arr, 2),
        _f32(threshold, 1),
        *_read_coordinates(key, sample_offset, batch_offset, n_samples),
        np.int64(0),
    )
