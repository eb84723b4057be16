"""The crossbar program: a trained network as chip-independent data, and its file (``.nsmx``).

A :class:`Program` is the ordered, validated list of layer records a chip executes
(:mod:`mapping.records`: binarise, dense, conv, maxpool, flatten, output); it checks that the
records chain and summarises them. :func:`save_program` and :func:`load_program` write and read
it as one ``.npz`` with a checksummed JSON manifest (:mod:`mapping.program_file`,
docs/program-format.md). The same program runs on any chip: tiling and conductances are the
chip's job at programming time (:func:`mapping.runtime.program_chip`). Numpy only (never torch),
so programs load on machines without PyTorch. The record classes live in :mod:`mapping.records`
and the file-format names in :mod:`mapping.program_file` (both exported by :mod:`mapping`).
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from mapping.program_file import (
    ProgramError,
    build_manifest,
    layer_arrays,
    read_program_file,
    write_program_file,
)
from mapping.records import (
    KINDS,
    BinariseLayer,
    BinaryMatrixLayer,
    Layer,
    OutputLayer,
    as_shape,
    layer_attrs,
)


def _check_json_value(where: str, value: object) -> None:
    try:
        json.dumps(value, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{where} must be JSON data (str, number, bool, null): {exc}") from None


@dataclass(frozen=True, eq=False)
class Program:
    """An ordered, validated list of layer records; chip-independent.

    ``input_shape``: the shape of one input example (e.g. (1, 28, 28)), values in [0, 1].
    ``source``: information about where the program came from (checkpoint path, model, rule,
    epochs); ``created``: filled by :func:`load_program` from the file (package version, time).
    Validation on construction: the layers chain (each ``in_shape`` is the previous
    ``out_shape``), crossbar layers receive binary states (a ``binarize`` layer comes first:
    no DAC), and exactly one ``output`` layer ends the program.
    """

    layers: tuple[Layer, ...]
    input_shape: tuple[int, ...]
    source: Mapping[str, Any] = field(default_factory=dict)
    created: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        layers = tuple(self.layers)
        object.__setattr__(self, "layers", layers)
        object.__setattr__(self, "input_shape", as_shape("input_shape", self.input_shape))
        for key in ("source", "created"):
            value = dict(getattr(self, key))
            if not all(isinstance(k, str) for k in value):
                raise ValueError(f"{key} keys must be strings")
            _check_json_value(key, value)
            object.__setattr__(self, key, value)
        if not layers:
            raise ValueError("a program needs at least one layer (the output layer)")
        shape = self.input_shape
        binary = False
        names = set()
        for i, layer in enumerate(layers):
            if type(layer) not in KINDS.values():
                raise ValueError(
                    f"layers[{i}] is a {type(layer).__name__}; expected one of "
                    f"{[c.__name__ for c in KINDS.values()]}"
                )
            where = f"layers[{i}] {layer.name!r} ({layer.kind})"
            if layer.name in names:
                raise ValueError(f"{where}: duplicate layer name")
            names.add(layer.name)
            if layer.in_shape != shape:
                prev = "the program input" if i == 0 else f"layers[{i - 1}]"
                raise ValueError(
                    f"{where}: in_shape {layer.in_shape} does not match the shape {shape} "
                    f"produced by {prev}"
                )
            if isinstance(layer, (BinaryMatrixLayer, OutputLayer)) and not binary:
                raise ValueError(
                    f"{where}: a crossbar layer needs ±1 input states (rows are driven by ±V, "
                    "no DAC); put a binarize layer before it"
                )
            if isinstance(layer, OutputLayer) and i != len(layers) - 1:
                raise ValueError(f"{where}: the output layer must be the last layer")
            if isinstance(layer, (BinariseLayer, BinaryMatrixLayer)):
                binary = True
            shape = layer.out_shape
        if not isinstance(layers[-1], OutputLayer):
            raise ValueError(
                f"the last layer {layers[-1].name!r} is a {layers[-1].kind} layer; a program "
                "ends with a real-valued output layer"
            )

    def __eq__(self, other: object) -> bool:
        """Equal manifests (layers, attributes, shapes, source) and bitwise equal arrays."""
        if not isinstance(other, Program):
            return NotImplemented
        if (self.input_shape, dict(self.source)) != (other.input_shape, dict(other.source)):
            return False
        if len(self.layers) != len(other.layers):
            return False
        for a, b in zip(self.layers, other.layers, strict=True):
            if type(a) is not type(b) or layer_attrs(a) != layer_attrs(b):
                return False
            for key in a.array_fields:
                x, y = getattr(a, key), getattr(b, key)
                if x.shape != y.shape or x.tobytes() != y.tobytes():
                    return False
        return True

    __hash__ = None  # type: ignore[assignment]

    @property
    def output(self) -> OutputLayer:
        return self.layers[-1]  # type: ignore[return-value]

    @property
    def n_classes(self) -> int:
        return self.output.fan_out

    @property
    def binary_layers(self) -> tuple[BinaryMatrixLayer, ...]:
        """The stochastic / sign crossbar layers (dense and conv), in order."""
        return tuple(layer for layer in self.layers if isinstance(layer, BinaryMatrixLayer))

    def params(self) -> int:
        """Total trained parameters (weights, beta, bias)."""
        return sum(layer.params() for layer in self.layers if hasattr(layer, "params"))

    def cells(self) -> int:
        """Total crossbar cells over all matrices (see :meth:`DenseLayer.cells`)."""
        return sum(layer.cells() for layer in self.layers if hasattr(layer, "cells"))

    def summary(self) -> list[dict[str, Any]]:
        """One row per layer: name, kind, in/out shapes, noise, level (p or σ), params, cells."""
        rows = []
        for layer in self.layers:
            row: dict[str, Any] = {
                "name": layer.name,
                "kind": layer.kind,
                "in_shape": list(layer.in_shape),
                "out_shape": list(layer.out_shape),
                "noise": "",
                "level": "",
                "params": 0,
                "cells": 0,
            }
            if isinstance(layer, BinaryMatrixLayer):
                row["noise"] = layer.noise
                if layer.noise == "bernoulli":
                    row["level"] = f"p={layer.p:g}"
                elif layer.noise == "gaussian":
                    row["level"] = f"sigma={layer.sigma:g}"
                else:
                    row["level"] = "deterministic"
                row["matrix"] = [layer.fan_in, layer.fan_out]
            if isinstance(layer, (BinaryMatrixLayer, OutputLayer)):
                row["params"] = layer.params()
                row["cells"] = layer.cells()
                row["matrix"] = [layer.fan_in, layer.fan_out]
            rows.append(row)
        return rows

    # ---------------------------------------------------------------- file contents

    def manifest(self, *, created: Mapping[str, Any] | None = None) -> dict[str, Any]:
        """The JSON manifest without its checksum (see docs/program-format.md)."""
        return build_manifest(
            self.layers, self.input_shape, self.created if created is None else created
        )

    def arrays(self) -> dict[str, np.ndarray]:
        """Every array by its npz key (``layer{i}.{field}``), in checksum order."""
        return layer_arrays(self.layers)


def save_program(program: Program, path: str | os.PathLike) -> Path:
    """Write ``program`` to ``path`` (one .npz; the exact name is kept) atomically.

    The file appears complete or not at all (temporary file in the same folder, then
    ``os.replace``). Returns the path.
    """
    if not isinstance(program, Program):
        raise TypeError(f"program must be a Program, got {type(program).__name__}")
    return write_program_file(path, program.layers, program.input_shape, program.source)


def load_program(path: str | os.PathLike) -> Program:
    """Read and fully validate a program file; never unpickles, never imports torch.

    Raises :class:`ProgramError` naming the file and what is wrong
    (:func:`mapping.program_file.read_program_file`), including layer records that do not chain.
    """
    parts = read_program_file(path)
    try:
        return Program(parts.layers, parts.input_shape, source=parts.source, created=parts.created)
    except (ValueError, TypeError) as exc:
        raise ProgramError(f"{path}: invalid program: {exc}") from None


__all__ = ["Program", "ProgramError", "load_program", "save_program"]
