"""`nsmx learn` chip states from the CLI: `nsmx run --chip-state` gives the accuracy `nsmx learn`
reported (same samples and seed); `--resume` refuses any change but the epoch count, naming the
field, and a damaged file in one line; fine-tuning with a real pulse model."""

from __future__ import annotations

import json

import pytest
from helpers import run_cli


def test_run_chip_state_gives_the_accuracy_learn_reported(tmp_path):
    out_dir = tmp_path / "learned"
    learn = [
        "learn",
        "--chip",
        "ideal",
        "--model",
        "digits-mlp",
        "--epochs",
        "1",
        "--train-subset",
        "200",
        "--test-subset",
        "60",
        "--eval-samples",
        "3",
        "--seed",
        "7",
        "--no-progress",
        "--json",
        "--out",
        str(out_dir),
    ]
    code, out, err = run_cli(learn)
    assert code == 0, err
    learned = json.loads(out.strip().splitlines()[-1])
    assert learned["n"] == 60 and learned["samples"] == 3
    state = out_dir / "chip_state.npz"
    assert learned["chip_state"] == str(state) and state.is_file()
    run = [
        "run",
        "--chip-state",
        str(state),
        "--samples",
        "3",
        "--seed",
        "7",
        "--limit",
        "60",
        "--no-progress",
        "--json",
    ]
    code, out, err = run_cli(run)
    assert code == 0, err
    evaluated = json.loads(out.strip().splitlines()[-1])
    assert evaluated["n"] == 60 and evaluated["samples"] == 3 and evaluated["seed"] == 7
    # the same chip state, test examples, samples and read seed: the same number, exactly
    assert evaluated["chip_accuracy"] == learned["accuracy_after"]


def _learn(out_dir, *extra: str) -> list[str]:
    return [
        "learn",
        "--chip",
        "ideal",
        "--train-subset",
        "120",
        "--test-subset",
        "30",
        "--eval-samples",
        "1",
        "--no-progress",
        "--out",
        str(out_dir),
        *extra,
    ]


def _one_line_error(code: int, err: str) -> str:
    assert code == 2, err
    assert "Traceback" not in err
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1, err
    return lines[0]


def test_learn_resume_refuses_any_change_naming_the_field(tmp_path):
    # A resumed run may change only --epochs, --no-progress and --json; a changed chip field,
    # pulse device, learning setting, architecture or data subset is refused with the field
    # and both values, and config.json is left as the first run wrote it.
    out_dir = tmp_path / "run"
    code, _, err = run_cli(_learn(out_dir, "--epochs", "1"))
    assert code == 0, err
    config = (out_dir / "config.json").read_bytes()
    toml = tmp_path / "mlp.toml"
    toml.write_text(
        'name = "mlp-16"\ninput_shape = [1, 8, 8]\ndataset = "digits"\n[[layers]]\n'
        'type = "binarise"\n[[layers]]\ntype = "flatten"\n[[layers]]\ntype = "nsm-linear"\n'
        'out = 16\n[[layers]]\ntype = "output"\nout = 10\n',
        encoding="utf-8",
    )
    cases = [
        (["--set", "devices.element.p=0.4"], "chip field devices.element.p: stored 0.5, given 0.4"),
        (["--pulse", "rram"], "written with another pulse device: pulse field "),
        (["--lr-us", "0.1"], "learning setting lr_us (--lr-us): stored 0.2, given 0.1"),
        (["--estimator", "window"], "learning setting estimator (--estimator)"),
        (["--model", str(toml)], "learning setting model (--model): stored 'digits-mlp'"),
        (["--train-subset", "100"], "data field n_train: stored 120, given 100"),
        (["--seed", "3"], "learning setting seed (--seed): stored 0, given 3"),
    ]
    for change, expected in cases:
        argv = _learn(out_dir, "--epochs", "2", "--resume")
        # a later option wins: the changed value replaces the first run's
        code, _, err = run_cli([*argv, *change])
        line = _one_line_error(code, err)
        assert "cannot resume" in line and expected in line, (change, line)
    assert (out_dir / "config.json").read_bytes() == config
    # what may change: --epochs (and --json)
    code, out, err = run_cli([*_learn(out_dir, "--epochs", "2", "--resume"), "--json"])
    assert code == 0, err
    assert json.loads(out.strip().splitlines()[-1])["epochs"] == 2


