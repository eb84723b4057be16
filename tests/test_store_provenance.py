"""The sweep store's provenance: a store holds one sweep (identity recorded, any other sweep
refused naming what differs), plots / tables / exports never pool rows of different settings,
creation and writing are safe with two processes, and read-only, locked and busy stores are
told as such.

The program is an untrained (seeded) 64-16-10 NSM MLP: these tests check bookkeeping, not
accuracy; every sweep is a few points on the ideal chip, 20 digits, 1-2 samples, CLT mode.
"""

from __future__ import annotations

import csv
import multiprocessing
import os
import shutil
import sqlite3
import subprocess

import pytest
import torch
from helpers import tmpfs
from torch import nn

import nsm
from crossbar import ChipConfig
from mapping.compiler import compile_model
from mapping.program import save_program
from nsmx import store as store_module
from nsmx import store_sql
from nsmx.cli import main
from nsmx.provenance import settings_columns
from nsmx.store import (
    STORE_NAME,
    StoreBusyError,
    StoreError,
    StoreReadOnlyError,
    SweepStore,
    open_for_writing,
    open_store,
)
from nsmx.sweep import SweepSpec, run_sweep
from nsmx.sweep_plots import plot_store, summary_table

GRID = (("devices.element.p", (0.4, 0.6)),)


def write_program(path, seed: int = 0) -> str:
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        model = nn.Sequential(
            nsm.BinarizeInput(), nn.Flatten(), nsm.NSMLinear(64, 16, p=0.5), nn.Linear(16, 10)
        )
    save_program(compile_model(model.eval(), (1, 8, 8), source={"model": "digits-mlp"}), path)
    return str(path)


@pytest.fixture()
def program(tmp_path):
    return write_program(tmp_path / "net.nsmx")


def spec(program: str, **changes) -> SweepSpec:
    kwargs = dict(
        program=program,
        chip="ideal",
        dataset="digits",
        limit=20,
        samples=1,
        mode="clt",
        seeds=1,
        vary=GRID,
        name="p",
    )
    kwargs.update(changes)
    return SweepSpec(**kwargs)


def count(out) -> int:
    with open_store(out) as store:
        return store.count()


# ------------------------------------------------------------------------- identity


def test_changed_settings_are_refused_naming_the_field(program, tmp_path):
    out = tmp_path / "run"
    assert run_sweep(spec(program), out, progress=False).ran == 2
    with open_store(out) as store:
        identity = store.identity
    assert identity["programs"] == {"net.nsmx": identity["programs"]["net.nsmx"]}
    assert identity["definition"]["samples"] == 1 and identity["dataset"] == "digits"
    assert identity["chip_content"]["periphery"]["adc_bits"] == 0
    for changes, message in (
        ({"samples": 2}, "run.samples is 1 there but 2 now"),
        ({"mode": "exact"}, "run.mode is 'clt' there but 'exact' now"),
        ({"limit": 10}, "limit is 20 there but 10 now"),
        ({"root_seed": 3}, "root_seed is 0 there but 3 now"),
        ({"sets": ("periphery.adc_bits=6",)}, "chip.periphery.adc_bits is 0 there but 6 now"),
        ({"vary": (("periphery.adc_bits", (4, 6)),)}, "the grid varies"),
    ):
        with pytest.raises(StoreError, match="holds another sweep: " + message) as err:
            run_sweep(spec(program, **changes), out, progress=False)
        assert "use another --out" in str(err.value)
    assert count(out) == 2  # nothing appended
    # A program recompiled under the same file name is another program.
    write_program(tmp_path / "net.nsmx", seed=1)
    with pytest.raises(StoreError, match=r"program net.nsmx is SHA-256 \w+\.\.\. there but"):
        run_sweep(spec(program), out, progress=False)
    # The CLI refuses before any work, one line, exit 2.
    cli = ["sweep", program, "--chip", "ideal", "--dataset", "digits", "--limit", "20"]
    cli += ["--mode", "clt", "--vary", "devices.element.p=0.4,0.6", "--out", str(out)]
    assert main([*cli, "--samples", "1", "--no-progress"]) == 2
    assert count(out) == 2


def test_more_seeds_and_new_grid_values_resume(program, tmp_path, capsys):
    out = tmp_path / "run"
    run_sweep(spec(program), out, progress=False)
    grown = spec(program, seeds=2, vary=(("devices.element.p", (0.4, 0.6, 0.5)),))
    summary = run_sweep(grown, out, progress=False)
    assert (summary.skipped, summary.ran) == (2, 4)
    with open_store(out) as store:
        assert store.identity["grid"] == [["devices.element.p", [0.4, 0.6, 0.5]]]
        assert store.sweep["seeds"] == 2
    # A smaller grid resumes too (nothing to run) and keeps the recorded grid whole.
    assert run_sweep(spec(program), out, progress=False).ran == 0
    with open_store(out) as store:
        assert store.sweep["vary"] == [["devices.element.p", [0.4, 0.6, 0.5]]]


