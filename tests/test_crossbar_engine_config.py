"""ChipConfig: defaults, validation messages, TOML round trips, dotted-path replacement."""

from __future__ import annotations

import dataclasses

import pytest

import devices
from crossbar import ChipConfig, PeripheryConfig, TileConfig, WireConfig, replace_field
from devices import ConfigError, ConfigTypeError


def test_defaults_and_constructors():
    chip = ChipConfig()
    assert chip.tile == TileConfig(256, 256) and chip.tile.weight_rows == 128
    assert chip.periphery.beta_mode == "two_phase" and chip.periphery.adc_bits == 8
    assert chip.wires.r_wire_ohm == 0.0 and chip.v_read_v == 0.2
    ideal = ChipConfig.ideal()
    assert ideal.devices == devices.load_preset("ideal")
    assert (
        ideal.periphery.gain_bits,
        ideal.periphery.adc_bits,
        ideal.periphery.output_adc_bits,
    ) == (0, 0, 0)
    assert ChipConfig.ideal(tile=TileConfig(64, 32)).tile.rows == 64
    fefet = ChipConfig.from_preset("selector-fefet")
    assert fefet.devices == devices.load_preset("selector-fefet")


@pytest.mark.parametrize("preset", sorted(devices.list_presets()))
def test_toml_round_trip(preset, tmp_path):
    chip = ChipConfig.from_preset(
        preset,
        tile=TileConfig(512, 128),
        periphery=PeripheryConfig(
            beta_mode="digital",
            partial_sums="adc",
            adc_bits=9,
            adc_range="fixed",
            adc_full_scale_ua=20.0,
        ),
        wires=WireConfig(1.5),
        v_read_v=0.3,
    )
    text = chip.to_toml()
    assert ChipConfig.from_toml(text) == chip
    path = tmp_path / "chip.toml"
    path.write_text(text)
    assert ChipConfig.from_toml(path) == chip and ChipConfig.from_toml(str(path)) == chip
    assert ChipConfig.from_dict(chip.to_dict()) == chip


def test_omitted_sections_take_defaults():
    chip = ChipConfig.from_toml(
        'format_version = 1\n[periphery]\nadc_bits = 6\n[devices.element]\nmodel = "selector"\n'
    )
    assert chip.periphery == PeripheryConfig(adc_bits=6)
    assert chip.tile == TileConfig() and chip.devices.element == devices.SelectorConfig()


@pytest.mark.parametrize(
    ("text", "exc", "words"),
    [
        (
            "format_version = 1\n[periphery]\nadc_bits = 40\n",
            ConfigError,
            ["periphery.adc_bits", "40", "[0, 24]"],
        ),
        (
            "format_version = 1\n[periphery]\nbeta_mode = 'analog'\n",
            ConfigError,
            ["periphery.beta_mode", "two_phase"],
        ),
        ("format_version = 1\n[tile]\nrows = 255\n", ConfigError, ["tile.rows", "255", "even"]),
        ("format_version = 1\n[tile]\nrows = 1.5\n", ConfigTypeError, ["tile.rows", "integer"]),
        (
            "format_version = 1\n[wires]\nr_wire_ohm = -1\n",
            ConfigError,
            ["wires.r_wire_ohm", "-1", "[0, 10000]"],
        ),
        ("format_version = 1\nv_read_v = 0\n", ConfigError, ["v_read_v", "(0, 100]"]),
        (
            "format_version = 1\n[periphery]\nadc_bitz = 4\n",
            ConfigError,
            ["periphery.adc_bitz", "not a known key", "adc_bits"],
        ),
        (
            "format_version = 1\n[devices.conductance]\nmodel = 'pcm'\ng_max_us = -3\n",
            ConfigError,
            ["devices.conductance.g_max_us", "-3"],
        ),
        ("format_version = 2\n", ConfigError, ["format_version", "not supported"]),
        ("format_version = 1\n[chip]\n", ConfigError, ["chip", "not a known key"]),
    ],
)
def test_bad_values_name_the_field_value_and_range(text, exc, words):
    with pytest.raises(exc) as info:
        ChipConfig.from_toml(text)
    for w in words:
        assert w in str(info.value)


def test_constructor_validates_sections():
    with pytest.raises(ConfigTypeError, match="tile"):
        ChipConfig(tile=(256, 256))
    with pytest.raises(ConfigError, match="gain_range"):
        PeripheryConfig(gain_range=0.0)
    with pytest.raises(ValueError, match="invalid TOML"):
        ChipConfig.from_toml("format_version = = 1\n")


def test_replace_field_paths():
    chip = ChipConfig()
    assert replace_field(chip, "periphery.adc_bits", 6).periphery.adc_bits == 6
    assert replace_field(chip, "tile.cols", 512).tile.cols == 512
    assert replace_field(chip, "wires.r_wire_ohm", 2.0).wires.r_wire_ohm == 2.0
    assert replace_field(chip, "v_read_v", 0.1).v_read_v == 0.1
    assert replace_field(chip, "description", "x").description == "x"
    assert replace_field(chip, "tile", TileConfig(64, 64)).tile.rows == 64
    sel = replace_field(chip, "devices.element.model", "selector")
    assert isinstance(sel.devices.element, devices.SelectorConfig)
    assert replace_field(sel, "devices.element.sigma_d_v", 0.05).devices.element.sigma_d_v == 0.05
    # Everything else is untouched.
    new = replace_field(chip, "periphery.adc_bits", 6)
    assert dataclasses.replace(new, periphery=chip.periphery) == chip


@pytest.mark.parametrize(
    ("path", "value", "exc", "words"),
    [
        ("periphery.adc_bits", 99, ConfigError, ["periphery.adc_bits", "99"]),
        ("periphery.nope", 1, ConfigError, ["periphery.nope", "not a known field"]),
        ("nope.x", 1, ConfigError, ["nope.x", "not a known field"]),
        ("devices.element.sigma_c_v", -1.0, ConfigError, ["devices.element"]),
        ("tile.rows", "256", ConfigTypeError, ["tile.rows"]),
        ("v_read_v", -0.2, ConfigError, ["v_read_v", "-0.2"]),
    ],
)
def test_replace_field_errors(path, value, exc, words):
    with pytest.raises(exc) as info:
        replace_field(ChipConfig(), path, value)
    for w in words:
        assert w in str(info.value)
