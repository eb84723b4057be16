"""The user's own network: a layer list (TOML) or a ``module:function`` factory, trained on a
user ``.npz``, recorded in the checkpoint as data, compiled through the front door and run,
swept and learned from the CLI with ``--data``.

The network is one the project does not ship: 64-37-21-10 with p = 0.5 then 0.25, trained for
two epochs on scikit-learn's digits (a user file made with :func:`nsm.user_data.save_npz`).
"""

from __future__ import annotations

import sys

import numpy as np
import pytest
import torch
from helpers import last_json, run_cli

from mapping import compile_checkpoint, load_program
from nsm.architecture import Architecture, ArchitectureError, load_architecture
from nsm.checkpoint import CheckpointError, load_checkpoint, load_model, save_checkpoint
from nsm.factory import architecture_of
from nsm.user_data import save_npz

LAYERS = """
name = "mlp-37-21"
input_shape = [1, 8, 8]
lr = 3e-3
batch_size = 50

[[layers]]
type = "binarise"
[[layers]]
type = "flatten"
[[layers]]
type = "nsm-linear"
out = 37
p = 0.5
[[layers]]
type = "nsm-linear"
out = 21
p = 0.25
[[layers]]
type = "output"
out = 10
"""

FACTORY = """
from torch import nn
from nsm import BinarizeInput, NSMLinear


def mlp_37_21():
    return nn.Sequential(
        BinarizeInput(),
        nn.Flatten(),
        NSMLinear(64, 37, p=0.5),
        NSMLinear(37, 21, p=0.25),
        nn.Linear(21, 10),
    )
"""


pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """The user's file, layer list, trained checkpoint and compiled program."""
    from sklearn.datasets import load_digits

    tmp = tmp_path_factory.mktemp("own")
    d = load_digits()
    x = (d.images / 16.0).astype(np.float32)  # (N, 8, 8) in [0, 1]
    y = d.target.astype(np.int64)
    data = save_npz(tmp / "digits.npz", x[1500:1560], y[1500:1560], x[:600], y[:600])
    arch = tmp / "mlp.toml"
    arch.write_text(LAYERS, encoding="utf-8")
    out = tmp / "train"
    argv = ["train", "--model", str(arch), "--data", str(data), "--epochs", "2"]
    argv += ["--eval-samples", "2", "--out", str(out), "--no-progress"]
    code, _, err = run_cli(argv)
    assert code == 0, err
    program = tmp / "mlp.nsmx"
    code, _, err = run_cli(["compile", str(out / "checkpoint.pt"), "-o", str(program)])
    assert code == 0, err
    return {"dir": tmp, "data": data, "arch": arch, "ckpt": out / "checkpoint.pt", "prog": program}


# ------------------------------------------------------------------------------ layer lists


@pytest.mark.parametrize(
    ("layers", "expected"),
    [
        ([{"type": "flatten"}, {"type": "output", "out": 10}], r"put a 'binarise' layer first"),
        ([{"type": "binarise"}, {"type": "output", "out": 10}], r"needs vector inputs"),
        ([{"type": "binarise"}, {"type": "flatten"}], r"last layer must be type = 'output'"),
        ([{"type": "binarise"}, {"type": "dense"}], r"layers\[1\]\.type = 'dense' is not"),
        (
            [{"type": "binarise"}, {"type": "flatten"}, {"type": "nsm-linear", "out": 3, "q": 1}],
            r"layers\[2\] \(nsm-linear\): unknown key\(s\) \['q'\]",
        ),
        (
            [{"type": "binarise"}, {"type": "flatten"}, {"type": "nsm-linear", "out": 0}],
            r"layers\[2\] \(nsm-linear\)\.out = 0 is invalid; allowed: an integer >= 1",
        ),
        (
            [{"type": "binarise"}, {"type": "nsm-conv", "out": 4, "kernel": 9}],
            r"kernel \[9, 9\] does not fit inputs of \(8, 8\)",
        ),
    ],
)
def test_invalid_layer_lists_name_the_layer_and_key(layers, expected):
    with pytest.raises(ArchitectureError, match=expected):
        Architecture(name="net", input_shape=(1, 8, 8), layers=layers)


