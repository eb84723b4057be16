"""A sweep's definition and its resolution into grid points and (point, seed) tasks.

A sweep (:class:`SweepSpec`) is a compiled program, a base chip (preset or TOML file, plus
``field=value`` overrides), base run settings, and a list of *varied fields*, each with a list
of values. The grid is the Cartesian product of the varied values, in the order given.

Fields:

* chip fields by dotted path (:func:`crossbar.replace_field`): ``periphery.adc_bits``,
  ``devices.element.sigma_d_v``, ``tile.rows``, ``wires.r_wire_ohm``, ...
* run fields (:data:`RUN_FIELD_NAMES`): the fields of :class:`mapping.run_config.RunConfig`
  (``run.samples``, ``run.mode``, ``run.t_s``, ``run.p_policy``, ``run.drift_compensation``),
  set through :func:`mapping.run_config.replace_run_field` and so validated exactly as
  ``nsmx run`` and the Python API validate them, and the sweep's own ``run.program`` (another
  program file, e.g. the BN baseline next to the NSM). ``run.seed`` is not a sweep field: the
  read seeds are derived (below).

Every field and every value is validated by :func:`resolve_points` before any work starts: an
unknown field, a value out of range or a program that cannot run on the chip raises
:class:`SweepError` naming the field and the value.

Seeds: each (point, seed index) programs a fresh chip. Its programming seed and MC read seed
are spawned from ``SeedSequence([root_seed, point hash words..., seed index])``, where the point
hash is the SHA-256 of the point's canonical resolved configuration (program digest, chip, run
settings, dataset subset). Adding points to a grid therefore never changes other points'
results, and a point's result does not depend on its position in the grid or on the worker
that ran it (:mod:`nsmx.sweep_tasks`: the seeds and the tasks, re-exported here).
"""

from __future__ import annotations

import hashlib
import itertools
import json
import os
import typing
from collections.abc import Callable, Iterable, Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from devices.errors import ConfigError, ConfigTypeError
from devices.fields import check_int, check_name, field_meta
from mapping.run_config import RunConfig, replace_run_field, run_field_names

# One (point, seed)'s seeds and task (what a worker gets) live in their own module.
from nsmx.sweep_tasks import Task, derive_seeds, make_tasks

#: The run-level fields (``run.`` namespace) a sweep sets or varies: RunConfig's but ``seed``,
#: then ``run.program``.
RUN_FIELD_NAMES: tuple[str, ...] = (
    *(f"run.{name}" for name in run_field_names() if name != "seed"),
    "run.program",
)
#: Sweep definition format (recorded in the store's ``meta.sweep``).
SPEC_VERSION = 1


class SweepError(ValueError):
    """A sweep definition is invalid (field, value, program, chip) or does not match its store."""


