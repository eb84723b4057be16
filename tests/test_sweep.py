"""Sweeps: grid resolution and validation, derived seeds, the SQLite store (atomic rows, resume,
foreign / corrupt / newer files refused), CSV export, plots (axis scales, time units, truthful
error bars, references), the summary table, the CLI, ``--json`` output of every command, local
worker processes and a Dask LocalCluster giving the same table as a serial run.

A small NSM MLP trained for a few epochs on the bundled digits (seconds) is the program; runs
use the fast ``clt`` mode, a few samples and a test subset. The SIGKILL resume test is in
test_sweep_resume.py.
"""

from __future__ import annotations

import csv
import json
import shutil
import sqlite3

import numba
import numpy as np
import pytest
import torch
from torch import nn

import nsm
from mapping.compiler import compile_model
from mapping.program import save_program
from nsm.data import load_dataset
from nsmx.cli import main
from nsmx.store import FORMAT, STORE_NAME, StoreError, SweepStore, open_store
from nsmx.sweep import (
    SweepError,
    SweepSpec,
    derive_seeds,
    expected_calibration_error,
    make_tasks,
    resolve_points,
    run_sweep,
)
from nsmx.sweep_cmd import load_sweep_file, parse_vary
from nsmx.sweep_plots import axis_label, plot_store, summary_table

# --------------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """One numba and torch thread (a shared 2-core machine)."""
    numba_threads, torch_threads = numba.get_num_threads(), torch.get_num_threads()
    numba.set_num_threads(1)
    torch.set_num_threads(1)
    yield
    numba.set_num_threads(numba_threads)
    torch.set_num_threads(torch_threads)


def train_digits_program(path, *, rule: str = "nsm", epochs: int = 4, seed: int = 0):
    """A 64-32-10 NSM (or BN) MLP trained briefly on the digits, compiled and saved."""
    hidden = {
        "nsm": lambda i, o: nsm.NSMLinear(i, o, p=0.5),
        "bn": lambda i, o: nsm.SignLinear(i, o, weight_norm=True, backward="erf"),
    }[rule]
    x, y = load_dataset("digits", split="train")
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        model = nn.Sequential(nsm.BinarizeInput(), nn.Flatten(), hidden(64, 32), nn.Linear(32, 10))
        opt = torch.optim.Adam(model.parameters(), lr=3e-3)
        model.train()
        for _ in range(epochs):
            perm = torch.randperm(len(x))
            for i in range(0, len(x), 50):
                idx = perm[i : i + 50]
                loss = nn.functional.cross_entropy(model(x[idx]), y[idx])
                opt.zero_grad()
                loss.backward()
                opt.step()
    save_program(compile_model(model.eval(), (1, 8, 8)), path)
    return path


@pytest.fixture(scope="module")
def program(tmp_path_factory):
    return str(train_digits_program(tmp_path_factory.mktemp("prog") / "digits.nsmx"))


@pytest.fixture(scope="module")
def bn_program(tmp_path_factory):
    return str(train_digits_program(tmp_path_factory.mktemp("prog") / "digits-bn.nsmx", rule="bn"))


def small_spec(program: str, **changes) -> SweepSpec:
    kwargs = dict(
        program=program,
        chip="rram-selector",
        dataset="digits",
        limit=100,
        samples=4,
        mode="clt",
        seeds=2,
        root_seed=7,
        name="t",
        vary=(("devices.element.sigma_d_v", (0.0, 0.08)), ("periphery.adc_bits", (4, 8))),
        sets=("periphery.partial_sums=adc",),
    )
    kwargs.update(changes)
    return SweepSpec(**kwargs)


def table(run_dir) -> list[tuple]:
    """The comparable content of a store: one tuple per row, sorted."""
    with open_store(run_dir) as store:
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


@pytest.fixture(scope="module")
def serial_run(program, tmp_path_factory):
    out = tmp_path_factory.mktemp("serial")
    summary = run_sweep(small_spec(program), out, progress=False)
    return out, summary


# --------------------------------------------------------------------------------- grid


def test_grid_points_configs_and_seeds(program):
    spec = small_spec(program)
    points = resolve_points(spec)
    assert len(points) == 4
    assert [p.params for p in points] == [
        {"devices.element.sigma_d_v": 0.0, "periphery.adc_bits": 4},
        {"devices.element.sigma_d_v": 0.0, "periphery.adc_bits": 8},
        {"devices.element.sigma_d_v": 0.08, "periphery.adc_bits": 4},
        {"devices.element.sigma_d_v": 0.08, "periphery.adc_bits": 8},
    ]
    p = points[3]
    assert p.chip.devices.element.sigma_d_v == 0.08 and p.chip.periphery.adc_bits == 8
    assert p.chip.periphery.partial_sums == "adc"
    assert p.config["chip"]["periphery"]["adc_bits"] == 8
    assert p.config["run"] == {
        "samples": 4,
        "t_s": 0.0,
        "mode": "clt",
        "p_policy": "trained",
        "drift_compensation": False,
    }
    assert len({q.hash for q in points}) == 4
    # Adding a value to the grid changes neither the other points' hashes nor their seeds.
    grown = resolve_points(
        small_spec(
            program,
            vary=(("devices.element.sigma_d_v", (0.0, 0.04, 0.08)), ("periphery.adc_bits", (4, 8))),
        )
    )
    assert {q.hash for q in points} < {q.hash for q in grown}
    tasks = {
        (t.point_hash, t.seed): (t.program_seed, t.read_seed) for t in make_tasks(spec, points)
    }
    grown_tasks = {
        (t.point_hash, t.seed): (t.program_seed, t.read_seed) for t in make_tasks(spec, grown)
    }
    assert all(grown_tasks[k] == v for k, v in tasks.items())
    # Every (point, seed) has its own seeds; another root seed gives others.
    assert len(set(tasks.values())) == len(tasks) == 8
    h = points[0].hash
    assert derive_seeds(7, h, 0) != derive_seeds(8, h, 0)
    assert derive_seeds(7, h, 0) == derive_seeds(7, h, 0)


