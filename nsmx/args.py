"""What the ``nsmx`` subcommands share: the user-error type, argparse value types, the argument
groups (chip, run, data, output), the run settings built from them and the dataset loader.

Every subcommand module imports from here, never from :mod:`nsmx.cli` (which is the parser and
the dispatch only), so no subcommand depends on another one or on the front door.

Argument groups and the subcommands that take them:

* chip: ``--chip``, ``--set`` and ``--program-seed`` (run; sweep and learn without the seed;
  chips takes ``--set``);
* run: ``--samples``, ``--mode``, ``--t-s``, ``--p-policy``, ``--drift-compensation`` and
  ``--seed`` (run; sweep without the seed; evaluate and demo take ``--samples``/``--seed``);
* data: ``--dataset``, ``--data FILE.npz``, ``--data-dir`` and ``--limit`` (run, sweep,
  evaluate; train and learn take ``--data`` and ``--data-dir``);
* output: ``--no-progress`` and ``--json`` (:mod:`nsmx.json_output`: stdout holds one JSON
  document, the human report goes to stderr);
* plugins: ``--plugin MODULE`` (run, sweep, learn, chips; also before the subcommand).

The run flags build one :class:`mapping.run_config.RunConfig` (:func:`run_config`), so each run
setting is defaulted and validated where the Python API defines it.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import Any

from devices.errors import ConfigError, ConfigTypeError
from devices.fields import check_int, check_real

#: The test sets ``--dataset`` accepts (:func:`nsm.data.load_dataset`).
DATASETS = ("digits", "mnist", "fashion-mnist")


class UserError(Exception):
    """A problem with the user's input: printed as one line, exit status 2."""


# ------------------------------------------------------------------------------ value types


def _value_type(parse: Callable[[str], Any], check: Callable[[Any], Any], doc: str):
    """An argparse ``type=``: ``parse`` the text (left as text if it does not parse, so the
    check names it), then ``check`` it with a :mod:`devices.fields` validator; its error
    becomes argparse's one-line ``argument --flag: VALUE problem; allowed: RANGE``."""

    def convert(text: str) -> Any:
        try:
            value = parse(text)
        except ValueError:
            value = text
        try:
            return check(value)
        except (ConfigError, ConfigTypeError) as exc:
            raise argparse.ArgumentTypeError(
                f"{exc.value!r} {exc.problem}; allowed: {exc.allowed}"
            ) from None

    convert.__doc__ = doc
    return convert


positive_int = _value_type(int, lambda v: check_int("value", v, ge=1), "An integer >= 1.")
nonnegative_int = _value_type(int, lambda v: check_int("value", v, ge=0), "An integer >= 0.")
nonnegative_float = _value_type(
    float, lambda v: check_real("value", v, ge=0.0), "A finite real number >= 0."
)


# ------------------------------------------------------------------------------ argument groups


def add_chip_args(
    p: argparse.ArgumentParser,
    *,
    default: str | None = "ideal",
    program_seed: bool = True,
    set_help: str = "override a chip field, e.g. periphery.adc_bits=6 (repeatable)",
) -> None:
    """``--chip`` (preset or TOML file), ``--set FIELD=VALUE`` (into ``args.sets``) and, with
    ``program_seed``, ``--program-seed`` (default: ``--seed``). ``default=None`` leaves the chip
    to a later source (a sweep file); the help still names ``ideal`` as the final default."""
    p.add_argument(
        "--chip",
        default=default,
        help="chip preset (nsmx chips lists them) or a chip TOML file (default: ideal)",
    )
    add_set_arg(p, help=set_help)
    if program_seed:
        p.add_argument(
            "--program-seed",
            type=nonnegative_int,
            default=None,
            help="seed of the device-to-device randomness drawn at programming (default: --seed)",
        )


def add_set_arg(
    p: argparse.ArgumentParser,
    *,
    help: str = "override a chip field, e.g. periphery.adc_bits=6 (repeatable)",
) -> None:
    """``--set FIELD=VALUE`` (repeatable, into ``args.sets``): chip field overrides."""
    p.add_argument(
        "--set", dest="sets", action="append", default=[], metavar="FIELD=VALUE", help=help
    )


def _run_flags() -> tuple[tuple[str, dict[str, Any], str], ...]:
    """(RunConfig field, argparse keywords, help with ``{}`` for the default) of each run flag
    but ``--seed``; the flag is the field with dashes (``t_s`` → ``--t-s``)."""
    from mapping.run_config import MODES, P_POLICIES

    return (
        ("samples", {"type": positive_int}, "MC samples per example (default: {})"),
        (
            "mode",
            {"choices": list(MODES)},
            "exact: every cell's stochastic element drawn; clt: one Gaussian per neuron from "
            "the exact moments (fast) (default: {})",
        ),
        (
            "t_s",
            {"type": nonnegative_float},
            "read time after programming in seconds (drift) (default: {:g})",
        ),
        (
            "p_policy",
            {"choices": list(P_POLICIES)},
            "trained: set each layer's read conditions to its trained p; chip: the chip as "
            "configured, the beta gain compensates (default: {})",
        ),
        (
            "drift_compensation",
            {"action": "store_true"},
            "scale every column signal by the chip's global drift gain at --t-s "
            "(one calibration read; after Joshi et al. 2020)",
        ),
    )


