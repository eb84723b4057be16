"""``nsmx sweep``, ``nsmx sweep export`` and ``nsmx plot``.

``nsmx sweep model.nsmx --chip PRESET --vary FIELD=v1,v2,... [--vary ...] --seeds N
--samples S [--mode clt] --out runs/NAME [--workers N | --scheduler ADDRESS]``
    runs the grid (see :mod:`nsmx.sweep_spec` and :mod:`nsmx.sweep`); rerunning the same
    command resumes (finished (point, seed) rows are skipped).
``nsmx sweep --file studies/x.toml [--study NAME ...] --out runs/`` runs named studies of a
    sweep file, each into ``runs/<study>`` (format: :func:`load_sweep_file`).
``nsmx sweep export runs/NAME -o table.csv`` writes the store as a CSV table.
``nsmx plot runs/NAME [--metric accuracy]`` writes the figures (:mod:`nsmx.sweep_plots`).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from nsm.toml_io import read_toml_file
from nsmx.args import (
    UserError,
    add_chip_args,
    add_data_args,
    add_output_args,
    add_plugin_arg,
    add_run_args,
    nonnegative_int,
    positive_int,
)
from nsmx.json_output import print_json
from nsmx.sweep_plots import FORMATS, METRICS, SCALES
from nsmx.sweep_spec import RUN_FIELD_NAMES, SweepError, SweepSpec

#: Keys of a study table in a sweep file (and of its ``[defaults]``).
STUDY_KEYS = (
    "program",
    "chip",
    "set",
    "vary",
    "seeds",
    "dataset",
    "data",
    "limit",
    "root_seed",
    "description",
    "run",
)
#: Keys of a study's ``run`` table: the sweep's run fields without ``run.`` (``program`` is a
#: study key of its own).
RUN_KEYS = tuple(n.removeprefix("run.") for n in RUN_FIELD_NAMES if n != "run.program")


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Register ``sweep`` and ``plot`` on an ``argparse`` subparsers object."""
    p = subparsers.add_parser(
        "sweep",
        help="sweep chip / run fields over a grid (resumable store); 'sweep export' writes CSV",
        description="nsmx sweep PROGRAM --vary FIELD=v1,v2 ... --out runs/NAME  |  "
        "nsmx sweep --file studies.toml --out runs/  |  nsmx sweep export runs/NAME -o t.csv",
    )
    p.add_argument(
        "target",
        nargs="*",
        metavar="PROGRAM | export RUN_DIR",
        help="compiled program (.nsmx), or 'export' and a run folder",
    )
    # Defaults None: a flag overrides a sweep file's setting only when given.
    add_chip_args(
        p,
        default=None,
        program_seed=False,
        set_help="override a chip field for every point (repeatable)",
    )
    p.add_argument(
        "--vary",
        action="append",
        default=[],
        metavar="FIELD=V1,V2,...",
        help="a varied field and its values: chip fields by dotted path "
        "(periphery.adc_bits=4,6,8) or run.samples, run.t_s, run.mode, "
        "run.p_policy, run.drift_compensation, run.program (repeatable: a grid)",
    )
    p.add_argument(
        "--seeds", type=positive_int, default=None, help="chips programmed per point (default: 1)"
    )
    add_run_args(p, defaults=False, seed=False)
    add_data_args(p)
    p.add_argument(
        "--root-seed",
        type=nonnegative_int,
        default=None,
        help="root of every derived seed (default: 0)",
    )
    p.add_argument("--file", default=None, help="a sweep file (TOML) with named studies")
    p.add_argument(
        "--study",
        action="append",
        default=[],
        help="run only these studies of --file (repeatable; default: all)",
    )
    p.add_argument(
        "--program-dir",
        default=None,
        help="folder that program names in --file are relative to (default: the file's folder)",
    )
    p.add_argument(
        "--out",
        "-o",
        default=None,
        help="run folder (a sweep), parent folder (--file), or CSV path (export)",
    )
    p.add_argument(
        "--workers",
        type=positive_int,
        default=1,
        help="local worker processes (default: 1, in this process)",
    )
    p.add_argument(
        "--scheduler",
        default=None,
        help="address of a Dask distributed scheduler (tcp://host:port)",
    )
    p.add_argument(
        "--task-threads",
        type=positive_int,
        default=1,
        help="BLAS/numba threads per task (default: %(default)s)",
    )
    add_plugin_arg(p)
    add_output_args(p)

    q = subparsers.add_parser(
        "plot",
        help="plot a sweep's metrics (PNG and PDF by default)",
        description="nsmx plot runs/NAME [--metric accuracy] [--x FIELD] [--xscale log] "
        "[--reference software=0.972] [--format svg]: one figure per metric (and a heatmap "
        "for a two-field grid); prints the summary table",
    )
    q.add_argument("run_dir", help="a sweep's run folder (holding sweep.sqlite)")
    q.add_argument(
        "--metric",
        action="append",
        default=[],
        choices=list(METRICS),
        help="metric(s) to plot (default: accuracy); energy, latency, area: per classification",
    )
    q.add_argument(
        "--pareto",
        action="store_true",
        help="also plot accuracy against energy per classification, one point per grid point",
    )
    q.add_argument("--x", default=None, help="varied field on the x axis (default: the first)")
    q.add_argument(
        "--xscale",
        choices=SCALES,
        default="auto",
        help="x axis: auto (log for log-spaced values or a span of two decades, symmetric-log "
        "through zero; times in s/min/h/days/years), linear, log or symlog (default: auto)",
    )
    q.add_argument(
        "--yscale",
        choices=SCALES,
        default="auto",
        help="y axis: auto (log for the cost metrics), linear, log or symlog (default: auto)",
    )
    q.add_argument(
        "--logx", dest="xscale", action="store_const", const="log", help="same as --xscale log"
    )
    q.add_argument(
        "--logy", dest="yscale", action="store_const", const="log", help="same as --yscale log"
    )
    q.add_argument(
        "--reference",
        action="append",
        default=[],
        metavar="LABEL=ACCURACY",
        help="a dashed reference line on the accuracy/error figures, e.g. software=0.972 or "
        "'ideal chip=96.5%%' (repeatable; the store holds neither: nsmx run PROGRAM --chip "
        "ideal prints both)",
    )
    q.add_argument(
        "--format",
        dest="formats",
        action="append",
        choices=FORMATS,
        default=None,
        help="figure file format (repeatable; default: png and pdf)",
    )
    q.add_argument("--out", "-o", default=None, help="figure folder (default: the run folder)")
    q.add_argument("--name", default=None, help="figure file stem (default: sweep_<run name>)")
    return p


