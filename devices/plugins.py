"""Plugins: modules that register the user's own device and element models.

A plugin is an importable Python module whose import registers models with
:func:`devices.register_conductance_model` / :func:`devices.register_element_model` (as
``examples/custom_device.py`` does). Two ways to name one:

1. an installed package declares an entry point in the group :data:`ENTRY_POINT_GROUP`::

       [project.entry-points."nsm_crossbar.plugins"]
       leaky = "leaky_cell_plugin"          # the module to import

   (``examples/plugin_package`` is a complete example), found by :func:`load_plugins`;
2. ``nsmx run --plugin MODULE`` (repeatable) on the command line, or ``modules=`` here.

The CLI loads both before it reads a chip file, and a sweep passes the list of loaded plugin
modules to its worker processes and Dask workers, which import them before building a chip, so a
registered model works wherever a shipped one does. Loading is idempotent: a module is imported
once per process.
"""

from __future__ import annotations

import importlib
import importlib.metadata
from collections.abc import Iterable

#: The entry-point group that installed plugin packages declare.
ENTRY_POINT_GROUP = "nsm_crossbar.plugins"

_LOADED: list[str] = []


class PluginError(ImportError):
    """A plugin module could not be imported (the message names it and the cause)."""


def _import(module: str, origin: str) -> None:
    if module in _LOADED:
        return
    try:
        importlib.import_module(module)
    except Exception as exc:  # any failure inside the user's module: name it and the origin
        raise PluginError(
            f"plugin {module!r} ({origin}) failed to import: {type(exc).__name__}: {exc}"
        ) from exc
    _LOADED.append(module)


def entry_point_modules() -> list[str]:
    """The modules named by installed packages in :data:`ENTRY_POINT_GROUP` (sorted by name)."""
    eps = importlib.metadata.entry_points(group=ENTRY_POINT_GROUP)
    return [ep.value.split(":", 1)[0] for ep in sorted(eps, key=lambda ep: ep.name)]


def load_plugins(modules: Iterable[str] = (), *, entry_points: bool = True) -> list[str]:
    """Import the installed plugins (``entry_points``) and ``modules``; return all loaded so far.

    Raises :class:`PluginError` naming a module that fails to import.
    """
    if entry_points:
        for module in entry_point_modules():
            _import(module, f"entry point of group {ENTRY_POINT_GROUP!r}")
    for module in modules:
        if not isinstance(module, str) or not module:
            raise PluginError(f"plugin module name {module!r} must be a non-empty string")
        _import(module, "--plugin")
    return loaded_plugins()


def loaded_plugins() -> list[str]:
    """The plugin modules imported in this process, in load order (to pass to workers)."""
    return list(_LOADED)
