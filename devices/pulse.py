"""Pulse-response device models: the conductance change caused by one programming pulse.

Used by in-situ learning (``mapping.learning``), where weights are changed in place by trains
of identical pulses instead of being re-programmed with write-verify. Units: µS, pulses.

The model (one equation per pulse, vectorised over devices)::

    up   (potentiation / SET):  ΔG⁺ = dg_up_us   · ((g_top − G)/(g_top − g_min))^gamma_up
    down (depression / RESET):  ΔG⁻ = dg_down_us · ((G − g_min)/(g_top − g_min))^gamma_down
    G ← clip(G ± ΔG · (1 + c2c_sigma · ε), g_min, g_top),   ε ~ N(0, 1) per pulse

- ``gamma = 0``: a linear device (constant step, hard bounds); ``gamma = 1``: the usual soft
  bounds (the step shrinks linearly to 0 at the bound), e.g. Fuller et al. / Gokmen & Vlasov
  2016; larger gamma saturates faster. The step at the *opposite* bound is ``dg_*``.
- up/down asymmetry: ``dg_up_us != dg_down_us`` or ``gamma_up != gamma_down``.
- ``reset = "abrupt"`` (PCM): a down pulse melts the cell and sends it to g_min at once
  (gradual SET, abrupt RESET; Burr et al., IEEE TED 62, 3498 (2015)).
- device-to-device variation (drawn once in :meth:`PulseDevice.init`): every device gets its
  own dg_up, dg_down (independent log-normal factors of median 1 and log-std ``d2d_sigma``)
  and its own saturation level g_top = g_min + (g_max − g_min)·min(1, f), f log-normal with
  log-std ``d2d_sigma`` (devices that saturate early), and its own gammas (gamma·f', same law).
- finite levels: with ``n_levels >= 2`` every conductance is rounded to the nearest of the
  n_levels evenly spaced levels after each pulse (a step smaller than half a level is lost).

Every pulse is counted per device (``n_up``, ``n_down``): the endurance budget.
"""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass
from importlib import resources
from typing import Any, Literal

import numpy as np

from .conductance import quantise
from .config import check_top_level, config_from_table, read_toml, tomllib
from .errors import ConfigError, ConfigTypeError
from .fields import check_levels, check_window, param, validate_config
from .rng import check_rng

FORMAT_VERSION = 1
Reset = Literal["gradual", "abrupt"]


@dataclass(frozen=True)
class PulseConfig:
    """Pulse-response parameters (see the module docstring for the equations).

    The defaults are an ILLUSTRATIVE ideal linear device: 1000 symmetric steps over 0–25 µS
    (25 µS is the PCM window of the other presets, for comparability), no noise.
    """

    g_min_us: float = param(0.0, ge=0.0, unit="µS", doc="lowest conductance the pulses reach")
    g_max_us: float = param(
        25.0, gt=0.0, unit="µS", doc="highest conductance (saturation level before device spread)"
    )
    dg_up_us: float = param(
        0.025, gt=0.0, unit="µS", doc="conductance step of one up (SET) pulse, at g_min"
    )
    dg_down_us: float = param(
        0.025, gt=0.0, unit="µS", doc="conductance step of one down (RESET) pulse, at the top"
    )
    gamma_up: float = param(
        0.0, ge=0.0, le=10.0, doc="saturation exponent of up steps (0 = linear, 1 = soft bounds)"
    )
    gamma_down: float = param(
        0.0, ge=0.0, le=10.0, doc="saturation exponent of down steps (0 = linear, 1 = soft bounds)"
    )
    c2c_sigma: float = param(
        0.0, ge=0.0, le=10.0, doc="cycle-to-cycle relative std of each pulse's step"
    )
    d2d_sigma: float = param(
        0.0, ge=0.0, le=5.0, doc="device-to-device log-std of steps, exponents and saturation level"
    )
    n_levels: int = param(
        0, ge=0, le=1 << 20, doc="levels every conductance is rounded to after a pulse (0 = analog)"
    )
    reset: Reset = param(
        "gradual", doc="'gradual': stepwise down pulses; 'abrupt': one down pulse to g_min"
    )

    def __post_init__(self) -> None:
        validate_config(self)
        owner = type(self).__name__
        check_window(owner, self.g_min_us, self.g_max_us)
        check_levels(owner, self.n_levels)
        span = self.g_max_us - self.g_min_us
        for name in ("dg_up_us", "dg_down_us"):
            if getattr(self, name) > span:
                raise ConfigError(
                    f"{owner}.{name}",
                    getattr(self, name),
                    f"(0, g_max_us - g_min_us = {span:g}] µS",
                    "is out of range",
                )

    @property
    def span_us(self) -> float:
        return self.g_max_us - self.g_min_us


