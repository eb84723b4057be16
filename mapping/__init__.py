"""From a trained network to a virtual chip: compile, save and load, program, run, report, learn.

The public API, in the order of the data flow::

    program = compile_checkpoint("model.pt")          # torch NSM -> chip-independent Program
    save_program(program, "model.nsmx")               # one checksummed .npz; load_program reads it
    model = program_chip(program, chip, seed=0)       # chip: crossbar.ChipConfig / resolve_chip
    run = model.run(x, RunConfig(samples=100, mode="clt", seed=1))
    report = chip_report(model, run, y)               # accuracy, NLL, per-layer statistics
    p_software = predict_reference(program, x, samples=100, rng=rng)   # the numpy reference

Modules (one job each): :mod:`~mapping.compiler` (torch -> program), :mod:`~mapping.records`
(layer records), :mod:`~mapping.program` (the Program), :mod:`~mapping.program_file` (the file
format), :mod:`~mapping.digital` (the digital steps), :mod:`~mapping.reference` (numpy
semantics), :mod:`~mapping.run_config` (run settings), :mod:`~mapping.programming` (programming
a chip), :mod:`~mapping.runtime` (the programmed model and its MC runs),
:mod:`~mapping.mc_stream` (the MC units, their seeds and one unit's pass), :mod:`~mapping.report`
and :mod:`~mapping.learning` (in-situ learning). Everything but the compiler is numpy-only; the
compiler's names (``compile_model``, ``compile_checkpoint``, ``CompileError``) import torch on
first use, so ``import mapping`` works without PyTorch.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from mapping.learning import LearningConfig, OnChipNetwork, Trainer
from mapping.program import Program, load_program, save_program
from mapping.program_file import ProgramError
from mapping.programming import MappingError, ProgrammedLayer, read_conditions
from mapping.records import (
    BinariseLayer,
    ConvLayer,
    DenseLayer,
    FlattenLayer,
    Layer,
    MaxPoolLayer,
    OutputLayer,
)
from mapping.reference import firing_probability, predict_reference, program_forward_reference
from mapping.report import ChipReport, accuracy_nll, chip_report, format_layers
from mapping.run_config import MODES, P_POLICIES, RunConfig, replace_run_field
from mapping.runtime import ChipModel, ChipRun, program_chip, replace_chip

if TYPE_CHECKING:  # imported on first use (torch)
    from mapping.compiler import CompileError, compile_checkpoint, compile_model

_TORCH_NAMES = ("CompileError", "compile_checkpoint", "compile_model")


def __getattr__(name: str) -> Any:
    if name in _TORCH_NAMES:
        from mapping import compiler

        return getattr(compiler, name)
    raise AttributeError(f"module 'mapping' has no attribute {name!r}")


__all__ = [
    "MODES",
    "P_POLICIES",
    "BinariseLayer",
    "ChipModel",
    "ChipReport",
    "ChipRun",
    "CompileError",
    "ConvLayer",
    "DenseLayer",
    "FlattenLayer",
    "Layer",
    "LearningConfig",
    "MappingError",
    "MaxPoolLayer",
    "OnChipNetwork",
    "OutputLayer",
    "Program",
    "ProgramError",
    "ProgrammedLayer",
    "RunConfig",
    "Trainer",
    "accuracy_nll",
    "chip_report",
    "compile_checkpoint",
    "compile_model",
    "firing_probability",
    "format_layers",
    "load_program",
    "predict_reference",
    "program_chip",
    "program_forward_reference",
    "read_conditions",
    "replace_chip",
    "replace_run_field",
    "save_program",
]
