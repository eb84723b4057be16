"""Declarative, validated fields for the frozen configuration dataclasses.

A config field is declared with :func:`param`, which records its allowed range (and unit, for
messages) in the dataclass field metadata. :func:`validate_config`, called from each config's
``__post_init__``, then checks every field against its type annotation and range, coerces
harmless spellings (an ``int`` where a ``float`` is expected, numpy scalars) and raises
:class:`~devices.errors.ConfigError` / :class:`~devices.errors.ConfigTypeError` naming the
field, the value and the allowed range. One validator serves all models, including custom
ones written by users, so every config speaks the same error language.
"""

from __future__ import annotations

import dataclasses
import math
import numbers
import typing
from functools import cache
from typing import Any, Literal, get_args, get_origin

import numpy as np

from .errors import ArgumentError, ArgumentTypeError, ConfigError, ConfigTypeError

_META_KEY = "devices"


def param(
    default: Any,
    *,
    ge: float | None = None,
    gt: float | None = None,
    le: float | None = None,
    lt: float | None = None,
    unit: str = "",
    doc: str = "",
) -> Any:
    """A dataclass field with a default and an allowed interval.

    ``ge``/``gt`` give the lower bound (closed/open), ``le``/``lt`` the upper bound. Real-valued
    fields are always required to be finite (the interval is open at ±inf). ``unit`` decorates
    error messages and field listings; the unit also belongs in the field name (``g_max_us``).
    ``doc``: the field's one-line meaning (``nsmx chips --fields`` lists it).
    """
    if ge is not None and gt is not None:
        raise ValueError("param: give at most one of ge and gt")
    if le is not None and lt is not None:
        raise ValueError("param: give at most one of le and lt")
    meta = {"ge": ge, "gt": gt, "le": le, "lt": lt, "unit": unit, "doc": doc}
    return dataclasses.field(default=default, metadata={_META_KEY: meta})


@cache
def _hints(cls: type) -> dict[str, Any]:
    # get_type_hints resolves the string annotations left by `from __future__ import annotations`.
    return typing.get_type_hints(cls)


def interval_text(meta: dict[str, Any], *, integer: bool = False) -> str:
    """Human-readable allowed interval, e.g. ``'(0, inf) µS'`` or ``'integer in [0, 100]'``."""

    def num(x: float) -> str:
        # Integer bounds print exactly (65536, not 6.5536e+04); real bounds compactly.
        return str(int(x)) if integer and float(x).is_integer() else f"{x:g}"

    if meta.get("ge") is not None:
        lo = f"[{num(meta['ge'])}"
    elif meta.get("gt") is not None:
        lo = f"({num(meta['gt'])}"
    else:
        lo = "(-inf"
    if meta.get("le") is not None:
        hi = f"{num(meta['le'])}]"
    elif meta.get("lt") is not None:
        hi = f"{num(meta['lt'])})"
    else:
        hi = "inf)"
    text = f"{lo}, {hi}"
    if integer:
        text = "integer in " + text
    unit = meta.get("unit") or ""
    return f"{text} {unit}".rstrip()


def _in_interval(x: float, meta: dict[str, Any]) -> bool:
    if not math.isfinite(x):
        return False
    if meta.get("ge") is not None and not x >= meta["ge"]:
        return False
    if meta.get("gt") is not None and not x > meta["gt"]:
        return False
    if meta.get("le") is not None and not x <= meta["le"]:
        return False
    return not (meta.get("lt") is not None and not x < meta["lt"])


