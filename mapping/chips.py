"""Chip resolution: a preset name or a chip TOML file, plus ``field=value`` overrides.

Presets (:func:`list_chips`):

``ideal``       :meth:`crossbar.ChipConfig.ideal`: ideal devices (exact Bernoulli, no programming
                noise, no drift, no read noise, no faults, perfect comparator), continuous β gain,
                ideal ADCs, ideal wires. The reference every non-ideality is measured against.
every device preset of :func:`devices.list_presets` other than ``ideal``
                :meth:`crossbar.ChipConfig.from_preset`: those devices with the default
                (realistic) periphery: 256x256 tiles, 8-bit β gain, analog partial sums, 8-bit
                output ADC (DESIGN §3), ideal wires.

Overrides use dotted paths into the chip (:func:`crossbar.replace_field`), for example
``periphery.adc_bits=6``, ``devices.element.sigma_d_v=0.05``, ``tile.rows=128``,
``wires.r_wire_ohm=1``, ``periphery.beta_mode=digital``. Values are read as TOML literals
(``6``, ``0.05``, ``1e-3``, ``true``, ``"two_phase"``); anything that is not a TOML literal is
taken as a bare string (``digital``). Every override goes through the chip's own validation, so
an unknown field or a value out of range raises :class:`ChipError` naming the field, the value
and the allowed range.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

try:  # Python >= 3.11
    import tomllib
except ModuleNotFoundError:  # pragma: no cover - Python 3.10
    import tomli as tomllib

import devices
from crossbar import ChipConfig, replace_field
from devices import ConfigError, ConfigTypeError

#: Description of the ``ideal`` chip preset (the device presets bring their own).
IDEAL_DESCRIPTION = (
    "ideal devices (exact Bernoulli p), continuous beta gain, ideal ADCs and wires (reference)"
)


class ChipError(ValueError):
    """A chip specification, chip file or ``--set`` override is invalid."""


def list_chips() -> dict[str, str]:
    """``{preset name: one-line description}``: ``ideal`` first, then the device presets."""
    out = {"ideal": IDEAL_DESCRIPTION}
    for name, description in devices.list_presets().items():
        if name != "ideal":
            out[name] = f"{description} (default periphery)"
    return out


def chip_preset(name: str) -> ChipConfig:
    """The :class:`~crossbar.ChipConfig` of chip preset ``name`` (see :func:`list_chips`)."""
    presets = list_chips()
    if not isinstance(name, str) or name not in presets:
        raise ChipError(
            f"chip preset {name!r} is unknown; choose one of {', '.join(presets)} or give the "
            "path of a chip TOML file"
        )
    if name == "ideal":
        return ChipConfig.ideal(description=IDEAL_DESCRIPTION)
    return ChipConfig.from_preset(name, description=name)


def chip_toml(name: str) -> str:
    """The TOML text of chip preset ``name`` (every field written), with a header comment that
    points to the sources of the device numbers (``devices/presets/<name>.toml``)."""
    chip = chip_preset(name)
    if name == "ideal":
        header = "# Chip preset 'ideal' (crossbar.ChipConfig.ideal()): the reference chip.\n"
    else:
        header = (
            f"# Chip preset {name!r}: device preset {name!r} (sources and illustrative values are\n"
            f"# stated in devices/presets/{name}.toml) with the default periphery of\n"
            "# crossbar.PeripheryConfig (DESIGN §3: 8-bit ADCs, 256x256 tiles).\n"
        )
    return header + chip.to_toml()


def parse_value(text: str) -> Any:
    """A ``--set`` value as a TOML literal (number, boolean, quoted string, array); anything
    else is returned as the bare string (``digital`` -> ``"digital"``)."""
    if not isinstance(text, str):
        raise TypeError(f"value {text!r} must be a string")
    try:
        return tomllib.loads(f"v = {text.strip()}")["v"]
    except tomllib.TOMLDecodeError:
        return text.strip()


def parse_set(item: str) -> tuple[str, Any]:
    """``"periphery.adc_bits=6"`` -> ``("periphery.adc_bits", 6)``."""
    form = "must have the form field=value (e.g. periphery.adc_bits=6)"
    if not isinstance(item, str) or "=" not in item:
        raise ChipError(f"--set {item!r} {form}")
    key, _, value = item.partition("=")
    key = key.strip()
    if not key or not value.strip():
        raise ChipError(f"--set {item!r} {form}")
    return key, parse_value(value)


def apply_sets(chip: ChipConfig, sets: Sequence[str]) -> ChipConfig:
    """``chip`` with every ``field=value`` of ``sets`` applied in order (fully validated)."""
    if isinstance(sets, str):
        raise TypeError("sets must be a sequence of 'field=value' strings, not one string")
    for item in sets:
        key, value = parse_set(item)
        try:
            chip = replace_field(chip, key, value)
        except (ConfigError, ConfigTypeError) as err:
            raise ChipError(f"--set {item}: {err}") from None
    return chip


def load_chip_file(path: str | os.PathLike[str]) -> ChipConfig:
    """Read a chip TOML file (the :meth:`crossbar.ChipConfig.to_toml` form)."""
    path = Path(path)
    if not path.is_file():
        raise ChipError(f"{path}: chip file not found")
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ChipError(f"{path}: cannot read the chip file ({exc})") from None
    try:
        chip = ChipConfig.from_toml(text)
    except (ValueError, TypeError) as exc:  # ConfigError, ConfigTypeError, invalid TOML
        raise ChipError(f"{path}: {exc}") from None
    if not chip.description:
        chip = replace_field(chip, "description", path.stem)
    return chip


def resolve_chip(spec: str | os.PathLike[str], sets: Sequence[str] = ()) -> ChipConfig:
    """A chip from a preset name (:func:`list_chips`) or a chip TOML file, then ``sets``.

    ``spec`` is a file when it names an existing file or ends in ``.toml``; otherwise a preset.
    Raises :class:`ChipError` (a ``ValueError``) naming the problem.
    """
    if isinstance(spec, os.PathLike) or (
        isinstance(spec, str) and (spec.endswith(".toml") or os.sep in spec or Path(spec).is_file())
    ):
        chip = load_chip_file(spec)
    elif isinstance(spec, str):
        chip = chip_preset(spec)
    else:
        raise TypeError(f"chip spec {spec!r} must be a preset name or a path")
    return apply_sets(chip, sets)


def chip_label(spec: str | os.PathLike[str], sets: Sequence[str] = ()) -> str:
    """A short label for tables: the preset or file name plus the overrides."""
    name = Path(spec).stem if isinstance(spec, os.PathLike) or str(spec).endswith(".toml") else spec
    return " ".join([str(name), *sets])