def test_chip_file_content_is_part_of_the_identity(program, tmp_path):
    chip_file = tmp_path / "chip.toml"
    chip_file.write_text(ChipConfig.ideal().to_toml())
    out = tmp_path / "run"
    run_sweep(spec(program, chip=str(chip_file)), out, progress=False)
    chip_file.write_text(ChipConfig.ideal().to_toml().replace("rows = 256", "rows = 32"))
    with pytest.raises(StoreError, match=r"chip\.tile\.rows is 256 there but 32 now"):
        run_sweep(spec(program, chip=str(chip_file)), out, progress=False)


def _drop_identity(path) -> None:
    """Make a store look like one written before identities were recorded."""
    with sqlite3.connect(path) as conn:
        conn.execute("DELETE FROM meta WHERE key = 'identity'")


def test_store_written_before_identities_is_checked_then_migrated(program, tmp_path):
    out = tmp_path / "old"
    run_sweep(spec(program), out, progress=False)
    _drop_identity(out / STORE_NAME)
    with open_store(out) as store:
        assert store.identity is None
    # Another setting is refused from the recorded definition ...
    with pytest.raises(StoreError, match=r"run\.samples is 1 there but 2 now"):
        run_sweep(spec(program, samples=2), out, progress=False)
    # ... a changed chip file from the stored rows' configurations ...
    chip_file = tmp_path / "chip.toml"
    chip_file.write_text(ChipConfig.ideal().to_toml())
    old_chip = tmp_path / "oldchip"
    run_sweep(spec(program, chip=str(chip_file)), old_chip, progress=False)
    _drop_identity(old_chip / STORE_NAME)
    chip_file.write_text(ChipConfig.ideal().to_toml().replace("rows = 256", "rows = 32"))
    with pytest.raises(StoreError, match=r"chip\.tile\.rows is 256 there but 32 now"):
        run_sweep(spec(program, chip=str(chip_file)), old_chip, progress=False)
    # ... and the same sweep resumes, the store getting its identity.
    summary = run_sweep(spec(program, seeds=2), out, progress=False)
    assert (summary.skipped, summary.ran) == (2, 2)
    with open_store(out) as store:
        assert store.identity is not None and store.identity["definition"]["samples"] == 1


def _mixed_store(program, tmp_path):
    """A store as the code before identities could leave it: the same grid run at S = 1 and
    then S = 2 into one store (rows copied across), its identity dropped."""
    a, b = tmp_path / "a", tmp_path / "b"
    run_sweep(spec(program, seeds=2), a, progress=False)
    run_sweep(spec(program, samples=2, seeds=2), b, progress=False)
    with sqlite3.connect(a / STORE_NAME) as conn:
        conn.execute("ATTACH DATABASE ? AS other", (str(b / STORE_NAME),))
        columns = ", ".join(store_module.COLUMNS)
        conn.execute(f"INSERT INTO runs ({columns}) SELECT {columns} FROM other.runs")
    conn.close()
    _drop_identity(a / STORE_NAME)
    return a


def test_rows_of_different_settings_are_never_pooled(program, tmp_path, capsys):
    out = _mixed_store(program, tmp_path)
    with open_store(out) as store:
        rows = store.rows()
        assert settings_columns(rows) == ["run.samples"]
        table = summary_table(store)
        paths = plot_store(store, out_dir=tmp_path / "fig", stem="m", formats=("png",))
    # One line per (point, setting), each over its own two seeds.
    assert len(table) == 4 and all(e["seeds"] == 2 for e in table)
    assert sorted((e["devices.element.p"], e["run.samples"]) for e in table) == [
        (0.4, 1),
        (0.4, 2),
        (0.6, 1),
        (0.6, 2),
    ]
    assert [p.name for p in paths] == ["m_accuracy.png"]
    # The CLI says so, draws no heatmap, and labels only what the rows share.
    assert main(["plot", str(out), "-o", str(tmp_path / "cli"), "--name", "c"]) == 0
    text = capsys.readouterr().out
    assert "different settings (run.samples)" in text
    assert "| devices.element.p | run.samples | seeds |" in text
    assert sorted(p.name for p in (tmp_path / "cli").iterdir()) == [
        "c_accuracy.pdf",
        "c_accuracy.png",
    ]
    # The export tells the rows apart by the differing setting.
    csv_path = tmp_path / "t.csv"
    assert main(["sweep", "export", str(out), "-o", str(csv_path)]) == 0
    with open(csv_path, newline="") as fh:
        exported = list(csv.DictReader(fh))
    assert sorted({r["run.samples"] for r in exported}) == ["1", "2"] and len(exported) == 8


def test_subtitle_states_only_shared_settings(program, tmp_path):
    from nsmx.sweep_plots import describe_rows

    out = _mixed_store(program, tmp_path)
    with open_store(out) as store:
        text = describe_rows(store.rows(), store.sweep)
    assert "S varied" in text and "S=1" not in text and "n=20" in text and "mode clt" in text


# ------------------------------------------------------------------------- two processes