def coerce_value(name: str, value: Any, kind: Any, meta: dict[str, Any] | None = None) -> Any:
    """Check ``value`` against annotation ``kind`` and range ``meta``; return the coerced value.

    Handles ``float``, ``int``, ``bool``, ``str`` and ``Literal[...]`` annotations; any other
    annotation is returned unchanged (nested configs are validated by their own class).
    """
    meta = meta or {}
    if get_origin(kind) is Literal:
        choices = get_args(kind)
        if value not in choices:
            allowed = "one of " + ", ".join(repr(c) for c in choices)
            raise ConfigError(name, value, allowed, "is not a known choice")
        return value
    if kind is bool:
        if not isinstance(value, bool):
            raise ConfigTypeError(name, value, "true or false")
        return value
    if kind is str:
        if not isinstance(value, str):
            raise ConfigTypeError(name, value, "a string")
        return value
    if kind is int:
        if isinstance(value, bool) or not isinstance(value, numbers.Integral):
            raise ConfigTypeError(name, value, interval_text(meta, integer=True))
        value = int(value)
        if not _in_interval(float(value), meta):
            raise ConfigError(name, value, interval_text(meta, integer=True), "is out of range")
        return value
    if kind is float:
        if isinstance(value, bool) or not isinstance(value, numbers.Real):
            raise ConfigTypeError(name, value, "a real number in " + interval_text(meta))
        value = float(value)
        if not _in_interval(value, meta):
            raise ConfigError(name, value, interval_text(meta), "is out of range")
        return value
    return value


def field_meta(cls: type, name: str) -> dict[str, Any]:
    """The range metadata of field ``name`` of config class ``cls`` (empty if none)."""
    for f in dataclasses.fields(cls):
        if f.name == name:
            return dict(f.metadata.get(_META_KEY, {}))
    raise KeyError(name)


def validate_config(obj: Any) -> None:
    """Validate and coerce every field of the (frozen) config dataclass ``obj`` in place.

    Errors name the field as ``ClassName.field``; loaders re-qualify them with the TOML path.
    """
    cls = type(obj)
    hints = _hints(cls)
    for f in dataclasses.fields(obj):
        value = getattr(obj, f.name)
        coerced = coerce_value(
            f"{cls.__name__}.{f.name}", value, hints[f.name], f.metadata.get(_META_KEY)
        )
        if coerced is not value:
            # Frozen dataclass: __post_init__ is the one place where normalising is allowed.
            object.__setattr__(obj, f.name, coerced)


def check_levels(owner: str, n_levels: int) -> None:
    """``n_levels`` is 0 (continuous) or at least 2 (a finite set of levels)."""
    if n_levels == 1:
        raise ConfigError(
            f"{owner}.n_levels", n_levels, "0 (continuous) or an integer >= 2", "is invalid"
        )


def check_window(owner: str, g_min_us: float, g_max_us: float) -> None:
    """The conductance window must be non-empty: g_min_us < g_max_us."""
    if not g_min_us < g_max_us:
        raise ConfigError(
            f"{owner}.g_min_us", g_min_us, f"[0, g_max_us = {g_max_us:g}) µS", "is out of range"
        )


def check_fault_rates(owner: str, p_stuck_on: float, p_stuck_off: float) -> None:
    """The two stuck-at probabilities are exclusive events, so their sum is at most 1."""
    if p_stuck_on + p_stuck_off > 1.0:
        raise ConfigError(
            f"{owner}.p_stuck_off",
            p_stuck_off,
            f"[0, 1 - p_stuck_on = {1.0 - p_stuck_on:g}]",
            "is out of range",
        )


# ------------------------------------------------------------------ argument validators
# The same ranges and wording as the config fields, for plain function arguments (engine and
# runtime calls, file records, CLI values): one way to validate outside ``nsm``.


def validate_cell_config(obj: Any) -> None:
    """:func:`validate_config` and the cross-field checks of a conductance model's programming
    fields: the window (``g_min_us`` < ``g_max_us``), ``n_levels`` and the fault rates."""
    validate_config(obj)
    owner = type(obj).__name__
    check_window(owner, obj.g_min_us, obj.g_max_us)
    check_levels(owner, obj.n_levels)
    check_fault_rates(owner, obj.p_stuck_on, obj.p_stuck_off)


