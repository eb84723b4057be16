"""The chip configuration: devices + tile + periphery + wires, with its TOML form.

A :class:`ChipConfig` is a tree of frozen, validated dataclasses (docs/crossbar.md §1,
"configuration is data")::

    ChipConfig
      devices    devices.DeviceConfig  (conductance model, stochastic element, threshold neuron)
      tile       TileConfig            (rows x cols physical cells per tile)
      periphery  PeripheryConfig       (beta gain, partial sums, ADCs)
      wires      WireConfig            (wire resistance per cell segment)
      cost       crossbar.cost.CostConfig (energy, latency and area per operation)
      v_read_v   row read voltage (V)
      description

Its TOML form (``format_version = 1``)::

    format_version = 1
    description = "..."
    v_read_v = 0.2

    [tile]
    rows = 256
    cols = 256

    [periphery]
    beta_mode = "two_phase"
    adc_bits = 8

    [wires]
    r_wire_ohm = 0.0

    [devices]                 # the devices.DeviceConfig TOML form, nested
    format_version = 1
    [devices.conductance]
    model = "pcm"

Omitted sections and keys take the defaults. Errors name the dotted path
(``periphery.adc_bits``), the value and the allowed range (:class:`devices.ConfigError`, a
``ValueError``; :class:`devices.ConfigTypeError`, a ``TypeError``). :func:`replace_field` goes
through the same validation, so a sweep can only build valid chips.
"""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass, field
from importlib import resources
from typing import TYPE_CHECKING, Any, Literal

import tomli_w

import devices
from devices import ConfigError, ConfigTypeError, DeviceConfig
from devices.config import tomllib
from devices.errors import ArgumentError, ArgumentTypeError
from devices.fields import param, validate_config

from .cost import CostConfig

if TYPE_CHECKING:  # importlib.resources.abc is 3.11+; only annotations need it
    from importlib.resources.abc import Traversable

FORMAT_VERSION = 1

BetaMode = Literal["two_phase", "digital", "none"]
PartialSums = Literal["analog", "adc"]
AdcRange = Literal["calibrated", "rms", "fixed"]
GainGrid = Literal["fitted", "fixed"]


@dataclass(frozen=True)
class TileConfig:
    """One crossbar tile: ``rows`` x ``cols`` physical cells.

    A weight is a differential pair of cells on two rows driven with opposite polarity (G⁺ on a row
    at +z·V, G⁻ on a row at −z·V, both on the neuron's bit line), so a tile holds ``rows // 2``
    weight rows (inputs) and ``cols`` neurons. docs/hardware-model.md §8: tiles of 256 or 512.
    """

    rows: int = param(
        256,
        ge=2,
        le=1 << 16,
        doc="physical rows per tile, even (a weight row is a G⁺ and a G⁻ row)",
    )  # docs/hardware-model.md §8 (256 or 512)
    cols: int = param(
        256, ge=1, le=1 << 16, doc="columns (neurons) per tile"
    )  # docs/hardware-model.md §8 (256 or 512)

    def __post_init__(self) -> None:
        validate_config(self)
        if self.rows % 2:
            raise ConfigError(
                "TileConfig.rows",
                self.rows,
                "an even integer in [2, 65536] (a weight takes two rows: G⁺ and G⁻)",
                "is invalid",
            )

    @property
    def weight_rows(self) -> int:
        """Inputs (weight rows) per tile: two physical rows per differential pair."""
        return self.rows // 2


