"""One (point, seed) of a sweep as work: its derived seeds and the task a worker runs.

Seeds: each (point, seed index) programs a fresh chip. Its programming seed and MC read seed
are spawned from ``SeedSequence([root_seed, point hash words..., seed index])``
(:func:`derive_seeds`), where the point hash is the SHA-256 of the point's canonical resolved
configuration (:func:`nsmx.sweep_spec.resolve_points`). A point's result therefore depends
neither on its position in the grid nor on the worker that ran it. :func:`make_tasks` turns
resolved points into :class:`Task` records, which hold everything a worker needs and can be
pickled (worker processes, Dask).
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from mapping.run_config import RunConfig

if TYPE_CHECKING:
    from nsmx.sweep_spec import Point, SweepSpec


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


@dataclass(frozen=True)
class Task:
    """Everything a worker needs to run one (point, seed): picklable, no open resources.

    ``run`` is the point's run settings with ``seed`` set to the derived ``read_seed``.
    """

    #: the point: its varied values, canonical configuration, its hash and grid index
    params: Mapping[str, Any]
    config: Mapping[str, Any]
    point_hash: str
    point_index: int
    #: the seed index 0..seeds-1
    seed: int
    #: the chip (a crossbar.ChipConfig) and the run settings of this task
    chip: Any
    run: RunConfig
    #: the program file (absolute path) and its SHA-256
    program: str
    program_sha256: str
    #: the bundled test set evaluated, its first ``limit`` examples, the folder of its files
    dataset: str
    limit: int | None
    data_dir: str | None
    #: the derived seeds (:func:`derive_seeds`)
    program_seed: int
    read_seed: int
    #: numba threads of the worker (None: numba's default)
    threads: int | None = 1
    #: the user's data file (absolute path) and its SHA-256 (None: the bundled ``dataset``)
    data: str | None = None
    data_sha256: str | None = None
    #: plugin modules the worker imports before building a chip (:mod:`devices.plugins`)
    plugins: tuple[str, ...] = ()


def make_tasks(
    spec: SweepSpec,
    points: Sequence[Point],
    *,
    threads: int | None = 1,
    plugins: Sequence[str] = (),
) -> list[Task]:
    """One :class:`Task` per (point, seed index), points outer; ``plugins``: the plugin modules
    each worker imports first (:func:`devices.plugins.loaded_plugins` of the caller). The
    user's data file is the spec's, its SHA-256 the one each point's configuration recorded."""
    data = None if spec.data is None else os.path.abspath(spec.data)
    shared = {"limit": spec.limit, "data_dir": spec.data_dir, "threads": threads, "data": data}
    tasks = []
    for point in points:
        of_point = {
            "params": dict(point.params),
            "config": point.config,
            "point_hash": point.hash,
            "point_index": point.index,
            "chip": point.chip,
            "program": point.program,
            "program_sha256": point.config["program"]["sha256"],
            "dataset": point.config["dataset"],
            "data_sha256": None if data is None else point.config["data"]["sha256"],
        }
        for s in range(spec.seeds):
            program_seed, read_seed = derive_seeds(spec.root_seed, point.hash, s)
            run = dataclasses.replace(point.run, seed=read_seed)
            tasks.append(
                Task(
                    **of_point,
                    **shared,
                    seed=s,
                    run=run,
                    program_seed=program_seed,
                    read_seed=read_seed,
                    plugins=tuple(plugins),
                )
            )
    return tasks


__all__ = ["Task", "derive_seeds", "make_tasks"]