# ------------------------------------------------------------------------------ parsing


def parse_vary(item: str) -> tuple[str, tuple[Any, ...]]:
    """``"periphery.adc_bits=4,6,8"`` -> ``("periphery.adc_bits", (4, 6, 8))`` (values as TOML
    literals, bare words as strings)."""
    from crossbar import parse_value

    form = "must have the form FIELD=V1,V2,... (e.g. periphery.adc_bits=4,6,8)"
    if not isinstance(item, str) or "=" not in item:
        raise SweepError(f"--vary {item!r} {form}")
    key, _, values = item.partition("=")
    key = key.strip()
    parts = [v for v in values.split(",")]
    if not key or not values.strip() or any(not v.strip() for v in parts):
        raise SweepError(f"--vary {item!r} {form}")
    return key, tuple(parse_value(v) for v in parts)


def load_sweep_file(
    path: str | os.PathLike[str], *, program_dir: str | os.PathLike[str] | None = None
) -> dict[str, dict[str, Any]]:
    """Read a sweep file: ``{study name: SweepSpec keyword arguments}``.

    Format (TOML)::

        [defaults]                 # optional: applies to every study
        program = "mnist-mlp-nsm.nsmx"   # relative to --program-dir or the file's folder
        chip = "rram-selector"     # preset or chip TOML (relative to the file's folder)
        set = ["periphery.adc_bits=8"]
        seeds = 3
        dataset = "mnist"          # or data = "my-data.npz" (the file's folder is the base)
        limit = 2000
        root_seed = 0
        [defaults.run]
        samples = 20
        mode = "clt"

        [studies.adc_bits]
        description = "ADC bits for partial sums"
        set = ["periphery.partial_sums=adc"]
        [studies.adc_bits.vary]    # the grid, in order
        "periphery.adc_bits" = [3, 4, 5, 6, 8]

    A study's ``set`` is appended to the defaults'; ``run`` tables merge; other keys replace.
    Program names (``program`` and ``run.program`` values) resolve against ``program_dir``.
    """

    path = Path(path)
    data = read_toml_file(
        path, SweepError, missing="sweep file not found", unreadable="not a readable sweep file"
    )
    unknown = set(data) - {"defaults", "studies"}
    if unknown:
        raise SweepError(
            f"{path}: unknown top-level tables {sorted(unknown)}; allowed: defaults, studies"
        )
    studies = data.get("studies")
    if not isinstance(studies, dict) or not studies:
        raise SweepError(f"{path}: no [studies.NAME] tables")
    defaults = data.get("defaults", {})
    base = Path(program_dir) if program_dir is not None else path.parent
    out = {}
    for name, table in {"defaults": defaults, **studies}.items():
        if not isinstance(table, dict):
            raise SweepError(f"{path}: [{name}] must be a table")
        for key in table:
            if key not in STUDY_KEYS:
                raise SweepError(
                    f"{path}: [{name}] key {key!r} is unknown; allowed: {', '.join(STUDY_KEYS)}"
                )
        for key in table.get("run", {}):
            if key not in RUN_KEYS:
                raise SweepError(
                    f"{path}: [{name}.run] key {key!r} is unknown; allowed: {', '.join(RUN_KEYS)}"
                )
    for name, table in studies.items():
        merged: dict[str, Any] = {**defaults, **table}
        merged["set"] = [*defaults.get("set", []), *table.get("set", [])]
        merged["run"] = {**defaults.get("run", {}), **table.get("run", {})}
        vary = merged.pop("vary", {})
        if not isinstance(vary, dict):
            raise SweepError(f"{path}: [studies.{name}.vary] must be a table FIELD = [values]")
        items = []
        for field_name, values in vary.items():
            if not isinstance(values, list):
                raise SweepError(f"{path}: studies.{name}.vary.{field_name} must be a list")
            if field_name == "run.program":
                values = [str(base / v) for v in values]
            items.append((field_name, tuple(values)))
        if "program" not in merged:
            raise SweepError(f"{path}: study {name!r} has no program (set it in [defaults])")
        chip = merged.get("chip", "ideal")
        if str(chip).endswith(".toml"):
            chip = str(path.parent / chip)
        if "data" in merged:
            merged["data"] = str(path.parent / merged["data"])
        kwargs = dict(
            program=str(base / merged["program"]),
            chip=chip,
            sets=tuple(merged["set"]),
            vary=tuple(items),
            name=name,
            description=merged.get("description", ""),
            **{
                k: merged[k]
                for k in ("seeds", "dataset", "data", "limit", "root_seed")
                if k in merged
            },
            **merged["run"],
        )
        out[name] = kwargs
    return out


