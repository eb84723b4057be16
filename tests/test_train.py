"""Training loop, checkpoints and the train/evaluate CLI on the bundled digits."""

from __future__ import annotations

import errno
import json
import os
import resource
import signal
import subprocess
import sys

import pytest
import torch

from nsm.checkpoint import (
    CheckpointError,
    load_checkpoint,
    load_model,
    save_checkpoint,
    save_slim_checkpoint,
)
from nsm.data import load_dataset
from nsm.evaluate import mc_predict
from nsm.models import MODELS, RULES, build_model
from nsm.train import CHECKPOINT_NAME, TrainConfig, train
from nsmx.cli import main


@pytest.fixture(scope="module")
def digits():
    x_tr, y_tr = load_dataset("digits", split="train")
    x_te, y_te = load_dataset("digits", split="test")
    return x_tr, y_tr, x_te, y_te


@pytest.fixture(scope="module")
def trained_digits(tmp_path_factory, digits):
    """A digits-mlp NSM trained for the demo's default length (shared by several tests)."""
    out = tmp_path_factory.mktemp("digits")
    cfg = TrainConfig(model="digits-mlp", rule="nsm", epochs=30, seed=0, eval_samples=5)
    history = train(cfg, digits, out, progress=False, log=lambda s: None)
    return out / CHECKPOINT_NAME, history


@pytest.mark.parametrize("name", sorted(MODELS))
@pytest.mark.parametrize("rule", sorted(RULES))
def test_every_model_and_rule_builds_and_runs(name, rule):
    model = build_model(name, rule)
    x = torch.rand(3, *MODELS[name].input_shape)
    logits = model(x)
    assert logits.shape == (3, 10)
    logits.sum().backward()  # every rule has a gradient path to the first layer's weights
    first = next(m for m in model.modules() if hasattr(m, "weight"))
    assert first.weight.grad is not None and torch.isfinite(first.weight.grad).all()


def test_short_training_on_digits_reaches_90_percent(trained_digits, digits):
    ckpt_path, history = trained_digits
    model, ckpt = load_model(ckpt_path)
    assert ckpt["epoch"] == 30 and len(history) == 30
    _, _, x_te, y_te = digits
    prob = mc_predict(model, x_te, samples=100, generator=torch.Generator().manual_seed(1))
    accuracy = float((prob.argmax(1) == y_te).float().mean())
    # The acceptance bar for a short run; a working NSM reaches ~95 % here.
    assert accuracy >= 0.90, accuracy


def test_resume_gives_the_same_weights_as_an_uninterrupted_run(tmp_path, digits):
    quiet = {"progress": False, "log": lambda s: None}
    cfg3 = TrainConfig(model="digits-mlp", rule="nsm", epochs=3, seed=7, eval_samples=2)
    train(cfg3, digits, tmp_path / "straight", **quiet)
    cfg1 = TrainConfig(model="digits-mlp", rule="nsm", epochs=1, seed=7, eval_samples=2)
    train(cfg1, digits, tmp_path / "resumed", **quiet)
    history = train(cfg3, digits, tmp_path / "resumed", resume=True, **quiet)
    a = load_checkpoint(tmp_path / "straight" / CHECKPOINT_NAME)
    b = load_checkpoint(tmp_path / "resumed" / CHECKPOINT_NAME)
    assert len(history) == 3 and b["epoch"] == 3
    for key, value in a["state_dict"].items():
        assert torch.equal(value, b["state_dict"][key]), key
    assert [r["test_accuracy"] for r in a["history"]] == [r["test_accuracy"] for r in history]


def test_existing_run_needs_resume_and_matching_config(tmp_path, digits):
    quiet = {"progress": False, "log": lambda s: None}
    cfg = TrainConfig(model="digits-mlp", rule="nsm", epochs=1, seed=0, eval_samples=1)
    train(cfg, digits, tmp_path, **quiet)
    with pytest.raises(FileExistsError, match="--resume"):
        train(cfg, digits, tmp_path, **quiet)
    other = TrainConfig(model="digits-mlp", rule="nsm", epochs=2, seed=1, eval_samples=1)
    with pytest.raises(CheckpointError, match="seed"):
        train(other, digits, tmp_path, resume=True, **quiet)