class PulseArray:
    """An array of pulse-programmed devices with their own (device-to-device) parameters.

    Attributes: ``g_us`` (the conductances, µS, mutated in place by pulses), ``dg_up_us``,
    ``dg_down_us``, ``g_top_us``, ``gamma_up``, ``gamma_down`` (per device), ``n_up``,
    ``n_down`` (int64 pulse counters per device).
    """

    def __init__(self, config: PulseConfig, g_us: np.ndarray, params: dict[str, np.ndarray]):
        self.config = config
        self.g_us = g_us
        self.dg_up_us = params["dg_up_us"]
        self.dg_down_us = params["dg_down_us"]
        self.g_top_us = params["g_top_us"]
        self.gamma_up = params["gamma_up"]
        self.gamma_down = params["gamma_down"]
        self.n_up = np.zeros(g_us.shape, dtype=np.int64)
        self.n_down = np.zeros(g_us.shape, dtype=np.int64)
        self.version = 0  # incremented whenever a conductance changes (read caches)

    @property
    def shape(self) -> tuple[int, ...]:
        return self.g_us.shape

    # -- one pulse on the devices selected by `mask` (all devices when None)
    def _step(self, direction: int, mask: np.ndarray | None, rng: np.random.Generator) -> None:
        c = self.config
        sel = (slice(None),) if mask is None else (mask,)
        g = self.g_us[sel]
        if direction < 0 and c.reset == "abrupt":
            g_new = np.full_like(g, c.g_min_us)
        else:
            top = self.g_top_us[sel]
            span = top - c.g_min_us
            if direction > 0:
                x = np.clip((top - g) / span, 0.0, 1.0)
                dg = self.dg_up_us[sel] * x ** self.gamma_up[sel]
            else:
                x = np.clip((g - c.g_min_us) / span, 0.0, 1.0)
                dg = -self.dg_down_us[sel] * x ** self.gamma_down[sel]
            if c.c2c_sigma > 0.0:
                dg = dg * (1.0 + c.c2c_sigma * rng.standard_normal(g.shape))
            g_new = np.clip(g + dg, c.g_min_us, top)
        if c.n_levels:
            g_new = quantise(g_new, c.g_min_us, c.g_max_us, c.n_levels)
        self.g_us[sel] = g_new
        counter = self.n_up if direction > 0 else self.n_down
        counter[sel] += 1
        self.version += 1

    def pulse(
        self,
        n_up: np.ndarray | None = None,
        n_down: np.ndarray | None = None,
        *,
        rng: np.random.Generator,
    ) -> None:
        """Apply ``n_up`` potentiation then ``n_down`` depression pulses per device (int arrays
        of the array's shape, >= 0; None = no pulses). Pulses of one polarity are applied one
        at a time (the step depends on the state reached by the previous pulse)."""
        check_rng(rng)
        for direction, n in ((1, n_up), (-1, n_down)):
            if n is None:
                continue
            n = np.asarray(n)
            if n.shape != self.shape:
                raise ValueError(f"pulse counts have shape {n.shape}; expected {self.shape}")
            if n.size and n.min() < 0:
                raise ValueError("pulse counts must be >= 0")
            self._train(direction, n.ravel(), rng)
        self.version += 1

    def _train(self, direction: int, n: np.ndarray, rng: np.random.Generator) -> None:
        """Pulse trains on the flat devices: sorted by count (descending) so that the devices
        still receiving pulse k are a prefix, and each pulse works on contiguous slices."""
        c = self.config
        idx = np.flatnonzero(n)
        if idx.size == 0:
            return
        idx = idx[np.argsort(-n[idx], kind="stable")]
        counts = n[idx]
        g = self.g_us.reshape(-1)[idx]
        top = self.g_top_us.reshape(-1)[idx]
        step = (self.dg_up_us if direction > 0 else self.dg_down_us).reshape(-1)[idx]
        gamma = (self.gamma_up if direction > 0 else self.gamma_down).reshape(-1)[idx]
        # active[k] = devices with more than k pulses (a prefix of the sorted order)
        active = counts.size - np.searchsorted(
            counts[::-1], np.arange(int(counts[0])), side="right"
        )
        for m in active:
            gk = g[:m]
            if direction < 0 and c.reset == "abrupt":
                new = np.full(m, c.g_min_us)
            else:
                span = top[:m] - c.g_min_us
                soft = (c.gamma_up if direction > 0 else c.gamma_down) > 0.0
                if not soft:  # linear device: constant step (x^0 = 1)
                    dg = step[:m] if direction > 0 else -step[:m]
                elif direction > 0:
                    x = np.clip((top[:m] - gk) / span, 0.0, 1.0)
                    dg = step[:m] * x ** gamma[:m]
                else:
                    x = np.clip((gk - c.g_min_us) / span, 0.0, 1.0)
                    dg = -step[:m] * x ** gamma[:m]
                if c.c2c_sigma > 0.0:
                    dg = dg * (1.0 + c.c2c_sigma * rng.standard_normal(m))
                new = np.clip(gk + dg, c.g_min_us, top[:m])
            if c.n_levels:
                new = quantise(new, c.g_min_us, c.g_max_us, c.n_levels)
            g[:m] = new
        self.g_us.reshape(-1)[idx] = g
        counter = self.n_up if direction > 0 else self.n_down
        counter.reshape(-1)[idx] += counts

    def reset_to_min(self, mask: np.ndarray) -> None:
        """One RESET (counted as a down pulse) that sends the selected devices to g_min."""
        self.g_us[mask] = self.config.g_min_us
        self.n_down[mask] += 1
        self.version += 1

    def total_pulses(self) -> np.ndarray:
        """Pulses each device has received so far (up + down), int64."""
        return self.n_up + self.n_down


