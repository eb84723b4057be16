"""How the chip learns: :class:`LearningConfig`, validated at construction (devices.fields)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from devices.fields import check_choice, check_real, param, validate_config
from devices.pulse import PulseConfig

from ..estimators import ESTIMATORS
from ..run_config import MODES, P_POLICIES
from ..updates import NORMS, PAIR_UPDATES, UPDATES
from .models import learnable_models, network_template


@dataclass(frozen=True)
class LearningConfig:
    """How the chip learns (the chip and the pulse device come separately).

    lr_us: the largest expected weight change per device and update (µS), converted to pulses
    with the pulse device's nominal up step (lr_pulses = lr_us/dg_up_us), so that a coarse
    device (FeFET: 0.63 µS per pulse) and a fine one (ideal: 0.025 µS) learn at the same rate
    in conductance units; ``lr_pulses`` (pulses per update) overrides it when given. Both decay
    by ``lr_decay`` per epoch. ``batch_size`` 1 = online learning. ``pair_update`` "auto":
    ``set_only`` for devices with an abrupt RESET (PCM), else ``bidirectional``.
    ``refresh_every``/``refresh_level``: refresh of saturated set_only pairs (0 = never).
    ``init_fill``: fraction of the window that the largest initial |w| of a column uses.
    ``model``: a named model of :data:`nsm.models.MODELS`
    (:func:`mapping.learning.models.learnable_models`), ``"custom"`` with ``architecture``
    (a user layer list in the dict form of :class:`nsm.architecture.Architecture`, as
    ``nsmx train --model FILE.toml`` records it), or ``""`` when learning starts from a
    compiled program. ``mode``: the engine's read mode of
    the forward pass and of evaluation ("exact" or "clt", as :meth:`ChipModel.run`).
    ``tune``: ``"full"`` (pulse updates of the crossbars and the periphery) or ``"periphery"``
    (only the β gains, thresholds and output layer: no pulse is sent). ``p_policy``: how the
    program's p is read on the chip (:func:`mapping.runtime.program_chip`).
    """

    model: str = "digits-mlp"
    architecture: Mapping[str, Any] | None = None
    mode: str = "clt"
    tune: str = "full"
    p_policy: str = "trained"
    estimator: str = "exact"
    delta: float = param(
        0.5, gt=0.0, le=100.0, doc="window half-width Δ of the window estimators, in units of σ"
    )
    estimator_reads: int = param(
        1, ge=1, doc="reads averaged per estimate of dP/dm (the noisy estimators)"
    )
    update: str = "deterministic"
    update_norm: str = "max"
    pair_update: str = "auto"
    # 0.2 µS (8 pulses of the ideal device): reaches >= 90 % on digits from scratch in 5 epochs
    # (0.1 µS gave 89.8 %); an empirical choice, not a device constant
    lr_us: float = param(
        0.2,
        gt=0.0,
        le=1e3,
        unit="µS",
        doc="largest expected conductance change per device and update",
    )
    lr_pulses: float | None = None
    lr_decay: float = param(0.9, gt=0.0, le=1.0, doc="per-epoch factor on the pulse learning rate")
    lr_periphery: float = param(
        0.01, gt=0.0, le=10.0, doc="Adam learning rate of the gains, thresholds and output layer"
    )
    batch_size: int = param(50, ge=1, doc="examples per update (1 = online learning)")
    refresh_every: int = param(
        50, ge=0, doc="updates between refreshes of saturated set_only pairs (0 = never)"
    )
    refresh_level: float = param(
        0.9, gt=0.0, le=1.0, doc="fraction of the window above which a pair is saturated"
    )
    beta_init: float = param(
        2.0, gt=0.0, le=100.0, doc="initial β of every neuron when learning from scratch"
    )
    init_fill: float = param(
        0.3, gt=0.0, le=1.0, doc="window fraction the largest initial |w| of a column uses"
    )
    eval_samples: int = param(20, ge=1, doc="MC samples per test example in evaluations")
    seed: int = param(0, ge=0, doc="seed of programming, sampling and updates")

    def __post_init__(self) -> None:
        validate_config(self)  # the numeric fields: types and ranges as declared
        name = type(self).__name__
        check_choice(f"{name}.mode", self.mode, MODES)
        check_choice(f"{name}.tune", self.tune, ("full", "periphery"))
        check_choice(f"{name}.p_policy", self.p_policy, P_POLICIES)
        if self.architecture is not None:
            if self.model != "custom":
                raise ValueError(
                    f"{name}.model = {self.model!r} with an architecture; allowed: 'custom'"
                )
            object.__setattr__(self, "architecture", _plain(self.architecture))
            network_template(self.model, self.architecture)  # validates the layer list
        elif self.model == "":
            pass  # the architecture comes from a compiled program
        else:
            try:
                network_template(self.model)  # compiles only the requested model
            except (ValueError, TypeError):
                # raises, listing the learnable models
                check_choice(f"{name}.model", self.model, learnable_models())
                raise
        check_choice(f"{name}.estimator", self.estimator, ESTIMATORS)
        check_choice(f"{name}.update", self.update, UPDATES)
        check_choice(f"{name}.update_norm", self.update_norm, NORMS)
        check_choice(f"{name}.pair_update", self.pair_update, (*PAIR_UPDATES, "auto"))
        if self.lr_pulses is not None:
            lr = check_real(f"{name}.lr_pulses", self.lr_pulses, gt=0.0, le=1e6)
            object.__setattr__(self, "lr_pulses", lr)

    def resolved_lr_pulses(self, pulse: PulseConfig) -> float:
        """Pulses per update at epoch 0 (``lr_pulses``, or ``lr_us`` over the up step)."""
        return self.lr_pulses if self.lr_pulses is not None else self.lr_us / pulse.dg_up_us

    def resolved_pair_update(self, pulse: PulseConfig) -> str:
        if self.pair_update != "auto":
            return self.pair_update
        return "set_only" if pulse.reset == "abrupt" else "bidirectional"


def _plain(value: Any) -> Any:
    """A JSON-ready copy of an architecture (tuples as lists), as the chip-state file stores it."""
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value
