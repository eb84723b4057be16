"""In-situ learning of conv networks and user layer lists: the forward pass is the engine's,
the backward pass is the dense mean-field gradient on an ideal chip, and the CLI learns them."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from helpers import run_cli

from crossbar import ChipConfig, resolve_chip
from devices.pulse import load_pulse_preset
from mapping import RunConfig, digital
from mapping.learning import (
    LearningConfig,
    OnChipNetwork,
    Trainer,
    load_chip_state,
    network_template,
)
from mapping.learning.backward import col2im, locations, maxpool_backward
from mapping.records import ConvLayer, MaxPoolLayer
from nsm.data import load_dataset

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"

# Two convolutions (padding 1; stride 2), an overlapping max-pool (kernel 3, stride 2,
# padding 1), a dense layer and the output: every backward step of a conv network.
CONV_NET = {
    "name": "test-conv",
    "input_shape": [1, 8, 8],
    "dataset": "digits",
    "layers": [
        {"type": "binarise"},
        {"type": "nsm-conv", "out": 4, "kernel": 3, "padding": 1, "p": 0.5},
        {"type": "maxpool", "kernel": 3, "stride": 2, "padding": 1},
        {"type": "nsm-conv", "out": 6, "kernel": 2, "stride": 2, "p": 0.25},
        {"type": "flatten"},
        {"type": "nsm-linear", "out": 16, "p": 0.5},
        {"type": "output", "out": 10},
    ],
}


def _net(chip: ChipConfig, **kw) -> OnChipNetwork:
    cfg = LearningConfig(model="custom", architecture=CONV_NET, **kw)
    return OnChipNetwork(cfg, chip, load_pulse_preset("rram"))


@pytest.mark.parametrize("preset,mode", [("ideal", "clt"), ("rram-selector", "exact")])
def test_conv_learning_forward_is_the_chip_models_forward(preset, mode):
    # One engine: for the same chip state and read seed, the conv network's training forward
    # pass (every hidden layer's per-location states, logits) is ChipModel.sample_states.
    net = _net(resolve_chip(preset), mode=mode)
    assert [ly.programmed.record.kind for ly in net.layers] == ["conv", "conv", "dense"]
    x = np.random.default_rng(3).random((30, 1, 8, 8))
    logits, cache = net.forward(x, seed=11)
    states = net.model.sample_states(x, RunConfig(samples=1, seed=11, mode=mode))
    np.testing.assert_array_equal(logits, states[-1][0])
    for layer, c in zip(net.layers, cache, strict=True):
        rec = layer.programmed.record
        np.testing.assert_array_equal(c["z_out"], locations(rec, states[rec_index(net, rec)][0]))
        z_in = digital.patches(rec, states[rec_index(net, rec) - 1][0], np.float64)
        np.testing.assert_array_equal(c["z_in"], z_in.reshape(-1, rec.fan_in))


def rec_index(net: OnChipNetwork, rec) -> int:
    return next(i for i, r in enumerate(net.template.layers) if r.name == rec.name)


def test_conv_gradient_is_the_dense_mean_field_gradient_on_an_ideal_chip():
    # Ideal chip, exact estimator: the weight gradient the trainer computes (per-location
    # errors, the tiles' transposed read per location folded by col2im, max-pool routed to the
    # arg-max, sums over locations and batch) equals torch autograd of the same mean-field
    # surrogate computed densely (F.unfold, F.max_pool2d) to 1e-9 of its largest entry.
    net = _net(ChipConfig.ideal(), estimator="exact")
    rng = np.random.default_rng(7)
    x = rng.random((24, 1, 8, 8))
    y = rng.integers(0, 10, 24)
    res = net.step(x, y, lr_pulses=1.0, rng=rng, apply=False)
    exact = net.exact_gradients(res.cache, y)
    for h, g in zip(res.grads, exact, strict=True):
        assert h.shape == g.shape and np.abs(g).max() > 0
        np.testing.assert_allclose(h, g, rtol=0, atol=1e-9 * np.abs(g).max())


def test_col2im_is_the_adjoint_of_im2col():
    # <patches(z), e> = <z, col2im(e)> for random z and e (stride 2, padding 1, 2 channels).
    rec = ConvLayer(
        name="c",
        in_shape=(2, 7, 6),
        weight=np.zeros((2 * 3 * 3, 5)),
        beta=np.ones(5),
        bias=np.zeros(5),
        noise="bernoulli",
        p=0.5,
        kernel_size=(3, 3),
        stride=(2, 2),
        padding=(1, 1),
    )
    rng = np.random.default_rng(0)
    z = rng.normal(size=(3, *rec.in_shape))
    zp = digital.patches(rec, z, np.float64).reshape(-1, rec.fan_in)
    e = rng.normal(size=zp.shape)
    back = col2im(rec, e, 3)
    assert back.shape == (3, *rec.in_shape)
    assert np.sum(zp * e) == pytest.approx(np.sum(z * back), rel=1e-12)
    g = rng.normal(size=(3, *rec.out_shape))  # locations inverts fold
    np.testing.assert_array_equal(
        digital.fold(rec, locations(rec, g).reshape(3, rec.n_locations, -1)), g
    )


@pytest.mark.parametrize("kernel,stride,padding", [(2, 2, 0), (3, 2, 1), (3, 1, 0)])
def test_maxpool_backward_routes_to_the_first_arg_max_as_torch(kernel, stride, padding):
    # ±1 states (many ties): the error goes to the first maximum of each window, as torch's
    # max_pool2d backward, overlapping windows adding up.
    rec = MaxPoolLayer(
        name="p", in_shape=(3, 7, 7), kernel_size=kernel, stride=stride, padding=padding
    )
    rng = np.random.default_rng(1)
    z = np.where(rng.random((4, 3, 7, 7)) < 0.3, 1.0, -1.0)
    g = rng.normal(size=(4, *rec.out_shape))
    zt = torch.tensor(z, requires_grad=True)
    out = F.max_pool2d(zt, kernel, stride, padding)
    np.testing.assert_array_equal(out.detach().numpy(), digital.maxpool(rec, z))
    (out * torch.tensor(g)).sum().backward()
    np.testing.assert_allclose(maxpool_backward(rec, z, g), zt.grad.numpy(), rtol=0, atol=1e-12)


def test_named_conv_model_learns_a_step():
    # mnist-conv (32c5-p2-64c5-p2-512-10) is a learnable named model: a training step on four
    # examples sends pulses to all three crossbar layers.
    assert [r.kind for r in network_template("mnist-conv").layers][1:3] == ["conv", "maxpool"]
    cfg = LearningConfig(model="mnist-conv", lr_pulses=2.0)
    net = OnChipNetwork(cfg, ChipConfig.ideal(), load_pulse_preset("ideal"))
    rng = np.random.default_rng(2)
    res = net.step(rng.random((4, 1, 28, 28)), rng.integers(0, 10, 4), lr_pulses=2.0, rng=rng)
    assert res.pulses > 0 and all(ly.g_plus.total_pulses().sum() > 0 for ly in net.layers)


def test_conv_network_learns_and_resumes_exactly(tmp_path):
    # The 8c3-p2-64-10 example layer list, ideal chip and pulse device: after 3 epochs on 400
    # digits the test accuracy on 200 is clearly above chance (10 %: 20 ± 4.2 of 200; > 40 %
    # is > 7 sd above it); a resumed run continues exactly.
    from nsm.architecture import load_architecture

    arch = load_architecture(EXAMPLES / "digits_conv.toml").to_dict()
    cfg = LearningConfig(model="custom", architecture=arch, eval_samples=3)
    x_tr, y_tr = load_dataset("digits", "train")
    x_te, y_te = load_dataset("digits", "test")
    data = x_tr.numpy()[:400], y_tr.numpy()[:400], x_te.numpy()[:200], y_te.numpy()[:200]

    def trainer() -> Trainer:
        return Trainer(OnChipNetwork(cfg, ChipConfig.ideal(), load_pulse_preset("ideal")), *data)

    full = trainer()
    rows = [full.run_epoch() for _ in range(3)]
    assert rows[-1]["test_acc"] > 0.40
    part = trainer()
    part.run_epoch()
    part.run_epoch()
    part.save(tmp_path / "s.npz")
    resumed = trainer()
    resumed.resume(tmp_path / "s.npz")
    row = resumed.run_epoch()
    for key in ("train_loss", "test_acc", "grad_cosine", "pulses", "updates"):
        assert row[key] == rows[-1][key]
    # the chip-state file rebuilds the learned conv chip as it is (nsmx run --chip-state)
    net, _ = load_chip_state(tmp_path / "s.npz")
    x = data[2][:40]
    p_saved = net.model.run(x, net.run_config(2, 5)).probabilities
    p_part = part.net.model.run(x, part.net.run_config(2, 5)).probabilities
    np.testing.assert_array_equal(p_saved, p_part)


def test_cli_learns_a_layer_list_toml_and_writes_the_learning_curve(tmp_path):
    # A mixed-p 64-37-21-10 layer list learns on digits from the CLI; learning_curve.png is a
    # PNG written every epoch.
    toml = tmp_path / "mlp.toml"
    toml.write_text(
        'name = "mlp-37-21"\ninput_shape = [1, 8, 8]\ndataset = "digits"\n'
        '[[layers]]\ntype = "binarise"\n[[layers]]\ntype = "flatten"\n'
        '[[layers]]\ntype = "nsm-linear"\nout = 37\np = 0.5\n'
        '[[layers]]\ntype = "nsm-linear"\nout = 21\np = 0.25\n'
        '[[layers]]\ntype = "output"\nout = 10\n',
        encoding="utf-8",
    )
    out_dir = tmp_path / "learned"
    argv = ["learn", "--model", str(toml), "--chip", "ideal", "--train-subset", "600"]
    argv += ["--test-subset", "200", "--eval-samples", "3", "--no-progress", "--json"]
    code, out, err = run_cli([*argv, "--epochs", "3", "--out", str(out_dir)])
    assert code == 0, err
    summary = json.loads(out.strip().splitlines()[-1])
    assert summary["epochs"] == 3 and len(summary["grad_cosine"]) == 2
    assert summary["accuracy_after"] > 0.40  # chance: 10 % (20 ± 4.2 of 200)
    curve = out_dir / "learning_curve.png"
    assert summary["learning_curve"] == str(curve)
    assert curve.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and curve.stat().st_size > 5000
    program = json.loads((out_dir / "config.json").read_text())["learning"]["architecture"]
    assert [layer["type"] for layer in program["layers"]][2:4] == ["nsm-linear", "nsm-linear"]


def test_cli_fine_tunes_a_compiled_conv_program(tmp_path):
    # --program of a compiled conv program: programmed onto the chip and fine-tuned in place
    # (periphery only: no pulse).
    from mapping import save_program
    from mapping.learning import scratch_program

    program = scratch_program("custom", 3, 2.0, CONV_NET)
    program = dataclasses.replace(program, source={"dataset": "digits"})
    path = save_program(program, tmp_path / "conv.nsmx")
    argv = ["learn", "--program", str(path), "--tune", "periphery", "--chip", "rram-selector"]
    argv += ["--train-subset", "200", "--test-subset", "60", "--eval-samples", "2"]
    argv += ["--epochs", "1", "--no-progress", "--json", "--out", str(tmp_path / "t")]
    code, out, err = run_cli(argv)
    assert code == 0, err
    summary = json.loads(out.strip().splitlines()[-1])
    assert summary["pulses_sent"] == 0 and len(summary["grad_cosine"]) == 3