@dataclass(frozen=True)
class PeripheryConfig:
    """The CMOS around the array (docs/hardware-model.md §4–6): β gain, comparator path, partial
    sums, ADCs.

    ``beta_mode``: ``"two_phase"`` (analog: u = I_s + a_i·I_d before the comparator),
    ``"digital"`` (both phases through ADCs, combined and compared digitally) or ``"none"``
    (a_i = 0: one stochastic read; β is then fixed by the hardware's p or σ).
    ``gain_bits``: resolution of a_i (0 = continuous, only clipped to ±gain_range).
    ``gain_grid``: where its 2^bits codes lie. ``"fitted"``: chosen at programming from the a_i
    the layer needs on this chip — a uniform grid from min a_i to max a_i over the layer's
    neurons (within [−gain_range, gain_range]), i.e. one offset and one range per layer, so
    the resolution is spent where the neurons are (:func:`crossbar.periphery.fitted_gain_grid`).
    ``"fixed"``: two's complement over [−gain_range, gain_range), step
    gain_range/2^(bits−1), whatever the layer needs. ``gain_error_sigma``: relative, per-neuron
    error of the analog gain (two_phase only; drawn once at programming).
    ``partial_sums``: how the row-tiles of a column are combined: ``"analog"`` (currents add on
    the bit line before the comparator) or ``"adc"`` (each row-tile's partial value digitised
    with ``adc_bits``, summed and compared digitally).
    ``adc_range``: how every ADC's full scale is set. ``"calibrated"``: from data, after
    programming — calibration inputs run through the programmed chip with its real noise
    (``adc_cal_examples`` examples x ``adc_cal_samples`` reads, in exact mode at the
    calibration time), and each converter's full scale = ``adc_cal_headroom`` x the
    ``adc_cal_percentile``-th percentile of the |signal| it converted (one full scale per
    converter, i.e. per column, and per row-tile for per-tile ADCs; see
    :mod:`crossbar.adc_range`); until calibrated, the ``"rms"`` rule stands in. ``"rms"``: full
    scale = ``adc_range_sigmas`` x the RMS of the converted quantity over uniformly random ±1
    inputs, per column and tile, from the programmed state. ``"fixed"``: ``adc_full_scale_ua``
    for every ADC. Values beyond full scale clip (and are counted). ``adc_bits = 0`` means an
    ideal ADC (nothing to calibrate).
    ``output_adc_bits``: the ADC of the real-valued output layer (0 = ideal).
    """

    beta_mode: BetaMode = param(
        "two_phase", doc="β gain: two_phase (analog), digital (ADCs), none (a_i = 0)"
    )
    gain_bits: int = param(
        8, ge=0, le=32, doc="resolution of the β gain a_i (0 = continuous)"
    )  # illustrative (a programmable gain of 8 bits)
    gain_range: float = param(
        8.0, gt=0.0, le=1e6, doc="largest |a_i| of the gain circuit (a_i clipped to ±gain_range)"
    )  # illustrative: |a_i| <= 8 covers β <= ~12
    gain_grid: GainGrid = param(
        "fitted", doc="gain codes fitted to each layer's a_i, or fixed over ±gain_range"
    )
    gain_error_sigma: float = param(
        0.0, ge=0.0, le=1.0, doc="relative per-neuron error of the analog gain, drawn once"
    )  # illustrative, off by default
    partial_sums: PartialSums = param(
        "analog", doc="row-tile partial sums: analog on the bit line, or adc + digital sum"
    )
    adc_bits: int = param(
        8, ge=0, le=24, doc="bits of the hidden layers' ADCs (partial sums, digital β; 0 = ideal)"
    )  # docs/hardware-model.md §8: ADCs of 8-9 bits
    adc_range: AdcRange = param(
        "calibrated", doc="how ADC full scales are set: calibrated, rms or fixed"
    )
    # Illustrative calibration rule: 25 % of design margin above the 99.9th percentile of the
    # signals seen on 256 training examples x 4 reads (a few seconds on a CPU for MNIST nets).
    adc_cal_percentile: float = param(
        99.9,
        gt=0.0,
        le=100.0,
        unit="%",
        doc="percentile of |signal| that sets a calibrated full scale",
    )
    adc_cal_headroom: float = param(
        1.25, ge=1.0, le=1e3, doc="calibrated full scale = headroom × that percentile"
    )
    adc_cal_examples: int = param(
        256, ge=1, le=1 << 24, doc="calibration examples run through the programmed chip"
    )
    adc_cal_samples: int = param(4, ge=1, le=1 << 16, doc="noisy reads per calibration example")
    adc_range_sigmas: float = param(
        4.0, gt=0.0, le=1e3, doc="rms rule: full scale = this × RMS over random ±1 inputs"
    )  # illustrative (adc_range="rms")
    adc_full_scale_ua: float = param(
        100.0, gt=0.0, unit="µA", doc="full scale of every ADC when adc_range = 'fixed'"
    )  # illustrative (adc_range="fixed")
    output_adc_bits: int = param(
        8, ge=0, le=24, doc="bits of the output layer's (logit) ADC (0 = ideal)"
    )  # docs/hardware-model.md §8: ADCs of 8-9 bits

    def __post_init__(self) -> None:
        validate_config(self)


