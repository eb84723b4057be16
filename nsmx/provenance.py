"""What a sweep store holds: the sweep's identity, the check that a resumed sweep is the same
sweep, and the settings that tell stored rows apart.

The *identity* of a sweep (:func:`sweep_identity`, recorded in the store's ``meta.identity``)
is everything that shapes a row but the varied values and the seed count:

``definition``    every run setting and data choice of :meth:`SweepSpec.to_dict` (samples, mode,
                  t_s, p_policy, drift_compensation, dataset, limit, root_seed, the data file's
                  SHA-256 ...), without labels (name, description) and paths;
``dataset``       the test set the points evaluate (resolved: the program's own when not given);
``programs``      file name -> SHA-256 of every program the sweep runs (a file recompiled under
                  the same name is another program);
``chip``          the chip as given (preset or file, ``--set``: a label) and ``chip_content``,
                  its resolved configuration (what a point's configuration holds);
``grid``          the varied fields and their values.

A resumed sweep (:func:`check_resume`) may add seeds and values of its varied fields; anything
else that differs is refused, naming each difference. Stores written before identities were
recorded are checked against their recorded definition and against every stored row's resolved
configuration, then given their identity (a migration in place, nothing rewritten).

Rows of different settings are never pooled: :func:`settings_columns` names the configuration
entries that differ between rows of the same varied values (stores written before this check),
and plots, tables and exports show them as separate series and columns.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

# The row settings live with the store's tables (which export them); re-exported here.
from nsmx.store_table import canonical, flatten, settings_columns, settings_of

#: ``meta.identity`` layout version.
IDENTITY_VERSION = 1
#: Definition keys that are labels, paths or the grid (compared elsewhere or not at all).
#: (``dataset`` as given: the resolved one is compared; ``data``: the file name, its hash counts.)
_NOT_IDENTITY = (
    *("name", "description", "seeds", "vary", "program", "chip", "sets", "spec_version"),
    *("dataset", "data"),
)
#: Definition keys that are run settings (named ``run.<key>`` in messages).
_RUN_KEYS = ("samples", "t_s", "mode", "p_policy", "drift_compensation")


def sweep_identity(spec: Any, points: Sequence[Any]) -> dict[str, Any]:
    """The identity of a resolved sweep (``spec``: :class:`~nsmx.sweep_spec.SweepSpec`,
    ``points``: :func:`~nsmx.sweep_spec.resolve_points`), JSON-ready."""
    from crossbar import resolve_chip
    from nsmx.sweep_spec import _chip_identity

    definition = {k: v for k, v in spec.to_dict().items() if k not in _NOT_IDENTITY}
    programs = {p.config["program"]["name"]: p.config["program"]["sha256"] for p in points}
    return {
        "identity_version": IDENTITY_VERSION,
        "definition": definition,
        "dataset": points[0].config["dataset"] if points else spec.dataset,
        "programs": dict(sorted(programs.items())),
        "chip": {"spec": str(spec.chip), "sets": list(spec.sets)},
        "chip_content": _chip_identity(resolve_chip(spec.chip, spec.sets)),
        "grid": [[name, list(values)] for name, values in spec.vary],
    }


def _show(value: Any) -> str:
    if isinstance(value, str) and len(value) == 64 and all(c in "0123456789abcdef" for c in value):
        return f"SHA-256 {value[:12]}..."
    return repr(value)


def _differences(
    a: Mapping[str, Any], b: Mapping[str, Any], name: Callable[[str], str], skip: Iterable[str]
) -> list[str]:
    """``"NAME is X there but Y now"`` for each key of flat mappings ``a`` (stored) and ``b``
    (now) whose values differ, keys in ``skip`` aside; ``name(key)`` is the name shown (a
    missing key is shown as 'not recorded' / 'absent')."""
    skip = set(skip)
    out = []
    for key in sorted(set(a) | set(b)):
        if key in skip or a.get(key, _MISSING) == b.get(key, _MISSING):
            continue
        there = _show(a[key]) if key in a else "not recorded"
        here = _show(b[key]) if key in b else "absent"
        out.append(f"{name(key)} is {there} there but {here} now")
    return out


def _leaf_differences(
    stored: Mapping[str, Any], now: Mapping[str, Any], prefix: str, skip: Iterable[str] = ()
) -> list[str]:
    """:func:`_differences` of the leaves of nested mappings, named ``prefix`` + dotted key."""
    return _differences(flatten(stored), flatten(now), lambda key: f"{prefix}{key}", skip)


_MISSING = object()


def _definition_name(key: str) -> str:
    return f"run.{key}" if key in _RUN_KEYS else key


def identity_differences(stored: Mapping[str, Any], now: Mapping[str, Any]) -> list[str]:
    """What differs between a store's identity and the identity of the sweep run now, one
    phrase per difference; empty when the sweep may resume. Seeds and added grid values are
    allowed changes (not differences); the chip's spelling (preset name or file path) is a
    label, its resolved content is compared."""
    out: list[str] = []
    grid_now = [name for name, _ in now.get("grid", [])]
    grid_then = [name for name, _ in stored.get("grid", [])]
    if grid_now != grid_then:
        out.append(f"the grid varies {grid_then} there but {grid_now} now")
    varied = set(grid_now) & set(grid_then)
    skip_def = {k for k in _RUN_KEYS if f"run.{k}" in varied}
    definition = stored.get("definition", {}), now.get("definition", {})
    out += _differences(*definition, _definition_name, skip_def)
    if stored.get("dataset") != now.get("dataset"):
        out.append(f"dataset is {stored.get('dataset')!r} there but {now.get('dataset')!r} now")
    progs_then, progs_now = stored.get("programs", {}), now.get("programs", {})
    for name in sorted(set(progs_then) & set(progs_now)):
        if progs_then[name] != progs_now[name]:
            out.append(
                f"program {name} is {_show(progs_then[name])} there but "
                f"{_show(progs_now[name])} now (the file was recompiled or changed)"
            )
    if "run.program" not in varied and set(progs_then) != set(progs_now):
        out.append(f"program is {sorted(progs_then)} there but {sorted(progs_now)} now")
    chip_skip = {name for name in varied if not name.startswith("run.")}
    out += _leaf_differences(
        stored.get("chip_content", {}), now.get("chip_content", {}), "chip.", chip_skip
    )
    return out


def merged_grid(stored: Sequence[Sequence[Any]], now: Sequence[Sequence[Any]]) -> list[list[Any]]:
    """The grid a resumed store records: each field's stored values, then the new ones."""
    values = {name: list(v) for name, v in stored}
    out = []
    for name, new in now:
        old = values.get(name, [])
        out.append([name, old + [v for v in new if v not in old]])
    return out


