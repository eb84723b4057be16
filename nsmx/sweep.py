"""Device non-ideality sweeps: a grid over chip and run fields, one fresh chip per (point, seed).

A sweep (:class:`SweepSpec`) is a compiled program, a base chip (preset or TOML file, plus
``field=value`` overrides), base run settings, and a list of *varied fields*, each with a list
of values. The grid is the Cartesian product of the varied values, in the order given.

Fields:

* chip fields by dotted path (:func:`crossbar.replace_field`): ``periphery.adc_bits``,
  ``devices.element.sigma_d_v``, ``tile.rows``, ``wires.r_wire_ohm``, ...
* run fields (:data:`RUN_FIELDS`): ``run.samples``, ``run.t_s``, ``run.mode``,
  ``run.p_policy``, ``run.drift_compensation`` and ``run.program`` (another program file, e.g.
  the BN baseline next to the NSM).

Every field and every value is validated by :func:`resolve_points` before any work starts: an
unknown field, a value out of range or a program that cannot run on the chip raises
:class:`SweepError` naming the field and the value.

Seeds: each (point, seed index) programs a fresh chip. Its programming seed and MC read seed
are spawned from ``SeedSequence([root_seed, point hash words..., seed index])``, where the point
hash is the SHA-256 of the point's canonical resolved configuration (program digest, chip, run
settings, dataset subset). Adding points to a grid therefore never changes other points'
results, and a point's result does not depend on its position in the grid or on the worker
that ran it.

:func:`run_sweep` runs the (point, seed) tasks that the store (:mod:`nsmx.store`) does not hold
yet: serially, on local worker processes (``workers``) or on a Dask distributed cluster
(``scheduler``); workers compute, the calling process writes each finished row in its own
transaction.
"""

from __future__ import annotations

import contextlib
import hashlib
import itertools
import json
import math
import numbers
import os
import platform
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from nsmx.store import StoreError, SweepStore, store_path, utc_now

#: Run-level fields (``run.`` namespace) and what they take.
RUN_FIELDS: dict[str, str] = {
    "run.samples": "integers >= 1 (MC samples per example)",
    "run.t_s": "seconds in [0, inf) after programming (drift)",
    "run.mode": "one of ['exact', 'clt']",
    "run.p_policy": "one of ['trained', 'chip']",
    "run.drift_compensation": "true or false (global drift compensation)",
    "run.program": "the path of a compiled program (.nsmx)",
}
#: Number of confidence bins of the expected calibration error.
ECE_BINS = 15
#: Sweep definition format (recorded in the store's ``meta.sweep``).
SPEC_VERSION = 1
#: Fields of the sweep definition that must match when a store is resumed.
FIXED_KEYS = ("dataset", "limit", "root_seed")


class SweepError(ValueError):
    """A sweep definition is invalid (field, value, program, chip) or does not match its store."""


# ------------------------------------------------------------------------------ specification


@dataclass(frozen=True)
class RunSettings:
    """The run-level settings of one point (the ``run.`` fields)."""

    program: str
    samples: int = 100
    t_s: float = 0.0
    mode: str = "exact"
    p_policy: str = "trained"
    drift_compensation: bool = False