@dataclass(frozen=True)
class WireConfig:
    """Interconnect: resistance of one word-line / bit-line segment between adjacent cells.

    0 = ideal wires (no IR drop). docs/hardware-model.md §8: about 0.1-2 Ω per cell segment is
    realistic.
    """

    r_wire_ohm: float = param(
        0.0,
        ge=0.0,
        le=1e4,
        unit="Ω",
        doc="resistance of one word/bit-line segment between cells (0 = no IR drop)",
    )

    def __post_init__(self) -> None:
        validate_config(self)


@dataclass(frozen=True)
class ChipConfig:
    """A complete virtual chip (see the module docstring)."""

    devices: DeviceConfig = field(default_factory=DeviceConfig)
    tile: TileConfig = field(default_factory=TileConfig)
    periphery: PeripheryConfig = field(default_factory=PeripheryConfig)
    wires: WireConfig = field(default_factory=WireConfig)
    cost: CostConfig = field(default_factory=CostConfig)
    # Illustrative: array read voltages are typically 0.1-0.3 V, below any switching threshold.
    # The row voltage scales every current (µA = µS x V); with a selector element its own
    # ``element.v_read_v`` (the voltage across the selector) sets p.
    v_read_v: float = param(
        0.2,
        gt=0.0,
        le=100.0,
        unit="V",
        doc="row read voltage: inputs ±1 drive ±V_read (scales every current)",
    )
    description: str = ""

    def __post_init__(self) -> None:
        for name, cls in _SECTIONS.items():
            if not isinstance(getattr(self, name), cls):
                raise ConfigTypeError(name, getattr(self, name), f"a {cls.__name__}")
        try:
            validate_config(self)
        except (ConfigError, ConfigTypeError) as err:
            raise devices.config.requalify(err, None) from None

    # ------------------------------------------------------------------ constructors

    @classmethod
    def preset(cls, name: str, **sections: Any) -> ChipConfig:
        """Chip preset ``name`` (:func:`crossbar.list_chips` lists them), the same chip for the
        CLI, the sweep and the Python API. Keyword arguments replace whole sections or fields
        (``tile=TileConfig(64, 64)``).

        A preset is a shipped chip TOML file (``crossbar/chips/<name>.toml``, the
        :meth:`to_toml` form; sections left out take their defaults) whose devices are the
        ``devices`` preset named by its ``devices_preset`` key, with a one-line ``summary``.
        Unknown names raise :class:`devices.ArgumentError` (a ``ValueError``) listing them.
        """
        table = tomllib.loads(chip_preset_text(name))
        table.pop("summary", None)
        device_preset = table.pop("devices_preset", None)
        if not isinstance(device_preset, str) or "devices" in table:
            raise ConfigError(
                f"chip preset {name!r}: devices_preset",
                device_preset,
                "the name of a devices preset (and no [devices] table)",
                "is invalid",
            )
        chip = cls.from_dict(table)
        return dataclasses.replace(
            chip, **{"devices": devices.load_preset(device_preset), **sections}
        )

    @classmethod
    def ideal(cls, **sections: Any) -> ChipConfig:
        """The reference chip, preset ``"ideal"``: ideal devices, continuous gain, ideal ADCs,
        ideal wires (keyword arguments as :meth:`preset`)."""
        return cls.preset("ideal", **sections)

    @classmethod
    def from_preset(cls, name: str, **sections: Any) -> ChipConfig:
        """The same as :meth:`preset` (the older name)."""
        return cls.preset(name, **sections)

    # ------------------------------------------------------------------ dict / TOML

    def to_dict(self) -> dict[str, Any]:
        """Plain nested dict (TOML-ready) with ``format_version``; see :meth:`from_dict`."""
        out: dict[str, Any] = {
            "format_version": FORMAT_VERSION,
            "description": self.description,
            "v_read_v": self.v_read_v,
        }
        for name in ("tile", "periphery", "wires", "cost"):
            out[name] = dataclasses.asdict(getattr(self, name))
        out["devices"] = devices.to_dict(self.devices)
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ChipConfig:
        """Build and validate a chip from its dict form (unknown keys are errors)."""
        if not isinstance(data, dict):
            raise ConfigTypeError("chip", data, "a table (dict)")
        allowed = ("format_version", "description", "v_read_v", *_SECTIONS)
        devices.config.check_top_level(data, allowed, FORMAT_VERSION)
        kwargs: dict[str, Any] = {}
        for key in ("description", "v_read_v"):
            if key in data:
                kwargs[key] = data[key]
        if "devices" in data:
            kwargs["devices"] = _devices_from_dict(data["devices"])
        for name in ("tile", "periphery", "wires", "cost"):
            if name in data:
                kwargs[name] = _section_from_dict(name, data[name])
        return cls(**kwargs)

    def to_toml(self) -> str:
        """The TOML text of this chip (every field written: the file documents the chip)."""
        return tomli_w.dumps(self.to_dict())

    @classmethod
    def from_toml(cls, source: str | os.PathLike[str]) -> ChipConfig:
        """Read a chip from a TOML file (a ``PathLike`` or a one-line ``*.toml`` string) or text."""
        return cls.from_dict(devices.config.read_toml(source))