def add_run_args(p: argparse.ArgumentParser, *, defaults: bool = True, seed: bool = True) -> None:
    """The run settings of :class:`~mapping.run_config.RunConfig` as flags: ``--samples``,
    ``--mode``, ``--t-s``, ``--p-policy``, ``--drift-compensation`` and, with ``seed``,
    ``--seed``. With ``defaults=False`` every flag defaults to None (not given), so a sweep
    file's settings are overridden only by the flags the user typed; the help shows the
    RunConfig defaults either way."""
    from mapping.run_config import RunConfig

    base = RunConfig()
    for name, keywords, text in _run_flags():
        value = getattr(base, name)
        p.add_argument(
            "--" + name.replace("_", "-"),
            default=value if defaults else None,
            help=text.format(value),
            **keywords,
        )
    if seed:
        add_seed_arg(p, help="seed of the MC reads (and of programming unless --program-seed)")


def add_seed_arg(p: argparse.ArgumentParser, *, help: str = "random seed") -> None:
    """``--seed`` (an integer >= 0, default 0)."""
    p.add_argument("--seed", type=nonnegative_int, default=0, help=f"{help} (default: 0)")


def add_training_args(
    p: argparse.ArgumentParser,
    *,
    epochs_help: str,
    batch_size: int | None,
    batch_size_help: str,
    eval_samples: int,
    eval_samples_help: str,
    seed_help: str,
    out_help: str,
    resume_help: str,
) -> None:
    """The options of a training run (``nsmx train``, ``nsmx learn``): ``--epochs`` (default 10),
    ``--batch-size`` and ``--eval-samples`` (integers >= 1), ``--seed``, ``--out`` (a folder,
    required) and ``--resume``; the ``*_help`` texts are printed as given."""
    p.add_argument("--epochs", type=positive_int, default=10, help=epochs_help)
    p.add_argument("--batch-size", type=positive_int, default=batch_size, help=batch_size_help)
    p.add_argument(
        "--eval-samples", type=positive_int, default=eval_samples, help=eval_samples_help
    )
    add_seed_arg(p, help=seed_help)
    p.add_argument("--out", required=True, help=out_help)
    p.add_argument("--resume", action="store_true", help=resume_help)


def add_samples_arg(p: argparse.ArgumentParser, *, default: int = 100, help: str = "") -> None:
    """``--samples`` alone (subcommands without the other run settings: evaluate, demo)."""
    text = help or "MC samples per example"
    p.add_argument(
        "--samples", type=positive_int, default=default, help=f"{text} (default: {default})"
    )


def add_data_args(
    p: argparse.ArgumentParser,
    *,
    dataset: bool = True,
    limit: bool = True,
    data_dir_help: str = "folder of the IDX files (default: $NSMX_MNIST_DIR or "
    "$NSMX_FASHION_MNIST_DIR)",
    data: bool = True,
) -> None:
    """``--dataset`` (default: the one the model was trained on), ``--data FILE.npz`` (the
    user's own data, :mod:`nsm.user_data`; instead of ``--dataset``), ``--data-dir`` and
    ``--limit`` (first N test examples)."""
    if dataset:
        p.add_argument(
            "--dataset",
            choices=list(DATASETS),
            default=None,
            help="test set (default: the one the model was trained on)",
        )
    if data:
        p.add_argument(
            "--data",
            default=None,
            metavar="FILE.npz",
            help="your own data instead of a bundled set: an .npz with arrays x, y (evaluated) "
            "and optionally x_train, y_train (training and ADC calibration)",
        )
    p.add_argument("--data-dir", default=None, help=data_dir_help)
    if limit:
        p.add_argument(
            "--limit", type=positive_int, default=None, help="first N test examples only"
        )


def add_plugin_arg(p: argparse.ArgumentParser) -> None:
    """``--plugin MODULE`` (repeatable, into ``args.plugins``): modules that register device or
    element models (:mod:`devices.plugins`); installed entry points load without it."""
    p.add_argument(
        "--plugin",
        dest="plugins",
        action="append",
        default=[],
        metavar="MODULE",
        help="import MODULE first: a plugin that registers device/element models (repeatable; "
        "installed plugins of the entry-point group nsm_crossbar.plugins load without it)",
    )


def load_plugin_args(modules: Any) -> list[str]:
    """Import the installed plugins and ``modules`` (:func:`devices.plugins.load_plugins`);
    returns every plugin module loaded; a plugin that fails to import is a :class:`UserError`
    naming it."""
    from devices.plugins import PluginError, load_plugins

    try:
        return load_plugins(list(modules), entry_points=True)
    except PluginError as exc:
        raise UserError(str(exc)) from exc


