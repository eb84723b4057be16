"""Nothing wrong said silently: bad files refused by meaning, outputs that cannot be written
told in one line naming the path, strict JSON, and Ctrl-C / SIGTERM ending as "interrupted"
(real signals to real ``nsmx`` subprocesses, sent once the process provably works).

Programs and checkpoints are untrained (seeded) digits MLPs: the tests check refusals and
endings, not accuracy.
"""

from __future__ import annotations

import json
import os
import resource
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
import torch
from helpers import tmpfs
from torch import nn

import nsm
from crossbar import ChipConfig, replace_field
from mapping.compiler import compile_model
from mapping.program import ProgramError, load_program, save_program
from mapping.program_file import MANIFEST_KEY, compute_checksum
from mapping.records import BinariseLayer
from mapping.runtime import MappingError, read_conditions
from nsm.checkpoint import save_checkpoint
from nsm.models import build_model
from nsmx.cli import main
from nsmx.interrupts import Terminated, interruption
from nsmx.safe_io import json_text

NSMX = [sys.executable, "-m", "nsmx.cli", "--threads", "1"]


def _model():
    with torch.random.fork_rng():
        torch.manual_seed(0)
        return nn.Sequential(
            nsm.BinarizeInput(), nn.Flatten(), nsm.NSMLinear(64, 32, p=0.5), nn.Linear(32, 10)
        )


@pytest.fixture(scope="module")
def program(tmp_path_factory):
    path = tmp_path_factory.mktemp("prog") / "net.nsmx"
    save_program(compile_model(_model().eval(), (1, 8, 8), source={"model": "digits-mlp"}), path)
    return str(path)


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    path = tmp_path_factory.mktemp("ckpt") / "checkpoint.pt"
    model = build_model("digits-mlp", "nsm")
    payload = {"model": "digits-mlp", "rule": "nsm", "epoch": 1, "config": {}}
    save_checkpoint(path, {**payload, "state_dict": model.state_dict()})
    return str(path)


def _env() -> dict[str, str]:
    return {**os.environ, "PYTHONUNBUFFERED": "1", "NUMBA_NUM_THREADS": "1", "OMP_NUM_THREADS": "1"}


# ------------------------------------------------------------------------- files by meaning


def test_binarise_threshold_outside_the_input_range_is_refused(program, tmp_path):
    with pytest.raises(ValueError, match=r"threshold.*2\.0.*allowed"):
        BinariseLayer(name="in", in_shape=(1, 8, 8), threshold=2.0)
    # A manifest edited by hand and re-hashed: the checksum passes, the meaning does not.
    with np.load(program) as npz:
        members = {k: npz[k] for k in npz.files}
    manifest = json.loads(members[MANIFEST_KEY].tobytes())
    manifest["layers"][0]["threshold"] = 2.0
    manifest["checksum"]["value"] = compute_checksum(manifest, members)
    members[MANIFEST_KEY] = np.frombuffer(json.dumps(manifest).encode(), dtype=np.uint8)
    edited = tmp_path / "edited.nsmx"
    with open(edited, "wb") as fh:
        np.savez(fh, **members)
    with pytest.raises(ProgramError, match=r"threshold"):
        load_program(edited)


def test_chip_p_without_noise_or_signal_is_refused_under_the_chip_policy(program):
    layer = load_program(program).binary_layers[0]
    for p in (1.0, 1e-300):
        chip = replace_field(ChipConfig.ideal(), "devices.element.p", p)
        with pytest.raises(MappingError, match=r"devices\.element\.p gives p=.*allowed: p in"):
            read_conditions(chip, layer, "chip")
        read_conditions(chip, layer, "trained")  # the mapper sets the trained p: fine


def test_comparator_noise_beyond_physical_bounds_is_refused(tmp_path):
    text = ChipConfig.ideal().to_toml().replace("noise_sigma_ua = 0.0", "noise_sigma_ua = 1e300")
    chip_file = tmp_path / "chip.toml"
    chip_file.write_text(text)
    from crossbar import ChipError, load_chip_file

    with pytest.raises(ChipError, match=r"noise_sigma_ua = 1e\+300 is out of range"):
        load_chip_file(chip_file)


