"""Name -> (config class, model class) registries, so that TOML files can name a model.

A model is registered once, at import of the module that defines it. A user's own model is
registered the same way (see ``docs/devices.md``)::

    register_conductance_model("my-cell", MyCellConfig, MyCell)

after which ``[conductance] model = "my-cell"`` works in TOML and
``DeviceConfig(conductance=MyCellConfig())`` builds ``MyCell``.
"""

from __future__ import annotations

import dataclasses
from typing import Any

_KINDS = ("conductance", "element")
_BY_NAME: dict[str, dict[str, tuple[type, type]]] = {kind: {} for kind in _KINDS}


def _register(kind: str, name: str, config_cls: type, model_cls: type, overwrite: bool) -> None:
    if not isinstance(name, str) or not name:
        raise TypeError(f"{kind} model name must be a non-empty string, got {name!r}")
    if not dataclasses.is_dataclass(config_cls) or not isinstance(config_cls, type):
        raise TypeError(f"{kind} model {name!r}: config_cls must be a dataclass type")
    if not config_cls.__dataclass_params__.frozen:
        raise TypeError(f"{kind} model {name!r}: config_cls {config_cls.__name__} must be frozen")
    if any(f.name == "model" for f in dataclasses.fields(config_cls)):
        raise TypeError(f"{kind} model {name!r}: 'model' is reserved (it names the model in TOML)")
    table = _BY_NAME[kind]
    if not overwrite:
        if name in table and table[name] != (config_cls, model_cls):
            raise ValueError(f"{kind} model name {name!r} is already registered")
        for other, (cfg, _) in table.items():
            if cfg is config_cls and other != name:
                raise ValueError(
                    f"{kind} config class {config_cls.__name__} is already registered as {other!r}"
                )
    table[name] = (config_cls, model_cls)


def register_conductance_model(
    name: str, config_cls: type, model_cls: type, *, overwrite: bool = False
) -> None:
    """Register a conductance model under ``name``.

    ``config_cls``: a frozen dataclass (fields with units in their names, validated in
    ``__post_init__``, e.g. with :func:`devices.fields.validate_config`).
    ``model_cls``: called as ``model_cls(config)``; must satisfy
    :class:`devices.conductance.ConductanceModel`.
    """
    _register("conductance", name, config_cls, model_cls, overwrite)


def register_element_model(
    name: str, config_cls: type, model_cls: type, *, overwrite: bool = False
) -> None:
    """Register a stochastic-element model under ``name`` (see :func:`register_conductance_model`);
    ``model_cls(config)`` must satisfy :class:`devices.elements.StochasticElement`."""
    _register("element", name, config_cls, model_cls, overwrite)


def registered(kind: str) -> dict[str, tuple[type, type]]:
    """A copy of the registry of ``kind`` ("conductance" or "element")."""
    return dict(_BY_NAME[kind])


def config_class(kind: str, name: str) -> type:
    """The config class registered as ``name``; ``KeyError`` if unknown."""
    return _BY_NAME[kind][name][0]


def name_of(kind: str, config: Any) -> str:
    """The registered name of a config object's class; ``TypeError`` if not registered."""
    for name, (cfg_cls, _) in _BY_NAME[kind].items():
        if type(config) is cfg_cls:
            return name
    known = ", ".join(sorted(_BY_NAME[kind]))
    raise TypeError(
        f"{kind} config of type {type(config).__name__} is not a registered {kind} model "
        f"config (known models: {known}); register it with register_{kind}_model"
    )


def build(kind: str, config: Any) -> Any:
    """Instantiate the model registered for ``config``'s class: ``model_cls(config)``."""
    name = name_of(kind, config)
    return _BY_NAME[kind][name][1](config)
