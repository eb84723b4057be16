"""The preset library: TOML files shipped as package data in ``devices/presets/``.

Each preset file starts with a comment block citing its sources and saying which numbers are
illustrative; its ``description`` key is the one-line summary shown by :func:`list_presets`.
"""

from __future__ import annotations

from importlib import resources
from typing import TYPE_CHECKING

from .config import DeviceConfig, from_toml, tomllib
from .errors import ConfigError, ConfigTypeError

if TYPE_CHECKING:  # importlib.resources.abc is 3.11+; only annotations need it
    from importlib.resources.abc import Traversable


def _presets_dir() -> Traversable:
    return resources.files("devices") / "presets"


def _preset_files() -> dict[str, Traversable]:
    return {
        p.name[: -len(".toml")]: p
        for p in sorted(_presets_dir().iterdir(), key=lambda p: p.name)
        if p.name.endswith(".toml")
    }


def list_presets() -> dict[str, str]:
    """``{name: one-line description}`` of every shipped preset, sorted by name."""
    out = {}
    for name, path in _preset_files().items():
        data = tomllib.loads(path.read_text(encoding="utf-8"))
        out[name] = str(data.get("description", ""))
    return out


def preset_text(name: str) -> str:
    """The TOML text of preset ``name``, comments (sources) included."""
    files = _preset_files()
    if not isinstance(name, str):
        raise ConfigTypeError("name", name, "a preset name (string)")
    if name not in files:
        raise ConfigError(
            "name", name, "one of " + ", ".join(map(repr, files)), "is not a known preset"
        )
    return files[name].read_text(encoding="utf-8")


def load_preset(name: str) -> DeviceConfig:
    """The :class:`DeviceConfig` of preset ``name`` (see :func:`list_presets`)."""
    return from_toml(preset_text(name))
