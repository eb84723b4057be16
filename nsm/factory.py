"""A user's ``module:function`` factory and the layer list of a built model.

:func:`architecture_of` describes an ``nn.Sequential`` of supported modules as a layer list
(:class:`nsm.architecture.Architecture`), so ``nsmx train --model module:function`` records
the architecture as data: the checkpoint loads, compiles and runs without the factory's code.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

from torch import nn

from nsm.architecture import LAYER_KEYS, Architecture, ArchitectureError


def load_factory(spec: str) -> Any:
    """The callable named by ``"module:function"`` (imported; the user's code)."""
    import importlib

    module, sep, name = spec.partition(":")
    if not sep or not module or not name:
        raise ArchitectureError(f"{spec!r} is not of the form module:function")
    try:
        obj = importlib.import_module(module)
    except Exception as exc:  # the user's module: name it and the cause
        raise ArchitectureError(
            f"{spec}: module {module!r} failed to import ({type(exc).__name__}: {exc})"
        ) from exc
    for part in name.split("."):
        if not hasattr(obj, part):
            raise ArchitectureError(f"{spec}: module {module!r} has no attribute {name!r}")
        obj = getattr(obj, part)
    if not callable(obj):
        raise ArchitectureError(f"{spec}: {name!r} is not callable")
    return obj


def call_factory(spec: str) -> nn.Sequential:
    """Call the ``module:function`` factory with no arguments; it must return an
    ``nn.Sequential``."""
    model = load_factory(spec)()
    if not isinstance(model, nn.Sequential):
        raise ArchitectureError(f"{spec} returned {type(model).__name__}, not an nn.Sequential")
    return model


# ------------------------------------------------------------------------------ derivation


def leaves(module: nn.Module, path: str = "") -> Iterator[tuple[str, nn.Module]]:
    """(dotted path, module) of every non-container module of nested ``nn.Sequential`` s, depth
    first, in forward order (the model itself, path ``""``, when it is not a Sequential)."""
    if isinstance(module, nn.Sequential):
        for name, child in module.named_children():
            yield from leaves(child, f"{path}.{name}" if path else name)
    else:
        yield path, module


def _pair_of(value: Any) -> list[int]:
    return [int(value), int(value)] if isinstance(value, int) else [int(v) for v in value]


def _rule_of(module: nn.Module) -> str:
    from nsm.baselines import SignConv2d, SignLinear

    if isinstance(module, (SignLinear, SignConv2d)):
        if not module.weight_norm:
            return "bd"
        return "bn" if module.backward == "erf" else "wbd"
    return {"sample": "nsm", "ste": "nsm-ste", "binconcrete": "binconcrete"}[module.rule]


def architecture_of(
    model: nn.Sequential, input_shape: Sequence[int], *, name: str, source: str = ""
) -> Architecture:
    """The layer list of a built model (binariser, flatten, NSM / sign layers, max-pooling, a
    final ``nn.Linear``), such that :meth:`Architecture.build` rebuilds a model with the same
    state-dict keys and shapes. Anything else raises :class:`ArchitectureError` naming the
    module (such a model can still be trained; its checkpoint then needs the factory)."""
    from nsm.baselines import SignConv2d, SignLinear
    from nsm.layers import BinarizeInput, NSMConv2d, NSMLinear

    layers: list[dict[str, Any]] = []
    found = list(leaves(model))
    for i, (path, m) in enumerate(found):
        w = f"module {path or '<root>'} ({type(m).__name__})"
        if isinstance(m, BinarizeInput):
            layers.append({"type": "binarise"})
        elif isinstance(m, nn.Flatten):
            if (m.start_dim, m.end_dim) != (1, -1):
                raise ArchitectureError(f"{w}: only Flatten(start_dim=1, end_dim=-1)")
            layers.append({"type": "flatten"})
        elif isinstance(m, nn.MaxPool2d):
            if m.dilation not in (1, (1, 1)) or m.ceil_mode or m.return_indices:
                raise ArchitectureError(f"{w}: only dilation=1, ceil_mode=False")
            stride = m.stride if m.stride is not None else m.kernel_size
            layers.append(
                {
                    "type": "maxpool",
                    "kernel": _pair_of(m.kernel_size),
                    "stride": _pair_of(stride),
                    "padding": _pair_of(m.padding),
                }
            )
        elif isinstance(m, nn.Linear) and i == len(found) - 1:
            layers.append({"type": "output", "out": m.out_features, "bias": m.bias is not None})
        elif isinstance(m, (NSMLinear, NSMConv2d)):
            layer: dict[str, Any] = {
                "type": "nsm-linear" if isinstance(m, NSMLinear) else "nsm-conv",
                "out": m.out_features if isinstance(m, NSMLinear) else m.out_channels,
                "rule": _rule_of(m),
                "noise": m.noise,
                "structure": m.structure,
                "mode": m.mode,
                "bias": m.bias is not None,
            }
            layer.update({"p": float(m.p)} if m.noise == "bernoulli" else {"sigma": m.sigma})
            if isinstance(m, NSMConv2d):
                layer.update(
                    kernel=list(m.kernel_size),
                    stride=list(m.stride),
                    padding=list(m.padding),
                    beta_per=m.beta_per,
                )
            layers.append(layer)
        elif isinstance(m, (SignLinear, SignConv2d)):
            if m.bias is None:
                raise ArchitectureError(f"{w}: sign layers without a bias are not described")
            layer = {
                "type": "nsm-linear" if isinstance(m, SignLinear) else "nsm-conv",
                "out": m.out_features if isinstance(m, SignLinear) else m.out_channels,
                "rule": _rule_of(m),
            }
            if isinstance(m, SignConv2d):
                if (
                    list(m.stride) != [1, 1]
                    or list(m.padding) != [0, 0]
                    or (m.kernel_size[0] != m.kernel_size[1])
                ):
                    raise ArchitectureError(f"{w}: stride/padding/rectangular kernels")
                layer["kernel"] = list(m.kernel_size)
            layers.append(layer)
        else:
            raise ArchitectureError(
                f"{w} cannot be described by a layer list (types: {', '.join(LAYER_KEYS)})"
            )
    arch = Architecture(name=name, input_shape=tuple(input_shape), layers=layers, source=source)
    rebuilt = arch.build()
    want = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    got = {k: tuple(v.shape) for k, v in rebuilt.state_dict().items()}
    if want != got:
        raise ArchitectureError(
            "the layer list rebuilds a model with other parameter names or shapes (a nested "
            "nn.Sequential?): build the factory's model as one flat nn.Sequential"
        )
    return arch


__all__ = ["architecture_of", "call_factory", "leaves", "load_factory"]
