"""``nsmx compile CKPT -o model.nsmx``: compile a training checkpoint into a crossbar program.

Prints one row per layer (kind, shape, noise, p or σ, parameters, crossbar cells) and the total
number of crossbar cells the program needs; ``--json`` makes the last line one JSON object.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from nsmx.args import UserError
from nsmx.json_output import print_json
from nsmx.safe_io import check_output_file, os_error_message


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Register ``compile`` on an ``argparse`` subparsers object; returns its parser."""
    from mapping.records import ENCODINGS, SCALE_POLICIES

    p = subparsers.add_parser(
        "compile", help="compile a trained checkpoint into a crossbar program (.nsmx)"
    )
    p.add_argument("checkpoint", help="training checkpoint (nsmx train's checkpoint.pt)")
    p.add_argument(
        "-o",
        "--output",
        default=None,
        help="program file to write (default: the checkpoint's name with suffix .nsmx)",
    )
    p.add_argument(
        "--scale-policy",
        choices=list(SCALE_POLICIES),
        default="per_column",
        help="conductance scale per crossbar column (default; free under weight normalisation) "
        "or one per layer",
    )
    p.add_argument(
        "--encoding",
        choices=list(ENCODINGS),
        default="differential_pair",
        help="signed weights as G+ - G- pairs (default) or against a reference column",
    )
    p.add_argument("--json", action="store_true", help="last line of output: one JSON object")
    return p


def _shape(shape: list[int]) -> str:
    return "x".join(map(str, shape))


def format_summary(rows: list[dict[str, Any]]) -> list[str]:
    """The per-layer table as text lines (rows from :meth:`mapping.program.Program.summary`)."""
    header = ("layer", "kind", "in -> out", "matrix", "noise", "p / sigma", "params", "cells")
    table = [header]
    for r in rows:
        matrix = _shape(r["matrix"]) if "matrix" in r else ""
        table.append(
            (
                r["name"],
                r["kind"],
                f"{_shape(r['in_shape'])} -> {_shape(r['out_shape'])}",
                matrix,
                r["noise"],
                r["level"],
                f"{r['params']:,}" if r["params"] else "",
                f"{r['cells']:,}" if r["cells"] else "",
            )
        )
    widths = [max(len(row[i]) for row in table) for i in range(len(header))]
    right = {6, 7}
    lines = []
    for row in table:
        cells = [
            row[i].rjust(widths[i]) if i in right else row[i].ljust(widths[i])
            for i in range(len(header))
        ]
        lines.append("  " + "  ".join(cells).rstrip())
    return lines


def run(args: argparse.Namespace) -> int:
    from mapping.compiler import CompileError, compile_checkpoint
    from mapping.program import ProgramError, save_program
    from nsm.checkpoint import CheckpointError

    output = Path(args.output) if args.output else Path(args.checkpoint).with_suffix(".nsmx")
    # A FIFO, a device or a folder is refused before compiling (never replaced by a file).
    check_output_file(output, "compile -o")
    try:
        program = compile_checkpoint(
            args.checkpoint, scale_policy=args.scale_policy, encoding=args.encoding
        )
    except (CheckpointError, CompileError) as exc:
        raise UserError(str(exc)) from exc
    try:
        save_program(program, output)
    except OSError as exc:  # the temporary file is already removed
        raise UserError(f"cannot write the program: {os_error_message(exc, output)}") from exc
    except ProgramError as exc:
        raise UserError(f"{output}: cannot write the program ({exc})") from exc

    src = program.source
    rows = program.summary()
    print(
        f"compiled {src['model']} ({src['rule']}, {src['epochs']} epochs) from "
        f"{args.checkpoint} -> {output}"
    )
    for line in format_summary(rows):
        print(line)
    encoding = (
        "differential pairs"
        if args.encoding == "differential_pair"
        else ("one device per weight + reference column")
    )
    print(
        f"  total: {program.params():,} parameters, {program.cells():,} crossbar cells "
        f"({encoding}; scale policy {args.scale_policy})"
    )
    if args.json:
        result = {
            "checkpoint": str(args.checkpoint),
            "program": str(output),
            "model": src["model"],
            "rule": src["rule"],
            "epochs": src["epochs"],
            "layers": rows,
            "params": program.params(),
            "cells": program.cells(),
            "scale_policy": args.scale_policy,
            "encoding": args.encoding,
        }
        print_json(result)
    return 0