@pytest.mark.parametrize(
    ("vary", "expected"),
    [
        ((("periphery.adc_bitz", (4,)),), ["periphery.adc_bitz", "not a known field"]),
        ((("periphery.adc_bits", (4, 99)),), ["periphery.adc_bits", "99", "[0, 24]"]),
        ((("run.samples", (0,)),), ["run.samples=0", "integers >= 1"]),
        ((("run.mode", ("fast",)),), ["run.mode='fast'", "exact"]),
        ((("run.t_s", (-1.0,)),), ["run.t_s=-1.0", "[0, inf)"]),
        ((("run.drift_compensation", ("yes",)),), ["run.drift_compensation", "true or false"]),
        ((("run.nope", (1,)),), ["'run.nope' is not a known run field"]),
        ((("run.program", ("missing.nsmx",)),), ["missing.nsmx", "not found"]),
        ((("tile.rows", ()),), ["tile.rows has no values"]),
        ((("tile.rows", (64,)), ("tile.rows", (128,))), ["tile.rows is given twice"]),
        ((("tile.rows", (64, 64)),), ["duplicate points"]),
    ],
)
def test_bad_fields_fail_before_any_work(program, tmp_path, vary, expected):
    out = tmp_path / "run"
    with pytest.raises(SweepError) as info:
        run_sweep(small_spec(program, vary=vary), out, progress=False)
    for part in expected:
        assert part in str(info.value)
    assert not out.exists()  # nothing was created


def test_program_that_cannot_run_on_the_chip_is_refused(program, tmp_path):
    with pytest.raises(SweepError, match="trained with bernoulli"):
        run_sweep(
            small_spec(program, chip="pcm-gaussian", sets=(), vary=()),
            tmp_path / "r",
            progress=False,
        )


def test_parse_vary():
    assert parse_vary("periphery.adc_bits=4,6, 8") == ("periphery.adc_bits", (4, 6, 8))
    assert parse_vary("run.mode=exact,clt") == ("run.mode", ("exact", "clt"))
    assert parse_vary("run.drift_compensation=false,true") == (
        "run.drift_compensation",
        (False, True),
    )
    for bad in ("periphery.adc_bits", "=4", "periphery.adc_bits=", "a=1,,2"):
        with pytest.raises(SweepError, match="FIELD=V1,V2"):
            parse_vary(bad)


def test_expected_calibration_error():
    # Confidence 0.9 everywhere: 90 % correct -> ECE 0; 60 % correct -> 0.3.
    prob = np.tile([0.9, 0.1], (10, 1))
    y_ok = np.array([0] * 9 + [1])
    y_bad = np.array([0] * 6 + [1] * 4)
    assert expected_calibration_error(prob, y_ok) == pytest.approx(0.0, abs=1e-12)
    assert expected_calibration_error(prob, y_bad) == pytest.approx(0.3)


# --------------------------------------------------------------------------------- store


def test_serial_run_fills_store_and_resume_skips(program, serial_run):
    out, summary = serial_run
    assert (summary.points, summary.tasks, summary.ran, summary.skipped) == (4, 8, 8, 0)
    with open_store(out) as store:
        rows = store.rows()
        meta = store.meta()
    assert meta["format"] == FORMAT and meta["version"] == "1"
    assert json.loads(meta["sweep"])["vary"][1] == ["periphery.adc_bits", [4, 8]]
    assert len(rows) == 8 and len({(r["point_hash"], r["seed"]) for r in rows}) == 8
    for r in rows:
        assert 0.3 < r["accuracy"] <= 1.0  # trained, not chance (10 classes)
        assert r["n"] == 100 and r["samples"] == 4 and r["nll"] > 0 and 0 <= r["ece"] <= 1
        assert r["config"]["chip"]["periphery"]["adc_bits"] == r["params"]["periphery.adc_bits"]
        assert r["versions"]["numpy"] == np.__version__
        assert r["program_s"] > 0 and r["run_s"] > 0
    # Rerunning the same sweep runs nothing and changes nothing.
    before = table(out)
    again = run_sweep(small_spec(program), out, progress=False)
    assert (again.ran, again.skipped) == (0, 8)
    assert table(out) == before


def test_same_seeds_same_results_and_grown_grid(program, serial_run, tmp_path):
    out, _ = serial_run
    # A fresh run of a grown grid in another folder reproduces the shared points exactly.
    grown = small_spec(
        program,
        vary=(("devices.element.sigma_d_v", (0.0, 0.08)), ("periphery.adc_bits", (4, 6, 8))),
        seeds=1,
    )
    run_sweep(grown, tmp_path / "g", progress=False)
    shared = {(r[0], r[1]): r for r in table(out)}
    rows = table(tmp_path / "g")
    assert len(rows) == 6
    common = [r for r in rows if (r[0], r[1]) in shared]
    assert len(common) == 4
    assert all(shared[(r[0], r[1])] == r for r in common)


