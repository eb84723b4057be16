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
