"""In-situ learning of an NSM MLP on the chip (DESIGN §4, issue 7).

The hidden layers live on the chip as differential pairs of pulse-programmed devices
(:mod:`devices.pulse`), updated in place; the periphery holds, digitally, each neuron's gain a_i
(the two-phase β gain of DESIGN §3), its threshold and the real-valued output layer.

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
weight gradient V zᵀ(g ∘ c) and the exact mean-field NSM gradient (DESIGN §2) of the same
mini-batch, sampled states and conductances, computed in float64 with torch autograd
(including the dependence of σ_i on the conductances that the hardware estimate omits); pulse
counts per device (endurance).
"""

from __future__ import annotations

import dataclasses
import json
import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from crossbar.config import ChipConfig
from crossbar.periphery import quantise_gain
from crossbar.probability import quantize_probability
from crossbar.tile import DEFAULT_BITS
from crossbar.transpose import transposed_read
from devices.conductance import ConductanceState
from devices.pulse import PulseConfig, PulseDevice

from .digital import binarise
from .estimators import ESTIMATORS, estimate_density
from .records import BinariseLayer
from .updates import NORMS, PAIR_UPDATES, UPDATES, apply_pair_update, pulse_counts, refresh_pairs

MODELS = {
    "digits-mlp": ((1, 8, 8), (64, 128, 128), 10),
    "mnist-mlp": ((1, 28, 28), (784, 300, 300, 300), 10),
}
CHECKPOINT_VERSION = 1


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
    """

    model: str = "digits-mlp"
    estimator: str = "exact"
    delta: float = 0.5
    estimator_reads: int = 1
    update: str = "deterministic"
    update_norm: str = "max"
    pair_update: str = "auto"
    lr_us: float = 0.1
    lr_pulses: float | None = None
    lr_decay: float = 0.9
    lr_periphery: float = 0.01
    batch_size: int = 50
    refresh_every: int = 50
    refresh_level: float = 0.9
    beta_init: float = 2.0
    init_fill: float = 0.3
    eval_samples: int = 20
    seed: int = 0

    def __post_init__(self) -> None:
        def bad(name: str, allowed: str) -> ValueError:
            return ValueError(
                f"LearningConfig.{name}={getattr(self, name)!r} is invalid; allowed: {allowed}"
            )

        if self.model not in MODELS:
            raise bad("model", ", ".join(MODELS))
        if self.estimator not in ESTIMATORS:
            raise bad("estimator", ", ".join(ESTIMATORS))
        if self.update not in UPDATES:
            raise bad("update", ", ".join(UPDATES))
        if self.update_norm not in NORMS:
            raise bad("update_norm", ", ".join(NORMS))
        if self.pair_update not in (*PAIR_UPDATES, "auto"):
            raise bad("pair_update", ", ".join((*PAIR_UPDATES, "auto")))
        if self.lr_pulses is not None and (
            isinstance(self.lr_pulses, bool)
            or not isinstance(self.lr_pulses, (int, float))
            or not 0.0 < self.lr_pulses <= 1e6
        ):
            raise bad("lr_pulses", "None or a number in (0, 1e6]")
        for name, lo, hi in (
            ("delta", 0.0, 100.0),
            ("lr_us", 0.0, 1e3),
            ("lr_periphery", 0.0, 10.0),
            ("beta_init", 0.0, 100.0),
        ):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not lo < v <= hi:
                raise bad(name, f"a number in ({lo:g}, {hi:g}]")
        for name, lo, hi in (
            ("lr_decay", 0.0, 1.0),
            ("refresh_level", 0.0, 1.0),
            ("init_fill", 0.0, 1.0),
        ):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not lo < v <= hi:
                raise bad(name, f"a number in ({lo:g}, {hi:g}]")
        for name, lo in (
            ("estimator_reads", 1),
            ("batch_size", 1),
            ("refresh_every", 0),
            ("eval_samples", 1),
            ("seed", 0),
        ):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int) or v < lo:
                raise bad(name, f"an integer >= {lo}")

    def resolved_lr_pulses(self, pulse: PulseConfig) -> float:
        """Pulses per update at epoch 0 (``lr_pulses``, or ``lr_us`` over the up step)."""
        return self.lr_pulses if self.lr_pulses is not None else self.lr_us / pulse.dg_up_us

    def resolved_pair_update(self, pulse: PulseConfig) -> str:
        if self.pair_update != "auto":
            return self.pair_update
        return "set_only" if pulse.reset == "abrupt" else "bidirectional"


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


def _as_state(g_us: np.ndarray) -> ConductanceState:
    return ConductanceState(
        g_level_us=g_us,
        g0_us=g_us,
        nu=np.zeros(g_us.shape),
        stuck=np.zeros(g_us.shape, dtype=np.int8),
    )


class ChipLayer:
    """One hidden NSM layer on the chip: a pulse-programmed pair array plus its periphery."""

    def __init__(
        self,
        w0: np.ndarray,
        *,
        chip: ChipConfig,
        pulse: PulseConfig,
        pair_update: str,
        beta_init: float,
        init_fill: float,
        rng: np.random.Generator,
    ) -> None:
        per = chip.periphery
        if per.beta_mode != "two_phase" or per.partial_sums != "analog":
            raise ValueError(
                "in-situ learning needs chip.periphery.beta_mode='two_phase' and "
                f"partial_sums='analog' (got {per.beta_mode!r}, {per.partial_sums!r})"
            )
        self.chip, self.pulse, self.pair_update = chip, pulse, pair_update
        self.v = float(chip.v_read_v)
        self.cond = chip.devices.conductance_model()
        elem = chip.devices.element_model()
        n_in, n_out = w0.shape
        rng_p, rng_m, rng_el, rng_n = rng.spawn(4)
        span, g_min = pulse.span_us, pulse.g_min_us
        reach = np.max(np.abs(w0), axis=0)
        if pair_update == "set_only":
            kappa = init_fill * span / np.where(reach > 0, reach, 1.0)
            gp0, gm0 = g_min + kappa * np.maximum(w0, 0), g_min + kappa * np.maximum(-w0, 0)
        else:  # bidirectional: G⁻ is a reference at mid-window, G⁺ = G⁻ + w
            kappa = init_fill * 0.5 * span / np.where(reach > 0, reach, 1.0)
            gm0 = np.full(w0.shape, g_min + 0.5 * span)
            gp0 = gm0 + kappa * w0
        device = PulseDevice(pulse)
        self.g_minus = device.init(gm0, rng=rng_m)
        if pair_update == "bidirectional":
            # G⁺ = (the reference as realised, on the level grid) + w: a reference rounded to
            # another level than G⁺ would bias every weight by up to half a level.
            gp0 = np.clip(self.g_minus.g_us + (gp0 - gm0), g_min, pulse.g_max_us)
        self.g_plus = device.init(gp0, rng=rng_p)
        # Element moments per cell (constant: element variation is drawn once).
        if elem.structure == "per_cell":
            state = elem.program((2 * n_in, n_out), rng=rng_el)
            par = np.asarray(
                elem.p(state) if elem.noise == "bernoulli" else elem.sigma(state), dtype=np.float64
            )
            pp, pm = par[:n_in], par[n_in:]
        else:
            state = elem.program((n_in, n_out), rng=rng_el)
            par = np.asarray(
                elem.p(state) if elem.noise == "bernoulli" else elem.sigma(state), dtype=np.float64
            )
            pp = pm = np.broadcast_to(par[:, None], (n_in, n_out))
        self.noise, self.structure = elem.noise, elem.structure
        if elem.noise == "bernoulli":
            # p on the sampler's grid of DEFAULT_BITS bits, exactly as the engine reads it.
            pp = quantize_probability(pp, pp.shape, bits=DEFAULT_BITS).quantized()
            pm = quantize_probability(pm, pm.shape, bits=DEFAULT_BITS).quantized()
            self.alpha_p, self.alpha_m = pp, pm
            var_p, var_m = pp * (1 - pp), pm * (1 - pm)
        else:
            self.alpha_p = self.alpha_m = np.ones((n_in, n_out))
            var_p, var_m = pp**2, pm**2
        if elem.structure == "per_cell":  # independent elements on G⁺ and G⁻
            self.beta_p, self.beta_m, self.gamma = var_p, var_m, np.zeros((n_in, n_out))
        else:  # one driver per row: both devices share ξ_j
            self.beta_p = self.beta_m = np.zeros((n_in, n_out))
            self.gamma = var_p
        self.alpha_bar = float(0.5 * (self.alpha_p.mean() + self.alpha_m.mean()))
        self.xi_var = float(0.5 * (var_p.mean() + var_m.mean()))
        self.neuron = chip.devices.neuron_model()
        self.offsets_ua = self.neuron.program(n_out, rng=rng_n)
        self.noise_sigma_ua = float(self.neuron.config.noise_sigma_ua)
        self.gain_bits, self.gain_range = per.gain_bits, per.gain_range
        # Periphery registers: gain a_i from β_init on the programmed arrays, threshold t_i = 0.
        self.a = np.zeros(n_out)
        mom = self.moments()
        w_norm = self.v * np.linalg.norm(mom["m_s"], axis=0)
        ratio = np.sqrt(2.0) * np.sqrt(mom["var_s"]) / np.where(w_norm > 0, w_norm, 1.0)
        self.a = np.clip(
            beta_init * ratio * self.alpha_bar - self.alpha_bar,
            -0.9 * self.gain_range,
            0.9 * self.gain_range,
        )
        self.t = np.zeros(n_out)

    @property
    def shape(self) -> tuple[int, int]:
        return self.g_plus.shape  # type: ignore[return-value]

    def a_q(self) -> np.ndarray:
        return quantise_gain(self.a, self.gain_bits, self.gain_range)

    def moments(self) -> dict[str, np.ndarray]:
        """The read coefficients (as crossbar.tile.read_arrays, no IR drop) of the current G
        (cached until a pulse changes a conductance)."""
        key = (self.g_plus.version, self.g_minus.version)
        if getattr(self, "_moments_key", None) != key:
            self._moments = self._compute_moments()
            self._moments_key = key
        return self._moments

    def _compute_moments(self) -> dict[str, np.ndarray]:
        gp, gm = self.g_plus.g_us, self.g_minus.g_us
        sp = self.cond.read_sigma(_as_state(gp), 0.0)
        sm = self.cond.read_sigma(_as_state(gm), 0.0)
        m_s = self.alpha_p * gp - self.alpha_m * gm
        m_d = gp - gm
        v_el = self.beta_p * gp**2 + self.beta_m * gm**2 + self.gamma * m_d**2
        v_rd = self.alpha_p * sp**2 + self.alpha_m * sm**2
        v_d = sp**2 + sm**2
        var_s = self.v**2 * (v_el + v_rd).sum(axis=0) + self.noise_sigma_ua**2
        return dict(m_s=m_s, m_d=m_d, v_el=v_el, v_rd=v_rd, v_d=v_d, sp=sp, sm=sm, var_s=var_s)

    def forward(self, z: np.ndarray, rng: np.random.Generator) -> dict[str, np.ndarray]:
        """One stochastic read of the layer for ±1 inputs z (batch, n_in)."""
        mom = self.moments()
        a = self.a_q()
        coef = mom["m_s"] + a * mom["m_d"]
        var = (
            self.v**2 * (mom["v_el"] + mom["v_rd"] + a**2 * mom["v_d"]).sum(axis=0)
            + self.noise_sigma_ua**2
        )
        sigma = np.sqrt(var)
        i_d = self.v * (z @ mom["m_d"])
        margin = self.v * (z @ coef) + self.offsets_ua - self.t * sigma
        u = margin + sigma * rng.standard_normal(margin.shape)
        return dict(
            z_in=z,
            z_out=np.where(u >= 0, 1.0, -1.0),
            margin=margin,
            sigma=sigma,
            u=u,
            i_d=i_d,
            a=a,
            mom=mom,
        )

    def effective(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(w (n_in, n_out) µS, β (n_out,), b̃ (n_out,)): the NSM the chip realises now."""
        mom = self.moments()
        a = self.a_q()
        w = mom["m_s"] + a * mom["m_d"]
        var = (
            self.v**2 * (mom["v_el"] + mom["v_rd"] + a**2 * mom["v_d"]).sum(axis=0)
            + self.noise_sigma_ua**2
        )
        sigma = np.sqrt(var)
        beta = self.v * np.linalg.norm(w, axis=0) / (np.sqrt(2.0) * sigma)
        b_tilde = (self.offsets_ua - self.t * sigma) / (np.sqrt(2.0) * sigma)
        return w, beta, b_tilde


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
        self.input_shape, sizes, n_classes = MODELS[config.model]
        # The compiler's input binariser (nsm.BinarizeInput: threshold 0.5).
        self.binariser = BinariseLayer(name="binarise", in_shape=self.input_shape)
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

    def binarize(self, x: np.ndarray) -> np.ndarray:
        """Images in [0, 1] (n, *input_shape) → ±1 rows (n, features): sign(2x − 1)."""
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
        z0 = self.binarize(x)
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
        z = self.binarize(x)
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

    def to_program(self, source: dict[str, Any] | None = None):
        """The learned network as a crossbar :class:`~mapping.program.Program` (the NSM the
        chip realises: w = m_s + a m_d, β and b from the realised σ), for ``nsmx run``."""
        from nsm.models import build_model

        from .compiler import compile_model
        from .program import DenseLayer, OutputLayer, Program

        template = compile_model(
            build_model(self.config.model), self.input_shape, source=source or {}
        )
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


