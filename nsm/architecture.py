"""The user's own architecture as data: a layer list (TOML or dicts) ⇄ an ``nn.Sequential``.

A layer list names the layers in forward order; the hidden layers' type follows the training
rule, as for the named models (:func:`nsm.models.build_model`: one architecture, many rules)::

    name = "mlp-37-21"          # the checkpoint's model name (not one of nsm.models.MODELS)
    input_shape = [1, 8, 8]     # one example, without the batch dimension
    dataset = "digits"          # optional: the bundled set it trains on without --data
    lr = 1e-3                   # optional training defaults: lr, batch_size, lr_step_epochs,
    batch_size = 50             #   weight_decay (else the paper's, nsm.models.ModelSpec)

    [[layers]]
    type = "binarise"           # x in [0, 1] -> sign(2x - 1)
    [[layers]]
    type = "flatten"
    [[layers]]
    type = "nsm-linear"         # a hidden fully connected layer
    out = 37
    p = 0.5                     # Bernoulli p of the NSM noise (or noise = "gaussian", sigma)
    [[layers]]
    type = "nsm-linear"
    out = 21
    p = 0.25
    [[layers]]
    type = "output"             # the real-valued logits layer (nn.Linear), last
    out = 10

Layer types and their keys (defaults in brackets):

``binarise``    the input binariser sign(2x − 1) (no keys);
``flatten``     (C, H, W) states → a vector (no keys);
``nsm-linear``  ``out``, ``p`` [0.5], ``noise`` ["bernoulli" | "gaussian"], ``sigma`` [1.0],
                ``bias`` [true];
``nsm-conv``    ``out`` (channels), ``kernel``, ``stride`` [1], ``padding`` [0], ``p``,
                ``noise``, ``sigma``, ``bias`` as above;
``maxpool``     ``kernel``, ``stride`` [kernel], ``padding`` [0] (on ±1 states: a logical OR);
``output``      ``out`` (the number of classes), ``bias`` [true]; the last layer.

Every hidden layer also takes ``rule`` (one of :data:`nsm.models.RULES`, overriding the
training rule for that layer) and the NSM variants of :class:`nsm.models.ModelOptions`
(``bias_init``, ``structure``, ``mode``; ``beta_per`` for convolutions), overriding the
run's. Kernel, stride and padding are an integer or a pair ``[h, w]``.

:func:`nsm.factory.architecture_of` derives the layer list of a built model (e.g. one returned
by a user's ``module:function`` factory), so a checkpoint records the architecture as data,
never as pickled code. Every problem raises :class:`ArchitectureError` naming the layer and key.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from torch import nn

from nsm.toml_io import read_toml_file

#: The layer types of a layer list, with the keys each takes (besides ``type``).
_HIDDEN_KEYS = ("rule", "bias_init", "structure", "mode", "p", "noise", "sigma", "bias")
LAYER_KEYS: dict[str, tuple[str, ...]] = {
    "binarise": (),
    "flatten": (),
    "nsm-linear": ("out", *_HIDDEN_KEYS),
    "nsm-conv": ("out", "kernel", "stride", "padding", "beta_per", *_HIDDEN_KEYS),
    "maxpool": ("kernel", "stride", "padding"),
    "output": ("out", "bias"),
}
#: Top-level keys of an architecture (besides ``layers``).
TOP_KEYS = ("name", "input_shape", "dataset", "lr", "batch_size", "lr_step_epochs", "weight_decay")
#: Training defaults an architecture may set (:class:`nsm.models.ModelSpec` fields).
TRAIN_KEYS = ("lr", "batch_size", "lr_step_epochs", "weight_decay")


class ArchitectureError(ValueError):
    """A layer list is invalid (unknown type or key, a value out of range, shapes that do not
    chain), or a model holds a module a layer list cannot describe."""


# ------------------------------------------------------------------------------ validation


def _int(where: str, value: Any, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ArchitectureError(f"{where} = {value!r} is invalid; allowed: an integer >= {minimum}")
    return int(value)


def _pair(where: str, value: Any, minimum: int) -> list[int]:
    if isinstance(value, (list, tuple)):
        if len(value) != 2:
            raise ArchitectureError(
                f"{where} = {value!r} is invalid; allowed: an integer or [h, w]"
            )
        return [_int(where, v, minimum) for v in value]
    v = _int(where, value, minimum)
    return [v, v]


def _real(where: str, value: Any, *, gt: float, le: float | None) -> float:
    ok = isinstance(value, (int, float)) and not isinstance(value, bool)
    if ok:
        value = float(value)
        ok = math.isfinite(value) and value > gt and (le is None or value <= le)
    if not ok:
        hi = f"{le:g}]" if le is not None else "inf)"
        raise ArchitectureError(f"{where} = {value!r} is out of range; allowed: ({gt:g}, {hi}")
    return value


def _choice(where: str, value: Any, allowed: Sequence[str]) -> str:
    if value not in allowed:
        raise ArchitectureError(
            f"{where} = {value!r} is not a known choice; allowed: {', '.join(map(repr, allowed))}"
        )
    return value


def _check_layer(where: str, layer: Any) -> dict[str, Any]:
    from nsm.layers import BIAS_INITS
    from nsm.models import RULES

    if not isinstance(layer, Mapping):
        raise ArchitectureError(f"{where} must be a table with a 'type' key, not {layer!r}")
    kind = layer.get("type")
    if kind not in LAYER_KEYS:
        raise ArchitectureError(
            f"{where}.type = {kind!r} is not a known layer type; allowed: {', '.join(LAYER_KEYS)}"
        )
    unknown = sorted(set(layer) - {"type", *LAYER_KEYS[kind]})
    if unknown:
        raise ArchitectureError(
            f"{where} ({kind}): unknown key(s) {unknown}; allowed: "
            f"{', '.join(LAYER_KEYS[kind]) or 'none'}"
        )
    out: dict[str, Any] = {"type": kind}
    w = f"{where} ({kind})"
    if "out" in LAYER_KEYS[kind]:
        if "out" not in layer:
            raise ArchitectureError(f"{w} needs 'out' (its number of outputs)")
        out["out"] = _int(f"{w}.out", layer["out"], 1)
    if kind in ("nsm-conv", "maxpool"):
        if "kernel" not in layer:
            raise ArchitectureError(f"{w} needs 'kernel'")
        out["kernel"] = _pair(f"{w}.kernel", layer["kernel"], 1)
        out["stride"] = _pair(
            f"{w}.stride", layer.get("stride", out["kernel"] if kind == "maxpool" else 1), 1
        )
        out["padding"] = _pair(f"{w}.padding", layer.get("padding", 0), 0)
    if "bias" in layer:
        if not isinstance(layer["bias"], bool):
            raise ArchitectureError(
                f"{w}.bias = {layer['bias']!r} is invalid; allowed: true, false"
            )
        out["bias"] = layer["bias"]
    if kind in ("nsm-linear", "nsm-conv"):
        if "rule" in layer:
            out["rule"] = _choice(f"{w}.rule", layer["rule"], sorted(RULES))
        noise = _choice(f"{w}.noise", layer.get("noise", "bernoulli"), ("bernoulli", "gaussian"))
        out["noise"] = noise
        if noise == "bernoulli":
            if "sigma" in layer:
                raise ArchitectureError(f"{w}: sigma is for noise = 'gaussian'; give p")
            out["p"] = _real(f"{w}.p", layer.get("p", 0.5), gt=0.0, le=1.0)
        else:
            if "p" in layer:
                raise ArchitectureError(f"{w}: p is for noise = 'bernoulli'; give sigma")
            out["sigma"] = _real(f"{w}.sigma", layer.get("sigma", 1.0), gt=0.0, le=None)
        choices = {
            "bias_init": BIAS_INITS,
            "structure": ("per_synapse", "per_input"),
            "mode": ("clt", "exact"),
            "beta_per": ("channel", "location"),
        }
        for key, allowed in choices.items():
            if key in layer:
                out[key] = _choice(f"{w}.{key}", layer[key], allowed)
    return out


def _out_hw(size: int, k: int, s: int, pad: int) -> int:
    return (size + 2 * pad - k) // s + 1


@dataclass(frozen=True)
class Architecture:
    """A validated layer list (module docstring): ``name``, ``input_shape`` (one example),
    ``layers`` (dicts, defaults filled in), optional ``dataset`` and training defaults
    ``train`` (lr, batch_size, lr_step_epochs, weight_decay), and ``source`` (the file or the
    ``module:function`` it came from; informational)."""

    name: str
    input_shape: tuple[int, ...]
    layers: tuple[Mapping[str, Any], ...]
    dataset: str | None = None
    train: Mapping[str, Any] = field(default_factory=dict)
    source: str = ""

    def __post_init__(self) -> None:
        from nsm.models import MODELS

        if not isinstance(self.name, str) or not self.name:
            raise ArchitectureError(f"name = {self.name!r} is invalid; allowed: a non-empty string")
        if self.name in MODELS:
            raise ArchitectureError(
                f"name = {self.name!r} is a shipped model's name; choose another (the shipped "
                f"ones are {', '.join(sorted(MODELS))})"
            )
        if not isinstance(self.input_shape, (list, tuple)) or not self.input_shape:
            raise ArchitectureError(
                f"input_shape = {self.input_shape!r} is invalid; allowed: a list of integers "
                ">= 1, e.g. [1, 8, 8]"
            )
        shape = tuple(_int("input_shape", d, 1) for d in self.input_shape)
        object.__setattr__(self, "input_shape", shape)
        if not isinstance(self.layers, (list, tuple)) or not self.layers:
            raise ArchitectureError("layers is empty; give [[layers]] tables (a layer list)")
        layers = tuple(_check_layer(f"layers[{i}]", layer) for i, layer in enumerate(self.layers))
        object.__setattr__(self, "layers", layers)
        train = dict(self.train)
        for key in train:
            if key not in TRAIN_KEYS:
                raise ArchitectureError(f"unknown training default {key!r}; allowed: {TRAIN_KEYS}")
        if "lr" in train:
            train["lr"] = _real("lr", train["lr"], gt=0.0, le=None)
        if "weight_decay" in train:
            wd = train["weight_decay"]  # >= 0: zero switches the decay off
            train["weight_decay"] = 0.0 if wd == 0 else _real("weight_decay", wd, gt=0.0, le=None)
        for key in ("batch_size", "lr_step_epochs"):
            if key in train:
                train[key] = _int(key, train[key], 1)
        object.__setattr__(self, "train", train)
        self.shapes()  # the layers chain

    # ---------------------------------------------------------------- shapes

    def shapes(self) -> list[tuple[int, ...]]:
        """The input shape of every layer, then the output shape (N left out); an arrangement
        the chip cannot run raises :class:`ArchitectureError` naming the layer."""
        shape = self.input_shape
        shapes = [shape]
        binarised = False
        for i, layer in enumerate(self.layers):
            kind = layer["type"]
            w = f"layers[{i}] ({kind})"
            if kind == "binarise":
                binarised = True
            elif kind == "flatten":
                shape = (math.prod(shape),)
            elif kind in ("nsm-linear", "output"):
                if kind == "output" and i != len(self.layers) - 1:
                    raise ArchitectureError(f"{w}: the output layer must be the last one")
                if not binarised:
                    raise ArchitectureError(
                        f"{w} receives real inputs: put a 'binarise' layer first (the chip's "
                        "rows take ±1 states)"
                    )
                if len(shape) != 1:
                    raise ArchitectureError(
                        f"{w} needs vector inputs; it receives shape {shape} (add 'flatten')"
                    )
                shape = (layer["out"],)
            else:  # nsm-conv, maxpool
                if len(shape) != 3:
                    raise ArchitectureError(f"{w} needs (C, H, W) inputs; it receives {shape}")
                if kind == "nsm-conv" and not binarised:
                    raise ArchitectureError(f"{w} receives real inputs: put 'binarise' first")
                hw = [
                    _out_hw(n, k, s, pad)
                    for n, k, s, pad in zip(
                        shape[1:], layer["kernel"], layer["stride"], layer["padding"], strict=True
                    )
                ]
                if min(hw) < 1:
                    raise ArchitectureError(
                        f"{w}: kernel {layer['kernel']} does not fit inputs of {shape[1:]}"
                    )
                shape = (layer["out"] if kind == "nsm-conv" else shape[0], hw[0], hw[1])
            shapes.append(shape)
        if self.layers[-1]["type"] != "output":
            last = f"layers[{len(self.layers) - 1}] ({self.layers[-1]['type']})"
            raise ArchitectureError(f"{last}: the last layer must be type = 'output' (the logits)")
        return shapes

    @property
    def n_classes(self) -> int:
        """The number of classes (the output layer's ``out``)."""
        return int(self.layers[-1]["out"])

    # ---------------------------------------------------------------- forms

    def to_dict(self) -> dict[str, Any]:
        """The architecture as plain data (JSON/TOML-ready; what a checkpoint records)."""
        out: dict[str, Any] = {"name": self.name, "input_shape": list(self.input_shape)}
        if self.dataset is not None:
            out["dataset"] = self.dataset
        out.update(self.train)
        out["layers"] = [dict(layer) for layer in self.layers]
        if self.source:
            out["source"] = self.source
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], *, source: str = "") -> Architecture:
        """An architecture from :meth:`to_dict`'s form (or a parsed TOML file)."""
        if not isinstance(data, Mapping):
            raise ArchitectureError(f"an architecture is a table, not {type(data).__name__}")
        unknown = sorted(set(data) - {*TOP_KEYS, "layers", "source"})
        if unknown:
            raise ArchitectureError(
                f"unknown top-level key(s) {unknown}; allowed: {', '.join(TOP_KEYS)}, layers"
            )
        for key in ("input_shape", "layers"):
            if key not in data:
                raise ArchitectureError(f"the architecture lacks {key!r}")
        dataset = data.get("dataset")
        if dataset is not None and not isinstance(dataset, str):
            raise ArchitectureError(f"dataset = {dataset!r} is invalid; allowed: a dataset name")
        return cls(
            name=data.get("name", "custom"),
            input_shape=data["input_shape"],
            layers=data["layers"],
            dataset=dataset,
            train={k: data[k] for k in TRAIN_KEYS if k in data},
            source=str(data.get("source", source)),
        )

    # ---------------------------------------------------------------- building

    def build(self, rule: str = "nsm", options: Any = None) -> nn.Sequential:
        """The ``nn.Sequential`` of this layer list with hidden layers of training ``rule``
        (a layer's own ``rule`` key wins) and NSM variants ``options``
        (:class:`nsm.models.ModelOptions`; a layer's own keys win)."""
        import dataclasses

        from nsm.layers import BinarizeInput
        from nsm.models import RULES, ModelOptions

        if rule not in RULES:
            raise ArchitectureError(f"rule = {rule!r} is not one of {sorted(RULES)}")
        base = ModelOptions() if options is None else options
        shapes = self.shapes()
        modules: list[nn.Module] = []
        for i, layer in enumerate(self.layers):
            kind, shape = layer["type"], shapes[i]
            if kind == "binarise":
                modules.append(BinarizeInput())
            elif kind == "flatten":
                modules.append(nn.Flatten())
            elif kind == "maxpool":
                modules.append(
                    nn.MaxPool2d(
                        tuple(layer["kernel"]),
                        stride=tuple(layer["stride"]),
                        padding=tuple(layer["padding"]),
                    )
                )
            elif kind == "output":
                modules.append(nn.Linear(shape[0], layer["out"], bias=layer.get("bias", True)))
            else:
                keys = ("bias_init", "structure", "mode", "beta_per")
                opts = dataclasses.replace(base, **{k: layer[k] for k in keys if k in layer})
                modules.append(_hidden(kind, layer, layer.get("rule", rule), shape, opts))
        return nn.Sequential(*modules)


