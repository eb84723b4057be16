"""``nsmx chips --fields`` and ``nsmx --version``: the fields --set and --vary accept."""

from __future__ import annotations

import contextlib
import io
import json

import pytest

from nsmx.cli import main


def run_cli(argv: list[str]) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(argv)
    return code, out.getvalue(), err.getvalue()


def test_fields_list_units_ranges_and_values():
    code, out, err = run_cli(["chips", "--fields", "rram-selector", "--json"])
    assert code == 0, err
    rows = {r["field"]: r for r in json.loads(out.strip().splitlines()[-1])["fields"]}
    sigma = rows["devices.neuron.offset_sigma_ua"]
    assert sigma["unit"] == "µA" and sigma["allowed"].startswith("[0, ")
    assert rows["devices.conductance.model"]["value"] == "rram"
    assert rows["run.mode"]["allowed"] == "one of 'exact', 'clt'"
    prefixes = {name.split(".")[0] for name in rows}
    assert {"devices", "tile", "periphery", "wires", "cost", "run"} <= prefixes
    code, out, _ = run_cli(["chips", "--fields"])  # the ideal chip by default, as a table
    assert code == 0 and "devices.neuron.offset_sigma_ua" in out and "µA" in out


def test_version(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["--version"])
    assert exc.value.code == 0
    assert capsys.readouterr().out.startswith("nsmx ")


def test_show_prints_commented_toml_that_reads_back():
    from crossbar import ChipConfig, resolve_chip

    code, out, err = run_cli(["chips", "--show", "rram-selector"])
    assert code == 0, err
    line = next(x for x in out.splitlines() if x.startswith("offset_sigma_ua"))
    assert "# µA; [0, " in line
    assert ChipConfig.from_toml(out) == resolve_chip("rram-selector")


SHIPPED_MODELS = {
    "conductance": ["fefet", "ideal", "pcm", "rram"],
    "element": ["bernoulli", "gaussian", "selector"],
}


@pytest.mark.parametrize("chip", ["ideal", "pcm-gaussian", "rram-selector", "selector-fefet"])
def test_every_listed_field_has_a_meaning(chip):
    from crossbar import list_chips

    assert chip in list_chips()
    code, out, err = run_cli(["chips", "--fields", chip, "--json"])
    assert code == 0, err
    rows = json.loads(out.strip().splitlines()[-1])["fields"]
    assert len(rows) > 50
    empty = [r["field"] for r in rows if not r["doc"].strip()]
    assert empty == [], f"fields of chip {chip} without a meaning: {empty}"
    long = [r["field"] for r in rows if len(r["doc"]) > 72]
    assert long == [], f"meanings longer than 72 characters (a terminal table): {long}"
    assert {r["field"] for r in rows if r["field"].startswith("run.")} == {
        "run.samples",
        "run.mode",
        "run.t_s",
        "run.p_policy",
        "run.drift_compensation",
    }


def test_every_model_and_config_field_has_a_meaning():
    """Every field of every shipped device/element model, the neuron, the pulse model, each chip
    section and the run settings (run.seed included) declares its one-line meaning."""
    from crossbar.config import ChipConfig
    from devices import registry
    from devices.neuron import ThresholdNeuronConfig
    from devices.pulse import PulseConfig
    from mapping.run_config import RunConfig
    from nsmx.fields_table import field_rows

    configs = [ThresholdNeuronConfig(), PulseConfig(), RunConfig(), ChipConfig.ideal()]
    for kind, names in SHIPPED_MODELS.items():
        assert set(names) <= set(registry.registered(kind))
        configs += [registry.config_class(kind, name)() for name in names]
    for config in configs:
        rows = field_rows(config)
        assert rows, type(config).__name__
        empty = [r["field"] for r in rows if not r["doc"].strip()]
        assert empty == [], f"{type(config).__name__} fields without a meaning: {empty}"


def test_fields_table_shows_offset_sigma_with_unit_and_range():
    code, out, err = run_cli(["chips", "--fields", "rram-selector"])
    assert code == 0, err
    lines = out.splitlines()
    assert lines[0].startswith("fields of chip rram-selector")
    header = lines[1].split()
    assert header == ["field", "value", "unit", "allowed", "meaning"]
    line = next(x for x in lines if x.split()[0] == "devices.neuron.offset_sigma_ua")
    cells = line.split()
    assert cells[2] == "µA"  # unit column
    assert cells[3:5] == ["[0,", "1e+06]"]  # allowed range, as the validator states it
    assert "input-referred offset" in line  # meaning
    from crossbar import resolve_chip

    value = resolve_chip("rram-selector").devices.neuron.offset_sigma_ua
    assert float(cells[1]) == pytest.approx(value, rel=1e-5)


@pytest.mark.parametrize(
    ("chip", "sets"),
    [
        ("ideal", []),
        ("pcm-gaussian", []),
        ("selector-fefet", []),
        ("rram-selector", ["periphery.adc_bits=6", "devices.neuron.offset_sigma_ua=0.25"]),
    ],
)
def test_show_comments_every_field_and_reads_back_the_same_chip(chip, sets):
    from crossbar import ChipConfig, resolve_chip

    argv = ["chips", "--show", chip]
    for s in sets:
        argv += ["--set", s]
    code, out, err = run_cli(argv)
    assert code == 0, err
    expected = resolve_chip(chip, sets)
    assert ChipConfig.from_toml(out) == expected  # the comments change nothing
    # every key = value line of a field carries "# unit; allowed; meaning" (only
    # format_version and description, which are not fields, stay bare)
    section, bare = "", []
    for line in out.splitlines():
        stripped = line.strip()
        if stripped.startswith("["):
            section = stripped.strip("[]")
        elif "=" in stripped and not stripped.startswith("#"):
            key = stripped.split("=", 1)[0].strip()
            if key in ("format_version", "description"):
                continue
            if "  # " not in line:
                bare.append(f"{section}.{key}" if section else key)
    assert bare == []
    if sets:
        line = next(x for x in out.splitlines() if x.startswith("adc_bits"))
        assert line.startswith("adc_bits = 6  # integer in [0, 24]; ")


def test_every_subcommand_help_states_its_defaults():
    """Each option with a default (other than off/none/empty) says it in --help."""
    import argparse

    from nsmx.cli import build_parser

    parser = build_parser()
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    assert {"train", "evaluate", "run", "sweep", "learn", "chips", "compile"} <= set(sub.choices)
    missing = []
    for name, command in sub.choices.items():
        for action in command._actions:
            default = action.default
            if isinstance(action, argparse._HelpAction) or action.required:
                continue
            if default in (None, False, [], argparse.SUPPRESS):
                continue
            if "default" not in (action.help or ""):
                missing.append(f"{name} {'/'.join(action.option_strings) or action.dest}")
    assert missing == []
    help_text = sub.choices["train"].format_help()
    assert "(default: 10)" in help_text and "(default: nsm)" in help_text