def check_int(name: str, value: Any, *, ge: int | None = None, le: int | None = None) -> int:
    """``value`` as an ``int`` in ``[ge, le]`` (bools refused), or :class:`ArgumentError`."""
    # The message is formatted only on failure: this runs on every engine call.
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise ArgumentTypeError(name, value, interval_text({"ge": ge, "le": le}, integer=True))
    # Compared as integers: float(2**64) == float(2**64 - 1) would let a value past le.
    if (ge is not None and value < ge) or (le is not None and value > le):
        raise ArgumentError(name, value, interval_text({"ge": ge, "le": le}, integer=True))
    return int(value)


def check_real(
    name: str,
    value: Any,
    *,
    ge: float | None = None,
    gt: float | None = None,
    le: float | None = None,
    lt: float | None = None,
    unit: str = "",
) -> float:
    """``value`` as a finite ``float`` inside the interval, or :class:`ArgumentError`."""
    meta = {"ge": ge, "gt": gt, "le": le, "lt": lt, "unit": unit}
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise ArgumentTypeError(name, value, "a real number in " + interval_text(meta))
    if not _in_interval(float(value), meta):
        raise ArgumentError(name, value, interval_text(meta))
    return float(value)


def check_choice(name: str, value: Any, allowed: typing.Sequence[str]) -> str:
    """``value`` if it is one of ``allowed``, else :class:`ArgumentError` listing them."""
    if not isinstance(value, str) or value not in allowed:
        raise ArgumentError(
            name, value, "one of " + ", ".join(map(repr, allowed)), "is not a known choice"
        )
    return value


def check_name(name: str, value: Any) -> str:
    """``value`` if it is a non-empty string (a name, a label), else :class:`ArgumentError`."""
    if not isinstance(value, str) or not value:
        raise ArgumentError(name, value, "a non-empty string", "is invalid")
    return value


def check_bool(name: str, value: Any) -> bool:
    """``value`` as a ``bool`` (numpy bools accepted), else :class:`ArgumentTypeError`."""
    if not isinstance(value, (bool, np.bool_)):
        raise ArgumentTypeError(name, value, "true or false")
    return bool(value)


def check_array(
    name: str,
    value: Any,
    *,
    ndim: int | None = None,
    shape: tuple[int, ...] | None = None,
    dtype: Any = np.float64,
    allow_empty: bool = False,
) -> np.ndarray:
    """``value`` as a finite real array of ``dtype`` (a copy only where needed).

    Refuses bool/object/complex arrays (:class:`ArgumentTypeError`), a wrong ``ndim``/``shape``,
    an empty array unless ``allow_empty``, and NaN/inf (:class:`ArgumentError`). Arrays do not
    print, so the messages name what is wrong instead: ``beta has shape (19,); expected (20,)``.
    """
    arr = np.asarray(value)
    if arr.dtype == bool or not (
        np.issubdtype(arr.dtype, np.integer) or np.issubdtype(arr.dtype, np.floating)
    ):
        raise ArgumentTypeError(
            name,
            f"<array of {arr.dtype}>",
            "a real numeric array",
            message=f"{name} has dtype {arr.dtype}; expected a real numeric array",
        )
    if (ndim is not None and arr.ndim != ndim) or (shape is not None and arr.shape != shape):
        want = str(shape) if shape is not None else f"a {ndim}-D array"
        raise ArgumentError(
            name,
            f"<array of shape {arr.shape}>",
            want,
            "has the wrong shape",
            message=f"{name} has shape {arr.shape}; expected {want}",
        )
    if arr.size == 0 and not allow_empty:
        raise ArgumentError(
            name,
            "<empty array>",
            "at least one element",
            "is empty",
            message=f"{name} is empty; expected at least one element",
        )
    arr = arr.astype(dtype, copy=False)
    if not np.all(np.isfinite(arr)):
        bad = int(arr.size - np.count_nonzero(np.isfinite(arr)))
        raise ArgumentError(
            name,
            f"<{bad} non-finite values>",
            "finite values",
            "is not finite",
            message=f"{name} has {bad} non-finite values (inf or nan); expected finite values",
        )
    return arr
