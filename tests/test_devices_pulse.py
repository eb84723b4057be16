"""Pulse-response device models: defining curves, noise statistics, presets, TOML, errors."""

from __future__ import annotations

import numpy as np
import pytest

from devices.errors import ConfigError
from devices.pulse import (
    PulseConfig,
    PulseDevice,
    list_pulse_presets,
    load_pulse_preset,
    pulse_from_toml,
    pulse_to_toml,
)


def test_presets_load_and_round_trip():
    names = list_pulse_presets()
    assert {"ideal", "fefet", "rram", "pcm"} <= set(names)
    for name in names:
        cfg = load_pulse_preset(name)
        assert pulse_from_toml(pulse_to_toml(cfg, "x")) == cfg


def test_linear_device_counts_steps_exactly():
    cfg = PulseConfig(g_min_us=0.0, g_max_us=10.0, dg_up_us=0.5, dg_down_us=0.25)
    r = PulseDevice(cfg).response(30, 50, rng=np.random.default_rng(0))[:, 0]
    # up: +0.5 per pulse until the hard bound 10 (20 pulses), then flat
    np.testing.assert_allclose(r[:21], 0.5 * np.arange(21))
    np.testing.assert_allclose(r[21:31], 10.0)
    # down: -0.25 per pulse (asymmetry), 40 pulses to reach 0
    np.testing.assert_allclose(r[31:], np.maximum(10.0 - 0.25 * np.arange(1, 51), 0.0))


def test_soft_bounds_follow_the_exponential_curve():
    # gamma = 1: G_k = g_max - (g_max - g_min)(1 - dg/span)^k (the soft-bound law)
    cfg = PulseConfig(
        g_min_us=1.0, g_max_us=21.0, dg_up_us=1.0, dg_down_us=2.0, gamma_up=1.0, gamma_down=1.0
    )
    r = PulseDevice(cfg).response(60, 60, rng=np.random.default_rng(0))[:, 0]
    k = np.arange(61)
    np.testing.assert_allclose(r[:61], 21.0 - 20.0 * (1 - 1.0 / 20) ** k, rtol=1e-12)
    down = 1.0 + (r[60] - 1.0) * (1 - 2.0 / 20) ** k
    np.testing.assert_allclose(r[60:], down, rtol=1e-12)


def test_pcm_gradual_set_abrupt_reset():
    cfg = load_pulse_preset("pcm")
    r = PulseDevice(cfg).response(40, 2, n_devices=200, rng=np.random.default_rng(1))
    mean = r.mean(axis=1)
    assert np.all(np.diff(mean[:41]) > 0)  # gradual, monotone SET on average
    assert mean[40] > 0.6 * cfg.g_max_us  # most of the window after 40 SET pulses
    np.testing.assert_array_equal(r[41], cfg.g_min_us)  # one RESET pulse: all at g_min


def test_finite_levels():
    cfg = load_pulse_preset("fefet")
    r = PulseDevice(cfg).response(40, 40, n_devices=20, rng=np.random.default_rng(2))
    levels = np.linspace(cfg.g_min_us, cfg.g_max_us, cfg.n_levels)
    dist = np.min(np.abs(r[..., None] - levels), axis=-1)
    assert dist.max() < 1e-9  # every state is one of the 32 levels


def test_cycle_to_cycle_step_noise_statistics():
    # One pulse from g_min on 20000 devices: the step is dg (1 + c2c ε); mean and std within
    # 4 standard errors (fixed seed; a failure has probability < 1e-4).
    cfg = PulseConfig(g_min_us=0.0, g_max_us=10.0, dg_up_us=1.0, c2c_sigma=0.2)
    r = PulseDevice(cfg).response(1, 0, n_devices=20000, rng=np.random.default_rng(3))
    step = r[1] - r[0]
    se = 0.2 / np.sqrt(step.size)
    assert abs(step.mean() - 1.0) < 4 * se
    assert abs(step.std() - 0.2) < 4 * 0.2 / np.sqrt(2 * step.size)


