"""Physics of one cell / one neuron, vectorised over arrays of cells (numpy, numba, scipy only).

Units: conductance µS, voltage V, current µA, time s. Randomness only through explicit
``numpy.random.Generator`` arguments (``rng=``). See ``docs/devices.md`` for a guide.

- Conductance models (:class:`ConductanceModel`): ``ideal``, ``pcm``, ``rram``, ``fefet``, each
  a :class:`CellModel` that states only how its device differs.
- Stochastic elements (:class:`StochasticElement`): ``bernoulli``, ``selector``, ``gaussian``
  (:class:`ElementModel` subclasses).
- :class:`ThresholdNeuron`: comparator with fixed offset and per-decision noise.
- :class:`DeviceConfig` with TOML I/O, presets and dotted-path replacement for sweeps.
"""

from .bernoulli import BernoulliConfig, BernoulliElement, BernoulliState
from .conductance import (
    HEALTHY,
    STUCK_OFF,
    STUCK_ON,
    CellModel,
    ConductanceModel,
    ConductanceState,
    drift_mean,
    gaussian_read,
    levels_us,
    program_cells,
    quantise,
)
from .config import DeviceConfig, from_dict, from_toml, replace_field, to_dict, to_toml
from .elements import ElementModel, StochasticElement, as_cells
from .errors import ArgumentError, ArgumentTypeError, ConfigError, ConfigTypeError
from .fefet import FeFET, FeFETConfig
from .fields import param, validate_config
from .gaussian import GaussianElement, GaussianElementConfig, GaussianState
from .ideal import IdealConductance, IdealConfig
from .library import list_presets, load_preset, preset_text
from .neuron import ThresholdNeuron, ThresholdNeuronConfig
from .pcm import PCM, PCMConfig
from .registry import register_conductance_model, register_element_model
from .rram import RRAM, RRAMConfig
from .selector import Selector, SelectorConfig, SelectorState, selector_read_voltage

__all__ = [
    "HEALTHY",
    "PCM",
    "RRAM",
    "STUCK_OFF",
    "STUCK_ON",
    "ArgumentError",
    "ArgumentTypeError",
    "BernoulliConfig",
    "BernoulliElement",
    "BernoulliState",
    "CellModel",
    "ConductanceModel",
    "ConductanceState",
    "ConfigError",
    "ConfigTypeError",
    "DeviceConfig",
    "ElementModel",
    "FeFET",
    "FeFETConfig",
    "GaussianElement",
    "GaussianElementConfig",
    "GaussianState",
    "IdealConductance",
    "IdealConfig",
    "PCMConfig",
    "RRAMConfig",
    "Selector",
    "SelectorConfig",
    "SelectorState",
    "StochasticElement",
    "ThresholdNeuron",
    "ThresholdNeuronConfig",
    "as_cells",
    "drift_mean",
    "from_dict",
    "from_toml",
    "gaussian_read",
    "levels_us",
    "list_presets",
    "load_preset",
    "param",
    "preset_text",
    "program_cells",
    "quantise",
    "register_conductance_model",
    "register_element_model",
    "replace_field",
    "selector_read_voltage",
    "to_dict",
    "to_toml",
    "validate_config",
]