def row_differences(
    stored: Mapping[str, tuple[Mapping[str, Any], Mapping[str, Any]]], points: Sequence[Any]
) -> list[str]:
    """Differences between stored rows and the new sweep's points of the same varied values.

    ``stored``: point hash -> (params, resolved configuration) as the store holds them. A point
    whose varied values match a stored row's but whose hash differs is another setting: its
    configuration entries that differ are named (one phrase each, first point only)."""
    by_params: dict[str, list[tuple[str, Mapping[str, Any]]]] = {}
    for point_hash, (params, config) in stored.items():
        by_params.setdefault(canonical(params), []).append((point_hash, config))
    for point in points:
        for point_hash, config in by_params.get(canonical(dict(point.params)), []):
            if point_hash != point.hash:
                diffs = _leaf_differences(config, point.config, "")
                return diffs or [f"a stored row's configuration (point {point.index})"]
    return []


def legacy_differences(stored: Mapping[str, Any], spec: Any) -> list[str]:
    """What differs between the sweep definition a store recorded before identities existed
    and ``spec``'s (run settings, data, chip as given, program file name, grid fields)."""
    now = spec.to_dict()
    out = []
    for key in ("dataset", "limit", "root_seed", *_RUN_KEYS, "data_sha256", "sets"):
        if key == "dataset" and None in (stored.get(key), now.get(key)):
            continue  # the program's own dataset: rows record the one evaluated
        if stored.get(key) != now.get(key) and not (
            key in _RUN_KEYS and any(f == f"run.{key}" for f, _ in spec.vary)
        ):
            out.append(
                f"{_definition_name(key)} is {stored.get(key)!r} there but {now.get(key)!r} now"
            )
    if Path(str(stored.get("chip"))).name != Path(spec.chip).name:
        out.append(f"chip is {stored.get('chip')!r} there but {spec.chip!r} now")
    if Path(str(stored.get("program"))).name != Path(spec.program).name:
        out.append(f"program is {stored.get('program')!r} there but {spec.program!r} now")
    then = [v[0] for v in stored.get("vary", [])]
    fields_now = [name for name, _ in spec.vary]
    if then != fields_now:
        out.append(f"the grid varies {then} there but {fields_now} now")
    return out


