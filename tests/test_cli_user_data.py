"""``--data FILE.npz``: the user's own data in ``nsmx train``, ``evaluate``, ``run`` and ``sweep``.

The data file is made from scikit-learn's 8x8 digits (inputs in [0, 1], shape (N, 8, 8): the
loader reshapes them to the program's (1, 8, 8)); the program is a freshly built digits MLP
compiled through the front door (untrained weights: these tests check the plumbing, the
validation and the sweep identity, not accuracy).
"""

from __future__ import annotations

import json
import re

import numpy as np
import pytest
import torch
from helpers import last_json, run_cli

from mapping import compile_model, save_program
from nsm.checkpoint import save_checkpoint
from nsm.models import build_model
from nsm.user_data import save_npz

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    from sklearn.datasets import load_digits

    tmp = tmp_path_factory.mktemp("user_data")
    d = load_digits()
    x = (d.images / 16.0).astype(np.float32)
    y = d.target.astype(np.int64)
    data = save_npz(tmp / "my-digits.npz", x[:30], y[:30], x[100:160], y[100:160])
    no_train = save_npz(tmp / "test-only.npz", x[:30], y[:30])
    torch.manual_seed(0)
    model = build_model("digits-mlp")
    program = compile_model(model, (1, 8, 8), source={"model": "digits-mlp", "rule": "nsm"})
    prog = tmp / "digits.nsmx"
    save_program(program, prog)
    ckpt = tmp / "checkpoint.pt"
    save_checkpoint(
        ckpt,
        {
            "model": "digits-mlp",
            "rule": "nsm",
            "state_dict": model.state_dict(),
            "epoch": 0,
            "config": {},
        },
    )
    return {"dir": tmp, "data": data, "no_train": no_train, "program": prog, "ckpt": ckpt}


def test_run_with_data_evaluates_x_and_calibrates_on_x_train(files):
    code, out, err = run_cli(
        [
            "run",
            str(files["program"]),
            "--chip",
            "rram-selector",
            "--data",
            str(files["data"]),
            "--samples",
            "2",
            "--mode",
            "clt",
            "--no-progress",
            "--json",
        ]
    )
    assert code == 0, err
    result = last_json(out)
    assert result["dataset"] == "my-digits.npz" and result["n"] == 30
    cal = result["report"]["adc_calibration"]
    assert cal["source"] == "my-digits.npz train[:60]"  # x_train, never the evaluated x


def test_run_with_test_only_data_warns_and_stays_uncalibrated(files):
    code, out, err = run_cli(
        [
            "run",
            str(files["program"]),
            "--chip",
            "rram-selector",
            "--data",
            str(files["no_train"]),
            "--samples",
            "1",
            "--mode",
            "clt",
            "--no-software",
            "--no-progress",
            "--json",
        ]
    )
    assert code == 0, err
    assert "has no x_train/y_train" in err
    assert last_json(out)["report"]["adc_calibration"] is None


@pytest.mark.parametrize(
    ("arrays", "expected"),
    [
        ({"x": np.zeros((5, 7, 7)), "y": np.zeros(5, int)}, r"array 'x' has examples of shape"),
        ({"x": np.zeros((5, 64)), "y": np.full(5, 10)}, r"array 'y' holds label 10 .*\[0, 9\]"),
        ({"x": np.full((5, 64), np.nan), "y": np.zeros(5, int)}, r"'x' holds 320 non-finite"),
        ({"x": np.zeros((5, 64))}, r"lacks the array\(s\) \['y'\]"),
    ],
)
def test_bad_data_exits_2_naming_file_and_array(files, tmp_path, arrays, expected):
    bad = tmp_path / "bad.npz"
    np.savez(bad, **arrays)
    code, _, err = run_cli(["run", str(files["program"]), "--data", str(bad), "--no-progress"])
    assert code == 2
    assert "bad.npz" in err
    assert re.search(expected, err), err


