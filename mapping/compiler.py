"""Compiler: a trained PyTorch NSM (or sign baseline) → a chip-independent crossbar Program.

Supported modules, walked in order through (nested) ``nn.Sequential`` containers, as built by
``nsm.models.build_model``:

- ``nsm.BinarizeInput`` → ``binarize`` (threshold 0.5: sign(2x − 1));
- any layer with ``hardware_params()`` (``NSMLinear``, ``NSMConv2d``, ``SignLinear``,
  ``SignConv2d``: see :class:`nsm.layers.BinaryLayer`) → ``dense`` / ``conv``, the weight
  transposed to (fan_in, fan_out) (torch stores (out, in)) and, for convolutions, unrolled
  im2col-style in the column order of ``torch.nn.functional.unfold``;
- ``nn.MaxPool2d`` → ``maxpool``; ``nn.Flatten`` → ``flatten``;
- a final real-valued ``nn.Linear`` → ``output``.

Anything else (``nn.ReLU``, batch norm, the SN baseline's ``NoisyReLU``, an ``nn.Linear`` that is
not the last layer, ...) raises :class:`CompileError` naming the module's path and type and
listing what is supported.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from devices.fields import check_choice
from mapping.program import Program
from mapping.records import (
    ENCODINGS,
    SCALE_POLICIES,
    BinariseLayer,
    BinaryMatrixLayer,
    ConvLayer,
    DenseLayer,
    FlattenLayer,
    Layer,
    MaxPoolLayer,
    OutputLayer,
    as_shape,
)
from nsm.factory import leaves as nsm_leaves
from nsm.layers import BinarizeInput, BinaryLayer

SUPPORTED = (
    "nsm.BinarizeInput",
    "nsm.NSMLinear",
    "nsm.NSMConv2d",
    "nsm.SignLinear",
    "nsm.SignConv2d",
    "nn.MaxPool2d",
    "nn.Flatten",
    "nn.Linear (only as the final output layer)",
    "nn.Sequential (containers of the above)",
)


class CompileError(ValueError):
    """The model contains a module, or an arrangement of modules, the chip cannot run."""


def _supported() -> str:
    return "supported modules: " + ", ".join(SUPPORTED)


def _numpy(t: torch.Tensor) -> np.ndarray:
    return t.detach().cpu().to(torch.float64).numpy()


def _check_finite(where: str, **arrays: np.ndarray) -> None:
    for key, a in arrays.items():
        if not np.all(np.isfinite(a)):
            raise CompileError(f"{where}: {key} has non-finite values (NaN or inf); retrain")


def _binary_layer(
    where: str,
    name: str,
    module: nn.Module,
    in_shape: tuple[int, ...],
    *,
    scale_policy: str,
    encoding: str,
) -> BinaryMatrixLayer:
    hp: Mapping[str, Any] = module.hardware_params()  # type: ignore[operator]
    weight = _numpy(hp["weight"])
    beta, bias = _numpy(hp["beta"]), _numpy(hp["bias"])
    _check_finite(where, weight=weight, beta=beta, bias=bias)
    deterministic = hp["kind"] == "sign"
    if deterministic:
        backward = getattr(module, "backward", "ste")
        rule = f"sign_{backward}"
    else:
        rule = str(getattr(module, "rule", "sample"))
    common: dict[str, Any] = {
        "name": name,
        "in_shape": in_shape,
        "beta": beta,
        "bias": bias,
        "noise": hp["noise"],
        "p": None if hp["p"] is None else float(hp["p"]),
        "sigma": None if hp["sigma"] is None else float(hp["sigma"]),
        "structure": hp["structure"],
        "deterministic": deterministic,
        "weight_norm": bool(hp["weight_norm"]),
        "rule": rule,
        "scale_policy": scale_policy,
        "encoding": encoding,
    }
    if hp["op"] == "linear":
        in_f = weight.shape[1]
        if in_shape != (in_f,):
            raise CompileError(
                f"{where} expects {in_f} input features but receives states of shape "
                f"{in_shape}" + ("; flatten them first (nn.Flatten)" if len(in_shape) > 1 else "")
            )
        return DenseLayer(weight=weight.T, **common)
    if hp["op"] == "conv2d":
        c_out, c_in = weight.shape[:2]
        if len(in_shape) != 3 or in_shape[0] != c_in:
            raise CompileError(
                f"{where} expects (C={c_in}, H, W) inputs but receives states of shape {in_shape}"
            )
        beta_per = "channel" if beta.ndim == 1 else "location"
        try:
            return ConvLayer(
                # (C_out, C_in, kH, kW) → (C_out, C_in·kH·kW): the row index c·kH·kW + i·kW + j is
                # exactly unfold's column order; transpose to (fan_in, fan_out).
                weight=weight.reshape(c_out, -1).T,
                kernel_size=tuple(hp["kernel_size"]),
                stride=tuple(hp["stride"]),
                padding=tuple(hp["padding"]),
                beta_per=beta_per,
                **common,
            )
        except ValueError as exc:
            raise CompileError(f"{where}: {exc}") from None
    raise CompileError(f"{where}: unknown hardware op {hp['op']!r}; {_supported()}")


def compile_model(
    model: nn.Module,
    input_shape: tuple[int, ...],
    *,
    source: Mapping[str, Any] | None = None,
    scale_policy: str = "per_column",
    encoding: str = "differential_pair",
) -> Program:
    """Compile ``model`` (inputs of shape (batch, *input_shape) in [0, 1]) into a Program.

    ``scale_policy``: "per_column" (each crossbar column uses the full conductance range with
    its own scale, free under weight normalisation: β absorbs it) or "global" (one scale per
    layer). ``encoding``: "differential_pair" (w ∝ G⁺ − G⁻) or "reference_column". Both are
    recorded in every crossbar layer; the chip applies them at programming time. ``source`` is
    stored as information (checkpoint path, model, rule, epochs). Raises :class:`CompileError`.
    """
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    check_choice("scale_policy", scale_policy, SCALE_POLICIES)
    check_choice("encoding", encoding, ENCODINGS)
    shape = as_shape("input_shape", input_shape)

    leaves = [(path or "<model>", module) for path, module in nsm_leaves(model)]
    # First the module types, so that e.g. the SN baseline is reported by its NoisyReLU.
    for path, module in leaves:
        ok = isinstance(module, (BinarizeInput, BinaryLayer, nn.MaxPool2d, nn.Flatten, nn.Linear))
        if not ok:
            kids = list(module.children())
            what = "an unsupported container" if kids else "not supported on the chip"
            raise CompileError(
                f"module {path} ({type(module).__name__}) is {what} (hidden layers must be "
                f"binary NSM or sign layers with ±1 states); {_supported()}"
            )

    layers: list[Layer] = []
    binary = False
    for index, (path, module) in enumerate(leaves):
        where = f"module {path} ({type(module).__name__})"
        if isinstance(module, BinarizeInput):
            layer: Layer = BinariseLayer(name=path, in_shape=shape)
            binary = True
        elif isinstance(module, BinaryLayer):
            if not binary:
                raise CompileError(
                    f"{where} receives real-valued inputs; the chip drives crossbar rows with ±1 "
                    "states (no DAC): put nsm.BinarizeInput before it"
                )
            layer = _binary_layer(
                where, path, module, shape, scale_policy=scale_policy, encoding=encoding
            )
        elif isinstance(module, nn.MaxPool2d):
            layer = _maxpool(where, path, module, shape)
        elif isinstance(module, nn.Flatten):
            if module.start_dim != 1 or module.end_dim != -1:
                raise CompileError(
                    f"{where}: only nn.Flatten(start_dim=1, end_dim=-1) is supported"
                )
            layer = FlattenLayer(name=path, in_shape=shape)
        else:  # nn.Linear
            if index != len(leaves) - 1:
                nxt_path, nxt = leaves[index + 1]
                raise CompileError(
                    f"{where}: a real-valued nn.Linear is supported only as the final output "
                    f"layer, but it is followed by module {nxt_path} ({type(nxt).__name__}); "
                    f"{_supported()}"
                )
            if not binary:
                raise CompileError(
                    f"{where} receives real-valued inputs; put nsm.BinarizeInput before it"
                )
            if len(shape) != 1 or shape[0] != module.in_features:
                raise CompileError(
                    f"{where} expects {module.in_features} input features but receives states "
                    f"of shape {shape}"
                )
            weight = _numpy(module.weight)
            bias = _numpy(module.bias) if module.bias is not None else np.zeros(module.out_features)
            _check_finite(where, weight=weight, bias=bias)
            layer = OutputLayer(
                name=path,
                in_shape=shape,
                weight=weight.T,
                bias=bias,
                scale_policy=scale_policy,
                encoding=encoding,
            )
        layers.append(layer)
        shape = layer.out_shape

    if not layers or not isinstance(layers[-1], OutputLayer):
        last = f"module {leaves[-1][0]} ({type(leaves[-1][1]).__name__})" if leaves else "nothing"
        raise CompileError(
            f"the model must end with a real-valued nn.Linear output layer; it ends with {last}"
        )
    try:
        return Program(tuple(layers), input_shape=tuple(input_shape), source=dict(source or {}))
    except ValueError as exc:
        raise CompileError(str(exc)) from None


def _maxpool(where: str, name: str, module: nn.MaxPool2d, shape: tuple[int, ...]) -> Layer:
    def pair(v: Any) -> tuple[int, int]:
        return (v, v) if isinstance(v, int) else (int(v[0]), int(v[1]))

    if pair(module.dilation) != (1, 1) or module.ceil_mode or module.return_indices:
        raise CompileError(
            f"{where}: only dilation=1, ceil_mode=False, return_indices=False are supported"
        )
    if len(shape) != 3:
        raise CompileError(f"{where} needs (C, H, W) states; it receives shape {shape}")
    stride = module.stride if module.stride is not None else module.kernel_size
    try:
        return MaxPoolLayer(
            name=name,
            in_shape=shape,
            kernel_size=pair(module.kernel_size),
            stride=pair(stride),
            padding=pair(module.padding),
        )
    except ValueError as exc:
        raise CompileError(f"{where}: {exc}") from None


def compile_checkpoint(
    path: str | os.PathLike,
    *,
    scale_policy: str = "per_column",
    encoding: str = "differential_pair",
) -> Program:
    """Load a training checkpoint (``nsm.checkpoint.load_model``) and compile it.

    The program's ``source`` records the checkpoint path, model, rule and epochs trained (and,
    for a user architecture that names one, its dataset).
    Raises ``nsm.checkpoint.CheckpointError`` for a bad file, :class:`CompileError` for a model
    the chip cannot run (e.g. the SN baseline).
    """
    from nsm.checkpoint import checkpoint_spec, load_model
    from nsm.models import MODELS

    model, ckpt = load_model(path)
    spec = checkpoint_spec(ckpt, path=path)  # a named model or the recorded architecture
    source = {
        "checkpoint": str(Path(path)),
        "model": ckpt["model"],
        "rule": ckpt["rule"],
        "epochs": int(ckpt["epoch"]),
    }
    if spec.name not in MODELS and spec.dataset is not None:  # a user architecture's dataset
        source["dataset"] = spec.dataset
    return compile_model(
        model,
        spec.input_shape,
        source=source,
        scale_policy=scale_policy,
        encoding=encoding,
    )
