"""Chip-state files, resume, fine-tuning a programmed chip and transposed reads through tiles."""

from __future__ import annotations

import numpy as np
import pytest

from crossbar import ChipConfig, resolve_chip
from crossbar.moments import stack_coefficients
from crossbar.transpose import tiled_transposed_read
from devices.pulse import load_pulse_preset
from mapping.learning import (
    ChipStateError,
    LearningConfig,
    OnChipNetwork,
    Trainer,
    load_chip_state,
    save_chip_state,
    scratch_program,
)
from mapping.learning.chip_state import state_arrays
from nsm.data import load_dataset


@pytest.fixture(scope="module")
def digits():
    x_tr, y_tr = load_dataset("digits", "train")
    x_te, y_te = load_dataset("digits", "test")
    return x_tr.numpy()[:200], y_tr.numpy()[:200], x_te.numpy()[:100], y_te.numpy()[:100]


def _net(**kw):
    cfg = LearningConfig(eval_samples=2, batch_size=50, lr_pulses=4.0, **kw)
    return OnChipNetwork(cfg, ChipConfig.ideal(), load_pulse_preset("rram"))


def test_chip_state_round_trips_bit_for_bit_and_refuses_tampering(tmp_path, digits):
    trainer = Trainer(_net(), *digits)
    trainer.run_epoch()
    path = save_chip_state(
        tmp_path / "s.npz", trainer.net, position=trainer.position(), scratch=True
    )
    net2, manifest = load_chip_state(path)
    assert manifest["position"]["epoch"] == 1
    a, b = state_arrays(trainer.net), state_arrays(net2)
    assert a.keys() == b.keys()
    for k in a:
        np.testing.assert_array_equal(a[k], b[k])
    x = digits[2][:40]
    p1 = trainer.net.model.run(x, trainer.net.run_config(3, 5)).probabilities
    p2 = net2.model.run(x, net2.run_config(3, 5)).probabilities
    np.testing.assert_array_equal(p1, p2)  # the same chip, read the same way
    # tampering: one conductance changed, the manifest kept -> checksum mismatch
    with np.load(path, allow_pickle=False) as npz:
        members = {k: npz[k] for k in npz.files}
    members["l0_plus_g_us"] = members["l0_plus_g_us"].copy()
    members["l0_plus_g_us"][0, 0] += 0.5
    bad = tmp_path / "bad.npz"
    np.savez(bad, **members)
    with pytest.raises(ChipStateError, match="checksum"):
        load_chip_state(bad)
    foreign = tmp_path / "foreign.npz"
    np.savez(foreign, x=np.zeros(3))
    with pytest.raises(ChipStateError, match="not a chip-state file"):
        load_chip_state(foreign)
    (tmp_path / "junk.npz").write_bytes(b"not a zip")
    with pytest.raises(ChipStateError, match="not a readable"):
        load_chip_state(tmp_path / "junk.npz")


def test_resume_is_exact(tmp_path, digits):
    full = Trainer(_net(), *digits)
    rows = [full.run_epoch() for _ in range(2)]
    part = Trainer(_net(), *digits)
    part.run_epoch()
    part.save(tmp_path / "s.npz")
    resumed = Trainer(_net(), *digits)
    resumed.resume(tmp_path / "s.npz")
    row = resumed.run_epoch()
    for key in ("train_loss", "test_acc", "grad_cosine", "pulses", "updates"):
        assert row[key] == rows[1][key]
    other = Trainer(_net(seed=1), *digits)
    with pytest.raises(ChipStateError, match="learning configuration"):
        other.resume(tmp_path / "s.npz")


def test_fine_tuning_a_program_periphery_only_sends_no_pulse(digits):
    program = scratch_program("digits-mlp", 3, 2.0)
    cfg = LearningConfig(model="", tune="periphery", eval_samples=2)
    net = OnChipNetwork(cfg, resolve_chip("rram-selector"), load_pulse_preset("rram"), program)
    g = [ly.g_plus.g_us.copy() for ly in net.layers]
    trainer = Trainer(net, *digits)
    row = trainer.run_epoch()
    assert row["pulses_sent"] == 0 and net.total_pulses() == 0
    for ly, g0 in zip(net.layers, g, strict=True):
        np.testing.assert_array_equal(ly.g_plus.g_us, g0)
    # the programmed conductances are the program's (no re-programming for fine-tuning)
    assert not np.allclose(net.layers[0].g_minus.g_us, net.layers[0].g_minus.g_us.mean())


def test_tiled_transposed_read_is_the_dense_transpose_on_an_ideal_chip():
    chip = resolve_chip("ideal", ["tile.rows=32", "tile.cols=16"])
    net = OnChipNetwork(LearningConfig(), chip, load_pulse_preset("ideal"))
    hl = net.layers[1].hw
    assert len(hl.row_slices) > 1 and len(hl.col_slices) > 1  # really tiled
    delta = np.random.default_rng(0).standard_normal((5, hl.fan_out))
    e = tiled_transposed_read(hl, delta, rng=np.random.default_rng(1))
    m_d = stack_coefficients(hl.read_arrays(0.0), "m_d")
    np.testing.assert_allclose(e, chip.v_read_v * delta @ m_d.T, rtol=1e-12, atol=1e-12)


def test_tiled_transposed_read_carries_the_read_noise():
    # rram-selector: read noise per cell; 8-bit sensed-row converters off (adc_bits=0) to see
    # the Gaussian alone: the standardised residuals are N(0, 1) (mean and variance within
    # 5 standard errors over 2000 x 64 values).
    chip = resolve_chip("rram-selector")
    net = OnChipNetwork(LearningConfig(), chip, load_pulse_preset("rram"))
    hl = net.layers[1].hw
    delta = np.tile(np.random.default_rng(2).standard_normal((1, hl.fan_out)), (2000, 1))
    e = tiled_transposed_read(hl, delta, rng=np.random.default_rng(3), adc_bits=0)
    arrays = hl.read_arrays(0.0)
    v = chip.v_read_v
    mean = v * delta @ stack_coefficients(arrays, "m_d").T
    std = v * np.sqrt(np.square(delta) @ stack_coefficients(arrays, "v_d").T)
    assert std.min() > 0
    r = (e - mean) / std
    n = r.size
    assert abs(r.mean()) < 5 / np.sqrt(n)
    assert abs(r.var() - 1.0) < 5 * np.sqrt(2.0 / n)
