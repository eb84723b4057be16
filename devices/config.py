"""The device-level configuration tree and its TOML form.

A :class:`DeviceConfig` is three frozen configs: ``conductance`` (a registered conductance
model's config), ``element`` (a registered stochastic element's config) and ``neuron``
(:class:`~devices.neuron.ThresholdNeuronConfig`), plus a one-line ``description``. Its TOML
form (format_version 1)::

    format_version = 1
    description = "..."

    [conductance]
    model = "pcm"          # registered name
    g_max_us = 25.0        # any field of that model's config; omitted fields take defaults

    [element]
    model = "selector"
    v_read_v = 0.5

    [neuron]
    offset_sigma_ua = 0.0

Omitted sections take the :class:`DeviceConfig` defaults. Unknown keys, unknown models and bad
values raise :class:`~devices.errors.ConfigError` / :class:`~devices.errors.ConfigTypeError`
naming the dotted path (``conductance.g_max_us``), the value and the allowed range.
``replace_field`` goes through the same validation, so a sweep can only build valid configs.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

try:  # Python >= 3.11
    import tomllib
except ModuleNotFoundError:  # pragma: no cover - Python 3.10
    import tomli as tomllib

import tomli_w

# Importing the shipped models registers them under their names.
from . import bernoulli, fefet, gaussian, ideal, pcm, rram, selector  # noqa: F401
from .bernoulli import BernoulliConfig
from .errors import ConfigError, ConfigTypeError
from .ideal import IdealConfig
from .neuron import ThresholdNeuron, ThresholdNeuronConfig
from .registry import build, config_class, name_of, registered

FORMAT_VERSION = 1
_MODEL_SECTIONS = ("conductance", "element")
_SECTIONS = (*_MODEL_SECTIONS, "neuron")
_TOP_KEYS = ("format_version", "description", *_SECTIONS)


@dataclass(frozen=True)
class DeviceConfig:
    """The devices of a chip: conductance model, stochastic element, threshold neuron."""

    conductance: Any = field(default_factory=IdealConfig)
    element: Any = field(default_factory=BernoulliConfig)
    neuron: ThresholdNeuronConfig = field(default_factory=ThresholdNeuronConfig)
    description: str = ""

    def __post_init__(self) -> None:
        name_of("conductance", self.conductance)  # TypeError naming the problem if unregistered
        name_of("element", self.element)
        if not isinstance(self.neuron, ThresholdNeuronConfig):
            raise ConfigTypeError("neuron", self.neuron, "a ThresholdNeuronConfig")
        if not isinstance(self.description, str):
            raise ConfigTypeError("description", self.description, "a string")

    def conductance_model(self) -> Any:
        """A conductance model instance (:class:`~devices.conductance.ConductanceModel`)."""
        return build("conductance", self.conductance)

    def element_model(self) -> Any:
        """A stochastic element instance (:class:`~devices.elements.StochasticElement`)."""
        return build("element", self.element)

    def neuron_model(self) -> ThresholdNeuron:
        """The threshold neuron bank."""
        return ThresholdNeuron(self.neuron)


# --------------------------------------------------------------------------- dict form


def _section_dict(kind: str, cfg: Any) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if kind in _MODEL_SECTIONS:
        out["model"] = name_of(kind, cfg)
    for f in dataclasses.fields(cfg):
        out[f.name] = getattr(cfg, f.name)
    return out


def to_dict(cfg: DeviceConfig) -> dict[str, Any]:
    """Plain nested dict (TOML/JSON-ready) with ``format_version``; inverse of :func:`from_dict`."""
    if not isinstance(cfg, DeviceConfig):
        raise ConfigTypeError("cfg", cfg, "a DeviceConfig")
    out: dict[str, Any] = {"format_version": FORMAT_VERSION, "description": cfg.description}
    for kind in _SECTIONS:
        out[kind] = _section_dict(kind, getattr(cfg, kind))
    return out


def requalify(err: ConfigError | ConfigTypeError, path: str | None) -> Exception:
    """``err`` naming its field by the dotted ``path`` the user wrote (``"periphery.adc_bits"``)
    instead of the ``"ClassName.field"`` of a config's ``__post_init__``; ``path`` None names
    the bare field."""
    leaf = err.field.split(".", 1)[1] if "." in err.field else err.field
    return err.with_path(leaf if path is None else f"{path}.{leaf}")


def check_top_level(data: dict[str, Any], allowed: Sequence[str], format_version: int) -> None:
    """The top level of a configuration file: every key is one of ``allowed`` and
    ``format_version`` is the supported one; else a :class:`ConfigError` naming the key."""
    for key in data:
        if key not in allowed:
            raise ConfigError(key, data[key], "one of " + ", ".join(allowed), "is not a known key")
    version = data.get("format_version")
    if version != format_version or isinstance(version, bool):
        raise ConfigError("format_version", version, str(format_version), "is not supported")


def config_from_table(cls: type, table: dict[str, Any], path: str) -> Any:
    """``cls(**table)`` for the TOML/dict table at dotted ``path``: an unknown key is a
    :class:`ConfigError` naming ``path.key`` and listing the fields of ``cls``; the errors of
    ``cls``'s own validation name ``path.field``."""
    names = [f.name for f in dataclasses.fields(cls)]
    for key in table:
        if key not in names:
            raise ConfigError(
                f"{path}.{key}",
                table[key],
                f"a field of {cls.__name__}: " + ", ".join(names),
                "is not a known key",
            )
    try:
        return cls(**table)
    except (ConfigError, ConfigTypeError) as err:
        raise requalify(err, path) from None


