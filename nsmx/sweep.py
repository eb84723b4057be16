"""Device non-ideality sweeps: a grid over chip and run fields, one fresh chip per (point, seed).

The sweep is defined and resolved in :mod:`nsmx.sweep_spec` (:class:`SweepSpec`, fields, the
grid, derived seeds, :class:`Task`); one (point, seed) is computed by
:func:`nsmx.sweep_worker.execute_task`; this module runs them.

:func:`run_sweep` runs the (point, seed) tasks that the store (:mod:`nsmx.store`) does not hold
yet: serially, on local worker processes (``workers``) or on a Dask distributed cluster
(``scheduler``); workers compute, the calling process writes each finished row in its own
transaction. The names of the spec and worker modules are re-exported here, and
:func:`~nsmx.results.load_results` (a run folder's results as a pandas DataFrame).
"""

from __future__ import annotations

import functools
import os
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from devices.errors import ConfigError, ConfigTypeError
from devices.fields import check_int
from nsmx.metrics import ECE_BINS, expected_calibration_error
from nsmx.results import load_results
from nsmx.store import SweepStore, store_path
from nsmx.sweep_spec import (
    RUN_FIELD_NAMES,
    SPEC_VERSION,
    Point,
    ProgramInfo,
    SweepError,
    SweepSpec,
    Task,
    canonical_hash,
    derive_seeds,
    file_sha256,
    make_tasks,
    resolve_points,
)
from nsmx.sweep_worker import execute_task, package_versions

#: Fields of the sweep definition that must match when a store is resumed.
FIXED_KEYS = ("dataset", "limit", "root_seed", "data_sha256")


# ------------------------------------------------------------------------------ runner


@dataclass
class SweepSummary:
    """What :func:`run_sweep` did: ``points``, ``tasks`` (points x seeds), ``skipped`` (already
    stored), ``ran`` (written now), ``store`` (path), ``wall_s``."""

    points: int
    tasks: int
    skipped: int
    ran: int
    store: Path
    wall_s: float
    failures: list[str] = field(default_factory=list)


def open_or_create(
    path: Path, spec: SweepSpec, points: Sequence[Point] | None = None
) -> SweepStore:
    """Open the store for ``spec`` (creating it; locked for this process), refusing one made
    for another sweep with a message naming each difference (:func:`nsmx.provenance.
    open_for_sweep`: a store takes more seeds and new grid values, nothing else)."""
    from nsmx.provenance import open_for_sweep

    return open_for_sweep(path, spec, resolve_points(spec) if points is None else points)


def run_sweep(
    spec: SweepSpec,
    out: str | os.PathLike[str],
    *,
    workers: int = 1,
    scheduler: str | Any | None = None,
    threads: int | None = 1,
    progress: bool = True,
    on_row: Callable[[dict[str, Any]], None] | None = None,
) -> SweepSummary:
    """Run every (point, seed) of ``spec`` that ``out``'s store does not hold yet.

    Args:
        out: the run folder (the store is ``out/sweep.sqlite``) or a ``.sqlite`` path.
        workers: local worker processes (1: in this process).
        scheduler: a Dask distributed scheduler address (``tcp://host:port``) or a
            ``distributed.Client``; overrides ``workers``.
        threads: BLAS/numba threads per task (None: leave as is).
        progress: a tqdm bar with ETA over the tasks.
        on_row: called with each row after it is committed (tests, logging).

    Validation (:func:`resolve_points`) happens before the store is touched. A task that fails
    stops the sweep after the rows already finished are committed.

    Worker processes are started by ``spawn``: each imports the calling script first, so a
    script calls ``run_sweep(..., workers=N)`` under ``if __name__ == "__main__":`` (a worker
    that meets the call while importing the script raises :class:`SweepError` saying so).
    """
    from tqdm.auto import tqdm

    from nsm.progress import bar_options

    _refuse_in_worker_bootstrap()
    try:
        workers = check_int("workers", workers, ge=1)
    except (ConfigError, ConfigTypeError) as exc:
        raise SweepError(str(exc)) from None
    from devices.plugins import loaded_plugins

    t0 = time.perf_counter()
    points = resolve_points(spec)
    # Workers import the plugins loaded here before they build a chip (devices.plugins).
    plugins = loaded_plugins()
    tasks = make_tasks(spec, points, threads=threads, plugins=plugins)
    path = store_path(out)
    with open_or_create(path, spec, points) as store:
        done = store.done()
        todo = [t for t in tasks if (t.point_hash, t.seed) not in done]
        summary = SweepSummary(len(points), len(tasks), len(tasks) - len(todo), 0, path, 0.0)
        bar = tqdm(
            total=len(tasks),
            initial=summary.skipped,
            desc=spec.name or "sweep",
            unit="run",
            disable=not progress,
            smoothing=0.1,
            **bar_options(),  # a terminal bar; in a log, one line per 30 s with the ETA
        )

        def commit(row: dict[str, Any]) -> None:
            if store.insert(row):
                summary.ran += 1
            bar.update(1)
            bar.set_postfix(acc=f"{row['accuracy']:.4f}")
            for line in row["extra_json"].get("warnings", ()):  # ADCs that clipped > 1 %
                bar.write(
                    f"warning: point {row['point_index']} seed {row['seed']}: {line}",
                    file=sys.stderr,
                )
            if on_row is not None:
                on_row(row)

        try:
            if scheduler is not None:
                _run_dask(todo, scheduler, commit)
            elif workers == 1:
                for task in todo:
                    commit(execute_task(task))
            else:
                _run_processes(todo, workers, commit, plugins)
        finally:
            bar.close()
    summary.wall_s = time.perf_counter() - t0
    return summary


