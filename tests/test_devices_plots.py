"""The device plots build, carry the expected content and save as PNG (small sizes)."""

from __future__ import annotations

import numpy as np
import pytest

from devices import FeFETConfig, PCMConfig, RRAMConfig, SelectorConfig
from devices.plots import plot_pcm_drift, plot_programming_error, plot_selector_switching

pytest.importorskip("matplotlib")


def _saved(fig, tmp_path, name):
    path = tmp_path / name
    fig.savefig(path, dpi=50)
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_selector_plot(tmp_path):
    fig = plot_selector_switching(
        SelectorConfig(), rng=np.random.default_rng(0), n_devices=50, n_reads=50, n_show=2
    )
    (ax,) = fig.axes
    assert "switching probability" in ax.get_ylabel()
    assert len(ax.collections) >= 1  # the device-to-device band
    mean_line = ax.lines[0].get_ydata()
    assert mean_line[0] < 0.01 and mean_line[-1] > 0.99  # p rises from 0 to 1 over the window
    _saved(fig, tmp_path, "sel.png")


def test_pcm_drift_plot(tmp_path):
    fig = plot_pcm_drift(
        PCMConfig(),
        rng=np.random.default_rng(1),
        targets_us=(5.0, 20.0),
        n_devices=30,
        t_points=5,
    )
    (ax,) = fig.axes
    assert ax.get_xscale() == "log"
    median_20 = ax.lines[2].get_ydata()
    assert median_20[-1] < median_20[0]  # drift lowers the conductance
    _saved(fig, tmp_path, "drift.png")


@pytest.mark.parametrize("cfg", [PCMConfig(), RRAMConfig(p_stuck_on=0.1), FeFETConfig()])
def test_programming_error_plot(cfg, tmp_path):
    fig = plot_programming_error(cfg, rng=np.random.default_rng(2), n_devices=200)
    (ax,) = fig.axes
    assert len(ax.patches) == 5  # one step histogram per target level
    _saved(fig, tmp_path, "err.png")
