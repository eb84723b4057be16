"""The software NSM in PyTorch: layers, models, training, Monte-Carlo evaluation, baselines, data.

Importing ``nsm`` only defines classes and functions (no data, no training, no compilation).
The names below and the submodules are imported on first use, so the standard-library helper
:mod:`nsm.atomic_io` (atomic file writes, shared with :mod:`mapping.program_file`) imports
without PyTorch.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from nsm.baselines import NoisyReLU, SignConv2d, SignLinear
    from nsm.evaluate import mc_accuracy, mc_predict
    from nsm.layers import (
        BinarizeInput,
        BinaryLayer,
        NSMConv2d,
        NSMLinear,
        Stochastic,
        use_generator,
    )

#: Public name -> the submodule that defines it.
_EXPORTS = {
    "NoisyReLU": "baselines",
    "SignConv2d": "baselines",
    "SignLinear": "baselines",
    "mc_accuracy": "evaluate",
    "mc_predict": "evaluate",
    "BinarizeInput": "layers",
    "BinaryLayer": "layers",
    "NSMConv2d": "layers",
    "NSMLinear": "layers",
    "Stochastic": "layers",
    "use_generator": "layers",
}


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(importlib.import_module(f"nsm.{_EXPORTS[name]}"), name)
    try:  # a submodule used as an attribute (``nsm.evaluate.stream_seed``)
        return importlib.import_module(f"nsm.{name}")
    except ModuleNotFoundError as exc:
        if exc.name != f"nsm.{name}":
            raise
        raise AttributeError(f"module 'nsm' has no attribute {name!r}") from None


__all__ = [
    "BinarizeInput",
    "BinaryLayer",
    "NSMConv2d",
    "NSMLinear",
    "NoisyReLU",
    "SignConv2d",
    "SignLinear",
    "Stochastic",
    "mc_accuracy",
    "mc_predict",
    "use_generator",
]
