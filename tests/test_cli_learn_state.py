"""`nsmx run --chip-state` gives the accuracy `nsmx learn` reported (same samples and seed)."""

from __future__ import annotations

import contextlib
import io
import json

from nsmx.cli import main


def _cli(argv: list[str]) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(argv)
    return code, out.getvalue(), err.getvalue()


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
    code, out, err = _cli(learn)
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
    code, out, err = _cli(run)
    assert code == 0, err
    evaluated = json.loads(out.strip().splitlines()[-1])
    assert evaluated["n"] == 60 and evaluated["samples"] == 3 and evaluated["seed"] == 7
    # the same chip state, test examples, samples and read seed: the same number, exactly
    assert evaluated["chip_accuracy"] == learned["accuracy_after"]
