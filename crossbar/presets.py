"""Chip presets and chip resolution: a preset name or a chip TOML file, plus ``field=value``.

Presets (:func:`list_chips`) are TOML files shipped in ``crossbar/chips/`` and read by
:meth:`crossbar.ChipConfig.preset`; a name means the same chip everywhere (the CLI, the sweep,
the Python API):

``ideal``       ideal devices (exact Bernoulli, no programming noise, no drift, no read noise, no
                faults, perfect comparator), continuous β gain, ideal ADCs, ideal wires. The
                reference every non-ideality is measured against.
every other     the devices of the ``devices`` preset of the same name with the default
                (realistic) periphery: 256x256 tiles, 8-bit β gain, analog partial sums, 8-bit
                ADCs (docs/hardware-model.md §8), ideal wires.

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

from devices import ConfigError, ConfigTypeError
from devices.config import tomllib

from .config import ChipConfig, chip_preset_names, chip_preset_text, replace_field

__all__ = [
    "ChipError",
    "apply_sets",
    "chip_label",
    "chip_preset",
    "chip_toml",
    "list_chips",
    "load_chip_file",
    "parse_set",
    "parse_value",
    "resolve_chip",
]


class ChipError(ValueError):
    """A chip specification, chip file or ``--set`` override is invalid."""


def list_chips() -> dict[str, str]:
    """``{preset name: one-line summary}``: ``ideal`` first, then the others by name."""
    names = sorted(chip_preset_names(), key=lambda n: (n != "ideal", n))
    return {name: str(tomllib.loads(chip_preset_text(name))["summary"]) for name in names}


def chip_preset(name: str) -> ChipConfig:
    """The :class:`~crossbar.ChipConfig` of chip preset ``name`` (see :func:`list_chips`);
    :class:`ChipError` for an unknown name."""
    if not isinstance(name, str) or name not in chip_preset_names():
        raise ChipError(
            f"chip preset {name!r} is unknown; choose one of {', '.join(list_chips())} or give "
            "the path of a chip TOML file"
        )
    return ChipConfig.preset(name)


def chip_toml(name: str) -> str:
    """The TOML text of chip preset ``name`` with every field written, under the preset file's
    header comment (which points to the sources of the device numbers)."""
    chip = chip_preset(name)
    header = []
    for line in chip_preset_text(name).splitlines(keepends=True):
        if not line.startswith("#"):
            break
        header.append(line)
    return "".join(header) + chip.to_toml()


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
    """Read a chip TOML file (the :meth:`crossbar.ChipConfig.to_toml` form); a chip without a
    description is described by the file's stem."""
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