def _create(path: str, barrier, results) -> None:
    barrier.wait()
    try:
        SweepStore.create(path, {"seeds": 1}).close()
        results.put("created")
    except StoreError as exc:
        results.put(f"refused: {exc}")


def test_two_processes_creating_one_store_get_one_whole_store(tmp_path):
    ctx = multiprocessing.get_context("fork")
    for trial in range(4):
        path = str(tmp_path / f"s{trial}.sqlite")
        barrier, results = ctx.Barrier(2), ctx.Queue()
        procs = [ctx.Process(target=_create, args=(path, barrier, results)) for _ in range(2)]
        for p in procs:
            p.start()
        for p in procs:
            p.join(timeout=120)
        outcomes = sorted(results.get(timeout=10) for _ in procs)
        assert outcomes[0] == "created" and outcomes[1].startswith("refused: ")
        assert "already exists" in outcomes[1]
        with SweepStore.open(path) as store:  # whole: the meta and schema are there
            assert store.meta()["format"] == "nsmx-sweep-store" and store.count() == 0
        assert sorted(os.listdir(tmp_path)) == sorted(
            f"s{i}.sqlite" for i in range(trial + 1)
        )  # no temporary file left


def test_a_second_writer_is_told_the_store_is_busy(program, tmp_path):
    out = tmp_path / "run"
    path = out / STORE_NAME
    first, created = open_for_writing(path, spec(program).to_dict())
    assert created
    try:
        with pytest.raises(
            StoreBusyError, match=rf"busy: another nsmx sweep \(pid {os.getpid()}\)"
        ):
            run_sweep(spec(program), out, progress=False)
    finally:
        first.close()
    assert run_sweep(spec(program), out, progress=False).ran == 2  # the lock went with it


def test_a_store_locked_too_long_is_a_clear_error(program, tmp_path, monkeypatch, capsys):
    out = tmp_path / "run"
    run_sweep(spec(program), out, progress=False)
    monkeypatch.setattr(store_sql, "BUSY_TIMEOUT_S", 0.2)
    blocker = sqlite3.connect(out / STORE_NAME, isolation_level=None)
    blocker.execute("BEGIN EXCLUSIVE")  # another process's long write transaction
    try:
        with pytest.raises(StoreBusyError, match="locked by another process"):
            run_sweep(spec(program, seeds=2), out, progress=False)
        args = ["sweep", program, "--chip", "ideal", "--dataset", "digits", "--limit", "20"]
        args += ["--samples", "1", "--mode", "clt", "--seeds", "2", "--no-progress"]
        args += ["--vary", "devices.element.p=0.4,0.6", "--out", str(out)]
        assert main(args) == 2
        err = capsys.readouterr().err
        assert "locked by another process (waited 0.2 s" in err and err.count("\n") == 1
    finally:
        blocker.execute("ROLLBACK")
        blocker.close()


# ------------------------------------------------------------------------- read-only


@pytest.fixture()
def small_fs(tmp_path):
    """A 4 MiB tmpfs mounted at tmp_path/fs (needs root); unmounted after."""
    with tmpfs(tmp_path / "fs", "size=4m") as mount:
        yield mount


def _remount(mount, mode: str) -> None:
    subprocess.run(["mount", "-o", f"remount,{mode}", str(mount)], check=True)


def test_read_only_store_is_read_and_reported_as_read_only(program, tmp_path, small_fs, capsys):
    out = small_fs / "run"
    run_sweep(spec(program), out, progress=False)
    _remount(small_fs, "ro")
    try:
        with open_store(out) as store:  # plot and export read it as it is
            assert store.count() == 2
        with pytest.raises(StoreReadOnlyError, match="read-only file system"):
            run_sweep(spec(program, seeds=2), out, progress=False)
        assert main(["sweep", "export", str(out), "-o", str(tmp_path / "t.csv")]) == 0
        assert main(["plot", str(out), "-o", str(tmp_path / "fig")]) == 0
        capsys.readouterr()
        # Figures into the read-only folder: refused up front, one line.
        assert main(["plot", str(out)]) == 2
        err = capsys.readouterr().err
        assert "read-only file system" in err and "damaged" not in err
    finally:
        _remount(small_fs, "rw")
    shutil.rmtree(out)


def test_cost_metrics_are_results_not_settings(program, tmp_path):
    """The scalar cost metrics a row holds are the ones :mod:`nsmx.results` knows, and a
    varying cost metric (power, throughput) is never named as a varied setting."""
    from nsmx.results import COST_METRICS, load_results, varied_columns

    out = tmp_path / "run"
    run_sweep(spec(program, vary=(("run.samples", (1, 2)),)), out, progress=False)
    with open_store(out) as store:
        cost = store.rows()[0]["extra"]["cost"]
    scalars = {k for k, v in cost.items() if isinstance(v, (int, float))}
    assert scalars == set(COST_METRICS)
    frame = load_results(out)
    assert frame["energy_per_classification_j"].nunique() == 2  # the cost grows with S
    assert varied_columns(frame) == ["run.samples"]