def test_learn_resume_refuses_other_data_file_content(tmp_path):
    # --data FILE: the content hash of the file is part of what a chip state learned from.
    import numpy as np

    from nsm.data import load_dataset
    from nsm.user_data import save_npz

    x_tr, y_tr = (t.numpy() for t in load_dataset("digits", "train"))
    x_te, y_te = (t.numpy() for t in load_dataset("digits", "test"))
    data = tmp_path / "d.npz"
    save_npz(data, x_tr[:150], y_tr[:150], x_te[:40], y_te[:40])
    out_dir = tmp_path / "run"
    argv = _learn(out_dir, "--data", str(data))
    code, _, err = run_cli([*argv, "--epochs", "1"])
    assert code == 0, err
    x_te = np.array(x_te[:40])
    x_te[0, 0, 0, 0] = 1.0 - x_te[0, 0, 0, 0]  # one pixel of a test image changed
    save_npz(data, x_tr[:150], y_tr[:150], x_te, y_te[:40])
    code, _, err = run_cli([*argv, "--epochs", "2", "--resume"])
    line = _one_line_error(code, err)
    assert "data field content_sha256" in line and "data field data_file_sha256" in line


def test_learn_resume_of_a_damaged_chip_state_is_one_clear_error(tmp_path):
    out_dir = tmp_path / "run"
    code, _, err = run_cli(_learn(out_dir, "--epochs", "1"))
    assert code == 0, err
    state = out_dir / "chip_state.npz"
    good = state.read_bytes()
    # a truncated file (a write cut short) and one flipped byte in the middle (bit rot)
    flipped = bytearray(good)
    flipped[len(good) // 2] ^= 0x40
    for damaged in (good[: len(good) // 2], bytes(flipped)):
        state.write_bytes(damaged)
        code, _, err = run_cli(_learn(out_dir, "--epochs", "2", "--resume"))
        line = _one_line_error(code, err)
        assert "cannot resume" in line and str(state) in line, line
        # the zip's CRC (or, past it, the file's SHA-256) catches the damage
        assert "not a readable chip-state file" in line or "checksum mismatch" in line, line


def test_fine_tuning_a_program_with_rram_pulses_on_rram_selector(tmp_path):
    # A compiled program fine-tuned in full on rram-selector with the rram pulse model: pulses
    # are sent, every device stays inside the pulse window, and the learned chip state
    # evaluates to the accuracy learn reported.
    import dataclasses

    from devices.pulse import load_pulse_preset
    from mapping import save_program
    from mapping.learning import load_chip_state, scratch_program

    program = scratch_program("digits-mlp", 3, 2.0)
    program = dataclasses.replace(program, source={"dataset": "digits"})
    path = save_program(program, tmp_path / "p.nsmx")
    out_dir = tmp_path / "tuned"
    argv = ["learn", "--program", str(path), "--chip", "rram-selector", "--pulse", "rram"]
    argv += ["--tune", "full", "--train-subset", "200", "--test-subset", "50"]
    argv += ["--eval-samples", "2", "--epochs", "1", "--no-progress", "--json"]
    code, out, err = run_cli([*argv, "--out", str(out_dir)])
    assert code == 0, err
    summary = json.loads(out.strip().splitlines()[-1])
    assert summary["pulses_sent"] > 0
    net, _ = load_chip_state(out_dir / "chip_state.npz")
    assert net.pulse == load_pulse_preset("rram") and net.pair_update == "bidirectional"
    assert net.total_pulses() == summary["pulses_sent"]
    for layer in net.layers:
        lo, hi = layer.pulse.g_min_us, layer.pulse.g_max_us
        moved = layer.g_plus.total_pulses() > 0
        assert moved.any()
        g = layer.g_plus.g_us[moved & ~layer.stuck_plus]
        assert g.min() >= lo and g.max() <= hi
    run = ["run", "--chip-state", str(out_dir / "chip_state.npz"), "--samples", "2"]
    code, out, err = run_cli([*run, "--seed", "0", "--limit", "50", "--no-progress", "--json"])
    assert code == 0, err
    assert json.loads(out.strip().splitlines()[-1])["chip_accuracy"] == summary["accuracy_after"]


def test_learning_curve_is_a_png_of_the_history(tmp_path):
    from nsmx.learn_plot import plot_learning_curve

    row = {"train_acc": 0.5, "test_acc": 0.6, "grad_cosine": [0.9, 1.0], "pulses_sent": 10}
    history = [dict(row, epoch=1, accuracy_before=0.1), dict(row, epoch=2, test_acc=0.7)]
    path = plot_learning_curve(history, tmp_path / "curve.png", title="t")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert [p.name for p in tmp_path.iterdir()] == ["curve.png"]  # no temporary file left
    with pytest.raises(ValueError, match="empty"):
        plot_learning_curve([], tmp_path / "none.png")
