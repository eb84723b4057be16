"""In-situ learning of an NSM on the chip (docs/onchip.md): MLPs and conv networks.

The hidden layers live on the chip as differential pairs of pulse-programmed devices
(:mod:`devices.pulse`), updated in place; the periphery holds, digitally, each neuron's gain a_i
(the two-phase β gain, docs/hardware-model.md §4), its threshold and the real-valued output layer.

Forward (per hidden layer, inputs z ±1, batch b), as the engine's ``clt`` read of the same
arrays (moments of :func:`crossbar.tile.read_arrays`, one Gaussian per neuron)::

    m_bi = V z_b·(m_s + a_i m_d)_i + offset_i − θ_i        (noise-free margin, µA)
    σ_i² = V² Σ_j (v_el + v_rd + a_i² v_d)_ji + σ_n²       (a column constant for ±1 inputs)
    u_bi = m_bi + σ_i ε,  z_bi = sign(u_bi)

with m_s = α⁺G⁺ − α⁻G⁻ (α = the element's E[ξ] per cell), m_d = G⁺ − G⁻, v_el the element
variance, v_rd/v_d the conductance model's read noise. θ_i = t_i σ_i (the threshold register t_i
is in units of σ_i). Backward: the output error is computed digitally; each hidden layer
multiplies it by 2·f̂ (f̂ an estimate of dP/dm, :mod:`mapping.estimators`) and by the column's
read gain c_i = V(ᾱ + a_i), and propagates to the layer below by a *transposed read* of the
same arrays (:func:`crossbar.transpose.transposed_read`, with read noise). Weight updates are
pulse trains (:mod:`mapping.updates`); gains, thresholds and the output layer use Adam in the
periphery (Kingma & Ba 2015; lr ``lr_periphery``).

Diagnostics: for a mini-batch per epoch, the cosine per layer between the hardware-sampled
weight gradient V zᵀ(g ∘ c) and the exact mean-field NSM gradient (docs/model.md §2) of the same
mini-batch, sampled states and conductances, computed in float64 with torch autograd (σ_i
held at the read's value, as the hardware estimate holds it); pulse counts per device
(endurance).

Conv layers are im2col crossbars read at every location (the same tiles); their errors are
sent down by the transposed read per location and folded back (col2im), max-pooling in the
digital periphery routes errors to the arg-max (:mod:`~mapping.learning.backward`).

Modules: :mod:`~mapping.learning.config` (:class:`LearningConfig`), :mod:`~mapping.learning.models`
(the learnable architectures: named models of ``nsm.models`` and user layer lists),
:mod:`~mapping.learning.backward` (per-location errors, col2im, max-pool routing),
:mod:`~mapping.learning.layer` (:class:`ChipLayer`),
:mod:`~mapping.learning.network` (:class:`OnChipNetwork`: forward, step, diagnostics, export as
a program) and :mod:`~mapping.learning.trainer` (:class:`Trainer`: epochs and checkpoints).
"""

from .chip_state import (
    ChipStateError,
    load_chip_state,
    load_untuned_chip,
    read_chip_state,
    save_chip_state,
)
from .config import LearningConfig
from .layer import ChipLayer
from .models import check_learnable, learnable_models, network_template
from .network import TUNES, Adam, OnChipNetwork, StepResult, scratch_program
from .output import PeripheryOutput
from .trainer import CHECKPOINT_VERSION, Trainer, cosine

__all__ = [
    "CHECKPOINT_VERSION",
    "TUNES",
    "Adam",
    "ChipLayer",
    "ChipStateError",
    "LearningConfig",
    "OnChipNetwork",
    "PeripheryOutput",
    "StepResult",
    "Trainer",
    "check_learnable",
    "cosine",
    "learnable_models",
    "load_chip_state",
    "load_untuned_chip",
    "network_template",
    "read_chip_state",
    "save_chip_state",
    "scratch_program",
]