def _checked(check: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """A :mod:`devices.fields` check whose error becomes a :class:`SweepError` (same text)."""
    try:
        return check(*args, **kwargs)
    except (ConfigError, ConfigTypeError) as exc:
        raise SweepError(str(exc)) from None


# ------------------------------------------------------------------------------ run fields


def _run_allowed(key: str, exc: ConfigError | ConfigTypeError) -> str:
    """The allowed values of run field ``key``, as a sweep's error states them."""
    if typing.get_type_hints(RunConfig)[key] is int:  # "integers >= 1 and <= 1048576"
        meta = field_meta(RunConfig, key)
        text = f"integers >= {meta['ge']}"
        return text if meta.get("le") is None else f"{text} and <= {meta['le']}"
    return exc.allowed


def replace_run(run: RunConfig, name: str, value: Any) -> RunConfig:
    """``run`` with run field ``name`` (``"run.samples"``, ...; not ``run.program``) set to
    ``value`` through :func:`~mapping.run_config.replace_run_field`; a bad name or value is a
    :class:`SweepError` naming field, value and allowed range."""
    if name == "run.seed":
        raise SweepError(
            "'run.seed' is not a sweep field: each (point, seed) derives its read seed from "
            "root_seed (vary --seeds or root_seed instead)"
        )
    if name not in RUN_FIELD_NAMES or name == "run.program":
        raise SweepError(
            f"{name!r} is not a known run field; choose one of {', '.join(RUN_FIELD_NAMES)}"
        )
    try:
        return replace_run_field(run, name, value)
    except (ConfigError, ConfigTypeError) as exc:
        allowed = _run_allowed(name.removeprefix("run."), exc)
        raise SweepError(f"{name}={value!r} {exc.problem}; allowed: {allowed}") from None


def program_path(value: Any) -> str:
    """A ``program`` / ``run.program`` value as a path string (a non-empty string or path)."""
    if isinstance(value, os.PathLike):
        value = os.fspath(value)
    return _checked(check_name, "run.program", value)


# ------------------------------------------------------------------------------ specification


@dataclass(frozen=True)
class SweepSpec:
    """A sweep definition.

    program: path of the compiled program (``run.program`` may vary it).
    chip: chip preset name or chip TOML path; ``sets``: ``field=value`` overrides of it.
    vary: ((field, (value, ...)), ...): the grid, in order (first field outermost).
    seeds: chips programmed per point (seed indices 0..seeds-1).
    samples, t_s, mode, p_policy, drift_compensation: base run settings (the fields of
    :class:`~mapping.run_config.RunConfig`, same defaults; :meth:`run_config`).
    dataset: test set (None: the one the program was trained on); limit: first N examples.
    data: the user's own data instead (an ``.npz``, :mod:`nsm.user_data`: ``x``/``y`` evaluated,
    ``x_train`` calibrates the ADCs); its SHA-256 is part of every point's identity.
    data_dir: folder of the IDX files (not part of the definition: data may move).
    root_seed: root of every derived seed.
    name: label of the sweep (study name).
    """

    program: str
    chip: str = "ideal"
    sets: tuple[str, ...] = ()
    vary: tuple[tuple[str, tuple[Any, ...]], ...] = ()
    seeds: int = 1
    samples: int = RunConfig.samples
    t_s: float = RunConfig.t_s
    mode: str = RunConfig.mode
    p_policy: str = RunConfig.p_policy
    drift_compensation: bool = RunConfig.drift_compensation
    dataset: str | None = None
    limit: int | None = None
    data: str | None = None
    data_dir: str | None = None
    root_seed: int = 0
    name: str = ""
    description: str = ""

    def __post_init__(self) -> None:
        object.__setattr__(self, "program", str(self.program))
        object.__setattr__(self, "chip", str(self.chip))
        if self.data is not None:
            object.__setattr__(self, "data", _checked(check_name, "data", os.fspath(self.data)))
            if self.dataset is not None:
                raise SweepError(
                    f"give data or dataset, not both (data {self.data!r}, dataset {self.dataset!r})"
                )
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
        _checked(check_int, "seeds", self.seeds, ge=1)
        _checked(check_int, "root_seed", self.root_seed, ge=0)
        if self.limit is not None:
            _checked(check_int, "limit", self.limit, ge=1)
        self.run_config()  # the base run settings, validated now

    def run_config(self) -> RunConfig:
        """The base run settings as a :class:`~mapping.run_config.RunConfig` (seed 0: a task's
        read seed is derived); a bad value is a :class:`SweepError` naming ``run.<field>``."""
        run = RunConfig()
        for name in RUN_FIELD_NAMES:
            if name != "run.program":
                run = replace_run(run, name, getattr(self, name.removeprefix("run.")))
        return run

    def to_dict(self) -> dict[str, Any]:
        """The definition as recorded in the store (JSON-ready; ``data_dir`` left out; with
        ``data``, its file name and ``data_sha256``; without, neither key)."""
        out = asdict(self)
        out.pop("data_dir")
        if self.data is None:
            out.pop("data")
        else:
            out["data"] = Path(self.data).name
            out["data_sha256"] = data_info(self.data).sha256
        out["vary"] = [[k, list(v)] for k, v in self.vary]
        out["sets"] = list(self.sets)
        out["spec_version"] = SPEC_VERSION
        return out


# ------------------------------------------------------------------------------ resolution


@dataclass(frozen=True)
class Point:
    """One resolved grid point: ``params`` (varied field -> value), the chip, the run settings
    (seed 0), the absolute ``program`` path, the canonical ``config`` and its SHA-256 ``hash``."""

    index: int
    params: Mapping[str, Any]
    chip: Any  # crossbar.ChipConfig
    run: RunConfig
    program: str
    config: Mapping[str, Any]
    hash: str


@dataclass(frozen=True)
class ProgramInfo:
    """A program file as the sweep knows it: absolute path, SHA-256, dataset, input shape."""

    path: str
    sha256: str
    dataset: str
    input_shape: tuple[int, ...]


@dataclass(frozen=True)
class DataInfo:
    """The user's data file as the sweep knows it: absolute path, file name, SHA-256."""

    path: str
    name: str
    sha256: str


def data_info(path: str | os.PathLike[str]) -> DataInfo:
    """:class:`DataInfo` of a data file; a missing file is a :class:`SweepError`."""
    path = os.path.abspath(path)
    if not os.path.isfile(path):
        raise SweepError(f"{path}: data file not found")
    return DataInfo(path, Path(path).name, file_sha256(path))


def file_sha256(path: str | os.PathLike[str]) -> str:
    """SHA-256 (hex) of a file's bytes."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def canonical_hash(config: Mapping[str, Any]) -> str:
    """SHA-256 (hex) of ``config`` as canonical JSON (sorted keys, no spaces)."""
    text = json.dumps(config, sort_keys=True, separators=(",", ":"), allow_nan=False)
    return hashlib.sha256(text.encode()).hexdigest()


def _program_info(
    path: str, dataset: str | None, cache: dict[str, tuple[ProgramInfo, Any]], *, data=None
) -> tuple[ProgramInfo, Any]:
    from mapping.program import ProgramError, load_program
    from nsm.data import DATASET_NAMES
    from nsm.models import MODELS

    key = os.path.abspath(path)
    if key in cache:
        return cache[key]
    try:
        program = load_program(path)
    except ProgramError as exc:
        raise SweepError(str(exc)) from None
    model = program.source.get("model")
    if data is not None:  # the user's data: checked against the program's input and classes
        from nsm.data import DatasetError
        from nsm.user_data import load_npz

        try:
            load_npz(data.path, input_shape=program.input_shape, n_classes=program.n_classes)
        except DatasetError as exc:
            raise SweepError(str(exc)) from None
        dataset = data.name
    elif dataset is None and program.source.get("dataset") in DATASET_NAMES:
        dataset = program.source["dataset"]  # a user architecture that names its set
    elif dataset is None:
        if model not in MODELS:
            raise SweepError(
                f"{path} does not record the dataset it was trained on; give data (an .npz) "
                "or dataset (digits, mnist, fashion-mnist)"
            )
        dataset = MODELS[model].dataset
    info = ProgramInfo(key, file_sha256(path), dataset, tuple(program.input_shape))
    cache[key] = (info, program)
    return cache[key]


def _run_identity(run: RunConfig) -> dict[str, Any]:
    """The run settings as a point's configuration holds them (the read seed is per task)."""
    return {k: v for k, v in run.to_dict().items() if k != "seed"}


def resolve_points(spec: SweepSpec) -> list[Point]:
    """Validate the whole sweep and return its grid points (no chip is programmed).

    Raises :class:`SweepError` for an unknown field, a value out of range (naming field, value
    and allowed range), a missing or invalid program, programs of different datasets, or a
    program whose noise type the chip's stochastic element cannot realise.
    """
    from crossbar import ChipError, replace_field, resolve_chip
    from mapping.records import ConvLayer, DenseLayer
    from mapping.runtime import MappingError, read_conditions

    try:
        base_chip = resolve_chip(spec.chip, spec.sets)
    except ChipError as exc:
        raise SweepError(str(exc)) from None
    base_run = spec.run_config()

    seen: set[str] = set()
    for name, values in spec.vary:
        if name in seen:
            raise SweepError(f"--vary {name} is given twice")
        seen.add(name)
        if not values:
            raise SweepError(f"--vary {name} has no values")
        for value in values:
            if name == "run.program":
                program_path(value)
            elif name.startswith("run."):
                replace_run(base_run, name, value)
            else:
                try:
                    replace_field(base_chip, name, value)
                except (ConfigError, ConfigTypeError) as err:
                    raise SweepError(f"--vary {name}={value!r}: {err}") from None

    programs: dict[str, tuple[ProgramInfo, Any]] = {}
    data = data_info(spec.data) if spec.data is not None else None
    datasets = set()
    points: list[Point] = []
    names = [name for name, _ in spec.vary]
    for index, combo in enumerate(itertools.product(*[values for _, values in spec.vary])):
        chip, run, path = base_chip, base_run, spec.program
        for name, value in zip(names, combo, strict=True):
            if name == "run.program":
                path = program_path(value)
            elif name.startswith("run."):
                run = replace_run(run, name, value)
            else:
                try:
                    chip = replace_field(chip, name, value)
                except (ConfigError, ConfigTypeError) as err:  # a combination out of range
                    where = dict(zip(names, combo, strict=True))
                    raise SweepError(f"point {where}: {err}") from None
        info, program = _program_info(path, spec.dataset, programs, data=data)
        datasets.add(info.dataset)
        for layer in program.layers:
            if isinstance(layer, (DenseLayer, ConvLayer)):
                try:
                    read_conditions(chip, layer, run.p_policy)
                except MappingError as exc:
                    raise SweepError(f"{info.path}: {exc}") from None
        config = {
            "program": {"sha256": info.sha256, "name": Path(info.path).name},
            "chip": _chip_identity(chip),
            "run": _run_identity(run),
            "dataset": info.dataset,
            "limit": spec.limit,
        }
        if data is not None:  # only then: the hashes of points on bundled data are unchanged
            config["data"] = {"name": data.name, "sha256": data.sha256}
        # The values as the chip / run settings hold them (a TOML 0 for a float field is 0.0).
        params = {n: _field_value(chip, run, n, v) for n, v in zip(names, combo, strict=True)}
        points.append(Point(index, params, chip, run, info.path, config, canonical_hash(config)))
    if len(datasets) > 1:
        raise SweepError(f"the sweep's programs use different datasets {sorted(datasets)}")
    if len({p.hash for p in points}) != len(points):
        raise SweepError("the grid has duplicate points (a value is repeated)")
    return points


def _chip_identity(chip: Any) -> dict[str, Any]:
    """The chip as a point's configuration holds it: its dict form, without the ``cost`` section
    when that holds the defaults (cost parameters change no simulated number; leaving the
    default section out keeps the hashes, and so the seeds, of points defined before it),
    without the ADC calibration fields when the chip does not calibrate on data and without
    ``gain_grid`` when it is ``"fixed"``."""
    from crossbar.cost import CostConfig

    out = chip.to_dict()
    if chip.cost == CostConfig():
        out.pop("cost")
    # The ADC calibration settings act only with adc_range = "calibrated": left out otherwise,
    # a point defined before they existed (an "rms" or "fixed" chip) keeps its hash and seeds.
    if chip.periphery.adc_range != "calibrated":
        for name in _CALIBRATION_FIELDS:
            out["periphery"].pop(name)
    if chip.periphery.gain_grid == "fixed":  # the only gain grid before the field existed
        out["periphery"].pop("gain_grid")
    return out


#: PeripheryConfig fields that only the "calibrated" ADC range rule reads
_CALIBRATION_FIELDS = (
    "adc_cal_percentile",
    "adc_cal_headroom",
    "adc_cal_examples",
    "adc_cal_samples",
)


def _field_value(chip: Any, run: RunConfig, name: str, given: Any) -> Any:
    if name == "run.program":  # as given (the resolved path is in the task)
        return str(given)
    if name.startswith("run."):
        return getattr(run, name.removeprefix("run."))
    value = chip
    for part in name.split("."):
        value = getattr(value, part)
    return value


__all__ = [
    "RUN_FIELD_NAMES",
    "SPEC_VERSION",
    "DataInfo",
    "Point",
    "ProgramInfo",
    "SweepError",
    "SweepSpec",
    "Task",
    "canonical_hash",
    "data_info",
    "derive_seeds",
    "file_sha256",
    "make_tasks",
    "program_path",
    "replace_run",
    "resolve_points",
]