class PulseDevice:
    """Factory of :class:`PulseArray` for one :class:`PulseConfig`."""

    def __init__(self, config: PulseConfig) -> None:
        if not isinstance(config, PulseConfig):
            raise ConfigTypeError("config", config, "a PulseConfig")
        self.config = config

    def _factor(self, shape: tuple[int, ...], rng: np.random.Generator) -> np.ndarray:
        s = self.config.d2d_sigma
        return np.exp(s * rng.standard_normal(shape)) if s > 0 else np.ones(shape)

    def init(self, g_us: np.ndarray, *, rng: np.random.Generator) -> PulseArray:
        """Devices starting at conductances ``g_us`` (µS, any shape, within the window), with
        device-to-device parameters drawn from ``rng`` (one child generator per parameter)."""
        c = self.config
        g = np.array(g_us, dtype=np.float64)
        if g.size and (
            not np.all(np.isfinite(g)) or g.min() < c.g_min_us - 1e-9 or g.max() > c.g_max_us + 1e-9
        ):
            raise ConfigError(
                "g_us",
                f"values in [{g.min():g}, {g.max():g}]",
                f"[{c.g_min_us:g}, {c.g_max_us:g}] µS",
                "is out of range",
            )
        rngs = check_rng(rng).spawn(5)
        shape = g.shape
        top = c.g_min_us + c.span_us * np.minimum(1.0, self._factor(shape, rngs[2]))
        params = dict(
            dg_up_us=c.dg_up_us * self._factor(shape, rngs[0]),
            dg_down_us=c.dg_down_us * self._factor(shape, rngs[1]),
            g_top_us=top,
            gamma_up=c.gamma_up * self._factor(shape, rngs[3]),
            gamma_down=c.gamma_down * self._factor(shape, rngs[4]),
        )
        g = np.clip(g, c.g_min_us, top)
        if c.n_levels:
            g = quantise(g, c.g_min_us, c.g_max_us, c.n_levels)
        return PulseArray(c, g, params)

    def response(
        self,
        n_up: int,
        n_down: int,
        *,
        n_devices: int = 1,
        rng: np.random.Generator,
        g0_us: float | None = None,
    ) -> np.ndarray:
        """Conductance vs pulse number: ``n_up`` up pulses then ``n_down`` down pulses from
        ``g0_us`` (default g_min), for ``n_devices`` devices; float64 (n_up + n_down + 1,
        n_devices), row k = after k pulses."""
        c = self.config
        rng_init, rng_pulse = check_rng(rng).spawn(2)
        start = c.g_min_us if g0_us is None else g0_us
        arr = self.init(np.full(n_devices, start), rng=rng_init)
        out = [arr.g_us.copy()]
        for k in range(n_up + n_down):
            arr._step(1 if k < n_up else -1, None, rng_pulse)
            out.append(arr.g_us.copy())
        return np.stack(out)