def _spec_from_args(args: argparse.Namespace, base: Mapping[str, Any] | None = None):
    """A SweepSpec from the command line, optionally over a sweep-file study's settings."""

    kwargs: dict[str, Any] = dict(base or {})
    if args.target:
        kwargs["program"] = args.target[0]
    for key in ("chip", "seeds", *RUN_KEYS, "dataset", "data", "limit", "root_seed"):
        value = getattr(args, key)
        if value is not None:
            kwargs[key] = value
    # The command line's --data replaces a study's dataset, and --dataset a study's data.
    if args.data is not None and args.dataset is None:
        kwargs.pop("dataset", None)
    if args.dataset is not None and args.data is None:
        kwargs.pop("data", None)
    if args.sets:
        kwargs["sets"] = (*kwargs.get("sets", ()), *args.sets)
    if args.vary:
        extra = [parse_vary(v) for v in args.vary]
        kwargs["vary"] = (*kwargs.get("vary", ()), *extra)
    kwargs["data_dir"] = args.data_dir
    if "program" not in kwargs:
        raise UserError("give a program (nsmx sweep model.nsmx ...) or --file")
    return SweepSpec(**kwargs)


# ------------------------------------------------------------------------------ commands


def run(args: argparse.Namespace) -> int:
    """``nsmx sweep``."""
    from nsmx.store import StoreError

    # Ctrl-C and SIGTERM (nsmx.interrupts) stop the workers and keep the committed rows.
    try:
        if args.target[:1] == ["export"]:
            return _export(args)
        return _sweep(args)
    except (SweepError, StoreError) as exc:
        raise UserError(str(exc)) from exc


