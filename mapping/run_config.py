"""The settings of one Monte-Carlo run on a programmed chip, as data.

A :class:`RunConfig` is to a run what :class:`crossbar.ChipConfig` is to a chip: a frozen,
validated dataclass whose fields carry their unit in the name and their range in
:func:`devices.fields.param`. :class:`mapping.runtime.ChipModel` (``run``, ``predict``,
``sample_states``), :func:`mapping.runtime.program_chip` (``p_policy``), the sweep (its ``run.*``
fields go through the same :func:`replace_run_field`) and the CLI (``nsmx run``/``sweep`` flags)
all take it, so each setting is spelled, defaulted and validated in exactly one place.

Fields:

``samples``             MC samples per example (fresh element draws, read and comparator noise).
``mode``                ``"exact"``: every cell's stochastic element drawn; ``"clt"``: one
                        Gaussian per neuron from the exact column mean and variance (the same
                        engine, see ``docs/crossbar.md``).
``t_s``                 read time after programming (s): drift and read noise at t.
``p_policy``            ``"trained"``: each layer's read conditions set to its trained p/σ;
                        ``"chip"``: the chip as configured, the β gain compensates. Used when
                        the program is programmed onto the chip.
``drift_compensation``  every column signal passes through the chip's noiseless global drift
                        gain at ``t_s`` before comparators and ADCs.
``seed``                seed of the read randomness (programming has its own seed).
"""

from __future__ import annotations

import dataclasses
import numbers
from collections.abc import Iterable
from dataclasses import dataclass, fields
from typing import Any, Literal

from devices.errors import ArgumentError, ArgumentTypeError, ConfigError, ConfigTypeError
from devices.fields import param, validate_config

Mode = Literal["exact", "clt"]
PPolicy = Literal["trained", "chip"]

MODES: tuple[str, ...] = ("exact", "clt")
P_POLICIES: tuple[str, ...] = ("trained", "chip")


@dataclass(frozen=True)
class RunConfig:
    """One MC run's settings (module docstring); validated at construction."""

    samples: int = param(
        100, ge=1, le=1 << 20, doc="Monte-Carlo samples per example (fresh noise in each)"
    )  # paper: S = 100 test samples (docs/model.md §2)
    mode: Mode = param(
        "exact", doc="exact: every cell's element drawn; clt: one Gaussian per neuron"
    )
    t_s: float = param(
        0.0, ge=0.0, unit="s", doc="read time after programming (drift and read noise at t)"
    )
    p_policy: PPolicy = param(
        "trained", doc="trained: reads set to the trained p/σ; chip: as configured"
    )
    drift_compensation: bool = param(
        False, doc="multiply column signals by α = ΣG(t_cal)/ΣG(t_s) (global drift gain)"
    )
    seed: int = param(
        0, ge=0, lt=1 << 63, doc="seed of the read randomness (programming has its own)"
    )

    def __post_init__(self) -> None:
        validate_config(self)

    def to_dict(self) -> dict[str, Any]:
        """The settings as a JSON-ready dict (field name -> value)."""
        return dataclasses.asdict(self)


def run_field_names() -> tuple[str, ...]:
    """The names of the run fields, in declaration order (``run.<name>`` in a sweep)."""
    return tuple(f.name for f in fields(RunConfig))


def replace_run_field(config: RunConfig, name: str, value: Any) -> RunConfig:
    """``config`` with field ``name`` (``"samples"`` or ``"run.samples"``) set to ``value``.

    Goes through the same validation as construction; an unknown name is a
    :class:`~devices.errors.ConfigError` listing the known ones.
    """
    key = name.removeprefix("run.")
    if key not in run_field_names():
        allowed = ", ".join(f"run.{n}" for n in run_field_names())
        raise ConfigError(f"run.{key}", value, allowed, "is not a run field")
    try:
        return dataclasses.replace(config, **{key: value})
    except (ConfigError, TypeError) as exc:
        if hasattr(exc, "with_path"):
            raise exc.with_path(f"run.{key}") from None
        raise


def as_run_config(
    config: RunConfig | int | None = None,
    *,
    default: RunConfig | None = None,
    allowed: Iterable[str] | None = None,
    **changes: Any,
) -> RunConfig:
    """The run settings of a call such as ``model.run(x, config, **changes)``.

    ``config``: a :class:`RunConfig`, an int (the number of samples, as in ``run(x, 100)``) or
    None (``default``, else ``RunConfig()``). ``changes`` (field name -> value) are applied with
    :func:`dataclasses.replace`, so they go through the same validation as construction; a bad
    value raises :class:`~devices.errors.ArgumentError` (``ValueError``) or
    :class:`~devices.errors.ArgumentTypeError` (``TypeError``) worded as the argument:
    ``samples=0 is out of range; allowed: ...``. ``allowed`` limits the fields a caller may
    change (a ``TypeError`` names the others).
    """
    base = RunConfig() if default is None else default
    if isinstance(config, numbers.Integral) and not isinstance(config, bool):
        if "samples" in changes:
            raise TypeError("samples given twice (positionally and as samples=)")
        changes = {"samples": config, **changes}
        config = base
    elif config is None:
        config = base
    elif not isinstance(config, RunConfig):
        raise ArgumentTypeError("config", config, "a RunConfig, an int (samples) or None")
    names = run_field_names() if allowed is None else tuple(allowed)
    unknown = sorted(set(changes) - set(names))
    if unknown:
        raise TypeError(f"unexpected run settings {unknown}; allowed: {', '.join(names)}")
    for key, value in changes.items():
        try:
            config = dataclasses.replace(config, **{key: value})
        except ConfigTypeError as exc:
            raise ArgumentTypeError(key, value, exc.allowed, exc.problem) from None
        except ConfigError as exc:
            raise ArgumentError(key, value, exc.allowed, exc.problem) from None
    return config
