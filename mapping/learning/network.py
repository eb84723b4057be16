"""The whole in-situ-learning network on one engine (:class:`OnChipNetwork`).

The network *is* a :class:`~mapping.runtime.ChipModel` (tiles, two-phase β gain, thresholds,
calibrated ADCs, comparators, wires, counters) whose hidden layers are made learnable by
:class:`~mapping.learning.layer.ChipLayer` and whose output layer sits in the digital periphery
(:class:`~mapping.learning.output.PeripheryOutput`). The forward pass of a training step is
:meth:`ChipModel.sample_states` itself (one MC sample per example, exact or clt), so learning
and inference read the same chip; the backward pass uses transposed reads of the same tiles
(:func:`crossbar.transpose.tiled_transposed_read`: the chip's wire attenuation and read noise,
a converter on the sensed rows).
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from crossbar.config import ChipConfig
from crossbar.moments import layer_moments
from crossbar.transpose import tiled_transposed_read
from devices.pulse import PulseConfig

from .. import digital
from ..estimators import estimate_density
from ..program import Program
from ..records import ConvLayer, DenseLayer, FlattenLayer, MaxPoolLayer, OutputLayer
from ..run_config import RunConfig
from ..runtime import ChipModel, program_chip
from ..updates import apply_pair_update, pulse_counts, refresh_pairs
from .backward import col2im, locations, maxpool_backward
from .config import LearningConfig
from .layer import ChipLayer, chip_pulse
from .models import check_learnable, network_template
from .output import PeripheryOutput

#: how much of the chip a fine-tuning run may change
TUNES = ("full", "periphery")


class Adam:
    """Adam on a dict of float64 arrays (the periphery's digital optimiser), in place."""

    def __init__(
        self,
        params: dict[str, np.ndarray],
        lr: float,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
    ) -> None:
        self.params, self.lr, self.betas, self.eps = params, lr, betas, eps
        self.m = {k: np.zeros_like(v) for k, v in params.items()}
        self.v = {k: np.zeros_like(v) for k, v in params.items()}
        self.t = 0

    def step(self, grads: dict[str, np.ndarray]) -> None:
        self.t += 1
        b1, b2 = self.betas
        for k, g in grads.items():
            self.m[k] = b1 * self.m[k] + (1 - b1) * g
            self.v[k] = b2 * self.v[k] + (1 - b2) * g * g
            mh = self.m[k] / (1 - b1**self.t)
            vh = self.v[k] / (1 - b2**self.t)
            self.params[k] -= self.lr * mh / (np.sqrt(vh) + self.eps)


@dataclass
class StepResult:
    loss: float
    correct: int
    grads: list[np.ndarray]  # hardware-sampled weight gradients per layer (diagnostics)
    cache: list[dict[str, np.ndarray]]
    logits: np.ndarray
    pulses: int  # pulses sent in this step (0 for periphery-only tuning)


def scratch_program(
    model: str, seed: int, beta_init: float, architecture: dict[str, Any] | None = None
) -> Program:
    """The architecture ``model`` (or the user layer list ``architecture``;
    :func:`~mapping.learning.models.network_template`) with random initial weights
    (nn.Linear's kaiming_uniform(a=√5) bound 1/√fan_in, fan_in = C_in·kH·kW for a conv, from
    ``seed``), β = ``beta_init`` and zero biases: the program a from-scratch learning run
    starts from."""
    template = network_template(model, architecture)
    rng_w, _, rng_out = (np.random.default_rng(s) for s in np.random.SeedSequence(seed).spawn(3))
    layers = []
    for rec in template.layers:
        if isinstance(rec, (DenseLayer, ConvLayer, OutputLayer)):
            n_in, n_out = rec.fan_in, rec.fan_out
            rng = rng_out if isinstance(rec, OutputLayer) else rng_w
            w = rng.uniform(-1 / math.sqrt(n_in), 1 / math.sqrt(n_in), (n_in, n_out))
            kw: dict[str, Any] = dict(weight=w.astype(np.float32), bias=np.zeros(n_out, np.float32))
            if not isinstance(rec, OutputLayer):
                kw["beta"] = np.full(n_out, beta_init, dtype=np.float32)
            rec = dataclasses.replace(rec, **kw)
        layers.append(rec)
    return Program(layers=tuple(layers), input_shape=template.input_shape, source={})


class OnChipNetwork:
    """A programmed chip that learns: hidden :class:`ChipLayer` s + a digital output layer.

    ``program`` None: learn ``config.model`` from scratch (:func:`scratch_program`); else
    fine-tune the chip programmed with ``program`` (``config.tune``: ``"periphery"`` — gains,
    thresholds, output layer, no pulse; ``"full"`` — also pulse updates of the crossbars).
    ``calibration``: training inputs for the chip's data-calibrated ADCs (as
    :func:`~mapping.runtime.program_chip`).
    """

    def __init__(
        self,
        config: LearningConfig,
        chip: ChipConfig,
        pulse: PulseConfig,
        program: Program | None = None,
        *,
        calibration: Any = None,
    ) -> None:
        if not isinstance(chip, ChipConfig):
            raise TypeError(f"chip={chip!r} must be a crossbar.ChipConfig")
        if not isinstance(pulse, PulseConfig):
            raise TypeError(f"pulse={pulse!r} must be a devices.pulse.PulseConfig")
        self.config, self.chip, self.pulse = config, chip, pulse
        self.pair_update = config.resolved_pair_update(pulse)
        scratch = self.scratch = program is None
        if scratch:
            program = scratch_program(
                config.model, config.seed, config.beta_init, config.architecture
            )
        check_learnable(program)
        self.initial_program = program
        self.template = program
        self.input_shape = program.input_shape
        model = program_chip(program, chip, seed=config.seed, p_policy=config.p_policy)
        cond = chip.devices.conductance_model()
        self.chip_pulse = chip_pulse(pulse, cond.g_min_us, cond.g_max_us)
        layer_rngs = np.random.default_rng(np.random.SeedSequence([config.seed, 7])).spawn(
            len(model.layers)
        )
        self.layers: list[ChipLayer] = []
        for k, pl in enumerate(model.binary_layers):
            init = None
            if scratch:
                init = (np.asarray(pl.record.weight, dtype=np.float64), config.init_fill)
            self.layers.append(
                ChipLayer(
                    pl,
                    pulse=self.chip_pulse,
                    pair_update=self.pair_update,
                    rng=layer_rngs[k],
                    init=init,
                )
            )
        out_rec = program.layers[-1]
        self.digital = {
            "w_out": np.array(out_rec.weight, dtype=np.float64),
            "b_out": np.array(out_rec.bias, dtype=np.float64),
        }
        out_pl = model.layers[-1]
        self.output = PeripheryOutput(self.digital["w_out"], self.digital["b_out"], out_pl.chip)
        layers = (*model.layers[:-1], dataclasses.replace(out_pl, hardware=self.output))
        self.model = ChipModel(
            program, chip, layers, seed=model.seed, p_policy=model.p_policy, t_cal_s=model.t_cal_s
        )
        if calibration is not None and self.model.needs_adc_calibration:
            self.model.calibrate(calibration)
        for k, layer in enumerate(self.layers):
            self.digital[f"a{k}"] = layer.a
            self.digital[f"t{k}"] = layer.t
        self.adam = Adam(self.digital, config.lr_periphery)
        self.updates = 0
        self.refreshed = 0

    # ------------------------------------------------------------------ evaluation

    def run_config(self, samples: int, seed: int) -> RunConfig:
        return RunConfig(
            samples=samples, seed=seed, mode=self.config.mode, p_policy=self.model.p_policy
        )

    def accuracy(self, x: np.ndarray, y: np.ndarray, samples: int, seed: int) -> float:
        """MC accuracy of the chip as it is (:meth:`ChipModel.run`)."""
        run = self.model.run(x, self.run_config(samples, seed))
        return float(np.mean(np.argmax(run.probabilities, axis=1) == np.asarray(y)))

    # ------------------------------------------------------------------ forward / backward

    def forward(self, x: np.ndarray, seed: int) -> tuple[np.ndarray, list[dict[str, np.ndarray]]]:
        """One MC sample per example through the chip (:meth:`ChipModel.sample_states` with
        read seed ``seed``): logits float64 (b, classes) and per hidden layer its ±1 input
        patches ``z_in`` (b·L, K) and output states ``z_out`` (b·L, N), float64 (L = 1, K =
        fan_in for a dense layer; rows b·L + l, l = h'·W' + w' for a conv)."""
        logits, cache, _ = self._forward(x, seed)
        return logits, cache

    def _forward(
        self, x: np.ndarray, seed: int
    ) -> tuple[np.ndarray, list[dict[str, np.ndarray]], list[np.ndarray]]:
        """:meth:`forward`, and every program layer's output (b, *out_shape) float64."""
        raw = self.model.sample_states(x, self.run_config(1, seed))
        states = [np.asarray(s[0], dtype=np.float64) for s in raw]
        cache = []
        for layer in self.layers:
            i = layer.programmed.index
            rec = layer.programmed.record
            z_in = digital.patches(rec, states[i - 1], np.float64)
            cache.append(
                {
                    "z_in": z_in.reshape(-1, rec.fan_in),
                    "z_out": locations(rec, states[i]),
                }
            )
        return states[-1], cache, states

    def step(
        self,
        x: np.ndarray,
        y: np.ndarray,
        *,
        lr_pulses: float,
        rng: np.random.Generator,
        apply: bool = True,
    ) -> StepResult:
        """One training step on a mini-batch (x images, y labels); ``apply=False`` only
        computes (diagnostics).

        The backward pass walks the program in reverse: the output layer's error is digital;
        flatten reshapes; max-pooling routes each error to its window's arg-max
        (:func:`~mapping.learning.backward.maxpool_backward`); a crossbar layer (dense, or a
        conv at every location) multiplies the error by 2·f̂ and the column read gain, and
        sends it down by a tiled transposed read of its tiles per location, folded back onto
        its input (:func:`~mapping.learning.backward.col2im`). A conv's weight update and
        periphery gradients sum over locations and the mini-batch."""
        cfg = self.config
        seed = int(rng.integers(1 << 62))
        rng_e, rng_t, rng_u = rng.spawn(3)
        logits, cache, states = self._forward(x, seed)
        b = len(x)
        p = _softmax(logits)
        loss = float(-np.mean(np.log(p[np.arange(b), y] + 1e-12)))
        correct = int(np.sum(np.argmax(logits, axis=1) == y))
        g_logits = p.copy()
        g_logits[np.arange(b), y] -= 1.0
        g_logits /= b
        records = self.template.layers
        z_last = states[-2].reshape(b, -1)  # the output layer's ±1 inputs
        grads_dig = {"w_out": z_last.T @ g_logits, "b_out": g_logits.sum(axis=0)}
        g = g_logits @ self.digital["w_out"].T  # dL/dz on the output layer's input
        hw_grads: list[np.ndarray] = [np.empty(0)] * len(self.layers)
        pulses: list[Any] = [None] * len(self.layers)
        pulse_weights = cfg.tune == "full"
        hidden_at = {layer.programmed.index: k for k, layer in enumerate(self.layers)}
        first = self.layers[0].programmed.index
        for i in range(len(records) - 2, first - 1, -1):
            rec = records[i]
            if isinstance(rec, FlattenLayer):
                g = g.reshape(b, *rec.in_shape)
                continue
            if isinstance(rec, MaxPoolLayer):
                g = maxpool_backward(rec, states[i - 1], g)
                continue
            k = hidden_at[i]
            layer, c = self.layers[k], cache[k]
            g_z = locations(rec, g)
            margin, sigma = layer.margins(c["z_in"])
            c["margin"], c["sigma"] = margin, sigma
            f = estimate_density(
                cfg.estimator, margin, sigma, delta=cfg.delta, reads=cfg.estimator_reads, rng=rng_e
            )
            g_m = g_z * 2.0 * f  # dL/dm (1/µA)
            m_d = layer.coefficient("m_d")
            i_d = layer.v * (c["z_in"] @ m_d)  # the deterministic read (µA)
            grads_dig[f"a{k}"] = np.sum(g_m * i_d, axis=0) * layer.gain_factor
            grads_dig[f"t{k}"] = -np.sum(g_m, axis=0) * layer.sigma0
            drive = layer.alpha() + layer.hw.gain  # the column read gain per volt
            c["drive"] = drive
            d = g_m * (layer.v * drive)  # per-example column error: dL/dG_ij ≈ z_j d_i
            hw_grads[k] = c["z_in"].T @ d
            if apply and pulse_weights:
                pulses[k] = pulse_counts(
                    c["z_in"], d, lr_pulses, update=cfg.update, rng=rng_u, norm=cfg.update_norm
                )
            if k > 0:  # δ·(ᾱ + a) on the columns, rows sensed: dL/dz of the layer below
                e = tiled_transposed_read(layer.hw, g_m * drive, rng=rng_t)
                g = col2im(rec, e, b)
            else:
                break
        sent = 0
        if apply:
            upd_rngs = rng_u.spawn(len(self.layers) + 1)
            if pulse_weights:
                for k, layer in enumerate(self.layers):
                    n_inc, n_dec = pulses[k]
                    sent += int(n_inc.sum() + n_dec.sum())
                    apply_pair_update(
                        layer.g_plus,
                        layer.g_minus,
                        n_inc,
                        n_dec,
                        pair_update=self.pair_update,
                        rng=upd_rngs[k],
                    )
            self.adam.step(grads_dig)
            per = self.chip.periphery
            self.updates += 1
            if (
                pulse_weights
                and self.pair_update == "set_only"
                and cfg.refresh_every
                and self.updates % cfg.refresh_every == 0
            ):
                for layer in self.layers:
                    self.refreshed += refresh_pairs(
                        layer.g_plus, layer.g_minus, level=cfg.refresh_level, rng=upd_rngs[-1]
                    )
            for layer in self.layers:
                np.clip(layer.a, -per.gain_range, per.gain_range, out=layer.a)
                if pulse_weights:
                    layer.sync_conductances()
                layer.apply_registers()
        return StepResult(loss, correct, hw_grads, cache, logits, sent)

    # ------------------------------------------------------------------ diagnostics

    def exact_gradients(self, cache: list[dict[str, np.ndarray]], y: np.ndarray) -> list:
        """The mean-field NSM gradients (float64, torch autograd) of the mini-batch whose
        ``cache`` a :meth:`step` filled (same sampled states, same chip): dL/dM through
        P = Φ((zM + offset − θ)/σ) with σ held at the read's value, the sampled states passed
        on straight-through (mean-field backward, sampled forward), max-pooling routed to the
        arg-max of the sampled states (torch's ``max_pool2d`` indices) and convolutions
        unfolded densely (``torch.nn.functional.unfold``); mapped to the devices by the column
        read gain V(ᾱ_i + a_i), per layer (n_in, n_out)."""
        import torch
        import torch.nn.functional as F

        t = lambda a: torch.as_tensor(np.asarray(a, dtype=np.float64))  # noqa: E731
        records = self.template.layers
        hidden_at = {layer.programmed.index: k for k, layer in enumerate(self.layers)}
        first = self.layers[0].programmed.index
        b = len(y)
        h = zs = None  # the surrogate (torch) and the sampled states (numpy), (b, *shape)
        leaves = []
        for i in range(first, len(records) - 1):
            rec = records[i]
            if isinstance(rec, FlattenLayer):
                h, zs = h.reshape(b, -1), zs.reshape(b, -1)
                continue
            if isinstance(rec, MaxPoolLayer):
                zt = t(zs)
                pooled, idx = F.max_pool2d(
                    zt, rec.kernel_size, rec.stride, rec.padding, return_indices=True
                )
                h = torch.gather(h.flatten(2), 2, idx.flatten(2)).view_as(pooled)
                zs = pooled.numpy()
                continue
            k = hidden_at[i]
            layer, c = self.layers[k], cache[k]
            hl = layer.hw
            if h is None:
                patches = t(c["z_in"])
            elif isinstance(rec, ConvLayer):
                unf = F.unfold(h, rec.kernel_size, padding=rec.padding, stride=rec.stride)
                patches = unf.transpose(1, 2).reshape(-1, rec.fan_in)
            else:
                patches = h.reshape(-1, rec.fan_in)
            m = np.hstack([hl.moment_coefficients(0.0, j)[0] for j in range(len(hl.col_slices))])
            mt = t(m).requires_grad_(True)
            leaves.append(mt)
            off = hl.offsets_ua if hl.analog_comparator else np.zeros(hl.fan_out)
            margin = patches @ mt + t(off - hl.threshold_ua)
            prob = 0.5 * (1.0 + torch.erf(margin / (math.sqrt(2.0) * t(c["sigma"]))))
            mean = 2.0 * prob - 1.0
            h_loc = (t(c["z_out"]) - mean).detach() + mean  # (b·L, N)
            if isinstance(rec, ConvLayer):
                n, oh, ow = rec.out_shape
                h = h_loc.reshape(b, oh * ow, n).transpose(1, 2).reshape(b, n, oh, ow)
                zs = digital.fold(rec, c["z_out"].reshape(b, oh * ow, n))
            else:
                h, zs = h_loc, c["z_out"]
        logits = h.reshape(b, -1) @ t(self.digital["w_out"]) + t(self.digital["b_out"])
        loss = torch.nn.functional.cross_entropy(logits, torch.as_tensor(y, dtype=torch.long))
        grads = torch.autograd.grad(loss, leaves)
        return [
            g.numpy() * (layer.v * c["drive"])
            for g, layer, c in zip(grads, self.layers, cache, strict=True)
        ]

    def pulse_stats(self) -> list[dict[str, float]]:
        """Per layer: mean and max pulses per device so far (both devices of the pairs)."""
        out = []
        for layer in self.layers:
            n = np.concatenate(
                [layer.g_plus.total_pulses().ravel(), layer.g_minus.total_pulses().ravel()]
            )
            out.append(
                {"mean": float(n.mean()), "max": int(n.max()), "p99": float(np.percentile(n, 99))}
            )
        return out

    def total_pulses(self) -> int:
        return int(
            sum(
                ly.g_plus.total_pulses().sum() + ly.g_minus.total_pulses().sum()
                for ly in self.layers
            )
        )

    # ------------------------------------------------------------------ state

    def state_arrays(self) -> dict[str, np.ndarray]:
        """Every mutable array: conductances and pulse counters, periphery registers (and the
        ADC full scales), Adam moments."""
        out: dict[str, np.ndarray] = {}
        for k, layer in enumerate(self.layers):
            for side, arr in (("plus", layer.g_plus), ("minus", layer.g_minus)):
                out[f"l{k}_{side}_g_us"] = arr.g_us
                out[f"l{k}_{side}_n_up"] = arr.n_up
                out[f"l{k}_{side}_n_down"] = arr.n_down
            for key, fs in layer.hw.adc_full_scale_ua.items():
                out[f"l{k}_adc_{key}"] = fs
        for key in self.digital:
            out[f"digital_{key}"] = self.digital[key]
            out[f"adam_m_{key}"] = self.adam.m[key]
            out[f"adam_v_{key}"] = self.adam.v[key]
        return out

    def load_state_arrays(self, arrays: dict[str, np.ndarray]) -> None:
        for key, value in self.state_arrays().items():
            if key not in arrays:
                raise ValueError(f"state lacks array {key!r}")
            src = np.asarray(arrays[key])
            if src.shape != value.shape:
                raise ValueError(
                    f"state array {key!r} has shape {src.shape}; expected {value.shape}"
                )
            value[...] = src  # in place: the registers are shared with the layers
        for layer in self.layers:
            layer.g_plus.version += 1
            layer.g_minus.version += 1
            layer.sync_conductances()
            layer.apply_registers()

    def to_program(self, source: dict[str, Any] | None = None) -> Program:
        """The learned network as a crossbar :class:`~mapping.program.Program`: the NSM the
        chip realises now (weights = the realised mean weights m_s + a m_d per volt, β and b
        such that the NSM unit's P equals the chip's Φ((z·M + offset − θ)/σ) for ±1 inputs),
        for ``nsmx run``."""
        layers = []
        k = 0
        for rec in self.template.layers:
            if isinstance(rec, (DenseLayer, ConvLayer)):
                hl = self.layers[k].hw
                w, q = layer_moments(hl.read_arrays(0.0), hl.gain, 1.0)  # per volt
                analog = hl.analog_comparator
                v = hl.chip.v_read_v
                var = v**2 * q.sum(axis=0) + (hl.neuron.config.noise_sigma_ua**2 if analog else 0)
                scale = np.sqrt(2.0 * var)
                norm = np.linalg.norm(w, axis=0)
                off = hl.offsets_ua if analog else 0.0
                beta = v * norm / scale  # P = Φ((V z·w + offset − θ)/√Var), as the chip reads
                bias = (off - hl.threshold_ua) / scale * hl.noise_scale * norm
                rec = dataclasses.replace(
                    rec,
                    weight=w.astype(np.float32),
                    beta=beta.astype(np.float32),
                    bias=bias.astype(np.float32),
                    rule="in_situ",
                )
                k += 1
            elif isinstance(rec, OutputLayer):
                rec = dataclasses.replace(
                    rec,
                    weight=self.digital["w_out"].astype(np.float32),
                    bias=self.digital["b_out"].astype(np.float32),
                )
            layers.append(rec)
        return Program(
            layers=tuple(layers), input_shape=self.input_shape, source=dict(source or {})
        )


def _softmax(logits: np.ndarray) -> np.ndarray:
    z = logits - logits.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)