_SECTIONS: dict[str, type] = {
    "devices": DeviceConfig,
    "tile": TileConfig,
    "periphery": PeripheryConfig,
    "wires": WireConfig,
    "cost": CostConfig,
}


def _section_from_dict(name: str, table: Any) -> Any:
    if not isinstance(table, dict):
        raise ConfigTypeError(name, table, "a table of fields")
    return devices.config.config_from_table(_SECTIONS[name], table, name)


def _devices_from_dict(table: Any) -> DeviceConfig:
    if not isinstance(table, dict):
        raise ConfigTypeError("devices", table, "a table (the devices configuration)")
    table = {"format_version": devices.config.FORMAT_VERSION, **table}
    try:
        return devices.from_dict(table)
    except (ConfigError, ConfigTypeError) as err:
        raise err.with_path(f"devices.{err.field}") from None


def _chip_preset_files() -> dict[str, Traversable]:
    return devices.library.toml_files(resources.files("crossbar") / "chips")


def chip_preset_names() -> list[str]:
    """The names of the shipped chip presets (``crossbar/chips/*.toml``), sorted."""
    return list(_chip_preset_files())


def chip_preset_text(name: str) -> str:
    """The TOML text of chip preset ``name``, its header comment (sources) included."""
    errors = (ArgumentError, ArgumentTypeError)
    return devices.library.named_text(_chip_preset_files(), name, "chip preset", errors)


def replace_field(chip: ChipConfig, path: str, value: Any) -> ChipConfig:
    """A copy of ``chip`` with the field at dotted ``path`` replaced, fully validated.

    Paths: ``"periphery.adc_bits"``, ``"tile.rows"``, ``"wires.r_wire_ohm"``, ``"v_read_v"``,
    ``"description"``, a whole section (``"periphery"`` with a :class:`PeripheryConfig`), and
    any device path prefixed with ``devices.`` (``"devices.element.sigma_d_v"``,
    ``"devices.conductance.model"``; see :func:`devices.replace_field`).
    """
    if not isinstance(chip, ChipConfig):
        raise ConfigTypeError("chip", chip, "a ChipConfig")
    if not isinstance(path, str):
        raise ConfigTypeError("path", path, "a dotted field path such as 'periphery.adc_bits'")
    head, _, leaf = path.partition(".")
    if head in ("v_read_v", "description") and not leaf:
        return dataclasses.replace(chip, **{head: value})
    if head not in _SECTIONS:
        known = ", ".join((*_SECTIONS, "v_read_v", "description"))
        raise ConfigError(
            path, value, "a path starting with one of " + known, "is not a known field"
        )
    if not leaf:
        return dataclasses.replace(chip, **{head: value})
    if head == "devices":
        try:
            new = devices.replace_field(chip.devices, leaf, value)
        except (ConfigError, ConfigTypeError) as err:
            raise err.with_path(f"devices.{err.field}") from None
        return dataclasses.replace(chip, devices=new)
    table = dataclasses.asdict(getattr(chip, head))
    if leaf not in table:
        cls = _SECTIONS[head]
        raise ConfigError(
            path, value, f"a field of {cls.__name__}: " + ", ".join(table), "is not a known field"
        )
    table[leaf] = value
    return dataclasses.replace(chip, **{head: _section_from_dict(head, table)})