@pytest.mark.parametrize(
    ("field", "value", "match"),
    [
        ("model", "resnet", "model='resnet'"),
        ("rule", "magic", "rule='magic'"),
        ("epochs", 0, "epochs=0"),
        ("lr", -1.0, "lr=-1.0"),
    ],
)
def test_train_config_names_the_bad_field(field, value, match):
    with pytest.raises(ValueError, match=match):
        TrainConfig(**{field: value})


def test_damaged_and_foreign_checkpoints_are_refused(tmp_path, trained_digits):
    ckpt_path, _ = trained_digits
    raw = ckpt_path.read_bytes()
    truncated = tmp_path / "truncated.pt"
    truncated.write_bytes(raw[: len(raw) // 2])
    with pytest.raises(CheckpointError, match=r"truncated\.pt: not a readable"):
        load_checkpoint(truncated)
    garbage = tmp_path / "garbage.pt"
    garbage.write_bytes(b"\x00" * 100)
    with pytest.raises(CheckpointError, match=r"garbage\.pt"):
        load_checkpoint(garbage)
    foreign = tmp_path / "foreign.pt"
    torch.save({"weights": torch.zeros(3)}, foreign)
    with pytest.raises(CheckpointError, match="not an nsmx checkpoint"):
        load_checkpoint(foreign)
    with pytest.raises(CheckpointError, match="not found"):
        load_checkpoint(tmp_path / "missing.pt")
    # A pickled object (code) is refused by weights_only loading.
    evil = tmp_path / "evil.pt"
    torch.save({"format": "nsmx-checkpoint", "obj": TrainConfig()}, evil)
    with pytest.raises(CheckpointError, match=r"evil\.pt: not a readable"):
        load_checkpoint(evil)
    # Weights of one model relabelled as another: clear error naming both.
    ckpt = load_checkpoint(ckpt_path)
    ckpt["model"] = "mnist-mlp"
    relabelled = tmp_path / "relabelled.pt"
    save_checkpoint(relabelled, {k: v for k, v in ckpt.items() if k not in ("format", "version")})
    with pytest.raises(CheckpointError, match="do not fit model 'mnist-mlp'"):
        load_model(relabelled)
    future = tmp_path / "future.pt"
    torch.save({**ckpt, "version": 99}, future)
    with pytest.raises(CheckpointError, match="version 99"):
        load_checkpoint(future)


def test_cli_evaluate_json_last_line(trained_digits, capsys):
    ckpt_path, _ = trained_digits
    status = main(["evaluate", str(ckpt_path), "--samples", "4", "--json", "--no-progress"])
    assert status == 0
    last = capsys.readouterr().out.strip().splitlines()[-1]
    result = json.loads(last)
    assert result["samples"] == 4 and result["n"] == 450
    assert result["error"] == pytest.approx(1 - result["accuracy"])
    assert result["accuracy"] >= 0.85


def test_cli_errors_are_one_line_with_status_2(tmp_path, capsys):
    assert main(["evaluate", str(tmp_path / "nope.pt")]) == 2
    err = capsys.readouterr().err
    assert "nope.pt: checkpoint file not found" in err and "Traceback" not in err
    with pytest.raises(SystemExit) as exc:
        main(["train", "--out", str(tmp_path), "--epochs", "0"])
    assert exc.value.code == 2


def test_slim_checkpoint_evaluates_but_cannot_resume(tmp_path, trained_digits, digits):
    ckpt_path, _ = trained_digits
    run = tmp_path / "run"
    run.mkdir()
    save_slim_checkpoint(ckpt_path, run / CHECKPOINT_NAME)
    assert (run / CHECKPOINT_NAME).stat().st_size < ckpt_path.stat().st_size
    slim, _ = load_model(run / CHECKPOINT_NAME)
    full, _ = load_model(ckpt_path)
    for (k, a), b in zip(full.state_dict().items(), slim.state_dict().values(), strict=True):
        assert torch.equal(a, b), k
    cfg = TrainConfig(model="digits-mlp", rule="nsm", epochs=31, seed=0, eval_samples=5)
    with pytest.raises(CheckpointError, match="slim"):
        train(cfg, digits, run, resume=True, progress=False, log=lambda s: None)


# ------------------------------------------------------------------------- full disk


def _train_cli(out, *extra, fsize=None):
    """``nsmx train`` of a short digits MLP in a subprocess; ``fsize``: the file-size limit
    (RLIMIT_FSIZE, bytes) with SIGXFSZ ignored, so a write past it fails with EFBIG."""

    def preexec() -> None:
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (fsize, fsize))

    env = {**os.environ, "OMP_NUM_THREADS": "1", "NUMBA_NUM_THREADS": "1"}
    command = [sys.executable, "-m", "nsmx.cli", "--threads", "1", "train"]
    command += ["--model", "digits-mlp", "--eval-samples", "1", "--no-progress"]
    return subprocess.run(
        [*command, "--out", str(out), *extra],
        capture_output=True,
        text=True,
        env=env,
        preexec_fn=None if fsize is None else preexec,
        timeout=600,
    )


def test_training_past_a_file_size_limit_is_one_line_and_keeps_the_last_checkpoint(tmp_path):
    """A write that fails (EFBIG under ``ulimit -f``, as a full disk fails with ENOSPC) ends the
    training with one line naming the file, exit status 1, no temporary file; the checkpoint
    of the last finished epoch stays whole, and the same command resumes once there is room."""
    out = tmp_path / "run"
    first = _train_cli(out, "--epochs", "1")
    assert first.returncode == 0, first.stderr
    before = sorted(os.listdir(out))
    assert before == ["checkpoint.pt", "metrics.csv", "metrics.json"]
    size = (out / CHECKPOINT_NAME).stat().st_size
    proc = _train_cli(out, "--epochs", "2", "--resume", fsize=size // 2)
    assert proc.returncode == 1, proc.stderr
    last = proc.stderr.strip().splitlines()[-1]
    assert last == (
        f"nsmx train: error: {out / CHECKPOINT_NAME}: file too large (the file-size limit, "
        "ulimit -f, was reached)"
    ), proc.stderr
    assert "Traceback" not in proc.stderr
    assert sorted(os.listdir(out)) == before  # no temporary file left
    assert load_checkpoint(out / CHECKPOINT_NAME)["epoch"] == 1  # the old one, whole
    again = _train_cli(out, "--epochs", "2", "--resume")
    assert again.returncode == 0, again.stderr
    assert load_checkpoint(out / CHECKPOINT_NAME)["epoch"] == 2
    assert len(json.loads((out / "metrics.json").read_text())) == 2


def test_metrics_and_checkpoint_writes_leave_no_temporary_file(tmp_path, digits, monkeypatch):
    """A write that fails half-way (here the metrics, after the checkpoint) raises an OSError
    naming the file and removes its temporary file; the files written before stay whole."""
    import nsm.atomic_io

    real_open = open
    calls = []

    def failing_open(path, mode="r", *args, **kwargs):
        fh = real_open(path, mode, *args, **kwargs)
        if "x" in mode and ".tmp" in str(path) and "metrics.json" in str(path):
            calls.append(path)
            fh.close()
            raise OSError(errno.ENOSPC, "No space left on device")
        return fh

    monkeypatch.setattr(nsm.atomic_io, "open", failing_open, raising=False)
    cfg = TrainConfig(model="digits-mlp", rule="nsm", epochs=1, seed=0, eval_samples=1)
    with pytest.raises(OSError) as exc:
        train(cfg, digits, tmp_path, progress=False, log=lambda s: None)
    assert exc.value.errno == errno.ENOSPC and exc.value.filename == str(tmp_path / "metrics.json")
    assert calls and sorted(os.listdir(tmp_path)) == ["checkpoint.pt", "metrics.csv"]
    assert load_checkpoint(tmp_path / CHECKPOINT_NAME)["epoch"] == 1
