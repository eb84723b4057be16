"""Tiles, tiled layers, sampling kernels, periphery, IR drop (imports devices, numpy, numba, scipy).

- :class:`ChipConfig` (devices + :class:`TileConfig` + :class:`PeripheryConfig` +
  :class:`WireConfig`), TOML round trip, dotted-path :func:`replace_field` for sweeps.
- :class:`HardwareLayer`: ``build`` (map, program, calibrate), ``sample`` (exact / clt),
  ``preactivation``, ``logits`` (output layer), ``firing_probability`` (ideal analytic),
  ``hardware_probability`` (CLT prediction for the programmed chip), ``effective_parameters``,
  ``counters``.
- The numerical core: exact samplers (:func:`sample_cell_currents`, :func:`sample_row_currents`),
  the counter-based generator (:func:`sampler_key`), IR drop (:func:`solve_ir_drop`,
  :func:`ir_attenuation`).

Importing compiles nothing: the numba kernels compile (or load from cache) on first use.
See docs/crossbar.md.
"""

from .config import ChipConfig, PeripheryConfig, TileConfig, WireConfig, replace_field
from .counters import Counters
from .ir_drop import (
    IRDropSolution,
    TileNetwork,
    effective_conductance,
    ir_attenuation,
    kcl_residual,
    solve_ir_drop,
)
from .layer import EffectiveParameters, HardwareLayer
from .probability import ProbabilityPlanes, quantise_probability
from .rng import SamplerKey, sampler_key
from .sampling import (
    CellArray,
    prepare_cells,
    sample_cell_currents,
    sample_cells,
    sample_row_currents,
    stack_differential,
)
from .tile import Tile, TileArrays

__all__ = [
    "CellArray",
    "ChipConfig",
    "Counters",
    "EffectiveParameters",
    "HardwareLayer",
    "IRDropSolution",
    "PeripheryConfig",
    "ProbabilityPlanes",
    "SamplerKey",
    "Tile",
    "TileArrays",
    "TileConfig",
    "TileNetwork",
    "WireConfig",
    "effective_conductance",
    "ir_attenuation",
    "kcl_residual",
    "prepare_cells",
    "quantise_probability",
    "replace_field",
    "sample_cell_currents",
    "sample_cells",
    "sample_row_currents",
    "sampler_key",
    "solve_ir_drop",
    "stack_differential",
]
