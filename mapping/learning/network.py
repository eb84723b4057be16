"""The whole in-situ-learning MLP: hidden :class:`~mapping.learning.layer.ChipLayer` s on the
chip, a digital output layer, the training step and its diagnostics (:class:`OnChipNetwork`)."""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from crossbar.config import ChipConfig
from crossbar.transpose import transposed_read
from devices.pulse import PulseConfig

from ..digital import binarise
from ..estimators import estimate_density
from ..program import Program
from ..records import DenseLayer, OutputLayer
from ..updates import apply_pair_update, pulse_counts, refresh_pairs
from .config import LearningConfig
from .layer import ChipLayer
from .models import mlp_template


class Adam:
    """Adam on a dict of float64 arrays (the periphery's digital optimiser)."""

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


class OnChipNetwork:
    """The whole MLP: hidden :class:`ChipLayer` s on the chip + a digital output layer."""

    def __init__(self, config: LearningConfig, chip: ChipConfig, pulse: PulseConfig) -> None:
        if not isinstance(chip, ChipConfig):
            raise TypeError(f"chip={chip!r} must be a crossbar.ChipConfig")
        if not isinstance(pulse, PulseConfig):
            raise TypeError(f"pulse={pulse!r} must be a devices.pulse.PulseConfig")
        self.config, self.chip, self.pulse = config, chip, pulse
        self.pair_update = config.resolved_pair_update(pulse)
        # The architecture is the compiled program of the nsm.models MLP: its binariser (with
        # its threshold), dense sizes and output layer; to_program fills in what was learned.
        self.template = mlp_template(config.model)
        dense = self.template.binary_layers
        self.input_shape = self.template.input_shape
        sizes = (dense[0].fan_in, *(d.fan_out for d in dense))
        n_classes = self.template.n_classes
        self.binariser = self.template.layers[0]
        ss = np.random.SeedSequence(config.seed)
        rng_w, rng_layers, rng_out = (np.random.default_rng(s) for s in ss.spawn(3))
        layer_rngs = rng_layers.spawn(len(sizes) - 1)
        self.layers: list[ChipLayer] = []
        for k in range(len(sizes) - 1):
            bound = 1.0 / math.sqrt(sizes[k])  # nn.Linear's kaiming_uniform(a=√5) bound
            w0 = rng_w.uniform(-bound, bound, (sizes[k], sizes[k + 1]))
            self.layers.append(
                ChipLayer(
                    w0,
                    chip=chip,
                    pulse=pulse,
                    pair_update=self.pair_update,
                    beta_init=config.beta_init,
                    init_fill=config.init_fill,
                    rng=layer_rngs[k],
                )
            )
        bound = 1.0 / math.sqrt(sizes[-1])
        self.digital = {
            "w_out": rng_out.uniform(-bound, bound, (sizes[-1], n_classes)),
            "b_out": np.zeros(n_classes),
        }
        for k, layer in enumerate(self.layers):
            self.digital[f"a{k}"] = layer.a
            self.digital[f"t{k}"] = layer.t
        self.adam = Adam(self.digital, config.lr_periphery)
        self.updates = 0
        self.refreshed = 0

    # ------------------------------------------------------------------ forward / backward

    def binarise(self, x: np.ndarray) -> np.ndarray:
        """Images in [0, 1] (n, *input_shape) → ±1 rows (n, features): the program's binariser
        (sign(2x − 1) for threshold 0.5), flattened."""
        x = np.asarray(x, dtype=np.float64).reshape(len(x), -1)
        return binarise(self.binariser, x, np.float64)

    def forward(self, z: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, list]:
        cache = []
        for layer in self.layers:
            c = layer.forward(z, rng)
            cache.append(c)
            z = c["z_out"]
        logits = z @ self.digital["w_out"] + self.digital["b_out"]
        return logits, cache

    def predict_proba(
        self, x: np.ndarray, samples: int, *, rng: np.random.Generator, chunk: int = 1000
    ) -> np.ndarray:
        """MC-averaged softmax over ``samples`` independent forward passes (n, classes)."""
        z0 = self.binarise(x)
        out = np.zeros((len(z0), self.digital["b_out"].size))
        for s0 in range(0, len(z0), chunk):
            zb = z0[s0 : s0 + chunk]
            for _ in range(samples):
                logits, _ = self.forward(zb, rng)
                out[s0 : s0 + chunk] += _softmax(logits)
        return out / samples

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
        computes (diagnostics)."""
        cfg = self.config
        rng_f, rng_e, rng_t, rng_u = rng.spawn(4)
        z = self.binarise(x)
        b = len(z)
        logits, cache = self.forward(z, rng_f)
        p = _softmax(logits)
        loss = float(-np.mean(np.log(p[np.arange(b), y] + 1e-12)))
        correct = int(np.sum(np.argmax(logits, axis=1) == y))
        g_logits = p.copy()
        g_logits[np.arange(b), y] -= 1.0
        g_logits /= b
        z_last = cache[-1]["z_out"]
        grads_dig = {"w_out": z_last.T @ g_logits, "b_out": g_logits.sum(axis=0)}
        g_z = g_logits @ self.digital["w_out"].T
        hw_grads: list[np.ndarray] = [np.empty(0)] * len(self.layers)
        pulses: list[tuple[np.ndarray, np.ndarray]] = [None] * len(self.layers)  # type: ignore
        for k in range(len(self.layers) - 1, -1, -1):
            layer, c = self.layers[k], cache[k]
            f = estimate_density(
                cfg.estimator,
                c["margin"],
                c["sigma"],
                u=c["u"],
                delta=cfg.delta,
                reads=cfg.estimator_reads,
                rng=rng_e,
            )
            g_m = g_z * 2.0 * f  # dL/dm (1/µA)
            grads_dig[f"a{k}"] = np.sum(g_m * c["i_d"], axis=0)
            grads_dig[f"t{k}"] = -np.sum(g_m * c["sigma"], axis=0)
            gain = self.layers[k].v * (layer.alpha_bar + c["a"])  # column read gain, V
            d = g_m * gain  # per-example column error: dL/dw_ij ≈ z_j d_i
            hw_grads[k] = c["z_in"].T @ d
            if apply:
                pulses[k] = pulse_counts(
                    c["z_in"], d, lr_pulses, update=cfg.update, rng=rng_u, norm=cfg.update_norm
                )
            if k > 0:
                mom = c["mom"]
                # δ·(ᾱ + a) on the columns (the periphery's gain), rows sensed: dL/dz below.
                g_z = transposed_read(
                    layer.g_plus.g_us,
                    layer.g_minus.g_us,
                    g_m * (layer.alpha_bar + c["a"]),
                    v_read_v=layer.v,
                    read_sigma_plus_us=mom["sp"],
                    read_sigma_minus_us=mom["sm"],
                    rng=rng_t,
                )
        if apply:
            upd_rngs = rng_u.spawn(len(self.layers) + 1)
            for k, layer in enumerate(self.layers):
                n_inc, n_dec = pulses[k]
                apply_pair_update(
                    layer.g_plus,
                    layer.g_minus,
                    n_inc,
                    n_dec,
                    pair_update=self.pair_update,
                    rng=upd_rngs[k],
                )
            self.adam.step(grads_dig)
            for layer in self.layers:  # registers within the gain range
                np.clip(layer.a, -layer.gain_range, layer.gain_range, out=layer.a)
            self.updates += 1
            if (
                self.pair_update == "set_only"
                and cfg.refresh_every
                and self.updates % cfg.refresh_every == 0
            ):
                for layer in self.layers:
                    self.refreshed += refresh_pairs(
                        layer.g_plus, layer.g_minus, level=cfg.refresh_level, rng=upd_rngs[-1]
                    )
        return StepResult(loss, correct, hw_grads, cache, logits)

    # ------------------------------------------------------------------ diagnostics

    def exact_gradients(self, cache: list[dict[str, np.ndarray]], y: np.ndarray) -> list:
        """The mean-field NSM weight gradients (float64, torch autograd) of the mini-batch
        whose forward ``cache`` is given (same sampled states and conductances): per layer
        dL/dw (n_in, n_out), w = G⁺ − G⁻ (set_only: (∂/∂G⁺ − ∂/∂G⁻)/2; bidirectional:
        ∂/∂G⁺, the device that is updated)."""
        import torch

        t = lambda a: torch.as_tensor(np.asarray(a, dtype=np.float64))  # noqa: E731
        h = t(cache[0]["z_in"])
        leaves = []
        for layer, c in zip(self.layers, cache, strict=True):
            gp = t(layer.g_plus.g_us).requires_grad_(True)
            gm = t(layer.g_minus.g_us).requires_grad_(True)
            leaves.append((gp, gm))
            mom = c["mom"]
            a = t(c["a"])
            m_s = t(layer.alpha_p) * gp - t(layer.alpha_m) * gm
            m_d = gp - gm
            v_el = t(layer.beta_p) * gp**2 + t(layer.beta_m) * gm**2 + t(layer.gamma) * m_d**2
            var = (
                layer.v**2 * (v_el + t(mom["v_rd"]) + a**2 * t(mom["v_d"])).sum(0)
                + layer.noise_sigma_ua**2
            )
            sigma = torch.sqrt(var)
            margin = layer.v * (h @ (m_s + a * m_d)) + t(layer.offsets_ua) - t(layer.t) * sigma
            prob = 0.5 * (1.0 + torch.erf(margin / (math.sqrt(2.0) * sigma)))
            mean = 2.0 * prob - 1.0
            h = (t(c["z_out"]) - mean).detach() + mean
        logits = h @ t(self.digital["w_out"]) + t(self.digital["b_out"])
        loss = torch.nn.functional.cross_entropy(logits, torch.as_tensor(y, dtype=torch.long))
        flat = [v for pair in leaves for v in pair]
        grads = torch.autograd.grad(loss, flat)
        out = []
        for k in range(len(self.layers)):
            g_p, g_m = grads[2 * k].numpy(), grads[2 * k + 1].numpy()
            out.append(0.5 * (g_p - g_m) if self.pair_update == "set_only" else g_p)
        return out

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

    # ------------------------------------------------------------------ state

    def state_arrays(self) -> dict[str, np.ndarray]:
        """Every mutable array (conductances, pulse counters, periphery, Adam moments)."""
        out: dict[str, np.ndarray] = {}
        for k, layer in enumerate(self.layers):
            for side, arr in (("plus", layer.g_plus), ("minus", layer.g_minus)):
                out[f"l{k}_{side}_g_us"] = arr.g_us
                out[f"l{k}_{side}_n_up"] = arr.n_up
                out[f"l{k}_{side}_n_down"] = arr.n_down
        for key in self.digital:
            out[f"digital_{key}"] = self.digital[key]
            out[f"adam_m_{key}"] = self.adam.m[key]
            out[f"adam_v_{key}"] = self.adam.v[key]
        return out

    def load_state_arrays(self, arrays: dict[str, np.ndarray]) -> None:
        for key, value in self.state_arrays().items():
            if key not in arrays:
                raise ValueError(f"checkpoint lacks array {key!r}")
            src = np.asarray(arrays[key])
            if src.shape != value.shape:
                raise ValueError(
                    f"checkpoint array {key!r} has shape {src.shape}; expected {value.shape}"
                )
            value[...] = src  # in place: the registers are shared with the layers
        for layer in self.layers:  # conductances changed behind the arrays' backs
            layer.g_plus.version += 1
            layer.g_minus.version += 1

    def to_program(self, source: dict[str, Any] | None = None) -> Program:
        """The learned network as a crossbar :class:`~mapping.program.Program` (the NSM the
        chip realises: w = m_s + a m_d, β and b from the realised σ), for ``nsmx run``."""
        template = self.template
        layers = []
        k = 0
        for rec in template.layers:
            if isinstance(rec, DenseLayer):
                layer = self.layers[k]
                w, beta, b_tilde = layer.effective()
                norm = np.linalg.norm(w, axis=0)
                kw: dict[str, Any]
                if layer.noise == "bernoulli":
                    p = min(max(layer.alpha_bar, 1e-6), 1 - 1e-6)
                    c = math.sqrt(2 * p * (1 - p))
                    kw = dict(noise="bernoulli", p=p, sigma=None)
                else:
                    sig = math.sqrt(layer.xi_var)
                    c = math.sqrt(2) * sig
                    kw = dict(noise="gaussian", p=None, sigma=sig)
                rec = dataclasses.replace(
                    rec,
                    weight=w.astype(np.float32),
                    beta=beta.astype(np.float32),
                    bias=(b_tilde * c * norm).astype(np.float32),
                    rule="in_situ",
                    **kw,
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
            layers=tuple(layers), input_shape=template.input_shape, source=dict(source or {})
        )


def _softmax(logits: np.ndarray) -> np.ndarray:
    z = logits - logits.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)
