"""ADC full scales calibrated on data (periphery.adc_range = "calibrated"): the recorder's
percentile, the layer and chip calibration (reproducible by seed, independent of chunking, of
the read seed and of the evaluation), the old "rms" rule unchanged, bad settings refused, the
CLI calibrating on the training split only, saturation warnings, and the committed MNIST MLP
on the default presets (NSMX_MNIST_DIR)."""

from __future__ import annotations

import itertools
import json
import os
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

import nsm
from crossbar import ChipConfig, HardwareLayer, PeripheryConfig, TileConfig, replace_field
from crossbar.adc_range import SignalRecorder, calibrated_full_scale, top_count
from crossbar.presets import resolve_chip
from devices import ConfigError
from mapping.adc_calibration import AdcCalibrationWarning
from mapping.compiler import compile_model
from mapping.program import save_program
from mapping.report import accuracy_nll, chip_report
from mapping.runtime import program_chip
from nsm.data import load_dataset
from nsmx.cli import main

TILE = TileConfig(16, 8)


# One numba, torch and BLAS thread (a shared 2-core machine): conftest.one_thread.
pytestmark = pytest.mark.usefixtures("one_thread")


def tile_adc_layer(kind: str = "binary", **periphery) -> HardwareLayer:
    """A 20 x 12 layer on selector-fefet with 16 x 8 tiles (3 x 2 tiles), per-tile ADCs."""
    chip = ChipConfig.from_preset("selector-fefet", tile=TILE)
    chip = replace_field(chip, "periphery.partial_sums", "adc")
    for name, value in periphery.items():
        chip = replace_field(chip, f"periphery.{name}", value)
    rng = np.random.default_rng(5)
    w = rng.standard_normal((20, 12))
    beta = rng.uniform(0.5, 3, 12)
    b = rng.standard_normal(12) * 0.3
    if kind == "output":
        return HardwareLayer.build(w, None, b, chip=chip, rng=np.random.default_rng(3), kind=kind)
    return HardwareLayer.build(
        w, beta, b, noise="bernoulli", p=0.5, chip=chip, rng=np.random.default_rng(1)
    )


def states(n: int, seed: int = 6) -> np.ndarray:
    return np.random.default_rng(seed).choice([-1, 1], size=(n, 20)).astype(np.int8)


@pytest.fixture(scope="module")
def digits_program(tmp_path_factory):
    """An untrained-but-seeded 64-32-10 NSM MLP on the digits (calibration needs no training)."""
    torch.manual_seed(0)
    model = nn.Sequential(
        nsm.BinarizeInput(), nn.Flatten(), nsm.NSMLinear(64, 32, p=0.5), nn.Linear(32, 10)
    )
    path = tmp_path_factory.mktemp("prog") / "digits.nsmx"
    save_program(compile_model(model.eval(), (1, 8, 8)), path)
    return path


@pytest.fixture(scope="module")
def digits():
    x_tr, _ = load_dataset("digits", split="train")
    x_te, y_te = load_dataset("digits", split="test")
    return x_tr.numpy(), x_te.numpy(), y_te.numpy()


# ----------------------------------------------------------------------- the rule


def test_recorder_percentile_equals_numpy_for_any_chunking():
    layer = tile_adc_layer("output")  # path output_tile: converter "d" per row-tile
    rng = np.random.default_rng(0)
    n = 1000
    values = {
        (t, c): rng.standard_normal((n, cs.stop - cs.start)) * (t + 1)
        for t in range(3)
        for c, cs in enumerate(layer.col_slices)
    }
    for q in (100.0, 99.9, 50.0, 0.01):
        rec = SignalRecorder(layer, n, q)
        assert rec.k == top_count(n, q) and rec.k <= n
        for (t, c), v in values.items():  # uneven chunks, shuffled
            cut = [0, 7, 8, 400, n]
            for a, b in itertools.pairwise(cut):
                rec.add("d", t, c, v[a:b].astype(np.float32))
        fallback = {"d": np.ones((3, 12))}
        fs = rec.full_scales(1.5, fallback)["d"]
        for (t, c), v in values.items():
            cs = layer.col_slices[c]
            ref = calibrated_full_scale(v.astype(np.float32), q, 1.5, np.ones(v.shape[1]))
            np.testing.assert_allclose(fs[t, cs], ref, rtol=1e-12)
    with pytest.raises(ValueError, match="more than the n_values"):
        rec.add("d", 0, 0, np.zeros((1, 8)))


def test_zero_signal_keeps_the_fallback_range():
    fs = calibrated_full_scale(np.zeros((50, 3)), 99.0, 1.25, np.array([1.0, 2.0, 3.0]))
    np.testing.assert_array_equal(fs, [1.0, 2.0, 3.0])