def _export(args: argparse.Namespace) -> int:
    from nsmx.safe_io import check_output_file

    if len(args.target) != 2 or not args.out:
        raise UserError("usage: nsmx sweep export RUN_DIR -o table.csv")
    check_output_file(args.out, "export -o")
    n = export_csv(args.target[1], args.out)
    if args.json:
        print_json({"rows": n, "csv": str(args.out)})
    else:
        print(f"wrote {n} rows to {args.out}")
    return 0


def export_csv(run_dir: str | os.PathLike[str], path: str | os.PathLike[str]) -> int:
    """Write the sweep of ``run_dir`` as a CSV table, atomically; returns the number of rows.

    The columns are :func:`nsmx.results.load_results`'s: identity (``point_index``, ``seed``,
    ...), the varied fields first, then every fixed setting (chip fields, ``run.*``,
    ``program``, ``dataset``, ``limit``, ``data``), then the metrics; so the tables of two sweeps
    concatenate into one that still tells them apart. A list-valued setting is one JSON cell.
    """
    from nsmx.results import load_results
    from nsmx.safe_io import atomic_write
    from nsmx.store import open_store

    with open_store(run_dir) as store:
        varied = [name for name, _ in store.sweep.get("vary", [])]
    frame = load_results(run_dir)
    identity = ["sweep", "point_index", "point_hash", "seed"]
    head = [c for c in (*identity, *varied) if c in frame.columns]
    frame = frame[[*head, *(c for c in frame.columns if c not in head)]]
    for column in frame.columns:  # Series.map: pandas >= 1.5 (DataFrame.map is 2.1)
        frame[column] = frame[column].map(
            lambda v: json.dumps(list(v)) if isinstance(v, tuple) else v
        )
    with atomic_write(path, "w", newline="", encoding="utf-8") as fh:
        frame.to_csv(fh, index=False)
    return len(frame)


