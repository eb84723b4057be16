"""A sweep stopped mid-way resumes to the uninterrupted result: a real ``nsmx sweep`` subprocess
killed with SIGKILL, interrupted with Ctrl-C (worker processes end with it) or stopped by a full
disk or a file-size limit; rerunning the same sweep finishes it, and the final table equals that
of an uninterrupted run, with no duplicate (point, seed) rows."""

from __future__ import annotations

import json
import os
import resource
import signal
import sqlite3
import subprocess
import sys
import time

import numba
import pytest
import torch
from torch import nn

import nsm
from mapping.compiler import compile_model
from mapping.program import save_program
from nsm.data import load_dataset
from nsmx.store import STORE_NAME, open_store
from nsmx.sweep import SweepSpec, run_sweep


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    numba_threads, torch_threads = numba.get_num_threads(), torch.get_num_threads()
    numba.set_num_threads(1)
    torch.set_num_threads(1)
    yield
    numba.set_num_threads(numba_threads)
    torch.set_num_threads(torch_threads)


def digits_program(path):
    """A 64-32-10 NSM MLP, two epochs on the digits, compiled and saved."""
    x, y = load_dataset("digits", split="train")
    with torch.random.fork_rng():
        torch.manual_seed(3)
        model = nn.Sequential(
            nsm.BinarizeInput(), nn.Flatten(), nsm.NSMLinear(64, 32, p=0.5), nn.Linear(32, 10)
        )
        opt = torch.optim.Adam(model.parameters(), lr=3e-3)
        for _ in range(2):
            for i in range(0, len(x), 50):
                loss = nn.functional.cross_entropy(model(x[i : i + 50]), y[i : i + 50])
                opt.zero_grad()
                loss.backward()
                opt.step()
    save_program(compile_model(model.eval(), (1, 8, 8)), path)
    return str(path)


GRID = {
    "devices.element.sigma_d_v": (0.0, 0.02, 0.04, 0.06, 0.08, 0.1),
    "run.samples": (2, 3),
}
SEEDS = 2


def cli_args(program: str, out) -> list[str]:
    args = [
        "--threads",
        "1",
        "sweep",
        program,
        "--chip",
        "rram-selector",
        "--dataset",
        "digits",
        "--limit",
        "200",
        "--mode",
        "exact",
        "--seeds",
        str(SEEDS),
        "--root-seed",
        "11",
        "--out",
        str(out),
        "--no-progress",
    ]
    for field, values in GRID.items():
        args += ["--vary", f"{field}={','.join(map(str, values))}"]
    return args


def spec(program: str) -> SweepSpec:
    return SweepSpec(
        program=program,
        chip="rram-selector",
        dataset="digits",
        limit=200,
        mode="exact",
        seeds=SEEDS,
        root_seed=11,
        vary=tuple((k, v) for k, v in GRID.items()),
    )


def table(out) -> list[tuple]:
    with open_store(out) as store:
        return sorted(
            (
                r["point_hash"],
                r["seed"],
                r["program_seed"],
                r["read_seed"],
                r["accuracy"],
                r["nll"],
                r["ece"],
                json.dumps(r["params"], sort_keys=True),
            )
            for r in store.rows()
        )


def stored_rows(path) -> int:
    try:
        with sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=5) as conn:
            return int(conn.execute("SELECT COUNT(*) FROM runs").fetchone()[0])
    except sqlite3.OperationalError:  # not created yet
        return 0