def resume_differences(
    store: Any, spec: Any, points: Sequence[Any], identity: Mapping[str, Any]
) -> list[str]:
    """Why ``store`` cannot take sweep ``spec`` (one phrase per difference; empty: it can). A
    store without an identity (written before) is checked against its recorded definition and
    its rows' resolved configurations."""
    stored_identity = store.identity
    if stored_identity is not None:
        return identity_differences(stored_identity, identity)
    return legacy_differences(store.sweep, spec) or row_differences(store.point_configs(), points)


def _refusal(path: Any, diffs: Sequence[str]) -> str:
    return (
        f"{path} holds another sweep: {'; '.join(diffs)}. A store takes more seeds and new "
        "values of its varied fields, nothing else: to start a new sweep use another --out "
        f"(or move {path} away)"
    )


def check_store(out: Any, spec: Any, points: Sequence[Any]) -> None:
    """Refuse (:class:`~nsmx.store.StoreError`), before any work, a run folder whose store
    holds another sweep; reads the store only (nothing when there is none yet)."""
    from nsmx.store import open_store, store_path

    path = store_path(out)
    if not path.exists():
        return
    with open_store(path) as store:
        diffs = resume_differences(store, spec, points, sweep_identity(spec, points))
    if diffs:
        from nsmx.store import StoreError

        raise StoreError(_refusal(path, diffs))


def check_resume(store: Any, spec: Any, points: Sequence[Any], identity: Mapping[str, Any]) -> None:
    """Refuse (:class:`~nsmx.store.StoreError`) to resume ``store`` with another sweep, naming
    every difference (:func:`resume_differences`); otherwise record the merged definition and
    identity (more seeds, the grid's values united; a store written before identities gets its
    identity now)."""
    from nsmx.store import StoreError

    diffs = resume_differences(store, spec, points, identity)
    if diffs:
        raise StoreError(_refusal(store.path, diffs))
    stored, stored_identity = store.sweep, store.identity
    definition = spec.to_dict()
    merged = dict(definition)
    merged["seeds"] = max(int(stored.get("seeds", 1)), spec.seeds)
    merged["vary"] = merged_grid(stored.get("vary", []), definition["vary"])
    ident = dict(identity)
    base = stored_identity["grid"] if stored_identity is not None else stored.get("vary", [])
    ident["grid"] = merged_grid(base, identity["grid"])
    if merged != stored or ident != stored_identity:
        store.set_sweep(merged, ident)


def open_for_sweep(path: str | Any, spec: Any, points: Sequence[Any]) -> Any:
    """The store at ``path`` for resolved sweep ``spec`` (``points``): locked for this process
    (:func:`nsmx.store.open_for_writing`), created with the sweep's identity, or checked to
    hold the same sweep (:func:`check_resume`)."""
    from nsmx.store import open_for_writing

    identity = sweep_identity(spec, points)
    store, created = open_for_writing(path, spec.to_dict(), identity)
    if not created:
        try:
            check_resume(store, spec, points, identity)
        except BaseException:
            store.close()
            raise
    return store


# ------------------------------------------------------------------------------ stored rows


def setting_label(column: str, value: Any) -> str:
    """``run.samples=8``; a SHA-256 shortened to 10 digits; ``program.name`` and ``run.mode`` by
    their last part."""
    if isinstance(value, str) and len(value) == 64:
        value = value[:10]
    return f"{column}={value}"


def common_value(rows: Iterable[Mapping[str, Any]], get: Any) -> tuple[bool, Any]:
    """``(True, value)`` when ``get(row)`` is the same for every row, else ``(False, None)``."""
    values = {canonical(get(r)) for r in rows}
    return (True, json.loads(values.pop())) if len(values) == 1 else (False, None)


__all__ = [
    "IDENTITY_VERSION",
    "check_resume",
    "check_store",
    "common_value",
    "flatten",
    "identity_differences",
    "legacy_differences",
    "merged_grid",
    "open_for_sweep",
    "resume_differences",
    "row_differences",
    "setting_label",
    "settings_columns",
    "settings_of",
    "sweep_identity",
]
