"""Chip presets: one meaning of every name (ChipConfig.preset, resolve_chip, the CLI's lists)."""

from __future__ import annotations

import pytest

import crossbar
import devices
from crossbar import (
    ChipConfig,
    ChipError,
    PeripheryConfig,
    TileConfig,
    chip_preset,
    chip_toml,
    list_chips,
    resolve_chip,
)
from devices import ConfigError


def test_ideal_means_ideal_periphery_everywhere():
    ideal = ChipConfig.preset("ideal")
    for same in (ChipConfig.ideal(), ChipConfig.from_preset("ideal"), resolve_chip("ideal")):
        assert same == ideal
    assert ideal.devices == devices.load_preset("ideal")
    per = ideal.periphery
    assert (per.gain_bits, per.adc_bits, per.output_adc_bits) == (0, 0, 0)
    assert ideal.description == list_chips()["ideal"]


@pytest.mark.parametrize("name", [n for n in crossbar.chip_preset_names() if n != "ideal"])
def test_device_presets_get_the_default_periphery(name):
    chip = ChipConfig.preset(name)
    assert chip.devices == devices.load_preset(name)
    assert chip.periphery == PeripheryConfig() and chip.tile == TileConfig()
    assert chip.description == name and resolve_chip(name) == chip == chip_preset(name)
    assert list_chips()[name].endswith("(default periphery)")


def test_listing_sections_and_toml_text():
    names = list(list_chips())
    assert names[0] == "ideal" and names[1:] == sorted(names[1:])
    assert set(names) == set(crossbar.chip_preset_names())
    small = ChipConfig.preset("rram-selector", tile=TileConfig(64, 16), v_read_v=0.3)
    assert small.tile == TileConfig(64, 16) and small.v_read_v == 0.3
    assert small.devices == ChipConfig.preset("rram-selector").devices
    for name in names:
        text = chip_toml(name)
        assert text.startswith(f"# Chip preset '{name}'")
        assert ChipConfig.from_toml(text) == ChipConfig.preset(name)


def test_unknown_presets_name_the_choices():
    with pytest.raises(ConfigError, match=r"name='nope' is not a known chip preset.*'ideal'"):
        ChipConfig.preset("nope")
    with pytest.raises(ChipError, match=r"chip preset 'nope' is unknown; choose one of ideal"):
        resolve_chip("nope")