def test_resume_after_sigkill_equals_uninterrupted_run(tmp_path):
    program = digits_program(tmp_path / "digits.nsmx")
    total = len(GRID["devices.element.sigma_d_v"]) * len(GRID["run.samples"]) * SEEDS
    killed = tmp_path / "killed"
    db = killed / STORE_NAME
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "nsmx.cli", *cli_args(program, killed)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        env=env,
    )
    try:
        deadline = time.monotonic() + 120
        while stored_rows(db) < 3:
            assert proc.poll() is None, proc.stderr.read().decode()
            assert time.monotonic() < deadline, "the sweep subprocess made no progress"
            time.sleep(0.02)
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        proc.stderr.close()
    assert proc.returncode == -signal.SIGKILL
    at_kill = stored_rows(db)
    assert 3 <= at_kill < total  # killed mid-sweep, the committed rows survived

    # Resume (the same sweep again), then compare with a run that was never interrupted.
    summary = run_sweep(spec(program), killed, progress=False)
    assert summary.skipped == at_kill and summary.ran == total - at_kill
    reference = tmp_path / "reference"
    run_sweep(spec(program), reference, progress=False)
    final = table(killed)
    assert len(final) == total
    assert len({(r[0], r[1]) for r in final}) == total  # no duplicate (point, seed)
    assert final == table(reference)


def _children(pid: int) -> set[int]:
    """Direct child processes of ``pid`` (Linux /proc)."""
    out: set[int] = set()
    try:
        for task in os.listdir(f"/proc/{pid}/task"):
            with open(f"/proc/{pid}/task/{task}/children") as fh:
                out |= {int(c) for c in fh.read().split()}
    except FileNotFoundError:
        pass
    return out


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().split(")")[-1].split()[0] != "Z"
    except FileNotFoundError:
        return False


#: A launcher of ``nsmx`` for the SIGINT test: the sweep's task function is wrapped so that
#: every task but the first (point 0, seed 0) waits while the gate file exists. With the gate
#: closed, exactly one row can be committed and the workers are then provably mid-row, however
#: loaded the machine is: the sweep cannot finish before the signal lands. The wait is bounded
#: (a stray launcher gives up after five minutes). Spawned workers re-import this file as their
#: main module, so they get the same wrapper.
GATED_NSMX = """
import os
import sys
import time

import nsmx.sweep
from nsmx.cli import main
from nsmx.sweep_worker import execute_task

GATE = {gate!r}


def gated_execute_task(task):
    if (task.point_index, task.seed) != (0, 0):
        deadline = time.monotonic() + 300
        while os.path.exists(GATE) and time.monotonic() < deadline:
            time.sleep(0.05)
    return execute_task(task)


if __name__ == "__main__":
    nsmx.sweep.execute_task = gated_execute_task
    sys.exit(main(sys.argv[1:]))
"""


def test_sigint_with_worker_processes_stops_workers_and_keeps_rows(tmp_path):
    """Ctrl-C on ``nsmx sweep --workers 2``: exit status 130, the worker processes end with
    it, and the store holds only whole, unique rows (the one row finished before the signal)."""
    import nsmx

    program = digits_program(tmp_path / "digits.nsmx")
    out = tmp_path / "interrupted"
    db = out / STORE_NAME
    gate = tmp_path / "gate"
    gate.touch()
    launcher = tmp_path / "gated_nsmx.py"
    launcher.write_text(GATED_NSMX.format(gate=str(gate)))
    # The launcher runs as a script: put this checkout's packages first on its path.
    root = os.path.dirname(os.path.dirname(os.path.abspath(nsmx.__file__)))
    path = os.pathsep.join(p for p in (root, os.environ.get("PYTHONPATH")) if p)
    proc = subprocess.Popen(
        [sys.executable, str(launcher), *cli_args(program, out), "--workers", "2"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        env={**os.environ, "PYTHONPATH": path},
    )
    workers: set[int] = set()
    try:
        deadline = time.monotonic() + 300  # generous: spawned workers import torch, numba
        while stored_rows(db) < 1:
            assert proc.poll() is None, proc.stderr.read().decode()
            assert time.monotonic() < deadline, "the sweep subprocess made no progress"
            time.sleep(0.05)
        for child in _children(proc.pid):  # the pool's workers (and its resource tracker)
            workers |= {child, *_children(child)}
        assert len(workers) >= 2
        assert proc.poll() is None  # the gate holds every other row: still running
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=120) == 130
    finally:
        gate.unlink(missing_ok=True)  # let any waiting task go, whatever happened
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        err = proc.stderr.read().decode()
        proc.stderr.close()
    assert "interrupted" in err
    deadline = time.monotonic() + 30
    while any(_alive(w) for w in workers) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not [w for w in workers if _alive(w)], "worker processes outlived the sweep"
    rows = table(out)
    assert len(rows) == 1  # the ungated (point 0, seed 0) row, whole
    assert rows[0][1] == 0 and json.loads(rows[0][7]) == {
        "devices.element.sigma_d_v": 0.0,
        "run.samples": 2,
    }