def test_store_refuses_other_sweep_foreign_and_damaged_files(program, serial_run, tmp_path):
    out, _ = serial_run
    with pytest.raises(StoreError, match="holds another sweep: limit"):
        run_sweep(small_spec(program, limit=50), out, progress=False)
    # Not SQLite at all.
    junk = tmp_path / "junk"
    junk.mkdir()
    (junk / STORE_NAME).write_text("hello, I am a text file\n")
    with pytest.raises(StoreError, match=r"not an nsmx sweep store \(not an SQLite database"):
        run_sweep(small_spec(program), junk, progress=False)
    # SQLite, but another application's database.
    foreign = tmp_path / "foreign"
    foreign.mkdir()
    with sqlite3.connect(foreign / STORE_NAME) as conn:
        conn.execute("CREATE TABLE users (name TEXT)")
    with pytest.raises(StoreError, match=r"not an nsmx sweep store \(tables: \['users'\]"):
        run_sweep(small_spec(program), foreign, progress=False)
    # Our layout, but another format name / a newer version.
    for key, value, message in (
        ("format", "other-tool", "meta format 'other-tool'"),
        ("version", "99", "version '99' is not supported"),
    ):
        path = tmp_path / f"{key}.sqlite"
        SweepStore.create(path, {"seeds": 1}).close()
        with sqlite3.connect(path) as conn:
            conn.execute("UPDATE meta SET value = ? WHERE key = ?", (value, key))
        with pytest.raises(StoreError, match=message):
            SweepStore.open(path)
    # Damaged bytes: a copy of a real store with its pages overwritten.
    damaged = tmp_path / "damaged.sqlite"
    SweepStore.create(damaged, {"seeds": 1}).close()
    data = bytearray(damaged.read_bytes())
    data[100:] = b"\xff" * (len(data) - 100)
    damaged.write_bytes(bytes(data))
    with pytest.raises(StoreError, match=r"damaged sweep store|not an nsmx sweep store"):
        SweepStore.open(damaged)


def test_store_rows_are_unique(tmp_path):
    store = SweepStore.create(tmp_path / "s.sqlite", {"seeds": 1})
    row = {
        "point_hash": "ab" * 32,
        "seed": 0,
        "point_index": 0,
        "params_json": {"x": 1},
        "config_json": {},
        "program_seed": 1,
        "read_seed": 2,
        "accuracy": 0.5,
        "nll": 1.0,
        "ece": 0.1,
        "n": 10,
        "samples": 2,
        "program_s": 0.1,
        "run_s": 0.2,
        "finished_at": "now",
        "versions_json": {},
        "extra_json": {},
    }
    assert store.insert(row) is True
    assert store.insert({**row, "accuracy": 0.9}) is False  # UNIQUE(point_hash, seed)
    assert store.count() == 1 and store.rows()[0]["accuracy"] == 0.5
    with pytest.raises(ValueError, match="missing columns"):
        store.insert({"seed": 1})
    store.close()


def test_load_results_rows_are_the_store_rows(serial_run):
    """load_results: one frame row per store row, in order, every stored value a cell: the
    identity, the varied values, every fixed chip and run setting, the program and data."""
    import pandas as pd

    from nsmx.store import flatten
    from nsmx.sweep import load_results

    def same(cell, value) -> bool:
        if value is None:
            return cell is None or bool(pd.isna(cell))
        return cell == (tuple(value) if isinstance(value, list) else value)

    out, _ = serial_run
    frame = load_results(out)
    with open_store(out) as store:
        rows = store.rows()
    assert len(frame) == len(rows) == 8
    for (_, got), want in zip(frame.iterrows(), rows, strict=True):
        for key in ("point_index", "point_hash", "seed", "program_seed", "read_seed"):
            assert got[key] == want[key], key
        for key in ("accuracy", "nll", "ece", "n", "samples", "program_s", "run_s", "finished_at"):
            assert got[key] == want[key], key
        assert got["error"] == 1.0 - want["accuracy"]
        for key, value in want["params"].items():
            assert got[key] == value, key
        settings = {
            **flatten(want["config"]["chip"]),
            **{f"run.{k}": v for k, v in want["config"]["run"].items()},
        }
        for key, value in settings.items():
            if not isinstance(value, dict):  # an empty sub-table has no cell
                assert same(got[key], value), (key, got[key], value)
        assert got["program"] == want["config"]["program"]["name"] == "digits.nsmx"
        assert got["program_sha256"] == want["config"]["program"]["sha256"]
        assert (got["dataset"], got["limit"], got["sweep"]) == ("digits", 100, "t")
        cost = want["extra"]["cost"]
        assert got["energy_per_classification_j"] == cost["energy_per_classification_j"]
    assert got["periphery.partial_sums"] == "adc" and got["run.mode"] == "clt"


def test_varied_columns_name_the_varied_settings_only(serial_run):
    from nsmx.results import varied_columns
    from nsmx.sweep import load_results

    out, _ = serial_run
    assert varied_columns(load_results(out)) == ["devices.element.sigma_d_v", "periphery.adc_bits"]


# --------------------------------------------------------------------------------- parallel


def test_worker_processes_equal_serial(program, serial_run, tmp_path):
    out, _ = serial_run
    summary = run_sweep(small_spec(program), tmp_path / "w", workers=2, progress=False)
    assert summary.ran == 8
    assert table(tmp_path / "w") == table(out)


