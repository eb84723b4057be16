"""A plugin's device model through the CLI: ``nsmx chips``/``run`` in process and a real
``nsmx sweep --workers 2`` in a subprocess (worker processes import the plugin themselves).

The plugin is ``examples/plugin_package`` (module ``nsmx_retention_plugin``, conductance model
``retention-cell``), found through ``PYTHONPATH`` as an uninstalled user module would be.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from mapping import compile_model, save_program
from nsm.models import build_model
from nsmx.cli import main

ROOT = Path(__file__).resolve().parents[1]
PLUGIN = ROOT / "examples" / "plugin_package"
CHIP = PLUGIN / "retention-chip.toml"


def run_cli(argv: list[str]) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(argv)
    return code, out.getvalue(), err.getvalue()


@pytest.fixture(autouse=True)
def _own_plugin_list(monkeypatch):
    # Plugins loaded by in-process CLI calls must not leak into later tests: a sweep hands the
    # loaded plugins to its worker processes, which could not import this test's path entry.
    import devices.plugins

    monkeypatch.setattr(devices.plugins, "_LOADED", [])


@pytest.fixture(scope="module")
def program(tmp_path_factory):
    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("plugin") / "digits.nsmx"
    save_program(compile_model(build_model("digits-mlp"), (1, 8, 8), source={}), path)
    return path


def test_chip_file_of_a_plugin_model_needs_the_plugin(program, monkeypatch):
    monkeypatch.syspath_prepend(str(PLUGIN / "src"))
    code, out, err = run_cli(["chips", "--plugin", "nsmx_retention_plugin", "--json"])
    assert code == 0, err
    listing = json.loads(out.strip().splitlines()[-1])
    assert "retention-cell" in listing["device_models"]["conductance"]
    assert "nsmx_retention_plugin" in listing["plugins"]
    code, out, err = run_cli(
        [
            "run",
            str(program),
            "--chip",
            str(CHIP),
            "--plugin",
            "nsmx_retention_plugin",
            "--dataset",
            "digits",
            "--limit",
            "5",
            "--samples",
            "1",
            "--no-software",
            "--no-progress",
            "--json",
        ]
    )
    assert code == 0, err
    assert json.loads(out.strip().splitlines()[-1])["n"] == 5


def test_a_missing_plugin_is_one_line_exit_2(program):
    code, _, err = run_cli(["run", str(program), "--plugin", "no_such_plugin_xyz"])
    assert code == 2
    assert "plugin 'no_such_plugin_xyz' (--plugin) failed to import" in err


def test_plugin_device_through_a_sweep_with_two_worker_processes(program, tmp_path):
    out = tmp_path / "sweep"
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(
        [str(PLUGIN / "src"), str(ROOT), *filter(None, [env.get("PYTHONPATH")])]
    )
    env.update(NUMBA_NUM_THREADS="1", OMP_NUM_THREADS="1")
    cmd = [
        sys.executable,
        "-m",
        "nsmx.cli",
        "sweep",
        str(program),
        "--chip",
        str(CHIP),
        "--plugin",
        "nsmx_retention_plugin",
        "--dataset",
        "digits",
        "--vary",
        "devices.conductance.tau_s=1e3,1e9",
        "--t-s",
        "1e5",
        "--limit",
        "8",
        "--samples",
        "1",
        "--mode",
        "clt",
        "--workers",
        "2",
        "--out",
        str(out),
        "--no-progress",
        "--json",
    ]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    assert result["sweeps"][0]["ran"] == 2

    from nsmx.store import open_store

    with open_store(out) as store:
        rows = store.rows()
    assert sorted(r["params"]["devices.conductance.tau_s"] for r in rows) == [1e3, 1e9]
    for r in rows:
        assert r["config"]["chip"]["devices"]["conductance"]["model"] == "retention-cell"
        assert r["n"] == 8