# ------------------------------------------------------------------------- full disk


@pytest.fixture(scope="module")
def full_disk_case(tmp_path_factory):
    """The program and the table of an uninterrupted sweep (run first: its numba kernels are
    then cached, so the limited sweep below writes nothing but its store)."""
    base = tmp_path_factory.mktemp("fulldisk")
    program = digits_program(base / "digits.nsmx")
    run_sweep(spec(program), base / "reference", progress=False)
    return program, table(base / "reference")


def _small_tmpfs(mount, size: str) -> None:
    mount.mkdir()
    try:
        subprocess.run(
            ["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(mount)],
            check=True,
            capture_output=True,
        )
    except (OSError, subprocess.CalledProcessError) as exc:
        pytest.skip(f"cannot mount a small tmpfs here ({exc}); needs root")


@pytest.mark.parametrize("limit", ["ulimit -f", "small tmpfs"])
def test_full_disk_mid_sweep_is_one_line_and_the_same_command_resumes(
    full_disk_case, tmp_path, limit
):
    """A sweep whose store cannot grow (EFBIG past a file-size limit, ENOSPC on a full file
    system) ends with one line naming the store, non-zero exit, no traceback; the rows stored
    before stay whole, and the same command, once there is room, finishes the sweep with
    exactly the rows of an uninterrupted run."""
    program, reference = full_disk_case
    total = len(reference)
    env = {**os.environ, "OMP_NUM_THREADS": "1", "NUMBA_NUM_THREADS": "1"}
    command = [sys.executable, "-m", "nsmx.cli"]
    preexec = None
    if limit == "ulimit -f":
        out = tmp_path / "limited"
        size = 64_000

        def preexec() -> None:
            signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # EFBIG instead of a killed process
            resource.setrlimit(resource.RLIMIT_FSIZE, (size, size))

        reason = f"file too large (the file-size limit, ulimit -f, {size} bytes, was reached)"
    else:
        mount = tmp_path / "small"
        _small_tmpfs(mount, "96k")
        out = mount / "run"
        reason = "no space left on the device"
    try:
        proc = subprocess.run(
            [*command, *cli_args(program, out)],
            capture_output=True,
            text=True,
            env=env,
            preexec_fn=preexec,
            timeout=600,
        )
        assert proc.returncode == 2, proc.stderr
        assert proc.stderr.count("\n") == 1 and "Traceback" not in proc.stderr, proc.stderr
        assert proc.stderr.startswith(
            f"nsmx sweep: error: {out / STORE_NAME}: cannot write a row: {reason} ("
        ), proc.stderr
        assert "the rows committed so far are kept" in proc.stderr
        assert set(os.listdir(out)) <= {
            STORE_NAME,
            f"{STORE_NAME}-wal",
            f"{STORE_NAME}-shm",
            f"{STORE_NAME}.lock",
        }
        kept = table(out)
        assert 1 <= len(kept) < total  # stopped mid-sweep
        assert set(kept) <= set(reference)  # every stored row whole and right
        if limit == "small tmpfs":  # room again
            subprocess.run(["mount", "-o", "remount,size=64m", str(mount)], check=True)
        again = subprocess.run(
            [*command, *cli_args(program, out)],
            capture_output=True,
            text=True,
            env=env,
            timeout=600,
        )
        assert again.returncode == 0, again.stderr
        assert f"{total - len(kept)} run, {len(kept)} already stored" in again.stdout
        assert table(out) == reference
    finally:
        if limit == "small tmpfs":
            subprocess.run(["umount", "-l", str(mount)], check=False)
