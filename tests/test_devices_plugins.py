"""Plugin modules register device models; failures name the module."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

import devices
from devices.plugins import PluginError, load_plugins, loaded_plugins

PLUGIN_SRC = Path(__file__).resolve().parents[1] / "examples" / "plugin_package" / "src"


@pytest.fixture(autouse=True)
def _own_plugin_list(monkeypatch):
    # Plugins loaded here must not leak into later tests (a sweep hands them to its workers).
    monkeypatch.setattr(devices.plugins, "_LOADED", [])


def test_example_plugin_registers_its_model_once(monkeypatch):
    monkeypatch.syspath_prepend(str(PLUGIN_SRC))
    load_plugins(["nsmx_retention_plugin"], entry_points=False)
    load_plugins(["nsmx_retention_plugin"], entry_points=False)  # idempotent
    assert loaded_plugins().count("nsmx_retention_plugin") == 1
    assert "retention-cell" in devices.registry.registered("conductance")
    cfg = devices.from_toml(
        'format_version = 1\n[conductance]\nmodel = "retention-cell"\ntau_s = 10.0\n'
    )
    cell = cfg.conductance_model()
    state = cell.program(np.full(4, 20.0), rng=np.random.default_rng(0))
    g0 = cell.mean(state, 0.0)
    # Relaxation toward g_min: after many tau the mean is g_min (1 uS) for healthy cells.
    np.testing.assert_allclose(cell.mean(state, 1e9), 1.0, rtol=1e-6)
    assert np.all(cell.mean(state, 10.0) < g0)


def test_a_failing_plugin_is_named(tmp_path, monkeypatch):
    (tmp_path / "broken_plugin.py").write_text("raise RuntimeError('no such device')\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.raises(PluginError, match=r"'broken_plugin' \(--plugin\).*no such device"):
        load_plugins(["broken_plugin"], entry_points=False)
    with pytest.raises(PluginError, match="no_such_module_xyz"):
        load_plugins(["no_such_module_xyz"], entry_points=False)
    assert "broken_plugin" not in loaded_plugins()
    sys.modules.pop("broken_plugin", None)