def test_a_shipped_name_is_refused():
    with pytest.raises(ArchitectureError, match="shipped model's name"):
        Architecture(name="digits-mlp", input_shape=(64,), layers=[{"type": "output", "out": 2}])


def test_layer_list_round_trips_through_the_built_model(tmp_path):
    path = tmp_path / "mlp.toml"
    path.write_text(LAYERS, encoding="utf-8")
    arch = load_architecture(path)
    model = arch.build()
    derived = architecture_of(model, arch.input_shape, name=arch.name)
    assert derived.build().state_dict().keys() == model.state_dict().keys()
    ps = [layer.get("p") for layer in derived.layers if layer["type"] == "nsm-linear"]
    assert ps == [0.5, 0.25]
    assert derived.n_classes == 10 and derived.shapes()[-1] == (10,)
    conv = Architecture(
        name="tiny-conv",
        input_shape=(1, 8, 8),
        layers=[
            {"type": "binarise"},
            {"type": "nsm-conv", "out": 4, "kernel": 3, "padding": 1, "p": 0.25},
            {"type": "maxpool", "kernel": 2},
            {"type": "flatten"},
            {"type": "output", "out": 10},
        ],
    )
    assert conv.shapes()[-2] == (64,)
    again = architecture_of(conv.build(), conv.input_shape, name="tiny-conv")
    assert again.shapes() == conv.shapes()
    # The derived list states every default; the given keys are kept as given.
    for given, derived_layer in zip(conv.layers, again.layers, strict=True):
        assert {k: derived_layer[k] for k in given} == given


def test_a_module_that_no_layer_list_describes_is_named():
    model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.ReLU(), torch.nn.Linear(64, 10))
    with pytest.raises(ArchitectureError, match=r"module 1 \(ReLU\) cannot be described"):
        architecture_of(model, (64,), name="relu-net")


# ------------------------------------------------------------------------------ checkpoints


def test_checkpoint_records_the_architecture_as_data_and_compiles(trained):
    ckpt = load_checkpoint(trained["ckpt"])
    assert ckpt["model"] == "mlp-37-21" and ckpt["version"] == 2
    arch = ckpt["config"]["architecture"]
    assert [layer["type"] for layer in arch["layers"]][2:] == ["nsm-linear"] * 2 + ["output"]
    model, _ = load_model(trained["ckpt"])
    assert [m.p for m in model if hasattr(m, "p")] == [0.5, 0.25]
    program = compile_checkpoint(trained["ckpt"])
    assert program.input_shape == (1, 8, 8) and program.n_classes == 10
    assert [layer.p for layer in program.binary_layers] == [0.5, 0.25]
    assert load_program(trained["prog"]) == program


def test_a_changed_architecture_fails_the_content_hash(trained, tmp_path):
    ckpt = load_checkpoint(trained["ckpt"])
    ckpt["config"]["architecture"]["layers"][2]["out"] = 38
    bad = tmp_path / "bad.pt"
    torch.save(ckpt, bad)  # the stored hash is the one of the original content
    with pytest.raises(CheckpointError, match="content hash mismatch"):
        load_checkpoint(bad)
    # Saved anew (a fresh hash), the layer list no longer fits the weights: named as such.
    payload = {k: v for k, v in ckpt.items() if k not in ("format", "version", "content_sha256")}
    save_checkpoint(tmp_path / "refit.pt", payload)
    with pytest.raises(CheckpointError, match="weights do not fit model 'mlp-37-21'"):
        load_model(tmp_path / "refit.pt")


