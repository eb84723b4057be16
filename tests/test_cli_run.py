"""``nsmx demo``, ``nsmx run`` and ``nsmx chips`` end to end (bundled digits, offline).

The module fixture runs a short demo (2 epochs, up to 3 MC samples): it trains, compiles and runs
the program on the chips, and leaves a program file that the ``run`` tests reuse.
"""

from __future__ import annotations

import contextlib
import io
import json

import numba
import pytest
import torch
from threadpoolctl import threadpool_limits

from crossbar import ChipConfig
from crossbar.presets import chip_preset
from mapping.program import load_program
from nsmx.cli import main


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """One numba and torch thread (a shared 2-core machine; see test_mapping_runtime)."""
    numba_threads, torch_threads = numba.get_num_threads(), torch.get_num_threads()
    numba.set_num_threads(1)
    torch.set_num_threads(1)
    with threadpool_limits(limits=1):  # numpy's BLAS
        yield
    numba.set_num_threads(numba_threads)
    torch.set_num_threads(torch_threads)


def last_json(text: str) -> dict:
    return json.loads(text.strip().splitlines()[-1])


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    out = tmp_path_factory.mktemp("demo")
    stdout, stderr = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(stdout), contextlib.redirect_stderr(stderr):
        code = main(
            [
                "demo",
                "--out",
                str(out),
                "--epochs",
                "2",
                "--samples",
                "3",
                "--no-progress",
                "--json",
            ]
        )
    assert code == 0
    # --json: stdout is the JSON document alone, the human report goes to stderr.
    return out, json.loads(stdout.getvalue()), stderr.getvalue()


def test_demo_trains_compiles_runs_and_plots(demo):
    out, result, text = demo
    assert (out / "demo_accuracy.png").stat().st_size > 10_000
    assert load_program(out / "model.nsmx").source["model"] == "digits-mlp"
    assert result["samples"] == [1, 3] and result["n"] == 450
    configs = [r["config"] for r in result["rows"]]
    assert configs == [
        "software (torch)",
        "chip ideal",
        "chip rram-selector",
        "chip selector-fefet",
    ]
    for row in result["rows"]:
        assert len(row["accuracy"]) == 2
        assert all(0.3 < a <= 1.0 for a in row["accuracy"])  # trained (2 epochs), not chance
    assert "configuration" in text and "S=3" in text
    assert json.loads((out / "demo.json").read_text())["rows"] == result["rows"]


def test_run_json_ideal_chip(demo, capsys):
    out, _, _ = demo
    code = main(
        [
            "--threads",
            "1",
            "run",
            str(out / "model.nsmx"),
            "--chip",
            "ideal",
            "--samples",
            "10",
            "--limit",
            "200",
            "--no-progress",
            "--json",
        ]
    )
    assert code == 0
    captured = capsys.readouterr()
    result, text = json.loads(captured.out), captured.err  # stdout: the JSON alone
    for key in (
        "chip_accuracy",
        "software_accuracy",
        "samples",
        "n",
        "mode",
        "chip",
        "seed",
        "t_s",
        "wall_s",
    ):
        assert key in result
    assert result["n"] == 200 and result["samples"] == 10 and result["dataset"] == "digits"
    assert result["mode"] == "exact" and result["chip"] == "ideal"
    # Same model, same number of samples: equal within MC error. Two independent MC estimates
    # on 200 examples (10 samples each) disagree on a few examples (measured: 84.5 % vs 85.5 %);
    # 6 % (12 examples) is a loose bound that still catches a broken chip mapping.
    assert abs(result["chip_accuracy"] - result["software_accuracy"]) < 0.06
    assert "software (reference)" in text and "chip (exact)" in text
    layers = result["report"]["layers"]
    assert [layer["kind"] for layer in layers] == ["dense", "dense", "output"]


def test_run_realistic_chip_with_sets_and_file(demo, tmp_path, capsys):
    out, _, _ = demo
    chip_file = tmp_path / "custom.toml"
    chip_file.write_text(chip_preset("selector-fefet").to_toml())
    code = main(
        [
            "run",
            str(out / "model.nsmx"),
            "--chip",
            str(chip_file),
            "--set",
            "periphery.partial_sums=adc",
            "--set",
            "tile.rows=64",
            "--samples",
            "3",
            "--limit",
            "100",
            "--mode",
            "clt",
            "--t-s",
            "10",
            "--drift-compensation",
            "--no-software",
            "--no-progress",
            "--json",
        ]
    )
    assert code == 0
    result = last_json(capsys.readouterr().out)
    assert result["chip"] == "custom periphery.partial_sums=adc tile.rows=64"
    assert result["software_accuracy"] is None and result["t_s"] == 10.0
    assert result["drift_compensation"] is True
    assert result["report"]["adc_conversions"] > 0
    assert result["report"]["layers"][0]["tiles"] == [2, 1]


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["--set", "periphery.adc_bits=99"], ["periphery.adc_bits", "99", "[0, 24]"]),
        (["--set", "periphery.adc_bitz=6"], ["periphery.adc_bitz", "not a known field"]),
        (["--set", "devices.element.mu_v=abc"], ["devices.element.mu_v", "'abc'"]),
        (["--set", "tile.rows"], ["field=value"]),
        (["--chip", "nope"], ["chip preset 'nope' is unknown", "rram-selector"]),
        (["--chip", "missing.toml"], ["missing.toml", "not found"]),
        (["--chip", "pcm-gaussian"], ["trained with bernoulli", "gaussian"]),
    ],
)
def test_run_bad_chip_arguments_exit_2(demo, capsys, args, expected):
    out, _, _ = demo
    chip = [] if "--chip" in args else ["--chip", "rram-selector"]
    code = main(
        [
            "run",
            str(out / "model.nsmx"),
            *chip,
            *args,
            "--samples",
            "1",
            "--limit",
            "5",
            "--no-progress",
        ]
    )
    assert code == 2
    err = capsys.readouterr().err
    assert err.startswith("nsmx run: error: ") and err.count("\n") == 1
    for text in expected:
        assert text in err


def test_run_bad_program_exit_2(tmp_path, capsys):
    bad = tmp_path / "bad.nsmx"
    bad.write_bytes(b"not a program")
    assert main(["run", str(bad), "--chip", "ideal"]) == 2
    assert "not a readable nsmx program" in capsys.readouterr().err
    assert main(["run", str(tmp_path / "none.nsmx")]) == 2
    assert "not found" in capsys.readouterr().err


def test_chips_list_and_show(tmp_path, capsys):
    assert main(["chips", "--json"]) == 0
    out = capsys.readouterr().out
    chips = last_json(out)["chips"]
    assert "ideal" in chips and "rram-selector" in out
    assert main(["chips", "--show", "rram-selector"]) == 0
    text = capsys.readouterr().out
    assert text.startswith("# Chip preset 'rram-selector'")
    assert ChipConfig.from_toml(text) == chip_preset("rram-selector")
    path = tmp_path / "c.toml"
    path.write_text(text)
    assert main(["chips", "--show", str(path), "--set", "periphery.adc_bits=6"]) == 0
    assert ChipConfig.from_toml(capsys.readouterr().out).periphery.adc_bits == 6
    assert main(["chips", "--show", "ideal", "--json"]) == 0
    assert last_json(capsys.readouterr().out)["periphery"]["adc_bits"] == 0
    assert main(["chips", "--set", "tile.rows=64"]) == 2
    assert "--set needs --show" in capsys.readouterr().err