@dataclass(frozen=True)
class SweepSpec:
    """A sweep definition.

    program: path of the compiled program (``run.program`` may vary it).
    chip: chip preset name or chip TOML path; ``sets``: ``field=value`` overrides of it.
    vary: ((field, (value, ...)), ...): the grid, in order (first field outermost).
    seeds: chips programmed per point (seed indices 0..seeds-1).
    samples, t_s, mode, p_policy, drift_compensation: base run settings.
    dataset: test set (None: the one the program was trained on); limit: first N examples.
    data_dir: folder of the IDX files (not part of the definition: data may move).
    root_seed: root of every derived seed.
    name: label of the sweep (study name).
    """

    program: str
    chip: str = "ideal"
    sets: tuple[str, ...] = ()
    vary: tuple[tuple[str, tuple[Any, ...]], ...] = ()
    seeds: int = 1
    samples: int = 100
    t_s: float = 0.0
    mode: str = "exact"
    p_policy: str = "trained"
    drift_compensation: bool = False
    dataset: str | None = None
    limit: int | None = None
    data_dir: str | None = None
    root_seed: int = 0
    name: str = ""
    description: str = ""

    def __post_init__(self) -> None:
        object.__setattr__(self, "program", str(self.program))
        object.__setattr__(self, "chip", str(self.chip))
        if isinstance(self.sets, str):
            raise SweepError("sets must be a list of 'field=value' strings, not one string")
        object.__setattr__(self, "sets", tuple(self.sets))
        vary = []
        for item in self.vary:
            if not (isinstance(item, (tuple, list)) and len(item) == 2):
                raise SweepError(f"vary entry {item!r} must be (field, [values])")
            name, values = item
            if isinstance(values, (str, bytes)) or not isinstance(values, Iterable):
                raise SweepError(f"vary {name}: values {values!r} must be a list")
            vary.append((str(name), tuple(values)))
        object.__setattr__(self, "vary", tuple(vary))
        _check_int("seeds", self.seeds, 1)
        _check_int("root_seed", self.root_seed, 0)
        if self.limit is not None:
            _check_int("limit", self.limit, 1)

    def run_settings(self) -> RunSettings:
        return RunSettings(
            program=self.program,
            samples=self.samples,
            t_s=self.t_s,
            mode=self.mode,
            p_policy=self.p_policy,
            drift_compensation=self.drift_compensation,
        )

    def to_dict(self) -> dict[str, Any]:
        """The definition as recorded in the store (JSON-ready; ``data_dir`` left out)."""
        out = asdict(self)
        out.pop("data_dir")
        out["vary"] = [[k, list(v)] for k, v in self.vary]
        out["sets"] = list(self.sets)
        out["spec_version"] = SPEC_VERSION
        return out