def _hidden(kind: str, layer: Mapping[str, Any], rule: str, shape: tuple, opts: Any) -> nn.Module:
    """One hidden layer of ``rule``: an NSM layer with the layer's noise and geometry, or the
    baseline's module (:mod:`nsm.models`' builders; plain geometry only)."""
    from nsm.layers import NSMConv2d, NSMLinear
    from nsm.models import _hidden_conv, _hidden_linear, _nsm_rule

    if _nsm_rule(rule) is None:  # a baseline: nsm.models builds it as for the named models
        square = kind == "nsm-linear" or layer["kernel"][0] == layer["kernel"][1]
        plain = layer.get("bias", True) and layer.get("noise", "bernoulli") == "bernoulli"
        if kind == "nsm-conv":
            plain = plain and layer["stride"] == [1, 1] and layer["padding"] == [0, 0]
        if not (square and plain):
            raise ArchitectureError(
                f"rule {rule!r}: stride, padding, rectangular kernels, bias = false and "
                "gaussian noise are options of the NSM rules only"
            )
        if kind == "nsm-linear":
            return _hidden_linear(rule, shape[0], layer["out"], 0.5, opts)
        return _hidden_conv(rule, shape[0], layer["out"], layer["kernel"][0], 0.5, shape[1:], opts)
    noise = layer.get("noise", "bernoulli")
    level = {"p": layer.get("p", 0.5)} if noise == "bernoulli" else {"sigma": layer["sigma"]}
    common = dict(
        noise=noise,
        rule=_nsm_rule(rule),
        bias=layer.get("bias", True),
        **level,
        **opts.nsm_kwargs(),
    )
    if kind == "nsm-linear":
        return NSMLinear(shape[0], layer["out"], **common)
    return NSMConv2d(
        shape[0],
        layer["out"],
        tuple(layer["kernel"]),
        stride=tuple(layer["stride"]),
        padding=tuple(layer["padding"]),
        beta_per=opts.beta_per,
        input_size=shape[1:],
        **common,
    )


