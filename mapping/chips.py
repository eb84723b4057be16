"""Chip resolution, re-exported from :mod:`crossbar.presets` (where the presets now live).

Import from ``crossbar`` in new code: ``from crossbar import resolve_chip, list_chips, ...``.
"""

from __future__ import annotations

from crossbar.presets import (
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