def _check_int(name: str, value: Any, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < minimum:
        raise SweepError(f"{name}={value!r} is out of range; allowed: integers >= {minimum}")
    return int(value)


# ------------------------------------------------------------------------------ resolution


@dataclass(frozen=True)
class Point:
    """One resolved grid point: ``params`` (varied field -> value), the chip, run settings,
    the canonical ``config`` and its SHA-256 ``hash``."""

    index: int
    params: Mapping[str, Any]
    chip: Any  # crossbar.ChipConfig
    run: RunSettings
    config: Mapping[str, Any]
    hash: str


@dataclass(frozen=True)
class ProgramInfo:
    path: str
    sha256: str
    dataset: str
    input_shape: tuple[int, ...]


def file_sha256(path: str | os.PathLike[str]) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def canonical_hash(config: Mapping[str, Any]) -> str:
    """SHA-256 (hex) of ``config`` as canonical JSON (sorted keys, no spaces)."""
    text = json.dumps(config, sort_keys=True, separators=(",", ":"), allow_nan=False)
    return hashlib.sha256(text.encode()).hexdigest()


def _run_value(name: str, value: Any) -> Any:
    """Validate one run-field value (``SweepError`` names field, value and allowed range)."""
    from mapping.runtime import MODES, P_POLICIES

    def bad() -> SweepError:
        return SweepError(f"{name}={value!r} is out of range; allowed: {RUN_FIELDS[name]}")

    if name == "run.samples":
        if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 1:
            raise bad()
        return int(value)
    if name == "run.t_s":
        if (
            isinstance(value, bool)
            or not isinstance(value, numbers.Real)
            or not (math.isfinite(value) and value >= 0)
        ):
            raise bad()
        return float(value)
    if name == "run.mode":
        if value not in MODES:
            raise bad()
        return str(value)
    if name == "run.p_policy":
        if value not in P_POLICIES:
            raise bad()
        return str(value)
    if name == "run.drift_compensation":
        if not isinstance(value, bool):
            raise bad()
        return value
    if name == "run.program":
        if not isinstance(value, (str, os.PathLike)) or not str(value):
            raise bad()
        return str(value)
    raise SweepError(f"{name!r} is not a known run field; choose one of {', '.join(RUN_FIELDS)}")


def _program_info(
    path: str, dataset: str | None, cache: dict[str, tuple[ProgramInfo, Any]]
) -> tuple[ProgramInfo, Any]:
    from mapping.program import ProgramError, load_program
    from nsm.models import MODELS

    key = os.path.abspath(path)
    if key in cache:
        return cache[key]
    try:
        program = load_program(path)
    except ProgramError as exc:
        raise SweepError(str(exc)) from None
    model = program.source.get("model")
    if dataset is None:
        if model not in MODELS:
            raise SweepError(
                f"{path} does not record the dataset it was trained on; give dataset "
                "(digits, mnist, fashion-mnist)"
            )
        dataset = MODELS[model].dataset
    info = ProgramInfo(key, file_sha256(path), dataset, tuple(program.input_shape))
    cache[key] = (info, program)
    return cache[key]


def resolve_points(spec: SweepSpec) -> list[Point]:
    """Validate the whole sweep and return its grid points (no chip is programmed).

    Raises :class:`SweepError` for an unknown field, a value out of range (naming field, value
    and allowed range), a missing or invalid program, programs of different datasets, or a
    program whose noise type the chip's stochastic element cannot realise.
    """
    from crossbar import replace_field
    from devices import ConfigError, ConfigTypeError
    from mapping.chips import ChipError, resolve_chip
    from mapping.program import ConvLayer, DenseLayer
    from mapping.runtime import MappingError, read_conditions

    try:
        base_chip = resolve_chip(spec.chip, spec.sets)
    except ChipError as exc:
        raise SweepError(str(exc)) from None
    base_run = spec.run_settings()
    for name in ("samples", "t_s", "mode", "p_policy", "drift_compensation"):
        _run_value(f"run.{name}", getattr(base_run, name))

    seen: set[str] = set()
    for name, values in spec.vary:
        if name in seen:
            raise SweepError(f"--vary {name} is given twice")
        seen.add(name)
        if not values:
            raise SweepError(f"--vary {name} has no values")
        for value in values:
            if name.startswith("run."):
                _run_value(name, value)
            else:
                try:
                    replace_field(base_chip, name, value)
                except (ConfigError, ConfigTypeError) as err:
                    raise SweepError(f"--vary {name}={value!r}: {err}") from None

    programs: dict[str, tuple[ProgramInfo, Any]] = {}
    datasets = set()
    points: list[Point] = []
    names = [name for name, _ in spec.vary]
    for index, combo in enumerate(itertools.product(*[values for _, values in spec.vary])):
        chip = base_chip
        run = dict(asdict(base_run))
        for name, value in zip(names, combo, strict=True):
            if name.startswith("run."):
                run[name[4:]] = _run_value(name, value)
            else:
                try:
                    chip = replace_field(chip, name, value)
                except (ConfigError, ConfigTypeError) as err:  # a combination out of range
                    where = dict(zip(names, combo, strict=True))
                    raise SweepError(f"point {where}: {err}") from None
        settings = RunSettings(**run)
        info, program = _program_info(settings.program, spec.dataset, programs)
        settings = RunSettings(**{**asdict(settings), "program": info.path})
        datasets.add(info.dataset)
        for layer in program.layers:
            if isinstance(layer, (DenseLayer, ConvLayer)):
                try:
                    read_conditions(chip, layer, settings.p_policy)
                except MappingError as exc:
                    raise SweepError(f"{settings.program}: {exc}") from None
        config = {
            "program": {"sha256": info.sha256, "name": Path(info.path).name},
            "chip": _chip_identity(chip),
            "run": {k: v for k, v in asdict(settings).items() if k != "program"},
            "dataset": info.dataset,
            "limit": spec.limit,
        }
        # The values as the chip / run settings hold them (a TOML 0 for a float field is 0.0).
        params = {n: _field_value(chip, settings, n, v) for n, v in zip(names, combo, strict=True)}
        points.append(Point(index, params, chip, settings, config, canonical_hash(config)))
    if len(datasets) > 1:
        raise SweepError(f"the sweep's programs use different datasets {sorted(datasets)}")
    if len({p.hash for p in points}) != len(points):
        raise SweepError("the grid has duplicate points (a value is repeated)")
    return points


def _chip_identity(chip: Any) -> dict[str, Any]:
    """The chip as a point's configuration holds it: its dict form, without the ``cost`` section
    when that holds the defaults (cost parameters change no simulated number; leaving the
    default section out keeps the hashes, and so the seeds, of points defined before it)."""
    from crossbar.cost import CostConfig

    out = chip.to_dict()
    if chip.cost == CostConfig():
        out.pop("cost")
    return out


def _field_value(chip: Any, settings: RunSettings, name: str, given: Any) -> Any:
    if name == "run.program":  # as given (the resolved path is in the task)
        return str(given)
    if name.startswith("run."):
        return getattr(settings, name[4:])
    value = chip
    for part in name.split("."):
        value = getattr(value, part)
    return value


def derive_seeds(root_seed: int, point_hash: str, seed_index: int) -> tuple[int, int]:
    """(programming seed, MC read seed) of one (point, seed index): two children spawned from
    ``SeedSequence([root_seed, *hash as 32-bit words, seed_index])``."""
    words = [int(point_hash[i : i + 8], 16) for i in range(0, len(point_hash), 8)]
    ss = np.random.SeedSequence([int(root_seed), *words, int(seed_index)])
    prog, read = ss.spawn(2)
    return (
        int(prog.generate_state(1, np.uint64)[0] >> np.uint64(1)),
        int(read.generate_state(1, np.uint64)[0] >> np.uint64(1)),
    )


# ------------------------------------------------------------------------------ tasks


@dataclass(frozen=True)
class Task:
    """Everything a worker needs to run one (point, seed): picklable, no open resources."""

    point_hash: str
    point_index: int
    seed: int
    params: Mapping[str, Any]
    config: Mapping[str, Any]
    chip: Any
    run: RunSettings
    program_sha256: str
    dataset: str
    limit: int | None
    data_dir: str | None
    program_seed: int
    read_seed: int
    threads: int | None = 1


def make_tasks(spec: SweepSpec, points: Sequence[Point], *, threads: int | None = 1) -> list[Task]:
    """One :class:`Task` per (point, seed index), points outer."""
    tasks = []
    for point in points:
        for s in range(spec.seeds):
            program_seed, read_seed = derive_seeds(spec.root_seed, point.hash, s)
            tasks.append(
                Task(
                    point.hash,
                    point.index,
                    s,
                    dict(point.params),
                    point.config,
                    point.chip,
                    point.run,
                    point.config["program"]["sha256"],
                    point.config["dataset"],
                    spec.limit,
                    spec.data_dir,
                    program_seed,
                    read_seed,
                    threads,
                )
            )
    return tasks


_WORKER_CACHE: dict[Any, Any] = {}


def _cached_program(path: str, sha256: str) -> Any:
    from mapping.program import load_program

    key = ("program", path, sha256)
    if key not in _WORKER_CACHE:
        if file_sha256(path) != sha256:
            raise SweepError(f"{path} changed since the sweep was resolved (SHA-256 differs)")
        _WORKER_CACHE[key] = load_program(path)
    return _WORKER_CACHE[key]


def _cached_data(dataset: str, data_dir: str | None, limit: int | None) -> tuple[Any, Any]:
    from nsm.data import load_dataset

    key = ("data", dataset, data_dir, limit)
    if key not in _WORKER_CACHE:
        x, y = load_dataset(dataset, split="test", root=data_dir)
        if limit:
            x, y = x[:limit], y[:limit]
        _WORKER_CACHE[key] = (x.numpy(), y.numpy())
    return _WORKER_CACHE[key]


def expected_calibration_error(
    probabilities: np.ndarray, y: np.ndarray, bins: int = ECE_BINS
) -> float:
    """ECE (Guo et al. 2017): Σ_b (n_b/N)·|accuracy_b − confidence_b| over ``bins`` equal-width
    bins of the top-class confidence. probabilities (N, classes), y (N,) ints."""
    prob = np.asarray(probabilities, dtype=np.float64)
    conf = prob.max(axis=1)
    correct = prob.argmax(axis=1) == np.asarray(y)
    edges = np.linspace(0.0, 1.0, bins + 1)
    which = np.clip(np.digitize(conf, edges[1:-1], right=True), 0, bins - 1)
    ece = 0.0
    for b in range(bins):
        sel = which == b
        if sel.any():
            ece += sel.mean() * abs(correct[sel].mean() - conf[sel].mean())
    return float(ece)


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


@contextlib.contextmanager
def _limit_threads(n: int | None) -> Iterator[None]:
    """numba and BLAS limited to ``n`` threads within the block (None: unchanged). Results do
    not depend on it (the engine's streams are thread-count invariant); a busy machine does."""
    if n is None:
        yield
        return
    import numba
    from threadpoolctl import threadpool_limits  # installed with scikit-learn

    before = numba.get_num_threads()
    numba.set_num_threads(min(n, numba.config.NUMBA_NUM_THREADS))
    try:
        with threadpool_limits(limits=n):
            yield
    finally:
        numba.set_num_threads(before)


def execute_task(task: Task) -> dict[str, Any]:
    """Program a fresh chip and run the MC evaluation of one (point, seed); returns the store
    row (:data:`nsmx.store.COLUMNS`). Runs in a worker (process, Dask worker or the caller)."""
    from mapping.report import accuracy_nll
    from mapping.runtime import program_chip

    with _limit_threads(task.threads):
        program = _cached_program(task.run.program, task.program_sha256)
        x, y = _cached_data(task.dataset, task.data_dir, task.limit)
        t0 = time.perf_counter()
        model = program_chip(program, task.chip, seed=task.program_seed, p_policy=task.run.p_policy)
        program_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        result = model.run(
            x,
            task.run.samples,
            t_s=task.run.t_s,
            mode=task.run.mode,
            seed=task.read_seed,
            drift_compensation=task.run.drift_compensation,
        )
        run_s = time.perf_counter() - t0
    accuracy, nll = accuracy_nll(result.probabilities, y)
    adc = {
        name: {"conversions": int(c.adc_conversions), "saturations": int(c.adc_saturations)}
        for name, c in result.counters.items()
        if c.adc_conversions
    }
    extra = {
        "firing_rate": result.firing_rate,
        "drift_gain": model.drift_gain(task.run.t_s) if task.run.drift_compensation else 1.0,
        "adc": adc,
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


def open_or_create(path: Path, spec: SweepSpec) -> SweepStore:
    """Open the store for ``spec`` (creating it), refusing one made for another sweep."""
    definition = spec.to_dict()
    if not path.exists():
        return SweepStore.create(path, definition)
    store = SweepStore.open(path)
    stored = store.sweep
    for key in FIXED_KEYS:
        if stored.get(key) != definition.get(key):
            store.close()
            raise StoreError(
                f"{path} holds another sweep: {key} is {stored.get(key)!r} there but "
                f"{definition.get(key)!r} now; use another --out to start a new sweep"
            )
    merged = dict(definition)
    merged["seeds"] = max(int(stored.get("seeds", 1)), spec.seeds)
    if merged != stored:
        store.set_sweep(merged)
    return store


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
    """
    from tqdm.auto import tqdm

    if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
        raise SweepError(f"workers={workers!r} is out of range; allowed: integers >= 1")
    t0 = time.perf_counter()
    points = resolve_points(spec)
    tasks = make_tasks(spec, points, threads=threads)
    path = store_path(out)
    with open_or_create(path, spec) as store:
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
        )

        def commit(row: dict[str, Any]) -> None:
            if store.insert(row):
                summary.ran += 1
            bar.update(1)
            bar.set_postfix(acc=f"{row['accuracy']:.4f}")
            if on_row is not None:
                on_row(row)

        try:
            if scheduler is not None:
                _run_dask(todo, scheduler, commit)
            elif workers == 1:
                for task in todo:
                    commit(execute_task(task))
            else:
                _run_processes(todo, workers, commit)
        finally:
            bar.close()
    summary.wall_s = time.perf_counter() - t0
    return summary


def _run_processes(todo: Sequence[Task], workers: int, commit: Callable) -> None:
    import multiprocessing

    # spawn: the parent has imported torch (OpenMP); forking it can deadlock the children.
    ctx = multiprocessing.get_context("spawn")
    # Pool.__exit__ terminates the workers: an interrupted sweep leaves no orphan computing.
    with ctx.Pool(processes=min(workers, max(1, len(todo)))) as pool:
        for row in pool.imap_unordered(execute_task, todo, chunksize=1):
            commit(row)


def _run_dask(todo: Sequence[Task], scheduler: Any, commit: Callable) -> None:
    try:
        from distributed import Client, as_completed
    except ImportError:  # pragma: no cover - depends on the extra
        raise SweepError(
            "--scheduler needs the 'distributed' package: pip install 'nsm-crossbar[dask]'"
        ) from None
    own = not isinstance(scheduler, Client)
    client = Client(scheduler) if own else scheduler
    try:
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
    "RUN_FIELDS",
    "Point",
    "RunSettings",
    "SweepError",
    "SweepSpec",
    "SweepSummary",
    "Task",
    "canonical_hash",
    "derive_seeds",
    "execute_task",
    "expected_calibration_error",
    "make_tasks",
    "package_versions",
    "resolve_points",
    "run_sweep",
]