def test_device_to_device_variation_is_lognormal():
    cfg = PulseConfig(dg_up_us=0.1, d2d_sigma=0.3)
    arr = PulseDevice(cfg).init(np.zeros(20000), rng=np.random.default_rng(4))
    log = np.log(arr.dg_up_us / 0.1)
    # log-normal with log-std 0.3: mean 0, std 0.3 within 4 standard errors
    assert abs(log.mean()) < 4 * 0.3 / np.sqrt(log.size)
    assert abs(log.std() - 0.3) < 4 * 0.3 / np.sqrt(2 * log.size)
    assert np.all(arr.g_top_us <= cfg.g_max_us)


def test_pulse_counts_are_recorded():
    arr = PulseDevice(PulseConfig()).init(np.full((2, 3), 5.0), rng=np.random.default_rng(5))
    up = np.array([[0, 1, 2], [3, 0, 0]])
    down = np.array([[1, 0, 0], [0, 0, 4]])
    arr.pulse(up, down, rng=np.random.default_rng(6))
    np.testing.assert_array_equal(arr.n_up, up)
    np.testing.assert_array_equal(arr.n_down, down)
    np.testing.assert_allclose(arr.g_us, 5.0 + 0.025 * (up - down))


def test_errors_name_the_field():
    with pytest.raises(ConfigError, match="dg_up_us"):
        PulseConfig(dg_up_us=-1.0)
    with pytest.raises(ConfigError, match="reset"):
        PulseConfig(reset="slow")
    with pytest.raises(ConfigError, match=r"pulse\.c2c_sigma"):
        pulse_from_toml("format_version = 1\n[pulse]\nc2c_sigma = -1\n")
    with pytest.raises(ConfigError, match=r"pulse\.bogus"):
        pulse_from_toml("format_version = 1\n[pulse]\nbogus = 1\n")
    with pytest.raises(ConfigError, match="g_us"):
        PulseDevice(PulseConfig()).init(np.array([30.0]), rng=np.random.default_rng(0))
    arr = PulseDevice(PulseConfig()).init(np.zeros(3), rng=np.random.default_rng(0))
    with pytest.raises(ValueError, match=">= 0"):
        arr.pulse(np.array([-1, 0, 0]), rng=np.random.default_rng(0))


def test_response_plot(tmp_path):
    pytest.importorskip("matplotlib")
    from devices.pulse import plot_pulse_response

    fig = plot_pulse_response(
        load_pulse_preset("rram"), rng=np.random.default_rng(0), n_up=50, n_down=50, n_devices=10
    )
    (ax,) = fig.axes
    assert "pulse" in ax.get_xlabel()
    path = tmp_path / "r.png"
    fig.savefig(path, dpi=40)
    assert path.read_bytes()[:4] == b"\x89PNG"


def test_pulse_trains_equal_single_pulses():
    # pulse() (devices sorted by count, prefix slices) equals one-pulse-at-a-time stepping
    # for a noise-free soft-bound, asymmetric device with device-to-device variation.
    cfg = PulseConfig(
        g_min_us=0.0,
        g_max_us=10.0,
        dg_up_us=0.7,
        dg_down_us=0.4,
        gamma_up=1.3,
        gamma_down=0.6,
        d2d_sigma=0.2,
    )
    rng = np.random.default_rng(7)
    g0 = rng.uniform(0, 10, (6, 5))
    n_up, n_down = rng.integers(0, 9, (6, 5)), rng.integers(0, 9, (6, 5))
    fast = PulseDevice(cfg).init(g0, rng=np.random.default_rng(8))
    slow = PulseDevice(cfg).init(g0, rng=np.random.default_rng(8))
    fast.pulse(n_up, n_down, rng=np.random.default_rng(9))
    for direction, n in ((1, n_up), (-1, n_down)):
        for k in range(n.max()):
            slow._step(direction, n > k, np.random.default_rng(9))
    np.testing.assert_allclose(fast.g_us, slow.g_us, rtol=1e-12)
    np.testing.assert_array_equal(fast.n_up, slow.n_up)
