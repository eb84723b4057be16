"""``nsmx chips``: list the chip presets, the registered device models and the loaded plugins;
``--show NAME|FILE [--set k=v ...]`` prints a chip's TOML.

The printed TOML is a complete chip file: edit it and pass it to ``nsmx run --chip file.toml``.
"""

from __future__ import annotations

import argparse
from typing import Any

from nsmx.args import UserError, add_plugin_arg, add_set_arg, chip_arg
from nsmx.json_output import print_json


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Register ``chips`` on an ``argparse`` subparsers object; returns its parser."""
    p = subparsers.add_parser("chips", help="list chip presets, or print one chip as TOML")
    p.add_argument(
        "--show",
        metavar="CHIP",
        default=None,
        help="print this chip (preset name or TOML file) as TOML",
    )
    p.add_argument(
        "--fields",
        nargs="?",
        const="ideal",
        default=None,
        metavar="CHIP",
        help="list every field --set and --vary accept (devices.*, tile.*, periphery.*, "
        "wires.*, cost.*, run.*) with its value in CHIP (default: ideal), unit, allowed range "
        "and meaning",
    )
    add_set_arg(p, help="with --show: override a field first, e.g. periphery.adc_bits=6")
    add_plugin_arg(p)
    p.add_argument("--json", action="store_true", help="last line of output: one JSON object")
    return p


def run(args: argparse.Namespace) -> int:
    from crossbar import chip_toml, list_chips
    from devices.plugins import loaded_plugins

    if args.fields is not None:
        return _fields(args)
    if args.show is None:
        if args.sets:
            raise UserError("--set needs --show CHIP")
        chips = list_chips()
        width = max(map(len, chips))
        print("chip presets (nsmx run --chip NAME; nsmx chips --show NAME prints one as TOML):")
        for name, description in chips.items():
            print(f"  {name:<{width}}  {description}")
        models = _device_models()
        print("device models (a chip TOML's devices.conductance.model / devices.element.model):")
        for kind, names in models.items():
            print(f"  {kind + ':':<12} {', '.join(names)}")
        plugins = loaded_plugins()
        print(f"plugins loaded: {', '.join(plugins) if plugins else 'none'}")
        if args.json:
            print_json({"chips": chips, "device_models": models, "plugins": plugins})
        return 0
    chip = chip_arg(args.show, args.sets)
    # A preset as shipped gets the header that points to its sources.
    text = chip_toml(args.show) if args.show in list_chips() and not args.sets else chip.to_toml()
    if args.json:  # the chip as one JSON object instead of TOML
        print_json(chip.to_dict())
    else:
        from nsmx.fields_table import commented_toml, field_rows

        print(commented_toml(text, field_rows(chip)), end="")  # each key: unit, range, meaning
    return 0


def _device_models() -> dict[str, list[str]]:
    """The registered conductance and element model names (shipped and plugins'), sorted."""
    from devices.registry import registered

    return {kind: sorted(registered(kind)) for kind in ("conductance", "element")}


def _fields(args: argparse.Namespace) -> int:
    """``nsmx chips --fields [CHIP]``: the field table (:mod:`nsmx.fields_table`)."""

    from nsmx.fields_table import chip_field_rows, format_rows

    rows = chip_field_rows(chip_arg(args.fields, args.sets))
    if args.json:
        print_json({"chip": args.fields, "fields": rows}, default=str)
        return 0
    print(f"fields of chip {args.fields} (nsmx run --set FIELD=VALUE, nsmx sweep --vary ...):")
    for line in format_rows(rows):
        print(line)
    return 0
