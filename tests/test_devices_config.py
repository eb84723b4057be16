"""Configuration: presets, TOML round trips, validation messages, dotted-path replacement."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

import devices
from devices import (
    ConfigError,
    ConfigTypeError,
    DeviceConfig,
    PCMConfig,
    RRAMConfig,
    SelectorConfig,
    from_toml,
    load_preset,
    replace_field,
    to_toml,
)

PRESETS = ("ideal", "pcm-gaussian", "rram-selector", "selector-fefet")


def test_list_presets_has_descriptions():
    listed = devices.list_presets()
    assert tuple(listed) == PRESETS
    for name, line in listed.items():
        assert 20 < len(line) < 100 and "\n" not in line, name


@pytest.mark.parametrize("name", PRESETS)
def test_preset_round_trip_is_identical(name, tmp_path):
    cfg = load_preset(name)
    assert from_toml(to_toml(cfg)) == cfg
    assert devices.from_dict(devices.to_dict(cfg)) == cfg
    path = tmp_path / f"{name}.toml"
    path.write_text(to_toml(cfg))
    assert from_toml(path) == cfg and from_toml(str(path)) == cfg
    # The shipped file spells out every field (the file documents the full device).
    assert to_toml(from_toml(devices.preset_text(name))) == to_toml(cfg)


@pytest.mark.parametrize("name", PRESETS)
def test_preset_files_cite_sources(name):
    text = devices.preset_text(name)
    header = text.split("format_version")[0]
    assert header.lstrip().startswith("#")
    assert "et al." in header and "illustrative" in header.lower()


def test_presets_build_working_models():
    rng = np.random.default_rng(0)
    for name in PRESETS:
        cfg = load_preset(name)
        cond, el, neuron = cfg.conductance_model(), cfg.element_model(), cfg.neuron_model()
        assert isinstance(cond, devices.ConductanceModel)
        assert isinstance(el, devices.StochasticElement) and el.noise in ("bernoulli", "gaussian")
        g = cond.program(np.full((4, 3), 0.5 * (cond.g_min_us + cond.g_max_us)), rng=rng)
        assert cond.read(g, 100.0, rng=rng).shape == (4, 3)
        assert el.sample(el.program((4, 3), rng=rng), 2, rng=rng).shape[0] == 2
        assert neuron.program(3, rng=rng).shape == (3,)
    ideal = load_preset("ideal")
    assert ideal.element == devices.BernoulliConfig(p=0.5) and ideal.neuron.offset_sigma_ua == 0
    sel = load_preset("selector-fefet").element_model()
    # v_read = mu: the population mean p of the selector presets is 0.5.
    assert devices.selector_read_voltage(sel.config, 0.5) == pytest.approx(sel.config.v_read_v)


BASE = 'format_version = 1\n[conductance]\nmodel = "pcm"\n'


@pytest.mark.parametrize(
    ("text", "exc", "pattern"),
    [
        (BASE + "g_max_us = -3.0\n", ConfigError, r"conductance\.g_max_us = -3\.0 .*\(0, inf\) µS"),
        (BASE + 'g_max_us = "big"\n', ConfigTypeError, r"conductance\.g_max_us = 'big'"),
        (BASE + "g_max_us = true\n", ConfigTypeError, r"conductance\.g_max_us = True"),
        (BASE + "n_levels = 2.5\n", ConfigTypeError, r"conductance\.n_levels = 2\.5 .*integer"),
        (BASE + "n_levels = 1\n", ConfigError, r"conductance\.n_levels = 1 .*>= 2"),
        (BASE + "g_min_us = 30.0\n", ConfigError, r"conductance\.g_min_us = 30\.0 .*g_max_us"),
        (
            BASE + "p_stuck_on = 0.7\np_stuck_off = 0.5\n",
            ConfigError,
            r"conductance\.p_stuck_off = 0\.5 .*\[0, 1 - p_stuck_on",
        ),
        (BASE + "t_read_s = 30.0\n", ConfigError, r"conductance\.t_read_s = 30\.0 .*t0_s"),
        (
            BASE + "g_max_uS = 3.0\n",
            ConfigError,
            r"conductance\.g_max_uS .*not a known key.*g_max_us",
        ),
        (BASE + "model_x = 1\n", ConfigError, r"conductance\.model_x"),
        (
            'format_version = 1\n[conductance]\nmodel = "mram"\n',
            ConfigError,
            # registered user models (plugins loaded by earlier tests) may sit between them
            r"conductance\.model = 'mram' .*'fefet', 'ideal', .*'pcm', .*'rram'",
        ),
        (
            "format_version = 1\n[conductance]\ng_max_us = 3.0\n",
            ConfigError,
            r"conductance\.model = None is missing",
        ),
        (
            'format_version = 1\n[element]\nmodel = "selector"\nstructure = "per_col"\n',
            ConfigError,
            r"element\.structure = 'per_col' .*'per_cell', 'per_row'",
        ),
        (
            'format_version = 1\n[element]\nmodel = "selector"\nsigma_c_v = 0.0\n',
            ConfigError,
            r"element\.sigma_c_v = 0\.0 .*\(0, 100\] V",
        ),
        (
            'format_version = 1\n[element]\nmodel = "bernoulli"\np = 0.0\n',
            ConfigError,
            r"element\.p = 0\.0 .*\(0, 1\]",
        ),
        (
            "format_version = 1\n[neuron]\nnoise_sigma_ua = -0.1\n",
            ConfigError,
            # bounded above since 1e300 overflowed downstream: a 1 A comparator noise is unphysical
            r"neuron\.noise_sigma_ua = -0\.1 .*\[0, 1e\+06\] µA",
        ),
        ("format_version = 1\n[neuron]\ngain = 2.0\n", ConfigError, r"neuron\.gain"),
        ("format_version = 1\nchip = 3\n", ConfigError, r"chip = 3 is not a known key"),
        ('format_version = 1\nconductance = "pcm"\n', ConfigTypeError, r"conductance = 'pcm'"),
        ("[neuron]\n", ConfigError, r"format_version = None is not supported; allowed: 1"),
        ("format_version = 2\n", ConfigError, r"format_version = 2 is not supported"),
        ("format_version = 1\n[neuron\n", ValueError, r"invalid TOML"),
    ],
)
def test_bad_toml_names_field_value_and_range(text, exc, pattern):
    with pytest.raises(exc, match=pattern):
        from_toml(text)


def test_missing_sections_take_defaults():
    cfg = from_toml("format_version = 1\n")
    assert cfg == DeviceConfig()
    assert isinstance(cfg.conductance, devices.IdealConfig)


def test_direct_construction_validates_and_coerces():
    cfg = PCMConfig(g_max_us=30)  # an int is a fine spelling of a float
    assert cfg.g_max_us == 30.0 and isinstance(cfg.g_max_us, float)
    assert isinstance(PCMConfig(n_levels=np.int64(8)).n_levels, int)
    with pytest.raises(ConfigError, match=r"PCMConfig\.g_max_us = 0\.0 .*\(0, inf\) µS"):
        PCMConfig(g_max_us=0.0)
    with pytest.raises(ConfigError, match=r"PCMConfig\.drift_scale = nan"):
        PCMConfig(drift_scale=float("nan"))
    with pytest.raises(ConfigTypeError, match=r"SelectorConfig\.mu_v = None"):
        SelectorConfig(mu_v=None)
    with pytest.raises(dataclasses.FrozenInstanceError):
        PCMConfig().g_max_us = 3.0  # type: ignore[misc]
    with pytest.raises(TypeError, match="not a registered conductance model config"):
        DeviceConfig(conductance=SelectorConfig())
    with pytest.raises(TypeError, match="neuron"):
        DeviceConfig(neuron=PCMConfig())


def test_replace_field_for_sweeps():
    cfg = load_preset("rram-selector")
    new = replace_field(cfg, "element.sigma_d_v", 0.07)
    assert new.element.sigma_d_v == 0.07 and cfg.element.sigma_d_v == 0.03
    assert new.conductance == cfg.conductance
    assert replace_field(cfg, "conductance.p_stuck_on", 0).conductance.p_stuck_on == 0.0
    assert replace_field(cfg, "neuron.offset_sigma_ua", 2.0).neuron.offset_sigma_ua == 2.0
    assert replace_field(cfg, "description", "x").description == "x"
    switched = replace_field(cfg, "conductance.model", "pcm")
    assert switched.conductance == PCMConfig()
    assert replace_field(cfg, "conductance", RRAMConfig(g_max_us=50)).conductance.g_max_us == 50
    with pytest.raises(ConfigError, match=r"element\.sigma_d_v = -1\.0 .*\[0, 100\] V"):
        replace_field(cfg, "element.sigma_d_v", -1.0)
    with pytest.raises(ConfigError, match=r"element\.sigma_dd_v .*not a known field.*sigma_d_v"):
        replace_field(cfg, "element.sigma_dd_v", 0.1)
    with pytest.raises(ConfigError, match=r"tile\.rows .*not a known field"):
        replace_field(cfg, "tile.rows", 256)
    with pytest.raises(ConfigError, match=r"element\.a\.b"):
        replace_field(cfg, "element.a.b", 1)
    with pytest.raises(ConfigError, match=r"conductance\.model = 'nope'"):
        replace_field(cfg, "conductance.model", "nope")
    with pytest.raises(TypeError, match="not a registered element model config"):
        replace_field(cfg, "element", PCMConfig())