def _sweep(args: argparse.Namespace) -> int:
    from nsmx.sweep import resolve_points, run_sweep

    # With --json, stdout holds the JSON object alone (nsmx.json_output): human lines to stderr.
    human = sys.stderr if args.json else sys.stdout
    if not args.out:
        raise UserError("--out is required (the run folder)")
    if args.file:
        studies = load_sweep_file(args.file, program_dir=args.program_dir)
        names = args.study or list(studies)
        for name in names:
            if name not in studies:
                raise UserError(
                    f"study {name!r} is not in {args.file}; it has {', '.join(studies)}"
                )
        if len(args.target) > 1:
            raise UserError("with --file give no positional arguments")
        jobs = [(_spec_from_args(args, studies[n]), Path(args.out) / n) for n in names]
    else:
        if len(args.target) != 1:
            raise UserError("give exactly one program (nsmx sweep model.nsmx ...)")
        spec = _spec_from_args(args)
        if not spec.name:
            from dataclasses import replace

            spec = replace(spec, name=Path(args.out).name)
        jobs = [(spec, Path(args.out))]
    # Validate every study before any work starts: grid, output folder, the store's sweep.
    from nsmx.provenance import check_store
    from nsmx.safe_io import check_output_dir, check_output_file

    resolved = [(spec, out, resolve_points(spec)) for spec, out in jobs]
    for spec, out, points in resolved:
        (check_output_file if out.suffix == ".sqlite" else check_output_dir)(out, "--out")
        check_store(out, spec, points)
    results = []
    for spec, out, points in resolved:
        grid = " x ".join(f"{k}[{len(v)}]" for k, v in spec.vary) or "one point"
        seeds = "1 seed" if spec.seeds == 1 else f"{spec.seeds} seeds"
        print(
            f"sweep {spec.name}: {len(points)} points ({grid}) x {seeds} -> {out}",
            file=human,
            flush=True,
        )
        summary = run_sweep(
            spec,
            out,
            workers=args.workers,
            scheduler=args.scheduler,
            threads=args.task_threads,
            progress=not args.no_progress,
        )
        print(
            f"  {summary.ran} run, {summary.skipped} already stored, "
            f"{summary.wall_s:.1f} s; store {summary.store}",
            file=human,
        )
        _print_summary(summary.store, human)
        results.append(
            {
                "name": spec.name,
                "out": str(out),
                "points": summary.points,
                "tasks": summary.tasks,
                "ran": summary.ran,
                "skipped": summary.skipped,
                "wall_s": summary.wall_s,
            }
        )
    if args.json:
        print_json({"sweeps": results})
    return 0


def _print_summary(store_file: Path, stream: Any) -> None:
    """The finished sweep's table: one line per grid point, mean ± std over its seeds, or the
    value alone for one seed (stderr with --json, so stdout stays one JSON line)."""
    from nsmx.store import open_store
    from nsmx.sweep_plots import format_markdown, summary_caption, summary_table

    with open_store(store_file) as store:
        table = summary_table(store)
    for line in format_markdown(table):
        print(f"  {line}", file=stream)
    if table:
        print(f"  ({summary_caption(table)})", file=stream)


def plot(args: argparse.Namespace) -> int:
    """``nsmx plot``."""
    from nsmx.provenance import settings_columns
    from nsmx.safe_io import check_output_dir
    from nsmx.store import StoreError, open_store
    from nsmx.sweep_plots import (
        PlotError,
        format_markdown,
        parse_reference,
        plot_pareto,
        plot_store,
        summary_caption,
        summary_table,
    )

    formats = tuple(dict.fromkeys(args.formats or ("png", "pdf")))
    try:
        references = dict(parse_reference(r) for r in args.reference)
        with open_store(args.run_dir) as store:
            stem = args.name or f"sweep_{Path(args.run_dir).name}"
            out_dir = check_output_dir(args.out or args.run_dir, "plot -o (figure folder)")
            extras = settings_columns(store.rows())
            if extras:  # a store written before sweep identities: rows of several settings
                print(
                    "note: the store holds rows of the same varied values under different "
                    f"settings ({', '.join(extras)}); each setting is its own series "
                    "(no heatmap), never pooled"
                )
            paths = plot_store(
                store,
                metrics=args.metric or ["accuracy"],
                x=args.x,
                out_dir=out_dir,
                stem=stem,
                formats=formats,
                xscale=args.xscale,
                yscale=args.yscale,
                references=references,
            )
            if args.pareto:
                paths += plot_pareto(store, out_dir=out_dir, stem=stem, formats=formats)
            table = summary_table(store)
    except (StoreError, PlotError) as exc:
        raise UserError(str(exc)) from exc
    for line in format_markdown(table):
        print(line)
    if table:
        print(f"({summary_caption(table)})")
    for path in paths:
        print(f"wrote {path}")
    return 0