#: A script whose worker processes die: the task of point 1 kills its own process (as the
#: out-of-memory killer would). Spawned workers import this script as their main module, so
#: they run the same wrapper.
DYING_WORKER = """
import os
import signal
import sys

import nsmx.sweep
from nsmx.sweep import SweepError, SweepSpec, run_sweep
from nsmx.sweep_worker import execute_task


def dying_execute_task(task):
    if task.point_index == 1:
        os.kill(os.getpid(), signal.SIGKILL)
    return execute_task(task)


SPEC = SweepSpec(
    program=sys.argv[1], chip="ideal", dataset="digits", limit=20, samples=1, mode="clt",
    vary=(("run.samples", (1, 2, 3)),), name="k",
)
if __name__ == "__main__":
    nsmx.sweep.execute_task = dying_execute_task
    try:
        run_sweep(SPEC, sys.argv[2], workers=2, threads=1, progress=False)
    except SweepError as exc:
        print(f"SweepError: {exc}")
        sys.exit(3)
"""


def _run_script(tmp_path, text: str, *args: str):
    import os
    import subprocess
    import sys

    import nsmx

    script = tmp_path / "script.py"
    script.write_text(text)
    root = os.path.dirname(os.path.dirname(os.path.abspath(nsmx.__file__)))
    path = os.pathsep.join(p for p in (root, os.environ.get("PYTHONPATH")) if p)
    env = {**os.environ, "PYTHONPATH": path, "OMP_NUM_THREADS": "1"}
    return subprocess.run(
        [sys.executable, str(script), *args],
        capture_output=True,
        text=True,
        timeout=600,  # generous: spawned workers import torch and numba on a loaded machine
        env=env,
    )


def test_a_dead_worker_fails_the_sweep_instead_of_hanging(program, tmp_path):
    """A worker process killed mid-task (SIGKILL, as by the out-of-memory killer) ends the sweep
    with a SweepError; the rows finished before are whole; a resume without the killer runs the
    rest."""
    out = tmp_path / "k"
    done = _run_script(tmp_path, DYING_WORKER, program, str(out))
    assert done.returncode == 3, done.stderr
    assert "a sweep worker process ended abruptly" in done.stdout
    rows = table(out)
    assert len(rows) <= 2 and len({(r[0], r[1]) for r in rows}) == len(rows)
    assert all(json.loads(r[7])["run.samples"] != 2 for r in rows)  # point 1 never stored


def test_an_unguarded_script_is_told_to_guard_its_sweep(program, tmp_path):
    """A script that calls run_sweep(workers=2) at its top level: every spawned worker meets the
    call while importing it. The workers say why, the sweep fails instead of hanging."""
    text = """
import sys

from nsmx.sweep import SweepSpec, run_sweep

SPEC = SweepSpec(
    program=sys.argv[1], chip="ideal", dataset="digits", limit=20, samples=1, mode="clt",
    vary=(("run.samples", (1, 2)),), name="u",
)
run_sweep(SPEC, sys.argv[2], workers=2, threads=1, progress=False)
"""
    done = _run_script(tmp_path, text, program, str(tmp_path / "u"))
    assert done.returncode == 1
    assert "a sweep worker process ended abruptly" in done.stderr
    assert "put the call under 'if __name__ == \"__main__\":'" in done.stderr


def test_dask_local_cluster_equals_serial(program, serial_run, tmp_path):
    distributed = pytest.importorskip("distributed")
    out, _ = serial_run
    # A real scheduler on loopback; the sweep connects to its address like --scheduler does.
    with distributed.LocalCluster(
        n_workers=2,
        threads_per_worker=1,
        processes=False,
        protocol="tcp://",
        host="127.0.0.1",
        dashboard_address=None,
    ) as cluster:
        summary = run_sweep(
            small_spec(program), tmp_path / "d", scheduler=cluster.scheduler_address, progress=False
        )
    assert summary.ran == 8
    assert table(tmp_path / "d") == table(out)


# --------------------------------------------------------------------------------- CLI