# ------------------------------------------------------------------------------ models


def model_spec(name: str, architecture: Mapping[str, Any] | None = None) -> Any:
    """The :class:`nsm.models.ModelSpec` of a named model, or of a user ``architecture`` (the
    dict form of :class:`Architecture`: its name, dataset, input shape and training defaults;
    the paper's where it sets none)."""
    from nsm.models import MODELS, ModelSpec

    if architecture is None:
        if name not in MODELS:
            raise ValueError(f"model={name!r} is not one of {sorted(MODELS)}")
        return MODELS[name]
    arch = Architecture.from_dict(architecture)
    n = sum(1 for layer in arch.layers if layer["type"] in ("nsm-linear", "nsm-conv"))
    return ModelSpec(
        arch.name,
        arch.dataset,
        arch.input_shape,
        f"user architecture ({n} hidden layers, {arch.n_classes} classes)",
        **{k: arch.train[k] for k in TRAIN_KEYS if k in arch.train},
    )


def build(
    name: str,
    rule: str = "nsm",
    options: Any = None,
    *,
    architecture: Mapping[str, Any] | None = None,
) -> nn.Sequential:
    """:func:`nsm.models.build_model` of a named model, or the user ``architecture`` (dict
    form) built with ``rule`` and ``options`` (its layers' own keys win)."""
    from nsm.models import build_model

    if architecture is None:
        return build_model(name, rule, options)
    return Architecture.from_dict(architecture).build(rule, options)


# ------------------------------------------------------------------------------ files


def load_architecture(path: str | os.PathLike[str]) -> Architecture:
    """Read a layer-list TOML file (module docstring); its ``name`` defaults to the file's
    stem. Raises :class:`ArchitectureError` naming the file."""
    path = Path(path)
    data = read_toml_file(
        path,
        ArchitectureError,
        missing="architecture file not found",
        unreadable="not a readable TOML layer list",
    )
    data.setdefault("name", path.stem)
    try:
        return Architecture.from_dict(data, source=path.name)
    except ArchitectureError as exc:
        raise ArchitectureError(f"{path}: {exc}") from None


__all__ = [
    "LAYER_KEYS",
    "Architecture",
    "ArchitectureError",
    "build",
    "load_architecture",
    "model_spec",
]