# --------------------------------------------------------------------------- presets / TOML


def pulse_to_dict(config: PulseConfig, description: str = "") -> dict[str, Any]:
    """``{format_version, description, pulse: {...}}``: the TOML form of a pulse config."""
    fields = {f.name: getattr(config, f.name) for f in dataclasses.fields(config)}
    return {"format_version": FORMAT_VERSION, "description": description, "pulse": fields}


def pulse_from_dict(data: Any) -> PulseConfig:
    """Inverse of :func:`pulse_to_dict`; errors name ``pulse.<field>``."""
    if not isinstance(data, dict):
        raise ConfigTypeError("config", data, "a table (dict)")
    check_top_level(data, ("format_version", "description", "pulse"), FORMAT_VERSION)
    table = data.get("pulse", {})
    if not isinstance(table, dict):
        raise ConfigTypeError("pulse", table, "a table of fields")
    return config_from_table(PulseConfig, table, "pulse")


def pulse_to_toml(config: PulseConfig, description: str = "") -> str:
    import tomli_w

    return tomli_w.dumps(pulse_to_dict(config, description))


def pulse_from_toml(source: str | os.PathLike[str]) -> PulseConfig:
    """A :class:`PulseConfig` from a TOML file path or TOML text (see :func:`read_toml`)."""
    return pulse_from_dict(read_toml(source))


def _pulse_files() -> dict[str, Any]:
    folder = resources.files("devices") / "presets" / "pulse"
    return {
        p.name[:-5]: p
        for p in sorted(folder.iterdir(), key=lambda p: p.name)
        if p.name.endswith(".toml")
    }


def list_pulse_presets() -> dict[str, str]:
    """``{name: description}`` of the shipped pulse-response presets (devices/presets/pulse)."""
    return {
        name: str(tomllib.loads(p.read_text(encoding="utf-8")).get("description", ""))
        for name, p in _pulse_files().items()
    }


def pulse_preset_text(name: str) -> str:
    files = _pulse_files()
    if not isinstance(name, str) or name not in files:
        raise ConfigError(
            "pulse preset", name, "one of " + ", ".join(map(repr, files)), "is not a known preset"
        )
    return files[name].read_text(encoding="utf-8")


def load_pulse_preset(name: str) -> PulseConfig:
    """The :class:`PulseConfig` of a shipped preset: ideal, fefet, rram, pcm."""
    return pulse_from_toml(pulse_preset_text(name))


# --------------------------------------------------------------------------- plot helper


def plot_pulse_response(
    config: PulseConfig,
    *,
    rng: np.random.Generator,
    n_up: int = 200,
    n_down: int = 200,
    n_devices: int = 50,
    n_show: int = 5,
    title: str | None = None,
) -> Any:
    """Conductance vs pulse number, ``n_up`` up pulses then ``n_down`` down pulses from
    g_min: the mean of ``n_devices`` devices, their 5–95 % band and ``n_show`` single devices.
    Returns a ``matplotlib.figure.Figure`` (matplotlib imported here, not at module import)."""
    from matplotlib.figure import Figure

    r = PulseDevice(config).response(n_up, n_down, n_devices=n_devices, rng=rng)
    k = np.arange(r.shape[0])
    fig = Figure(figsize=(6.4, 4.0), layout="constrained")
    ax = fig.add_subplot()
    lo, hi = np.percentile(r, [5, 95], axis=1)
    ax.fill_between(k, lo, hi, color="C0", alpha=0.25, label="5–95 % of devices")
    for i in range(min(n_show, n_devices)):
        ax.plot(k, r[:, i], lw=0.6, color="0.5", label="single devices" if i == 0 else None)
    ax.plot(k, r.mean(axis=1), color="C0", lw=2, label=f"mean of {n_devices} devices")
    ax.axvline(n_up, color="k", ls=":", lw=1)
    ax.set_xlabel("pulse number (up, then down)")
    ax.set_ylabel("conductance G (µS)")
    if title:
        ax.set_title(title)
    ax.legend(loc="best", fontsize=8)
    return fig
