"""The ``nsmx`` command: the parser and the dispatch to one module per subcommand.

Subcommands: ``train`` (:mod:`nsmx.train_cmd`), ``evaluate`` (:mod:`nsmx.evaluate_cmd`),
``demo``, ``compile``, ``run``, ``chips``, ``learn``, ``sweep`` and ``plot``
(:mod:`nsmx.sweep_cmd`). Every subcommand validates its arguments before doing any work and
reports user errors (:class:`nsmx.args.UserError`) as one line on stderr with exit status 2 (no
traceback); an operating-system error (a full disk, a read-only folder, a closed stdout) as one
line naming the path, status 1; Ctrl-C and SIGTERM end it as "interrupted", status 130 / 143
(:func:`nsmx.interrupts.run_guarded`, also inside numba kernels); ``--json`` makes the last
line of stdout one JSON object for scripts (strict JSON: no NaN or Infinity), and for the
commands of :data:`PURE_JSON` the only one: their human report goes to stderr
(:func:`nsmx.json_output.json_output`). What the subcommands share lives in :mod:`nsmx.args`.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence

# nsmx.threads sets OMP_WAIT_POLICY on import, before any command loads torch or numba's OpenMP.
from nsmx import (
    chips_cmd,
    compile_cmd,
    demo,
    evaluate_cmd,
    learn_cmd,
    run_cmd,
    sweep_cmd,
    threads,
    train_cmd,
)
from nsmx.args import UserError, load_plugin_args, positive_int
from nsmx.interrupts import run_guarded
from nsmx.json_output import json_output

#: Subcommand name -> the function that runs it (takes the parsed arguments, returns the status).
COMMANDS: dict[str, Callable[[argparse.Namespace], int]] = {
    "train": train_cmd.run,
    "evaluate": evaluate_cmd.run,
    "demo": demo.run,
    "compile": compile_cmd.run,
    "run": run_cmd.run,
    "chips": chips_cmd.run,
    "learn": learn_cmd.run,
    "sweep": sweep_cmd.run,
    "plot": sweep_cmd.plot,
}

#: The commands whose ``--json`` stdout is the JSON document alone (they print it with
#: :func:`nsmx.json_output.print_json`; everything else they print goes to stderr).
PURE_JSON = frozenset({"chips", "compile", "demo", "evaluate", "learn", "run", "sweep"})


def _version() -> str:
    """The installed nsm-crossbar version (``unknown`` when run from an uninstalled tree)."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("nsm-crossbar")
    except PackageNotFoundError:
        return "unknown"


def build_parser() -> argparse.ArgumentParser:
    """The ``nsmx`` parser with every subcommand registered."""
    parser = argparse.ArgumentParser(
        prog="nsmx",
        description="Neural Sampling Machines on crossbar arrays of non-volatile memory.",
    )
    parser.add_argument(
        "--threads",
        type=positive_int,
        default=None,
        help="CPU threads for torch and numba (default: all cores; use 1 on a busy machine)",
    )
    parser.add_argument(
        "--plugin",
        dest="global_plugins",
        action="append",
        default=[],
        metavar="MODULE",
        help="import MODULE first: a plugin that registers device/element models (repeatable)",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {_version()}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for module in (train_cmd, evaluate_cmd, demo, compile_cmd, run_cmd, chips_cmd, learn_cmd):
        module.add_parser(sub)
    sweep_cmd.add_parser(sub)  # sweep and plot
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``nsmx`` with ``argv`` (default: ``sys.argv[1:]``); returns the exit status."""
    args = build_parser().parse_args(argv)
    if args.threads is not None:
        threads.set_threads(args.threads)

    def call() -> int:
        # Plugins register their models before any chip file is read: the subcommand's
        # --plugin and the global one; installed entry points load for the commands that
        # build chips (those with --plugin).
        with json_output(bool(getattr(args, "json", False)) and args.command in PURE_JSON):
            modules = [*args.global_plugins, *getattr(args, "plugins", [])]
            if modules or hasattr(args, "plugins"):
                load_plugin_args(modules)
            return COMMANDS[args.command](args)

    # One handler: user errors, OS errors, Ctrl-C and SIGTERM each end in one line on stderr.
    return run_guarded(f"nsmx {args.command}", call)


__all__ = ["COMMANDS", "PURE_JSON", "UserError", "build_parser", "main"]

if __name__ == "__main__":
    sys.exit(main())
