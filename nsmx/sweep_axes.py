"""How a sweep's values appear on a figure's axes and in its tables.

* :func:`axis_scale` picks a linear, log or symmetric-log axis from the grid values;
* times in seconds (a field name ending ``_s``, :func:`is_time_field`) read in human units
  (:func:`format_duration`: s, min, h, days, years; :func:`time_unit` for a linear axis);
* :func:`style_x` applies the choice to a matplotlib axis (scale, ticks at the values, label);
* :func:`spread_text` and :func:`seeds_text` say what plotted values and error bars are (one
  seed: the values alone, never "± std");
* :func:`axis_label` and :data:`UNITS`: the unit from the field name's suffix.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

#: Field-name suffix -> unit shown on the axis.
UNITS = {"_us": "µS", "_v": "V", "_s": "s", "_ohm": "Ω", "_ua": "µA", "_ns": "ns"}


def axis_label(field: str) -> str:
    """``"devices.element.sigma_d_v"`` -> ``"devices.element.sigma_d_v (V)"``; run fields and
    unitless fields keep their name."""
    for suffix, unit in UNITS.items():
        if field.endswith(suffix):
            return f"{field} ({unit})"
    if field == "run.samples":
        return "run.samples (MC samples per example)"
    return field


def format_value(value: Any) -> str:
    """A grid value as text: a program path as its stem, a float by ``%g``."""
    if isinstance(value, str):
        return Path(value).stem if value.endswith(".nsmx") else value
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


def is_numeric(values: Sequence[Any]) -> bool:
    """Whether every value is an int or float (booleans are not numbers here)."""
    return all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values)


#: Human time units, largest first: (name, plural, seconds). A year is 365 days.
TIME_UNITS = (
    ("year", "years", 365 * 86400.0),
    ("day", "days", 86400.0),
    ("h", "h", 3600.0),
    ("min", "min", 60.0),
    ("s", "s", 1.0),
)
#: Ratio of the largest to the smallest positive value from which an axis is logarithmic.
LOG_SPAN = 100.0
#: Two grid values closer than this fraction of their range crowd a linear axis (log then).
CROWDED = 0.05
#: Grid values up to this many are the ticks of a numeric axis (more: matplotlib's ticks).
MAX_VALUE_TICKS = 12


def is_time_field(field: str) -> bool:
    """Whether the field holds a time in seconds (its name ends ``_s``, e.g. ``run.t_s``)."""
    return field.endswith("_s")


def format_duration(seconds: float) -> str:
    """A time in the largest human unit it reaches, three significant digits: ``0`` -> ``"0"``,
    ``90`` -> ``"1.5 min"``, ``86400`` -> ``"1 day"``, ``2.592e6`` -> ``"30 days"``,
    ``3.1536e7`` -> ``"1 year"``."""
    seconds = float(seconds)
    if seconds == 0:
        return "0"
    for name, plural, size in TIME_UNITS:
        if abs(seconds) >= size or size == 1.0:
            value = float(f"{seconds / size:.3g}")
            return f"{value:g} {name if value == 1 else plural}"
    raise AssertionError("unreachable")  # pragma: no cover


def time_unit(seconds: Sequence[float]) -> tuple[str, float]:
    """The unit ``(name, seconds)`` a linear time axis is drawn in: the largest unit of which
    the largest value holds at least two (``[0, 600, 3600]`` -> ``("min", 60.0)``)."""
    top = max((abs(float(v)) for v in seconds), default=0.0)
    for name, _, size in TIME_UNITS:
        if top >= 2 * size:
            return name, size
    return "s", 1.0


def axis_scale(values: Sequence[float]) -> str:
    """``"linear"``, ``"log"`` or ``"symlog"`` for an axis through numeric grid ``values``.

    Logarithmic when the values are not evenly spaced (successive differences agree within a
    factor 1.5: ``4, 6, 8`` stays linear) and either span :data:`LOG_SPAN` (two decades) or
    more, or are log-spaced (three or more values, all positive, whose successive ratios agree
    within a factor 1.5 in log: ``1, 2, 4, 8``), or would crowd a linear axis (two values closer
    than :data:`CROWDED` of the range: ``0, 3600, 86400``). Symmetric-log when zero is among
    them; linear with negative values or fewer than two positive ones.
    """
    vals = sorted({float(v) for v in values})
    pos = [v for v in vals if v > 0]
    if len(pos) < 2 or vals[0] < 0:
        return "linear"
    gaps = np.diff(vals)
    if len(vals) >= 3 and gaps.max() / gaps.min() <= 1.5:  # evenly spaced
        return "linear"
    logarithmic = pos[-1] / pos[0] >= LOG_SPAN or gaps.min() < CROWDED * (vals[-1] - vals[0])
    if len(pos) >= 3 and vals[0] > 0:
        steps = np.diff(np.log(pos))
        logarithmic = logarithmic or steps.max() / steps.min() <= 1.5
    if not logarithmic:
        return "linear"
    return "symlog" if vals[0] == 0 else "log"


def spread_text(counts: Sequence[int]) -> str:
    """What the plotted values and error bars are, from the seeds per plotted point:
    ``"one seed per point"``, ``"mean ± std over 3 seeds"`` or ``"mean ± std over 1–3 seeds
    (no bar at one seed)"``."""
    lo, hi = min(counts), max(counts)
    if hi == 1:
        return "one seed per point"
    if lo == hi:
        return f"mean ± std over {hi} seeds"
    return f"mean ± std over {lo}–{hi} seeds" + (" (no bar at one seed)" if lo == 1 else "")