def test_evaluate_refuses_what_compile_refuses(checkpoint, tmp_path, capsys):
    from nsm.checkpoint import load_checkpoint

    ckpt = load_checkpoint(checkpoint)
    keep = {k: v for k, v in ckpt.items() if k not in ("format", "version", "content_sha256")}
    state = {k: v.clone() for k, v in keep["state_dict"].items()}
    name = next(k for k, v in state.items() if v.is_floating_point() and v.ndim == 2)
    state[name][0, 0] = float("nan")
    save_checkpoint(tmp_path / "nan.pt", {**keep, "state_dict": state})
    save_checkpoint(tmp_path / "epoch.pt", {**keep, "epoch": "x"})
    for bad, message in (("nan.pt", "non-finite values"), ("epoch.pt", "epoch = 'x' is invalid")):
        for command in (
            ["evaluate", str(tmp_path / bad), "--json"],
            ["compile", str(tmp_path / bad)],
        ):
            assert main(command) == 2
            err = capsys.readouterr().err
            assert message in err and err.count("\n") == 1


def test_json_output_is_strict():
    assert (
        json_text({"a": float("nan"), "b": [float("inf"), 1.5]}) == '{"a": null, "b": [null, 1.5]}'
    )


# ------------------------------------------------------------------------- outputs


def test_compile_refuses_special_files_and_folders(tmp_path, capsys):
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    for target, kind in (
        (fifo, "a FIFO (named pipe)"),
        ("/dev/null", "a character device"),
        (tmp_path, "a folder"),
    ):
        assert main(["compile", "missing.pt", "-o", str(target)]) == 2
        err = capsys.readouterr().err
        assert f"is {kind}, not a regular file" in err and err.count("\n") == 1
    assert fifo.exists() and not fifo.is_file()  # never replaced by a regular file
    (tmp_path / "file").write_text("x")
    for command in (
        ["train", "--out", str(tmp_path / "file"), "--epochs", "1"],
        ["sweep", "export", str(tmp_path), "-o", str(fifo)],
    ):
        assert main(command) == 2
        assert "error:" in capsys.readouterr().err
    assert main(["train", "--out", str(tmp_path / "file"), "--epochs", "1"]) == 2
    err = capsys.readouterr().err
    assert "file is a file, not a folder; train --out must be a folder" in err, err
    assert (tmp_path / "file").read_text() == "x"


def _limit_file_size(limit: int):
    def preexec() -> None:
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # EFBIG instead of a killed process
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    return preexec