@pytest.mark.parametrize(
    ("field", "value", "allowed"),
    [
        ("adc_cal_percentile", 0.0, r"\(0, 100\]"),
        ("adc_cal_percentile", 100.5, r"\(0, 100\]"),
        ("adc_cal_headroom", 0.99, r"\[1, 1000\]"),
        ("adc_cal_examples", 0, r"\[1, "),
        ("adc_cal_samples", 0, r"\[1, "),
        ("adc_range", "percentile", "'calibrated', 'rms', 'fixed'"),
    ],
)
def test_bad_calibration_settings_are_refused_naming_the_field(field, value, allowed):
    with pytest.raises(ConfigError, match=f"PeripheryConfig.{field} .*{allowed}"):
        PeripheryConfig(**{field: value})
    with pytest.raises(ConfigError, match=f"periphery.{field}"):
        replace_field(ChipConfig.from_preset("rram-selector"), f"periphery.{field}", value)


# ----------------------------------------------------------------------- one layer


def test_rms_rule_reproduces_the_numbers_before_calibration_existed():
    # Values of this exact construction at the commit before "calibrated" existed (adc_range
    # "rms" and the fixed gain grid were then the only rules): the old rules give them bit for
    # bit.
    layer = tile_adc_layer(adc_range="rms", gain_grid="fixed")
    rng = np.random.default_rng(5)  # the draws of tile_adc_layer, then the inputs
    rng.standard_normal((20, 12)), rng.uniform(0.5, 3, 12), rng.standard_normal(12)
    z = rng.choice([-1, 1], size=(7, 20))
    u = layer.preactivation(z, 5, rng=np.random.default_rng(2), mode="exact")
    assert float(u.astype(np.float64).sum()) == 711.7564699351788
    assert float(layer.adc_full_scale_ua["u"].sum()) == 823.2552663062949
    out = tile_adc_layer("output", adc_range="rms")
    logits = out.logits(z, 4, rng=np.random.default_rng(4))
    assert float(logits.astype(np.float64).sum()) == 172.97927279490978
    assert float(out.adc_full_scale_ua["d"].sum()) == 648.8070631463524
    assert layer.adc_range_rule == "rms" and not layer.needs_adc_calibration
    # Until calibrated, a "calibrated" layer reads with exactly the rms ranges.
    pending = tile_adc_layer(gain_grid="fixed")
    assert pending.adc_range_rule == "rms (not calibrated)" and pending.needs_adc_calibration
    for key, fs in layer.adc_full_scale_ua.items():
        np.testing.assert_array_equal(pending.adc_full_scale_ua[key], fs)


@pytest.mark.parametrize("path", ["tile_adc", "digital_sum", "digital_tile", "output_tile"])
def test_layer_calibration_reproducible_chunk_free_and_covers_its_reads(path):
    per = {
        "digital_sum": dict(beta_mode="digital", partial_sums="analog"),
        "digital_tile": dict(beta_mode="digital"),
    }.get(path, {})
    kind = "output" if path.startswith("output") else "binary"
    z = states(40)
    fs = tile_adc_layer(kind, **per).calibrate_adcs(z, 3, rng=np.random.default_rng(9))
    again = tile_adc_layer(kind, **per)
    assert again.path == path
    fs2 = again.calibrate_adcs(z, 3, rng=np.random.default_rng(9), chunk_values=37)
    assert again.adc_range_rule == "calibrated" and not again.needs_adc_calibration
    for key in fs:
        np.testing.assert_array_equal(fs[key], fs2[key])
    other = tile_adc_layer(kind, **per).calibrate_adcs(z, 3, rng=np.random.default_rng(10))
    assert any(not np.array_equal(fs[k], other[k]) for k in fs)
    # percentile 100 with 25 % headroom: the calibration reads themselves never clip.
    top = tile_adc_layer(kind, adc_cal_percentile=100.0, **per)
    top.calibrate_adcs(z, 3, rng=np.random.default_rng(9))
    read = top.logits if kind == "output" else top.preactivation
    read(z, 3, rng=np.random.default_rng(9))
    assert top.counters.adc_conversions > 0 and top.counters.adc_saturations == 0


def test_ideal_converters_need_no_calibration():
    layer = tile_adc_layer(adc_bits=0)
    assert layer.adc_range_rule == "none" and not layer.needs_adc_calibration


# ----------------------------------------------------------------------- a chip


def test_chip_calibration_by_seed_not_by_read_seed_or_evaluation(digits_program, digits):
    from mapping.program import load_program

    x_tr, x_te, y_te = digits
    program = load_program(digits_program)
    chip = resolve_chip("rram-selector", ["periphery.partial_sums=adc", "tile.rows=32"])
    model = program_chip(program, chip, seed=3)
    assert model.needs_adc_calibration
    with pytest.warns(AdcCalibrationWarning, match="periphery.adc_range = 'rms'"):
        model.run(x_te[:5], 1, mode="clt")
    cal = model.calibrate(x_tr[:150], 2, source="digits train[:150]")
    assert not model.needs_adc_calibration and cal.seed == 3
    assert set(cal.full_scale_ua) == {"2", "3"}  # the hidden layer's tile ADCs and the output
    again = program_chip(program, chip, seed=3, calibration=None)
    again.calibrate(x_tr[:150], 2)
    for name, scales in cal.full_scale_ua.items():
        for key, fs in scales.items():
            np.testing.assert_array_equal(again.adc_calibration.full_scale_ua[name][key], fs)
    other = program_chip(program, chip, seed=3)
    other.calibrate(x_tr[:150], 2, seed=4)
    assert not np.array_equal(
        other.adc_calibration.full_scale_ua["3"]["d"], cal.full_scale_ua["3"]["d"]
    )
    run = model.run(x_te[:60], 4, mode="clt", seed=1)
    report = chip_report(model, run, y_te[:60]).to_dict()
    assert report["adc_calibration"]["source"] == "digits train[:150]"
    assert {(e["layer"], e["converter"], e["rule"]) for e in report["adc"]} == {
        ("2", "u", "calibrated"),
        ("3", "d", "calibrated"),
    }
    json.dumps(report)


