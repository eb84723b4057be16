"""The fields ``--set`` and ``--vary`` accept, as a table: ``nsmx chips --fields [CHIP]``.

Every dotted field of a chip (``devices.*``, ``tile.*``, ``periphery.*``, ``wires.*``,
``cost.*`` and the chip's own ``v_read_v``) and the run fields (``run.*`` of
:class:`mapping.run_config.RunConfig`), each with its type, unit, allowed range or choices,
the value in the chip (its default there) and its one-line meaning where the config declares
one (``doc=`` of :func:`devices.fields.param`).
"""

from __future__ import annotations

import dataclasses
import typing
from typing import Any, Literal, get_args, get_origin

from devices.fields import interval_text

_META = "devices"  # devices.fields' metadata key


def _type_name(kind: Any) -> str:
    if get_origin(kind) is Literal:
        return "choice"
    return getattr(kind, "__name__", str(kind)).replace("typing.", "")


def _allowed(kind: Any, meta: dict[str, Any]) -> str:
    if get_origin(kind) is Literal:
        return "one of " + ", ".join(map(repr, get_args(kind)))
    if kind is bool:
        return "true or false"
    if kind in (int, float) and any(meta.get(k) is not None for k in ("ge", "gt", "le", "lt")):
        return interval_text({**meta, "unit": ""}, integer=kind is int)
    return ""


def field_rows(obj: Any, prefix: str = "") -> list[dict[str, Any]]:
    """One row per leaf field of the (nested) config dataclass ``obj``: ``field`` (dotted),
    ``type``, ``unit``, ``allowed``, ``value`` and ``doc``. The ``description`` strings are
    left out (they are labels, not settings)."""
    rows: list[dict[str, Any]] = []
    hints = typing.get_type_hints(type(obj))
    for f in dataclasses.fields(obj):
        if f.name == "description":
            continue
        value = getattr(obj, f.name)
        name = f"{prefix}{f.name}"
        if dataclasses.is_dataclass(value):
            model = _model_name(name, value)
            if model is not None:
                rows.append(
                    {
                        "field": f"{name}.model",
                        "type": "str",
                        "unit": "",
                        "allowed": "a registered model name",
                        "value": model,
                        "doc": f"the {f.name} model (nsmx chips lists them); its fields follow",
                    }
                )
            rows.extend(field_rows(value, f"{name}."))
            continue
        meta = dict(f.metadata.get(_META, {}))
        kind = hints.get(f.name, type(value))
        rows.append(
            {
                "field": name,
                "type": _type_name(kind),
                "unit": meta.get("unit", ""),
                "allowed": _allowed(kind, meta),
                "value": value,
                "doc": meta.get("doc", ""),
            }
        )
    return rows


def _model_name(name: str, config: Any) -> str | None:
    """The registered model name of a conductance or element config (None otherwise)."""
    from devices import registry

    kind = name.rpartition(".")[2]
    if kind not in ("conductance", "element"):
        return None
    try:
        return registry.name_of(kind, config)
    except TypeError:
        return None


def chip_field_rows(chip: Any) -> list[dict[str, Any]]:
    """The rows of a chip (:func:`field_rows`) followed by the run fields (``run.*``)."""
    from mapping.run_config import RunConfig

    rows = field_rows(chip)
    rows += [r for r in field_rows(RunConfig(), "run.") if r["field"] != "run.seed"]
    return rows


def format_rows(rows: list[dict[str, Any]]) -> list[str]:
    """The rows as aligned text lines: field, value, unit, allowed, meaning."""
    table = [("field", "value", "unit", "allowed", "meaning")]
    for r in rows:
        value = r["value"]
        text = f"{value:g}" if isinstance(value, float) else str(value)
        table.append((r["field"], text, r["unit"], r["allowed"], r["doc"]))
    widths = [max(len(row[i]) for row in table) for i in range(4)]
    return [
        "  "
        + "  ".join(cell.ljust(w) for cell, w in zip(row[:4], widths, strict=True))
        + "  "
        + row[4]
        for row in table
    ]


def commented_toml(text: str, rows: list[dict[str, Any]]) -> str:
    """Chip TOML ``text`` with each ``key = value`` line followed by a comment: the field's
    unit, allowed range or choices and meaning (from ``rows``, :func:`field_rows` of the
    chip). Lines without a known field stay as they are; the TOML still parses the same."""
    by_name = {r["field"]: r for r in rows}
    section = ""
    out = []
    for line in text.splitlines():
        stripped = line.strip()
        if stripped.startswith("[") and stripped.endswith("]"):
            section = stripped.strip("[]").strip()
        elif "=" in stripped and not stripped.startswith("#"):
            key = stripped.split("=", 1)[0].strip()
            row = by_name.get(f"{section}.{key}" if section else key)
            if row is not None:
                notes = [n for n in (row["unit"], row["allowed"], row["doc"]) if n]
                if notes:
                    line = f"{line}  # {'; '.join(notes)}"
        out.append(line)
    return "\n".join(out) + "\n"


__all__ = ["chip_field_rows", "commented_toml", "field_rows", "format_rows"]