def test_file_size_limit_is_one_line_and_leaves_no_temporary_file(checkpoint, tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    proc = subprocess.run(
        [*NSMX, "compile", checkpoint, "-o", str(out / "net.nsmx")],
        capture_output=True,
        text=True,
        env=_env(),
        preexec_fn=_limit_file_size(20_000),
        timeout=600,
    )
    assert proc.returncode == 2, proc.stderr
    assert "file too large" in proc.stderr and str(out / "net.nsmx") in proc.stderr
    assert "Traceback" not in proc.stderr and proc.stderr.count("\n") == 1
    assert os.listdir(out) == []  # neither the program nor its temporary file


def test_full_disk_is_one_line_and_leaves_no_temporary_file(checkpoint, tmp_path):
    with tmpfs(tmp_path / "small", "size=64k", "a small tmpfs") as mount:
        proc = subprocess.run(
            [*NSMX, "compile", checkpoint, "-o", str(mount / "net.nsmx")],
            capture_output=True,
            text=True,
            env=_env(),
            timeout=600,
        )
        assert proc.returncode == 2, proc.stderr
        assert "no space left on the device" in proc.stderr
        assert "Traceback" not in proc.stderr
        assert os.listdir(mount) == []


def test_full_or_closed_stdout_is_one_line():
    with open("/dev/full", "w") as full:
        proc = subprocess.run(
            [*NSMX, "chips"],
            stdout=full,
            stderr=subprocess.PIPE,
            text=True,
            env=_env(),
            timeout=600,
        )
    assert proc.returncode == 1 and "<stdout>: no space left" in proc.stderr
    assert "Traceback" not in proc.stderr and proc.stderr.count("\n") == 1
    proc = subprocess.run(
        [*NSMX, "chips"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        env=_env(),
        timeout=600,
        close_fds=True,
        preexec_fn=lambda: os.close(1),
    )
    assert proc.returncode == 2 and "stdout is closed" in proc.stderr


def test_stdout_whose_reader_went_away_is_one_line():
    """``nsmx chips | head -c0``: the reading end is closed before the command writes."""
    read, write = os.pipe()
    os.close(read)
    try:
        proc = subprocess.run(
            [*NSMX, "chips"], stdout=write, stderr=subprocess.PIPE, text=True, env=_env()
        )
    finally:
        os.close(write)
    assert proc.returncode == 1, proc.stderr
    assert proc.stderr == "nsmx chips: error: <stdout>: broken pipe (the reading end was closed)\n"


def test_writers_refuse_a_read_only_place_up_front(program, checkpoint, tmp_path, capsys):
    """Every writer into a read-only file system: one line naming the place, exit 2, before
    any work (a small tmpfs remounted read-only; needs root)."""
    with tmpfs(tmp_path / "ro", "size=1m,ro", "a read-only tmpfs") as mount:
        for command in (
            ["train", "--model", "digits-mlp", "--epochs", "1", "--out", str(mount / "t")],
            ["learn", "--model", "digits-mlp", "--chip", "ideal", "--out", str(mount / "l")],
            ["sweep", program, "--vary", "devices.element.p=0.4", "--out", str(mount / "s")],
            ["compile", checkpoint, "-o", str(mount / "net.nsmx")],
        ):
            assert main(command) == 2, command
            err = capsys.readouterr().err
            assert err.count("\n") == 1, err
            assert f"cannot write in {mount} (read-only file system)" in err, err


# ------------------------------------------------------------------------- interrupts


def test_interrupt_inside_a_c_extension_is_recognised():
    try:
        try:
            raise KeyboardInterrupt
        except KeyboardInterrupt as exc:
            raise SystemError("<numba> returned a result with an exception set") from exc
    except SystemError as exc:
        assert interruption(exc) == 130
    assert interruption(Terminated()) == 143 and interruption(ValueError("x")) is None


@pytest.mark.parametrize("sig, status", [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_signal_during_chip_sampling_ends_as_interrupted(program, sig, status):
    """The signal is sent once the run has printed that the chip is programmed (it is then
    sampling, for minutes at this sample count): exit 130 / 143, one line, no traceback."""
    proc = subprocess.Popen(
        [
            *NSMX,
            "run",
            program,
            "--chip",
            "rram-selector",
            "--samples",
            "100000",
            "--limit",
            "50",
            "--no-progress",
            "--no-software",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=_env(),
    )
    try:
        deadline = time.monotonic() + 300
        for line in proc.stdout:
            if "programmed" in line:
                break
            assert time.monotonic() < deadline
        time.sleep(1.0)  # inside the sampling kernels
        assert proc.poll() is None
        proc.send_signal(sig)
        _, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == status, err
    assert err.strip().endswith("nsmx run: interrupted") and "Traceback" not in err


@pytest.mark.parametrize("sig, status", [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_signal_during_a_serial_sweep_ends_as_interrupted_with_whole_rows(
    program, tmp_path, sig, status
):
    """``nsmx sweep --workers 1``: the first point is cheap (2 samples), the second long (20000
    samples, tens of seconds in the sampling kernels); the signal is sent once the first row is
    stored and the process is still running, so it lands inside the second row. Exit 130 /
    143, one line, no traceback; the store holds the first row, whole."""
    import sqlite3

    from nsmx.store import STORE_NAME, open_store

    out = tmp_path / "sweep"
    command = [*NSMX, "sweep", program, "--chip", "rram-selector", "--limit", "100"]
    command += ["--mode", "exact", "--vary", "run.samples=2,20000", "--workers", "1"]
    proc = subprocess.Popen(
        [*command, "--no-progress", "--out", str(out)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        env=_env(),
    )
    try:
        deadline = time.monotonic() + 300
        while True:
            assert proc.poll() is None, proc.stderr.read()
            assert time.monotonic() < deadline, "the sweep stored no row"
            try:
                uri = f"file:{out / STORE_NAME}?mode=ro"
                with sqlite3.connect(uri, uri=True, timeout=5) as conn:
                    if conn.execute("SELECT COUNT(*) FROM runs").fetchone()[0] >= 1:
                        break
            except sqlite3.OperationalError:  # not created yet
                pass
            time.sleep(0.05)
        time.sleep(1.0)  # inside the second row's sampling kernels
        assert proc.poll() is None
        proc.send_signal(sig)
        _, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == status, err
    assert err.strip().splitlines()[-1] == "nsmx sweep: interrupted" and "Traceback" not in err
    with open_store(out) as store:
        rows = store.rows()
    assert [r["params"] for r in rows] == [{"run.samples": 2}] and rows[0]["samples"] == 2