def _refuse_in_worker_bootstrap() -> None:
    """A spawned worker process imports the main script before its first task; a script that
    calls :func:`run_sweep` at its top level would start a sweep inside every worker (which then
    dies, and the pool starts another). Say so, in the worker's error."""
    import multiprocessing

    if getattr(multiprocessing.current_process(), "_inheriting", False):
        raise SweepError(
            "run_sweep was called while a sweep worker process imported the main script: "
            "worker processes are started by spawn and import it; put the call under "
            "'if __name__ == \"__main__\":' (or use workers=1)"
        )


def _run_processes(
    todo: Sequence[Task], workers: int, commit: Callable, plugins: Sequence[str] = ()
) -> None:
    import multiprocessing
    from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
    from concurrent.futures.process import BrokenProcessPool

    if not todo:
        return
    # spawn: the parent has imported torch (OpenMP); forking it can deadlock the children.
    # A process pool executor, not multiprocessing.Pool: a worker that dies (killed, out of
    # memory, or failing while it starts) breaks the pool and the sweep says so, where a Pool
    # would start another worker and wait forever. Each worker imports the plugins first, so
    # a task's chip (a plugin's config) unpickles.
    pool = ProcessPoolExecutor(
        max_workers=min(workers, len(todo)),
        mp_context=multiprocessing.get_context("spawn"),
        initializer=_init_worker,
        initargs=(tuple(plugins),),
    )
    try:
        # The task function travels by reference (the module's execute_task as it is now).
        run_task = functools.partial(_execute_in_worker, execute_task)
        pending = {pool.submit(run_task, task) for task in todo}
        while pending:
            done, pending = wait(pending, return_when=FIRST_COMPLETED)
            for future in done:
                try:
                    row = future.result()
                except BrokenProcessPool:
                    raise SweepError(
                        "a sweep worker process ended abruptly (killed, out of memory, or it "
                        "failed while starting: see its error above); the rows finished before "
                        "are stored, rerun the same sweep to resume"
                    ) from None
                commit(row)
    finally:
        _stop_pool(pool)


def _stop_pool(pool: Any) -> None:
    """Cancel the tasks not started and end the workers now (an interrupted or failed sweep
    leaves no orphan computing)."""
    terminate = getattr(pool, "terminate_workers", None)  # Python >= 3.14
    if terminate is not None:
        terminate()
        return
    # Before shutdown, which drops the executor's process table.
    processes = list((getattr(pool, "_processes", None) or {}).values())
    pool.shutdown(wait=False, cancel_futures=True)
    for process in processes:
        if process.is_alive():
            process.terminate()
    for process in processes:
        process.join(timeout=10)


#: Why this worker process could not load its plugins (None: it could).
_WORKER_INIT_ERROR: str | None = None


def _init_worker(plugins: tuple[str, ...]) -> None:
    # An initializer that raises breaks the pool with no word of why: keep the error and report
    # it from the first task instead. Ctrl-C reaches the whole process group: the parent
    # handles it (and ends the workers); a worker ignores it rather than print a traceback.
    global _WORKER_INIT_ERROR
    import signal

    from devices.plugins import load_plugins

    signal.signal(signal.SIGINT, signal.SIG_IGN)

    try:
        load_plugins(plugins)
    except Exception as exc:
        _WORKER_INIT_ERROR = f"{type(exc).__name__}: {exc}"


def _execute_in_worker(run_task: Callable[[Task], dict[str, Any]], task: Task) -> dict[str, Any]:
    if _WORKER_INIT_ERROR is not None:
        raise SweepError(f"a sweep worker could not load its plugins: {_WORKER_INIT_ERROR}")
    return run_task(task)


def _run_dask(todo: Sequence[Task], scheduler: Any, commit: Callable) -> None:
    try:
        from distributed import Client, as_completed
    except ImportError:  # pragma: no cover - depends on the extra
        raise SweepError(
            "--scheduler needs the 'distributed' package: pip install 'nsm-crossbar[dask]'"
        ) from None
    from devices.plugins import load_plugins

    own = not isinstance(scheduler, Client)
    client = Client(scheduler) if own else scheduler
    try:
        plugins = todo[0].plugins if todo else ()
        if plugins:  # every worker registers the plugins' models before a task unpickles
            client.run(load_plugins, tuple(plugins))
        futures = [
            client.submit(
                execute_task,
                task,
                pure=False,
                key=f"nsmx-sweep-{task.point_hash[:16]}-{task.seed}-{os.getpid()}",
            )
            for task in todo
        ]
        try:
            for fut in as_completed(futures):
                commit(fut.result())
        except BaseException:
            client.cancel(futures)
            raise
    finally:
        if own:
            client.close()


__all__ = [
    "ECE_BINS",
    "FIXED_KEYS",
    "RUN_FIELD_NAMES",
    "SPEC_VERSION",
    "Point",
    "ProgramInfo",
    "SweepError",
    "SweepSpec",
    "SweepSummary",
    "Task",
    "canonical_hash",
    "derive_seeds",
    "execute_task",
    "expected_calibration_error",
    "file_sha256",
    "load_results",
    "make_tasks",
    "open_or_create",
    "package_versions",
    "resolve_points",
    "run_sweep",
]