def cosine(a: np.ndarray, b: np.ndarray) -> float:
    na, nb = np.linalg.norm(a), np.linalg.norm(b)
    return float(np.sum(a * b) / (na * nb)) if na > 0 and nb > 0 else 0.0


# ---------------------------------------------------------------------- training driver


class Trainer:
    """Epoch loop with per-epoch metrics, diagnostics and (optional) checkpoints.

    Randomness: epoch e uses generators seeded by (seed, stream, e), so a resumed run
    continues exactly as an uninterrupted one.
    """

    def __init__(
        self,
        net: OnChipNetwork,
        x_train: np.ndarray,
        y_train: np.ndarray,
        x_test: np.ndarray,
        y_test: np.ndarray,
    ) -> None:
        self.net = net
        self.x_train, self.y_train = np.asarray(x_train), np.asarray(y_train)
        self.x_test, self.y_test = np.asarray(x_test), np.asarray(y_test)
        self.epoch = 0
        self.history: list[dict[str, Any]] = []

    def _rng(self, stream: int, epoch: int) -> np.random.Generator:
        return np.random.default_rng(np.random.SeedSequence([self.net.config.seed, stream, epoch]))

    def evaluate(self, epoch: int) -> float:
        proba = self.net.predict_proba(
            self.x_test, self.net.config.eval_samples, rng=self._rng(2, epoch)
        )
        return float(np.mean(np.argmax(proba, axis=1) == self.y_test))

    def run_epoch(self, progress: Any = None) -> dict[str, Any]:
        net, cfg = self.net, self.net.config
        e = self.epoch
        t0 = time.perf_counter()
        rng = self._rng(1, e)
        order = rng.permutation(len(self.x_train))
        lr = cfg.resolved_lr_pulses(net.pulse) * cfg.lr_decay**e
        bs = cfg.batch_size
        loss_sum, correct, seen = 0.0, 0, 0
        batches = range(0, len(order), bs)
        for s0 in batches:
            idx = order[s0 : s0 + bs]
            step_rng = np.random.default_rng(rng.integers(2**63))
            res = net.step(self.x_train[idx], self.y_train[idx], lr_pulses=lr, rng=step_rng)
            loss_sum += res.loss * len(idx)
            correct += res.correct
            seen += len(idx)
            if progress is not None:
                progress(len(idx))
        # Gradient cosine on a fixed diagnostic batch (without updating the chip).
        diag_rng = self._rng(3, e)
        n_diag = min(len(self.x_train), max(100, bs))
        idx = diag_rng.choice(len(self.x_train), n_diag, replace=False)
        res = net.step(
            self.x_train[idx], self.y_train[idx], lr_pulses=lr, rng=diag_rng, apply=False
        )
        exact = net.exact_gradients(res.cache, self.y_train[idx])
        cos_layers = [cosine(h, g) for h, g in zip(res.grads, exact, strict=True)]
        test_acc = self.evaluate(e)
        self.epoch += 1
        row = {
            "epoch": self.epoch,
            "train_loss": loss_sum / seen,
            "train_acc": correct / seen,
            "test_acc": test_acc,
            "lr_pulses": lr,
            "grad_cosine": cos_layers,
            "pulses": net.pulse_stats(),
            "refreshed_pairs": net.refreshed,
            "updates": net.updates,
            "wall_s": time.perf_counter() - t0,
        }
        self.history.append(row)
        return row

    # -- checkpoints: arrays in .npz (allow_pickle=False), the rest in JSON
    def save(self, path: str | Path, meta: dict[str, Any] | None = None) -> Path:
        path = Path(path)
        arrays = self.net.state_arrays()
        arrays = {k: np.asarray(v) for k, v in arrays.items()}
        info = {
            "version": CHECKPOINT_VERSION,
            "epoch": self.epoch,
            "updates": self.net.updates,
            "refreshed": self.net.refreshed,
            "adam_t": self.net.adam.t,
            "config": dataclasses.asdict(self.net.config),
            "chip": self.net.chip.to_dict(),
            "pulse": dataclasses.asdict(self.net.pulse),
            "history": self.history,
            "meta": meta or {},
        }
        tmp = path.with_suffix(".tmp.npz")
        np.savez(tmp, meta=np.frombuffer(json.dumps(info).encode(), dtype=np.uint8), **arrays)
        tmp.replace(path)
        return path

    @staticmethod
    def read_checkpoint(path: str | Path) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
        with np.load(Path(path), allow_pickle=False) as npz:
            arrays = {k: npz[k] for k in npz.files}
        info = json.loads(arrays.pop("meta").tobytes().decode())
        if info.get("version") != CHECKPOINT_VERSION:
            raise ValueError(
                f"{path}: checkpoint version {info.get('version')!r} is not "
                f"supported (expected {CHECKPOINT_VERSION})"
            )
        return info, arrays

    def load(self, info: dict[str, Any], arrays: dict[str, np.ndarray]) -> None:
        if info["config"] != dataclasses.asdict(self.net.config):
            raise ValueError("checkpoint was written with a different learning configuration")
        self.net.load_state_arrays(arrays)
        self.net.updates, self.net.refreshed = int(info["updates"]), int(info["refreshed"])
        self.net.adam.t = int(info["adam_t"])
        self.epoch = int(info["epoch"])
        self.history = list(info["history"])