def seeds_text(counts: Sequence[int]) -> str:
    """``"one seed"``, ``"3 seeds"`` or ``"1–3 seeds per point"``."""
    lo, hi = min(counts), max(counts)
    if lo != hi:
        return f"{lo}–{hi} seeds per point"
    return "one seed" if hi == 1 else f"{hi} seeds"


def style_x(ax: Any, field: str, xs: Sequence[Any], scale: str) -> tuple[np.ndarray, str]:
    """Set the x axis of ``ax`` for grid values ``xs`` of ``field`` (scale, ticks, human time
    units); returns each value's position on the axis and the axis label."""
    label = axis_label(field)
    if not is_numeric(xs):  # categories, in grid order
        ax.set_xticks(range(len(xs)), [format_value(v) for v in xs])
        return np.arange(len(xs), dtype=float), label
    vals = np.array(xs, dtype=float)
    time = is_time_field(field)
    if scale == "linear":
        size = 1.0
        if time:  # drawn in one human unit: 0, 1, 2 h rather than 0, 3600, 7200 s
            unit, size = time_unit(vals)
            label = f"{field} ({unit})"
        pos = vals / size
        if len(xs) <= MAX_VALUE_TICKS:
            ax.set_xticks(pos, [f"{p:g}" for p in pos])
        return pos, label
    pos_vals = vals[vals > 0]
    if scale == "symlog" or (vals <= 0).any():  # a log axis through zero: symmetric-log
        ax.set_xscale("symlog", linthresh=float(pos_vals.min()), linscale=0.5)
    else:
        ax.set_xscale("log")
    if len(xs) <= MAX_VALUE_TICKS:
        names = [
            format_duration(v) if time else format_value(x) for v, x in zip(vals, xs, strict=True)
        ]
        ax.set_xticks(vals, names, fontsize=8)
        ax.minorticks_off()
    if time:
        label = f"{field} (time)"
    return vals, label


def is_time_axis(field: str, values: Sequence[Any]) -> bool:
    """Whether an axis of ``field`` through ``values`` is a time axis (human-unit ticks)."""
    return is_time_field(field) and is_numeric(values)


def tick_text(field: str, value: Any) -> str:
    """A category tick: a time in human units, other values as :func:`format_value` writes them."""
    if is_time_field(field) and is_numeric([value]):
        return format_duration(value)
    return format_value(value)


__all__ = [
    "CROWDED",
    "LOG_SPAN",
    "MAX_VALUE_TICKS",
    "TIME_UNITS",
    "UNITS",
    "axis_label",
    "axis_scale",
    "format_duration",
    "format_value",
    "is_numeric",
    "is_time_axis",
    "is_time_field",
    "seeds_text",
    "spread_text",
    "style_x",
    "tick_text",
    "time_unit",
]