def add_output_args(p: argparse.ArgumentParser, *, json: bool = True) -> None:
    """``--no-progress`` and, with ``json``, ``--json`` (last line of stdout: one object)."""
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    if json:
        p.add_argument("--json", action="store_true", help="last line of output: one JSON object")


# ------------------------------------------------------------------------------ values


def run_config(args: argparse.Namespace) -> Any:
    """The :class:`~mapping.run_config.RunConfig` of parsed run flags (:func:`add_run_args`
    with ``defaults=True``); an invalid combination is a :class:`UserError`."""
    import dataclasses

    from mapping.run_config import RunConfig

    try:
        return RunConfig(**{f.name: getattr(args, f.name) for f in dataclasses.fields(RunConfig)})
    except (ConfigError, ConfigTypeError) as exc:
        raise UserError(str(exc)) from exc


def chip_arg(spec: Any, sets: Any = ()) -> Any:
    """The :class:`~crossbar.ChipConfig` of ``--chip SPEC`` (a preset name or a TOML file) with
    the ``--set FIELD=VALUE`` overrides (:func:`crossbar.resolve_chip`); an unknown preset, an
    unreadable file or a bad override is a :class:`UserError` naming it."""
    from crossbar import ChipError, resolve_chip

    try:
        return resolve_chip(spec, sets)
    except ChipError as exc:
        raise UserError(str(exc)) from exc


def load_split(name: str, split: str, root: str | None) -> tuple[Any, Any]:
    """``(x, y)`` of one split of a dataset (:func:`nsm.data.load_dataset`: torch tensors);
    a missing or unreadable dataset is a :class:`UserError`."""
    from nsm.data import DatasetError, load_dataset

    try:
        return load_dataset(name, split=split, root=root)
    except (DatasetError, FileNotFoundError) as exc:
        raise UserError(str(exc)) from exc


def load_data(
    path: str,
    split: str,
    *,
    input_shape: Any = None,
    n_classes: int | None = None,
) -> tuple[Any, Any]:
    """``(x, y)`` of one split of the user's ``.npz`` (:func:`nsm.user_data.load_npz`: torch
    tensors, checked against ``input_shape`` and ``n_classes``); any problem with the file is a
    :class:`UserError` naming the file and the array."""
    from nsm.data import DatasetError
    from nsm.user_data import load_npz

    try:
        return load_npz(path, split, input_shape=input_shape, n_classes=n_classes)
    except DatasetError as exc:
        raise UserError(str(exc)) from exc


def model_architecture(
    spec: str, data: str | None, *, verb: str = "trains"
) -> dict[str, Any] | None:
    """The user architecture ``--model`` names (dict form), or None for a named model
    (:data:`nsm.models.MODELS`): a layer-list TOML file, or a ``module:function`` factory whose
    model is described by a layer list with the input shape of ``--data``'s training inputs (an
    (H, W) image becomes (1, H, W)). Errors are :class:`UserError`; ``verb`` words the one that
    asks for ``--data`` ("a factory's model trains on --data FILE.npz")."""
    from pathlib import Path

    from nsm.architecture import ArchitectureError, load_architecture
    from nsm.factory import architecture_of, call_factory
    from nsm.models import MODELS

    if spec in MODELS:
        return None
    try:
        if spec.endswith(".toml") or Path(spec).is_file():
            return load_architecture(spec).to_dict()
        if ":" not in spec:
            raise UserError(
                f"--model {spec!r} is not a named model ({', '.join(sorted(MODELS))}), a "
                "layer-list .toml file or module:function"
            )
        if data is None:
            raise UserError(f"--model {spec}: a factory's model {verb} on --data FILE.npz")
        x, _ = load_data(data, "train")
        shape = tuple(x.shape[1:])
        shape = (1, *shape) if len(shape) == 2 else shape
        model = call_factory(spec)
        name = spec.rpartition(":")[2].replace("_", "-")
        return architecture_of(model, shape, name=name, source=spec).to_dict()
    except ArchitectureError as exc:
        raise UserError(str(exc)) from exc


def data_label(args: argparse.Namespace) -> str | None:
    """The name of ``--data`` as reports show it (the file name), or None without it; giving
    both ``--data`` and ``--dataset`` is a :class:`UserError`."""
    from pathlib import Path

    data = getattr(args, "data", None)
    if data is None:
        return None
    if getattr(args, "dataset", None):
        raise UserError(
            f"give --data or --dataset, not both (--data {data}, --dataset {args.dataset})"
        )
    return Path(data).name


__all__ = [
    "DATASETS",
    "UserError",
    "add_chip_args",
    "add_data_args",
    "add_output_args",
    "add_plugin_arg",
    "add_run_args",
    "add_samples_arg",
    "add_seed_arg",
    "add_set_arg",
    "add_training_args",
    "chip_arg",
    "data_label",
    "load_data",
    "load_plugin_args",
    "load_split",
    "model_architecture",
    "nonnegative_float",
    "nonnegative_int",
    "positive_int",
    "run_config",
]
