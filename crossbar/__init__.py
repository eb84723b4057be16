"""The virtual chip: tiles, tiled layers, periphery, IR drop, presets (imports devices, numpy,
numba, scipy; never torch).

- :class:`ChipConfig` (devices + :class:`TileConfig` + :class:`PeripheryConfig` +
  :class:`WireConfig` + :class:`CostConfig`), TOML round trip, dotted-path
  :func:`replace_field` for sweeps; chip presets :meth:`ChipConfig.preset` (one meaning of each
  name everywhere), :func:`list_chips`, :func:`resolve_chip` (a preset or a chip TOML file plus
  ``field=value`` overrides).
- :class:`HardwareLayer`: ``build`` (map, program, calibrate), ``sample`` (exact / clt),
  ``preactivation``, ``logits`` (output layer), ``firing_probability`` (ideal analytic),
  ``hardware_probability`` (CLT prediction for the programmed chip), ``effective_parameters``,
  ``counters``.
- The semantics it is built from, each in one place: the NSM unit (:func:`normalised_preactivation`,
  :func:`firing_probability`), the column moments (:func:`column_moments`), the periphery
  arithmetic (:func:`solve_gain`, :func:`quantise_gain`, :func:`bias_threshold`,
  :func:`adc_convert`), transposed reads (:func:`transposed_read`).
- The numerical core: exact samplers (:func:`sample_cell_currents`, :func:`sample_row_currents`),
  the counter-based generator (:func:`sampler_key`), IR drop (:func:`solve_ir_drop`,
  :func:`ir_attenuation`).

Importing compiles nothing: the numba kernels compile (or load from cache) on first use.
See docs/crossbar.md.
"""

from .calibration import Calibration, EffectiveParameters
from .config import (
    ChipConfig,
    PeripheryConfig,
    TileConfig,
    WireConfig,
    chip_preset_names,
    replace_field,
)
from .cost import CostConfig
from .counters import Counters
from .ir_drop import (
    IRDropSolution,
    TileNetwork,
    effective_conductance,
    ir_attenuation,
    kcl_residual,
    solve_ir_drop,
)
from .layer import DEFAULT_CHUNK_VALUES, HardwareLayer
from .moments import column_moments, layer_moments, stack_coefficients
from .periphery import adc_convert, bias_threshold, quantise_gain, rms_full_scale, solve_gain
from .presets import (
    ChipError,
    apply_sets,
    chip_label,
    chip_preset,
    chip_toml,
    list_chips,
    load_chip_file,
    parse_set,
    parse_value,
    resolve_chip,
)
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
from .tile import Tile, TileArrays, program_tile, read_arrays
from .transpose import layer_transposed_read, transposed_read
from .unit import S_UNREACHED, firing_probability, normalised_preactivation

__all__ = [
    "DEFAULT_CHUNK_VALUES",
    "S_UNREACHED",
    "Calibration",
    "CellArray",
    "ChipConfig",
    "ChipError",
    "CostConfig",
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
    "adc_convert",
    "apply_sets",
    "bias_threshold",
    "chip_label",
    "chip_preset",
    "chip_preset_names",
    "chip_toml",
    "column_moments",
    "effective_conductance",
    "firing_probability",
    "ir_attenuation",
    "kcl_residual",
    "layer_moments",
    "layer_transposed_read",
    "list_chips",
    "load_chip_file",
    "normalised_preactivation",
    "parse_set",
    "parse_value",
    "prepare_cells",
    "program_tile",
    "quantise_gain",
    "quantise_probability",
    "read_arrays",
    "replace_field",
    "resolve_chip",
    "rms_full_scale",
    "sample_cell_currents",
    "sample_cells",
    "sample_row_currents",
    "sampler_key",
    "solve_gain",
    "solve_ir_drop",
    "stack_coefficients",
    "stack_differential",
    "transposed_read",
]