def test_cli_sweep_export_plot(program, serial_run, tmp_path, capsys):
    out, _ = serial_run
    run_dir = tmp_path / "cli"
    args = [
        "--threads",
        "1",
        "sweep",
        program,
        "--chip",
        "rram-selector",
        "--set",
        "periphery.partial_sums=adc",
        "--vary",
        "devices.element.sigma_d_v=0,0.08",
        "--vary",
        "periphery.adc_bits=4,8",
        "--seeds",
        "2",
        "--samples",
        "4",
        "--mode",
        "clt",
        "--dataset",
        "digits",
        "--limit",
        "100",
        "--root-seed",
        "7",
        "--out",
        str(run_dir),
        "--no-progress",
        "--json",
    ]
    assert main(args) == 0
    result = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert result["sweeps"][0]["ran"] == 8
    # The CLI's sweep (name aside) is the API's sweep: same rows.
    assert table(run_dir) == table(out)
    assert main(args) == 0  # resume: nothing to do
    assert json.loads(capsys.readouterr().out.strip().splitlines()[-1])["sweeps"][0]["skipped"] == 8

    csv_path = tmp_path / "table.csv"
    assert main(["sweep", "export", str(run_dir), "-o", str(csv_path)]) == 0
    with open(csv_path, newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert len(rows) == 8
    assert {
        "devices.element.sigma_d_v",
        "periphery.adc_bits",
        "accuracy",
        "nll",
        "ece",
        "seed",
    } <= set(rows[0])
    # The fixed settings travel too: the CSV of two sweeps tells them apart.
    header = list(rows[0])
    assert header[:6] == [
        "sweep",
        "point_index",
        "point_hash",
        "seed",
        "devices.element.sigma_d_v",
        "periphery.adc_bits",
    ]
    assert {r["periphery.partial_sums"] for r in rows} == {"adc"}
    assert {(r["run.mode"], r["run.samples"], r["dataset"], r["limit"]) for r in rows} == {
        ("clt", "4", "digits", "100")
    }
    assert {r["program"] for r in rows} == {"digits.nsmx"}
    assert {r["devices.conductance.model"] for r in rows} == {"rram"}

    capsys.readouterr()
    assert (
        main(
            [
                "plot",
                str(run_dir),
                "--metric",
                "accuracy",
                "--metric",
                "ece",
                "-o",
                str(tmp_path / "fig"),
            ]
        )
        == 0
    )
    names = sorted(p.name for p in (tmp_path / "fig").iterdir())
    assert names == sorted(
        f"sweep_cli_{m}{h}.{f}"
        for m in ("accuracy", "ece")
        for h in ("", "_heatmap")
        for f in ("png", "pdf")
    )
    assert (tmp_path / "fig" / "sweep_cli_accuracy.png").stat().st_size > 10_000
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == (
        "| devices.element.sigma_d_v | periphery.adc_bits | seeds | accuracy (%) | NLL | ECE (%) |"
    )
    assert len([ln for ln in lines if ln.startswith("| 0.08 | 8 | 2 | ")]) == 1

    # Errors: one line, exit 2, before any work.
    bad = tmp_path / "bad"
    assert (
        main(
            [
                "sweep",
                program,
                "--vary",
                "periphery.adc_bitz=3",
                "--dataset",
                "digits",
                "--out",
                str(bad),
            ]
        )
        == 2
    )
    err = capsys.readouterr().err
    assert err.startswith("nsmx sweep: error: --vary periphery.adc_bitz=3")
    assert err.count("\n") == 1 and not bad.exists()
    (tmp_path / "x.csv").write_text("a,b\n")
    assert main(["plot", str(tmp_path / "nothing")]) == 2
    assert "store not found" in capsys.readouterr().err


def test_sweep_file_studies(program, bn_program, tmp_path, capsys):
    shutil.copy(program, tmp_path / "digits.nsmx")
    shutil.copy(bn_program, tmp_path / "digits-bn.nsmx")
    sweep_file = tmp_path / "studies.toml"
    sweep_file.write_text(
        '[defaults]\nprogram = "digits.nsmx"\nchip = "rram-selector"\ndataset = "digits"\n'
        'limit = 60\nseeds = 1\n[defaults.run]\nsamples = 2\nmode = "clt"\n\n'
        '[studies.samples]\n[studies.samples.vary]\n"run.samples" = [1, 3]\n\n'
        '[studies.drift]\nset = ["devices.conductance.read_noise_rel=0.02"]\n'
        '[studies.drift.vary]\n"run.t_s" = [0.0, 100.0]\n'
        '"run.program" = ["digits.nsmx", "digits-bn.nsmx"]\n'
        '"run.drift_compensation" = [false, true]\n'
    )
    studies = load_sweep_file(sweep_file)
    assert list(studies) == ["samples", "drift"]
    assert studies["drift"]["sets"] == ("devices.conductance.read_noise_rel=0.02",)
    assert studies["drift"]["vary"][1][1] == (
        str(tmp_path / "digits.nsmx"),
        str(tmp_path / "digits-bn.nsmx"),
    )
    assert (
        main(
            [
                "sweep",
                "--file",
                str(sweep_file),
                "--out",
                str(tmp_path / "runs"),
                "--no-progress",
                "--json",
            ]
        )
        == 0
    )
    result = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert [(s["name"], s["ran"]) for s in result["sweeps"]] == [("samples", 2), ("drift", 8)]
    with open_store(tmp_path / "runs" / "drift") as store:
        rows = store.rows()
    bn = [r for r in rows if r["params"]["run.program"].endswith("digits-bn.nsmx")]
    assert len(bn) == 4 and all(r["config"]["program"]["name"] == "digits-bn.nsmx" for r in bn)
    # RRAM does not drift in this preset: the compensation gain is exactly 1.
    assert all(r["extra"]["drift_gain"] == 1.0 for r in rows)
    paths = plot_store(
        open_store(tmp_path / "runs" / "drift"), out_dir=tmp_path / "f", stem="d", formats=("png",)
    )
    assert [p.name for p in paths] == ["d_accuracy.png"]
    # Bad sweep files are named.
    sweep_file.write_text('[studies.a]\nprogram = "digits.nsmx"\nvary = {x = 1}\nbogus = 1\n')
    with pytest.raises(SweepError, match="key 'bogus' is unknown"):
        load_sweep_file(sweep_file)


def test_axis_labels_carry_units():
    assert axis_label("devices.element.sigma_d_v") == "devices.element.sigma_d_v (V)"
    assert axis_label("wires.r_wire_ohm") == "wires.r_wire_ohm (Ω)"
    assert axis_label("run.t_s") == "run.t_s (s)"
    assert axis_label("devices.conductance.g_max_us") == "devices.conductance.g_max_us (µS)"
    assert axis_label("devices.neuron.offset_sigma_ua") == "devices.neuron.offset_sigma_ua (µA)"
    assert axis_label("periphery.adc_bits") == "periphery.adc_bits"


# --------------------------------------------------------------------------------- drift hook


def test_global_drift_compensation(bn_program):
    """The runtime hook behind ``run.drift_compensation``: one chip-wide gain α(t)."""
    from pathlib import Path

    from crossbar.presets import resolve_chip
    from mapping.program import load_program
    from mapping.runtime import program_chip

    program = load_program(bn_program)
    x, _ = load_dataset("digits", split="test")
    x = x[:40].numpy()
    # No drift (ideal chip): α = 1 and a compensated run is the same run.
    ideal = program_chip(program, resolve_chip("ideal"), seed=1)
    assert ideal.drift_gain(1e6) == 1.0
    a = ideal.run(x, 2, t_s=1e6, mode="clt", seed=3).probabilities
    b = ideal.run(x, 2, t_s=1e6, mode="clt", seed=3, drift_compensation=True).probabilities
    np.testing.assert_array_equal(a, b)
    # A drifting PCM chip: α(t_cal) = 1; later α = ΣG(0)/ΣG(t) lies between (t/t0)^ν for the
    # model's clipped ν range [0.049, 0.1] (Joshi et al. 2020), loosened to [0.03, 0.1] for
    # the ν spread (Jensen: the mean of (t/t0)^-ν exceeds (t/t0)^-E[ν]).
    chip_file = Path(__file__).resolve().parents[1] / "studies" / "chips" / "pcm-selector.toml"
    pcm = program_chip(program, resolve_chip(chip_file), seed=1)
    assert pcm.drift_gain(0.0) == 1.0
    t, t0 = 1e6, 20.0
    alpha = pcm.drift_gain(t)
    assert (t / t0) ** 0.03 < alpha < (t / t0) ** 0.1
    # The gain scales the column signal exactly: the noiseless ideal chip's deterministic
    # pre-activations (before the threshold) double with read_gain = 2.
    hl = ideal.binary_layers[0].hardware
    z = np.where(np.random.default_rng(0).random((5, hl.fan_in)) < 0.5, -1, 1)
    u1 = hl.preactivation(z, 1, rng=np.random.default_rng(4))
    u2 = hl.preactivation(z, 1, rng=np.random.default_rng(4), read_gain=2.0)
    np.testing.assert_allclose(u2, 2.0 * u1, rtol=1e-6, atol=1e-6)
    with pytest.raises(ValueError, match="read_gain"):
        hl.preactivation(z, 1, rng=np.random.default_rng(4), read_gain=0.0)
    with pytest.raises(TypeError, match="drift_compensation"):
        ideal.run(x, 1, drift_compensation="yes")


def test_a_worker_that_cannot_load_its_plugins_fails_the_sweep_instead_of_hanging(
    program, tmp_path, monkeypatch
):
    # A raising Pool initializer would make the pool respawn workers forever.
    import devices.plugins

    monkeypatch.setattr(devices.plugins, "_LOADED", ["no_such_plugin_module_xyz"])
    with pytest.raises(SweepError, match=r"could not load its plugins.*no_such_plugin_module_xyz"):
        run_sweep(small_spec(program), tmp_path / "w", workers=2, progress=False)


# --------------------------------------------------------------------------------- plot axes


def test_axis_scale_time_units_and_spread_texts():
    from nsmx.sweep_plots import (
        axis_scale,
        format_duration,
        parse_reference,
        spread_text,
        time_unit,
    )

    assert axis_scale([1, 2, 4, 8, 16]) == "log"  # log-spaced
    assert axis_scale([0.5, 1.0, 2.0]) == "log"
    assert axis_scale([4, 6, 8]) == "linear"  # evenly spaced
    assert axis_scale([3, 4, 5, 6, 8]) == "linear"
    assert axis_scale([1, 10, 100]) == "log"  # two decades
    assert axis_scale([1, 2]) == "linear"
    assert axis_scale([0.0, 0.04, 0.08]) == "linear"
    assert axis_scale([0.0, 0.02, 0.04, 0.08]) == "linear"  # log-spaced, but through zero
    assert axis_scale(range(1, 101)) == "linear"  # dense but evenly spaced
    assert axis_scale([0.0, 3600.0, 86400.0]) == "symlog"  # 0 and 1 h would crowd at 1 day
    assert axis_scale([1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 100.0]) == "log"
    assert axis_scale([0, 60, 3600, 86400, 2.592e6, 3.1536e7]) == "symlog"  # zero, 6 decades
    assert axis_scale([-1.0, 1.0, 100.0]) == "linear"
    assert [format_duration(t) for t in (0, 1, 30, 60, 90, 3600, 86400, 2.592e6)] == [
        "0",
        "1 s",
        "30 s",
        "1 min",
        "1.5 min",
        "1 h",
        "1 day",
        "30 days",
    ]
    # 365 days and a Julian year (365.25 days) both read one year.
    assert format_duration(3.1536e7) == format_duration(3.15576e7) == "1 year"
    assert format_duration(3.1536e8) == "10 years"
    assert time_unit([0, 600, 3600]) == ("min", 60.0)
    assert time_unit([0, 7200]) == ("h", 3600.0)
    assert time_unit([0, 1.5]) == ("s", 1.0)
    assert spread_text([1, 1, 1]) == "one seed per point"
    assert spread_text([3, 3]) == "mean ± std over 3 seeds"
    assert spread_text([1, 3]) == "mean ± std over 1–3 seeds (no bar at one seed)"
    assert parse_reference("software=0.972") == ("software", 0.972)
    assert parse_reference("ideal chip=96.5%") == ("ideal chip", pytest.approx(0.965))
    from nsmx.sweep_plots import PlotError

    for bad, message in (("software", "LABEL=ACCURACY"), ("a=97", r"outside \[0, 1\]")):
        with pytest.raises(PlotError, match=message):
            parse_reference(bad)


def _legend_and_labels(fig) -> tuple[list[str], str, str]:
    ax = fig.axes[0]
    legend = ax.get_legend()
    texts = [t.get_text() for t in legend.get_texts()] if legend else []
    return texts, ax.get_ylabel(), ax.get_title()


def test_plots_of_real_sweeps_axes_and_truthful_error_bars(program, tmp_path, capsys):
    """A time sweep (six values from 0 to a year) at one seed, then resumed to three seeds, and
    a grid of log-spaced samples against evenly spaced noise: the axes' scales, ticks and the
    legend/label texts as matplotlib holds them."""
    import matplotlib.pyplot as plt

    from nsmx.sweep_plots import sweep_figures

    times = (0.0, 60.0, 3600.0, 86400.0, 2.592e6, 3.1536e7)
    spec = dict(limit=40, samples=2, sets=(), vary=(("run.t_s", times),))
    out = tmp_path / "drift"
    run_sweep(small_spec(program, seeds=1, **spec), out, progress=False)
    refs = {"software": 0.9, "ideal chip": 0.85}
    with open_store(out) as store:
        figs = sweep_figures(store, metrics=("accuracy", "error"), references=refs)
    ax = figs["accuracy"].axes[0]
    assert ax.get_xscale() == "symlog"  # zero and six decades
    ticks = [t.get_text() for t in ax.get_xticklabels()]
    assert ticks == ["0", "1 min", "1 h", "1 day", "30 days", "1 year"]
    np.testing.assert_array_equal(ax.get_xticks(), times)
    legend, ylabel, title = _legend_and_labels(figs["accuracy"])
    # One seed: no "± std" anywhere, the label says one seed; no error bars drawn.
    assert "±" not in ylabel + title + " ".join(legend)
    assert "one seed per point" in ylabel and "one seed" in title
    assert not ax.containers[0].has_yerr
    # The references: dashed lines at their values, named in the legend (error: 1 - accuracy).
    dashed = [ln for ln in ax.get_lines() if ln.get_linestyle() == "--"]
    assert sorted(ln.get_ydata()[0] for ln in dashed) == [85.0, 90.0]
    assert legend == ["software (90.00 %)", "ideal chip (85.00 %)"]
    err_legend, _, _ = _legend_and_labels(figs["error"])
    assert err_legend == ["software (10.00 %)", "ideal chip (15.00 %)"]
    for fig in figs.values():
        plt.close(fig)

    # The same store with three seeds per point (a resume adds seeds 1 and 2).
    run_sweep(small_spec(program, seeds=3, **spec), out, progress=False)
    with open_store(out) as store:
        figs = sweep_figures(store)
        forced = sweep_figures(store, xscale="linear", yscale="log")
        table = summary_table(store)
    ax = figs["accuracy"].axes[0]
    _, ylabel, title = _legend_and_labels(figs["accuracy"])
    assert "mean ± std over 3 seeds" in ylabel and "3 seeds" in title
    assert ax.containers[0].has_yerr
    # A linear time axis is drawn in one human unit (here days: the largest holds >= 2).
    fax = forced["accuracy"].axes[0]
    assert (fax.get_xscale(), fax.get_yscale()) == ("linear", "log")
    assert fax.get_xlabel() == "run.t_s (day)"
    np.testing.assert_allclose(fax.get_xticks(), np.array(times) / 86400.0)
    assert all(e["seeds"] == 3 and e["accuracy_std"] is not None for e in table)
    for fig in (*figs.values(), *forced.values()):
        plt.close(fig)

    # Log-spaced samples on a log axis ticked at the values; evenly spaced noise linear.
    grid = tmp_path / "grid"
    vary = (("run.samples", (1, 2, 4, 8)), ("devices.element.sigma_d_v", (0.0, 0.04, 0.08)))
    run_sweep(small_spec(program, seeds=1, limit=30, sets=(), vary=vary), grid, progress=False)
    with open_store(grid) as store:
        by_samples = sweep_figures(store)
        by_noise = sweep_figures(store, x="devices.element.sigma_d_v")
    ax = by_samples["accuracy"].axes[0]
    assert ax.get_xscale() == "log"
    assert [t.get_text() for t in ax.get_xticklabels()] == ["1", "2", "4", "8"]
    legend, ylabel, _ = _legend_and_labels(by_samples["accuracy"])
    assert legend == ["sigma_d_v=0", "sigma_d_v=0.04", "sigma_d_v=0.08"]
    assert "one seed per point" in ylabel
    cbar = by_samples["accuracy_heatmap"].axes[1].get_ylabel()
    assert cbar == "accuracy (%) (one seed per point)"
    ax = by_noise["accuracy"].axes[0]
    assert ax.get_xscale() == "linear"
    np.testing.assert_allclose(ax.get_xticks(), [0.0, 0.04, 0.08])
    assert ax.get_xlabel() == "devices.element.sigma_d_v (V)"
    for fig in (*by_samples.values(), *by_noise.values()):
        plt.close(fig)

    # The CLI: --logx, --reference, --format svg; a one-seed table shows values alone.
    capsys.readouterr()
    argv = ["plot", str(grid), "--logx", "--reference", "software=92%", "--format", "svg"]
    assert main([*argv, "-o", str(tmp_path / "fig"), "--name", "g"]) == 0
    text = capsys.readouterr().out
    assert sorted(p.name for p in (tmp_path / "fig").iterdir()) == [
        "g_accuracy.svg",
        "g_accuracy_heatmap.svg",
    ]
    assert "±" not in text and "(one seed per point: no spread)" in text
    svg = (tmp_path / "fig" / "g_accuracy.svg").read_text()
    assert svg.lstrip().startswith("<?xml") and "software (92.00 %)" in svg
    assert main(["plot", str(grid), "--reference", "software=1.5"]) == 2
    assert "outside [0, 1]" in capsys.readouterr().err


def test_summary_shows_one_seed_values_alone(program, tmp_path, capsys):
    from nsmx.sweep_plots import format_markdown, summary_caption

    table = [
        {"run.t_s": 0.0, "seeds": 1, "accuracy": 0.9, "accuracy_std": None}
        | {"nll": 0.3, "nll_std": None, "ece": 0.05, "ece_std": None},
        {"run.t_s": 86400.0, "seeds": 3, "accuracy": 0.8, "accuracy_std": 0.01}
        | {"nll": 0.4, "nll_std": 0.02, "ece": 0.06, "ece_std": 0.005},
    ]
    lines = format_markdown(table)
    assert lines[2] == "| 0 | 1 | 90.00 | 0.300 | 5.00 |"
    assert lines[3] == "| 86400 (1 day) | 3 | 80.00 ± 1.00 | 0.400 ± 0.020 | 6.00 ± 0.50 |"
    assert summary_caption(table) == (
        "mean ± standard deviation over 1–3 seeds per point; a point of one seed: its value alone"
    )
    assert summary_caption(table[:1]) == "one seed per point: no spread"


# --------------------------------------------------------------------------------- --json


def _strict_json(text: str):
    """``text`` parsed as one JSON document, refusing NaN and ±Infinity (not JSON)."""

    def refuse(name):
        raise ValueError(f"{name} is not JSON")

    return json.loads(text, parse_constant=refuse)


@pytest.fixture(scope="module")
def json_files(program, tmp_path_factory):
    """An untrained digits MLP checkpoint (evaluate, compile) next to the trained program."""
    from nsm.checkpoint import save_checkpoint
    from nsm.models import build_model

    tmp = tmp_path_factory.mktemp("json")
    torch.manual_seed(0)
    model = build_model("digits-mlp")
    ckpt = tmp / "checkpoint.pt"
    state = {"model": "digits-mlp", "rule": "nsm", "state_dict": model.state_dict()}
    save_checkpoint(ckpt, {**state, "epoch": 0, "config": {}})
    return {"tmp": tmp, "ckpt": ckpt, "program": program}


#: Every subcommand case run with --json (each prints one strict JSON document on stdout).
JSON_CASES = [
    pytest.param("evaluate {ckpt} --samples 2 --limit 30 --no-progress", id="evaluate"),
    pytest.param("compile {ckpt} -o {tmp}/c.nsmx", id="compile"),
    pytest.param(
        "run {program} --chip rram-selector --dataset digits --limit 30 --samples 2 --mode clt "
        "--no-progress",
        id="run",
    ),
    pytest.param("chips", id="chips"),
    pytest.param("chips --show rram-selector", id="chips-show"),
    pytest.param("chips --fields ideal", id="chips-fields"),
    pytest.param(
        "learn --chip ideal --model digits-mlp --epochs 1 --train-subset 100 --test-subset 30 "
        "--eval-samples 2 --out {tmp}/learned --no-progress",
        id="learn",
    ),
    pytest.param(
        "demo --epochs 1 --samples 1 --chips ideal --mode clt --out {tmp}/demo --no-progress",
        id="demo",
    ),
    pytest.param(
        "sweep {program} --chip ideal --vary run.samples=1,2 --dataset digits --limit 30 "
        "--mode clt --out {tmp}/s --no-progress",
        id="sweep",
    ),
    pytest.param("sweep export {tmp}/s -o {tmp}/s.csv", id="sweep-export"),
]


def test_json_cases_cover_every_command_with_json():
    import argparse

    from nsmx.cli import build_parser

    parser = build_parser()
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    with_json = {
        name
        for name, p in sub.choices.items()
        if any("--json" in a.option_strings for a in p._actions)
    }
    assert with_json == {p.values[0].split()[0] for p in JSON_CASES}


@pytest.mark.parametrize("command", JSON_CASES)
def test_json_stdout_is_one_strict_json_document(json_files, command, capsys):
    """With --json, stdout is the JSON object alone (human text and progress on stderr), strict
    JSON (no NaN or Infinity), whole: ``json.loads(stdout)`` of everything printed. The cases
    run in order: the export reads the sweep's run folder."""
    args = command.format(**json_files).split()
    capsys.readouterr()
    code = main(["--threads", "1", *args, "--json"])
    out, err = capsys.readouterr()
    assert code == 0, err
    value = _strict_json(out)
    assert isinstance(value, dict) and value