def test_data_and_dataset_together_are_refused(files):
    code, _, err = run_cli(
        ["run", str(files["program"]), "--data", str(files["data"]), "--dataset", "digits"]
    )
    assert code == 2 and "give --data or --dataset, not both" in err


def test_evaluate_with_data(files):
    code, out, err = run_cli(
        [
            "evaluate",
            str(files["ckpt"]),
            "--data",
            str(files["data"]),
            "--samples",
            "2",
            "--no-progress",
            "--json",
        ]
    )
    assert code == 0, err
    result = last_json(out)
    assert result["dataset"] == "my-digits.npz" and result["n"] == 30


def test_train_with_data(files, tmp_path):
    code, out, err = run_cli(
        [
            "train",
            "--model",
            "digits-mlp",
            "--epochs",
            "1",
            "--eval-samples",
            "1",
            "--data",
            str(files["data"]),
            "--out",
            str(tmp_path / "train"),
            "--no-progress",
        ]
    )
    assert code == 0, err
    assert "on my-digits.npz (60 train, 30 test)" in out
    history = json.loads((tmp_path / "train" / "metrics.json").read_text())
    assert len(history) == 1


def test_sweep_with_data_records_the_file_digest(files, tmp_path):
    from nsmx.store import open_store

    out = tmp_path / "sweep"
    argv = [
        "sweep",
        str(files["program"]),
        "--chip",
        "ideal",
        "--data",
        str(files["data"]),
        "--vary",
        "run.samples=1,2",
        "--limit",
        "10",
        "--mode",
        "clt",
        "--out",
        str(out),
        "--no-progress",
    ]
    code, _, err = run_cli(argv)
    assert code == 0, err
    with open_store(out) as store:
        rows = store.rows()
        sweep = store.sweep
    digest = sweep["data_sha256"]
    assert sweep["data"] == "my-digits.npz" and len(digest) == 64
    assert {r["n"] for r in rows} == {10}
    assert all(r["config"]["data"] == {"name": "my-digits.npz", "sha256": digest} for r in rows)
    # Other data in the same run folder is another sweep: refused, naming the digest.
    other = save_npz(tmp_path / "my-digits.npz", np.zeros((12, 64)), np.zeros(12, np.int64))
    argv[argv.index(str(files["data"]))] = str(other)
    code, _, err = run_cli(argv)
    assert code == 2 and "data_sha256" in err


def test_load_results_rows_equal_the_store(files, tmp_path):
    from nsmx.results import varied_columns
    from nsmx.store import open_store
    from nsmx.sweep import load_results

    out = tmp_path / "sweep"
    argv = ["sweep", str(files["program"]), "--chip", "ideal", "--data", str(files["data"])]
    argv += ["--vary", "periphery.adc_bits=4,8", "--set", "periphery.adc_range=rms"]
    argv += ["--seeds", "2", "--limit", "8", "--samples", "1", "--mode", "clt"]
    argv += ["--out", str(out), "--no-progress", "--json"]
    code, text, err = run_cli(argv)
    assert code == 0, err
    assert last_json(text)["sweeps"][0]["ran"] == 4
    assert "| periphery.adc_bits |" in err  # the summary table, on stderr with --json
    frame = load_results(out)
    with open_store(out) as store:
        rows = store.rows()
    assert len(frame) == len(rows) == 4
    for (_, got), want in zip(frame.iterrows(), rows, strict=True):
        assert (got["point_hash"], got["seed"]) == (want["point_hash"], want["seed"])
        assert got["accuracy"] == want["accuracy"] and got["nll"] == want["nll"]
        assert got["periphery.adc_bits"] == want["params"]["periphery.adc_bits"]
    # Fixed settings are columns too: the chip's, the run's, the data file's.
    assert set(frame["periphery.adc_range"]) == {"rms"}
    assert set(frame["run.mode"]) == {"clt"} and set(frame["data"]) == {"my-digits.npz"}
    assert varied_columns(frame) == ["periphery.adc_bits"]
