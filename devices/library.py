"""The preset library: TOML files shipped as package data in ``devices/presets/``.

Each preset file starts with a comment block citing its sources and saying which numbers are
illustrative; its ``description`` key is the one-line summary shown by :func:`list_presets`.
"""

from __future__ import annotations

from importlib import resources
from typing import TYPE_CHECKING, Any

from .config import DeviceConfig, from_toml, tomllib
from .errors import ConfigError, ConfigTypeError

if TYPE_CHECKING:  # importlib.resources.abc is 3.11+; only annotations need it
    from importlib.resources.abc import Traversable


def toml_files(folder: Traversable) -> dict[str, Traversable]:
    """``{name: file}`` of the ``*.toml`` files of a package-data ``folder``, sorted by name."""
    return {
        p.name[: -len(".toml")]: p
        for p in sorted(folder.iterdir(), key=lambda p: p.name)
        if p.name.endswith(".toml")
    }


def named_text(
    files: dict[str, Traversable],
    name: Any,
    what: str = "preset",
    errors: tuple[type[ConfigError], type[ConfigTypeError]] = (ConfigError, ConfigTypeError),
) -> str:
    """The text of ``files[name]``; a ``name`` that is not a string or not a key is one of the
    ``errors`` (value, type) naming it and listing the ``what`` names there are."""
    value_error, type_error = errors
    if not isinstance(name, str):
        raise type_error("name", name, f"a {what} name (string)")
    if name not in files:
        raise value_error(
            "name", name, "one of " + ", ".join(map(repr, files)), f"is not a known {what}"
        )
    return files[name].read_text(encoding="utf-8")


def _preset_files() -> dict[str, Traversable]:
    return toml_files(resources.files("devices") / "presets")


def list_presets() -> dict[str, str]:
    """``{name: one-line description}`` of every shipped preset, sorted by name."""
    out = {}
    for name, path in _preset_files().items():
        data = tomllib.loads(path.read_text(encoding="utf-8"))
        out[name] = str(data.get("description", ""))
    return out


def preset_text(name: str) -> str:
    """The TOML text of preset ``name``, comments (sources) included."""
    return named_text(_preset_files(), name)


def load_preset(name: str) -> DeviceConfig:
    """The :class:`DeviceConfig` of preset ``name`` (see :func:`list_presets`)."""
    return from_toml(preset_text(name))