def _build_section(kind: str, table: Any) -> Any:
    if not isinstance(table, dict):
        raise ConfigTypeError(kind, table, "a table of fields")
    table = dict(table)
    if kind in _MODEL_SECTIONS:
        known = sorted(registered(kind))
        if "model" not in table:
            raise ConfigError(
                f"{kind}.model", None, "one of " + ", ".join(map(repr, known)), "is missing"
            )
        name = table.pop("model")
        if not isinstance(name, str) or name not in known:
            raise ConfigError(
                f"{kind}.model",
                name,
                "one of " + ", ".join(map(repr, known)),
                "is not a registered model",
            )
        cls = config_class(kind, name)
    else:
        cls = ThresholdNeuronConfig
    return config_from_table(cls, table, kind)


def from_dict(data: dict[str, Any]) -> DeviceConfig:
    """Build and validate a :class:`DeviceConfig` from its dict form (see module docstring)."""
    if not isinstance(data, dict):
        raise ConfigTypeError("config", data, "a table (dict)")
    check_top_level(data, _TOP_KEYS, FORMAT_VERSION)
    kwargs: dict[str, Any] = {k: _build_section(k, data[k]) for k in _SECTIONS if k in data}
    if "description" in data:
        kwargs["description"] = data["description"]
    return DeviceConfig(**kwargs)


# --------------------------------------------------------------------------- TOML form


def to_toml(cfg: DeviceConfig) -> str:
    """The TOML text of ``cfg`` (every field written, so the file is self-describing)."""
    return tomli_w.dumps(to_dict(cfg))


def read_toml(source: str | os.PathLike[str]) -> dict[str, Any]:
    """Parse TOML from a file or from text into a dict (shared by every config reader).

    ``source`` is a path if it is a ``PathLike``, or a ``str`` that ends in ``.toml`` and has
    no newline; otherwise it is the TOML text itself. Invalid TOML raises ``ValueError``.
    """
    if isinstance(source, os.PathLike) or (
        isinstance(source, str) and source.endswith(".toml") and "\n" not in source
    ):
        text = Path(source).read_text(encoding="utf-8")
    elif isinstance(source, str):
        text = source
    else:
        raise ConfigTypeError("source", source, "a path or TOML text")
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as err:
        raise ValueError(f"invalid TOML: {err}") from None


def from_toml(source: str | os.PathLike[str]) -> DeviceConfig:
    """Read a :class:`DeviceConfig` from a TOML file or TOML text (see :func:`read_toml`)."""
    return from_dict(read_toml(source))


# --------------------------------------------------------------------------- sweeps


def replace_field(cfg: DeviceConfig, path: str, value: Any) -> DeviceConfig:
    """A copy of ``cfg`` with the field at dotted ``path`` replaced, fully validated.

    ``"element.sigma_d_v"`` replaces one field; ``"conductance.model"`` with a registered name
    switches to that model's default config; ``"conductance"`` with a config object replaces
    the section; ``"description"`` replaces the description. Unknown paths raise
    :class:`~devices.errors.ConfigError` naming them.
    """
    if not isinstance(cfg, DeviceConfig):
        raise ConfigTypeError("cfg", cfg, "a DeviceConfig")
    if not isinstance(path, str):
        raise ConfigTypeError("path", path, "a dotted field path such as 'element.sigma_d_v'")
    head, _, leaf = path.partition(".")
    if head == "description" and not leaf:
        return dataclasses.replace(cfg, description=value)
    if head not in _SECTIONS:
        raise ConfigError(
            path,
            value,
            "a path starting with one of " + ", ".join((*_SECTIONS, "description")),
            "is not a known field",
        )
    if not leaf:
        return dataclasses.replace(cfg, **{head: value})
    if "." in leaf:
        raise ConfigError(path, value, f"'{head}.<field>'", "is not a known field")
    table = _section_dict(head, getattr(cfg, head))
    if leaf == "model" and head in _MODEL_SECTIONS:
        table = {"model": value}
    elif leaf not in table or leaf == "model":
        names = [k for k in table if k != "model"]
        raise ConfigError(
            path,
            value,
            f"a field of {type(getattr(cfg, head)).__name__}: " + ", ".join(names),
            "is not a known field",
        )
    else:
        table[leaf] = value
    return dataclasses.replace(cfg, **{head: _build_section(head, table)})