def test_factory_checkpoint_loads_without_the_factory(trained, tmp_path, monkeypatch):
    (tmp_path / "user_nets.py").write_text(FACTORY, encoding="utf-8")
    monkeypatch.syspath_prepend(str(tmp_path))
    out = tmp_path / "factory"
    argv = ["train", "--model", "user_nets:mlp_37_21", "--data", str(trained["data"])]
    argv += ["--epochs", "1", "--eval-samples", "1", "--out", str(out), "--no-progress"]
    code, _, err = run_cli(argv)
    assert code == 0, err
    sys.modules.pop("user_nets", None)
    monkeypatch.syspath_prepend(str(tmp_path / "elsewhere"))
    (tmp_path / "user_nets.py").unlink()  # the checkpoint needs no code
    ckpt = load_checkpoint(out / "checkpoint.pt")
    assert ckpt["model"] == "mlp-37-21"
    assert ckpt["config"]["architecture"]["source"] == "user_nets:mlp_37_21"
    program = compile_checkpoint(out / "checkpoint.pt")
    assert [layer.fan_out for layer in program.binary_layers] == [37, 21]


def test_bad_model_arguments_exit_2(trained, tmp_path):
    code, _, err = run_cli(["train", "--model", "nope", "--out", str(tmp_path / "a")])
    assert code == 2 and "is not a named model" in err
    code, _, err = run_cli(["train", "--model", str(trained["arch"]), "--out", str(tmp_path / "b")])
    assert code == 2 and "names no dataset; pass --data" in err
    code, _, err = run_cli(
        ["train", "--model", "no_such_mod:f", "--data", str(trained["data"]), "--out", "x"]
    )
    assert code == 2 and "module 'no_such_mod' failed to import" in err


# ------------------------------------------------------------------------------ the CLI path


def test_own_network_runs_and_sweeps_with_data(trained, tmp_path):
    code, out, err = run_cli(
        [
            "run",
            str(trained["prog"]),
            "--chip",
            "rram-selector",
            "--data",
            str(trained["data"]),
            "--samples",
            "4",
            "--mode",
            "clt",
            "--no-progress",
            "--json",
        ]
    )
    assert code == 0, err
    result = last_json(out)
    assert result["dataset"] == "digits.npz" and result["n"] == 60
    # Two epochs on 600 examples (fixed seeds): well above chance in software and on the chip.
    # Chance on 60 examples is 6 ± 2.3 right (10 %); 30 % (18 right) is > 5 sd above it.
    assert result["software_accuracy"] > 0.4 and result["chip_accuracy"] > 0.3
    dense = [row["name"] for row in result["report"]["layers"] if row["kind"] == "dense"]
    assert dense == ["2", "3"]

    code, out, err = run_cli(
        [
            "sweep",
            str(trained["prog"]),
            "--chip",
            "ideal",
            "--data",
            str(trained["data"]),
            "--vary",
            "run.samples=1,3",
            "--limit",
            "20",
            "--mode",
            "clt",
            "--out",
            str(tmp_path / "sweep"),
            "--no-progress",
            "--json",
        ]
    )
    assert code == 0, err
    assert last_json(out)["sweeps"][0]["ran"] == 2


def test_own_network_learns_on_chip_with_data(trained, tmp_path):
    out = tmp_path / "learn"
    code, text, err = run_cli(
        [
            "learn",
            "--program",
            str(trained["prog"]),
            "--chip",
            "ideal",
            "--data",
            str(trained["data"]),
            "--epochs",
            "1",
            "--train-subset",
            "100",
            "--eval-samples",
            "2",
            "--out",
            str(out),
            "--no-progress",
            "--json",
        ]
    )
    assert code == 0, err
    row = last_json(text)
    assert row["epoch"] == 1 and 0.0 <= row["test_acc"] <= 1.0
    learned = load_program(out / "program.nsmx")
    assert [layer.fan_out for layer in learned.binary_layers] == [37, 21]