def test_saturation_warning_names_the_converter_and_field(digits_program, digits):
    from mapping.program import load_program

    x_tr, x_te, y_te = digits
    program = load_program(digits_program)
    chip = resolve_chip(
        "rram-selector", ["periphery.adc_range=rms", "periphery.adc_range_sigmas=0.5"]
    )
    model = program_chip(program, chip)
    report = chip_report(model, model.run(x_te[:50], 2, mode="clt"), y_te[:50])
    assert len(report.warnings) == 1
    assert "layer '3'" in report.warnings[0] and "output ADC" in report.warnings[0]
    assert "periphery.adc_range_sigmas" in report.warnings[0]
    calibrated = program_chip(program, resolve_chip("rram-selector"), calibration=x_tr[:200])
    report = chip_report(calibrated, calibrated.run(x_te[:50], 2, mode="clt"), y_te[:50])
    assert report.warnings == () and report.adc_saturations <= 0.01 * report.adc_conversions


# ----------------------------------------------------------------------- the CLI


def test_cli_calibrates_on_training_examples_never_the_test_split(
    digits_program, digits, monkeypatch, capsys
):
    from mapping.runtime import ChipModel

    x_tr, x_te, _ = digits
    seen = []
    original = ChipModel.calibrate

    def spy(self, x_cal, *args, **kwargs):
        seen.append(np.array(x_cal))
        return original(self, x_cal, *args, **kwargs)

    monkeypatch.setattr(ChipModel, "calibrate", spy)
    argv = ["run", str(digits_program), "--chip", "rram-selector", "--dataset", "digits"]
    argv += ["--samples", "2", "--mode", "clt", "--no-software", "--no-progress", "--json"]
    argv += ["--set", "periphery.adc_cal_examples=100", "--limit", "80"]
    assert main(argv) == 0
    out = capsys.readouterr()
    result = json.loads(out.out.strip().splitlines()[-1])
    assert len(seen) == 1
    np.testing.assert_array_equal(seen[0], x_tr[:100])
    test_rows = {row.tobytes() for row in x_te}
    assert not any(row.tobytes() in test_rows for row in seen[0])
    cal = result["report"]["adc_calibration"]
    assert cal["source"] == "digits train[:100]" and cal["seed"] == 0 and cal["examples"] == 100
    assert result["report"]["adc"][0]["rule"] == "calibrated"
    assert "warning" not in out.err
    # The old rule on purpose: no calibration, and the clipping is reported on stderr.
    argv += ["--set", "periphery.adc_range=rms", "--set", "periphery.adc_range_sigmas=0.5"]
    assert main(argv) == 0 and len(seen) == 1
    err = capsys.readouterr().err
    assert "warning: layer '3'" in err and "periphery.adc_range_sigmas" in err


# ----------------------------------------------------------------------- MNIST


@pytest.mark.mnist
@pytest.mark.parametrize("preset", ["selector-fefet", "rram-selector"])
def test_committed_mlp_output_adc_rarely_saturates_on_default_presets(preset):
    """With the presets' default (calibrated) ADC ranges, fewer than 1 % of the committed MLP's
    output conversions saturate (300 test digits, 4 samples, clt; calibrated on train[:256])."""
    from mapping.compiler import compile_checkpoint

    folder = os.environ.get("NSMX_MNIST_DIR", "").strip()
    if not folder:
        pytest.skip("NSMX_MNIST_DIR is not set: no folder with the MNIST IDX files")
    ckpt = Path(__file__).resolve().parents[1] / "examples" / "checkpoints" / "mnist-mlp-nsm.pt"
    program = compile_checkpoint(ckpt)
    x_tr, _ = load_dataset("mnist", split="train", root=folder)
    x_te, y_te = load_dataset("mnist", split="test", root=folder)
    chip = resolve_chip(preset)
    model = program_chip(program, chip, calibration=x_tr[:256].numpy())
    run = model.run(x_te[:300].numpy(), 4, mode="clt")
    out = run.counters[model.layers[-1].name]
    assert out.adc_conversions == 300 * 4 * 10
    assert out.adc_saturations < 0.01 * out.adc_conversions
    accuracy, _ = accuracy_nll(run.probabilities, y_te[:300].numpy())
    assert accuracy > 0.95
