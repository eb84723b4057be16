"""The work of one (point, seed) of a sweep: program a fresh chip, run the MC evaluation, return
the store row. Runs in the calling process, a local worker process or a Dask worker; programs
and test sets are cached per process (a program's SHA-256 is checked when first loaded, so a
file changed since resolution is refused)."""

from __future__ import annotations

import platform
import time
from typing import Any

from nsmx.metrics import expected_calibration_error
from nsmx.store import utc_now
from nsmx.sweep_spec import SweepError, Task, file_sha256
from nsmx.threads import limit_threads

# Per worker process: ("program", path, sha256) -> Program, ("data", dataset, dir, limit) -> (x, y).
_WORKER_CACHE: dict[Any, Any] = {}


def _cached_program(path: str, sha256: str) -> Any:
    from mapping.program import load_program

    key = ("program", path, sha256)
    if key not in _WORKER_CACHE:
        if file_sha256(path) != sha256:
            raise SweepError(f"{path} changed since the sweep was resolved (SHA-256 differs)")
        _WORKER_CACHE[key] = load_program(path)
    return _WORKER_CACHE[key]


def _cached_data(
    dataset: str, data_dir: str | None, limit: int | None, split: str = "test"
) -> tuple[Any, Any]:
    from nsm.data import load_dataset

    key = ("data", dataset, data_dir, limit, split)
    if key not in _WORKER_CACHE:
        x, y = load_dataset(dataset, split=split, root=data_dir)
        if limit:
            x, y = x[:limit], y[:limit]
        _WORKER_CACHE[key] = (x.numpy(), y.numpy())
    return _WORKER_CACHE[key]


def _cached_user_data(
    path: str, sha256: str, limit: int | None, split: str, input_shape: tuple[int, ...]
) -> tuple[Any, Any] | None:
    """One split of the user's ``.npz`` (first ``limit`` examples, inputs shaped
    ``input_shape``), its SHA-256 checked when first read (a file changed since resolution is
    refused); None when ``split`` is absent."""
    from nsm.user_data import has_split, load_npz

    key = ("user-data", path, sha256, limit, split, tuple(input_shape))
    if key not in _WORKER_CACHE:
        if ("user-data-checked", path, sha256) not in _WORKER_CACHE:
            if file_sha256(path) != sha256:
                raise SweepError(f"{path} changed since the sweep was resolved (SHA-256 differs)")
            _WORKER_CACHE[("user-data-checked", path, sha256)] = True
        if not has_split(path, split):
            _WORKER_CACHE[key] = None
        else:
            x, y = load_npz(path, split, input_shape=input_shape)
            if limit:
                x, y = x[:limit], y[:limit]
            _WORKER_CACHE[key] = (x.numpy(), y.numpy())
    return _WORKER_CACHE[key]


def _task_data(
    task: Task, program: Any, limit: int | None, split: str = "test"
) -> tuple[Any, Any] | None:
    """The task's examples of ``split`` for ``program``: the user's ``.npz`` when the sweep has
    one, else the bundled dataset (None: a user file without that split)."""
    if task.data is not None:
        return _cached_user_data(
            task.data, task.data_sha256, limit, split, tuple(program.input_shape)
        )
    return _cached_data(task.dataset, task.data_dir, limit, split)


def _calibrate(model: Any, task: Task) -> dict[str, Any] | None:
    """Calibrate the chip's data-calibrated ADCs on the first ``adc_cal_examples`` examples of
    the dataset's *training* split (never the evaluated test split), seeded by the point's
    programming seed; returns the calibration's settings and per-converter full-scale summary
    (µA: min, median, max), or None when the chip has nothing to calibrate. The user's data
    calibrates on its ``x_train``; a file without it leaves the chip on the rms rule (the
    chip's fallback, with its warning)."""
    if not model.needs_adc_calibration:
        return None
    import numpy as np

    n = model.chip.periphery.adc_cal_examples
    train = _task_data(task, model.program, n, split="train")
    if train is None:
        return None
    x_cal, _ = train
    cal = model.calibrate(x_cal, source=f"{task.dataset} train[:{len(x_cal)}]")
    out = cal.to_dict(full_scales=False)
    out["full_scale_ua"] = {
        name: {
            key: {
                "min": float(np.min(fs)),
                "median": float(np.median(fs)),
                "max": float(np.max(fs)),
            }
            for key, fs in scales.items()
        }
        for name, scales in cal.full_scale_ua.items()
    }
    return out


def package_versions() -> dict[str, str]:
    """Versions of Python and of the packages that shape a result."""
    from importlib.metadata import PackageNotFoundError, version

    out = {"python": platform.python_version()}
    for name in ("nsm-crossbar", "numpy", "scipy", "numba", "torch"):
        try:
            out[name] = version(name)
        except PackageNotFoundError:
            out[name] = "unknown"
    return out


def execute_task(task: Task) -> dict[str, Any]:
    """Program a fresh chip and run the MC evaluation of one (point, seed); returns the store
    row (:data:`nsmx.store.COLUMNS`). Runs in a worker (process, Dask worker or the caller)."""
    from devices.plugins import load_plugins
    from mapping.cost import cost_report
    from mapping.report import accuracy_nll, saturation_warnings
    from mapping.runtime import program_chip

    run = task.run  # its seed is the task's derived read seed
    # The caller's plugins (and the installed entry points) register their models here too.
    load_plugins(task.plugins)
    with limit_threads(task.threads):
        program = _cached_program(task.program, task.program_sha256)
        x, y = _task_data(task, program, task.limit)
        t0 = time.perf_counter()
        model = program_chip(program, task.chip, seed=task.program_seed, config=run)
        program_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        calibration = _calibrate(model, task)
        calibration_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        result = model.run(x, run)
        run_s = time.perf_counter() - t0
    accuracy, nll = accuracy_nll(result.probabilities, y)
    adc = {
        name: {"conversions": int(c.adc_conversions), "saturations": int(c.adc_saturations)}
        for name, c in result.counters.items()
        if c.adc_conversions
    }
    # Energy, latency and area per classification, from the run's counters (never a re-run).
    cost = cost_report(model, result)
    extra = {
        "firing_rate": result.firing_rate,
        "drift_gain": model.drift_gain(run.t_s) if run.drift_compensation else 1.0,
        "adc": adc,
        "adc_calibration": calibration,
        "calibration_s": calibration_s,
        "warnings": saturation_warnings(model, result.counters),
        "cost": {
            **cost.metrics(),
            "energy_by_component_j": cost.energy_by_component_j,
            "energy_by_layer_j": cost.energy_by_layer_j,
        },
    }
    return {
        "point_hash": task.point_hash,
        "seed": task.seed,
        "point_index": task.point_index,
        "params_json": task.params,
        "config_json": task.config,
        "program_seed": task.program_seed,
        "read_seed": task.read_seed,
        "accuracy": accuracy,
        "nll": nll,
        "ece": expected_calibration_error(result.probabilities, y),
        "n": int(result.n),
        "samples": int(result.samples),
        "program_s": program_s,
        "run_s": run_s,
        "finished_at": utc_now(),
        "versions_json": package_versions(),
        "extra_json": extra,
    }


__all__ = ["execute_task", "package_versions"]
