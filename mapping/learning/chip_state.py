"""The chip-state file: a learned chip as it is (conductances, calibration, gains), not a program.

One ``.npz`` archive (never pickled) holding a JSON manifest and named float64/int64 arrays:

- manifest: ``format`` (:data:`FORMAT`), ``version`` (:data:`VERSION`), the learning
  configuration, the chip and pulse-device configurations, the training position (epoch,
  updates, refreshes, Adam step, history), the caller's ``meta`` (``nsmx learn`` stores the
  dataset, the source and the data identity of :func:`data_identity` there) and a
  ``checksum``: SHA-256 over the canonical manifest (without the checksum) and every array's
  name, dtype, shape and bytes;
- arrays: every mutable array of :meth:`OnChipNetwork.state_arrays` (the pairs' conductances
  G₀ and pulse counters, the gain and threshold registers, the ADC full scales, the digital
  output layer, the optimiser's moments), the stuck-at masks (to check that the chip rebuilt from
  the manifest has the same faults) and ``program``: the bytes of the ``.nsmx`` program the chip
  was first programmed with (absent for a chip that learned from scratch).

The device randomness drawn at programming (programming error, faults, elements, comparator
offsets, gain errors) is rebuilt from (program, chip, seed); the file overwrites what learning
changed. Reading validates everything and raises :class:`ChipStateError` naming the file and
the problem (missing, not an npz, foreign format, other version, checksum mismatch, missing or
misshapen arrays, a chip whose faults differ).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from crossbar import ChipConfig
from devices.pulse import pulse_from_dict, pulse_to_dict
from nsm.atomic_io import atomic_path

from .config import LearningConfig

FORMAT = "nsmx-chip-state"
VERSION = 1
MANIFEST_KEY = "__manifest__"


class ChipStateError(ValueError):
    """A chip-state file that cannot be read (damaged, foreign, another version, tampered)."""


def _checksum(manifest: dict[str, Any], arrays: dict[str, np.ndarray]) -> str:
    h = hashlib.sha256()
    body = {k: v for k, v in manifest.items() if k != "checksum"}
    h.update(json.dumps(body, sort_keys=True, separators=(",", ":"), allow_nan=False).encode())
    for name in sorted(arrays):
        a = np.ascontiguousarray(arrays[name])
        h.update(f"{name}|{a.dtype.str}|{a.shape}|".encode())
        h.update(a.tobytes())
    return h.hexdigest()


def _program_bytes(program: Any) -> np.ndarray:
    from ..program import save_program

    with tempfile.TemporaryDirectory() as tmp:
        path = save_program(program, Path(tmp) / "program.nsmx")
        return np.frombuffer(path.read_bytes(), dtype=np.uint8).copy()


def _program_from_bytes(data: np.ndarray) -> Any:
    from ..program import load_program

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "program.nsmx"
        path.write_bytes(np.asarray(data, dtype=np.uint8).tobytes())
        return load_program(path)


def state_arrays(net: Any) -> dict[str, np.ndarray]:
    """The arrays a chip-state file holds for ``net`` (copies)."""
    arrays = {k: np.array(v) for k, v in net.state_arrays().items()}
    for k, layer in enumerate(net.layers):
        arrays[f"l{k}_plus_stuck"] = layer.stuck_plus.astype(np.int64)
        arrays[f"l{k}_minus_stuck"] = layer.stuck_minus.astype(np.int64)
    return arrays


def save_chip_state(
    path: str | os.PathLike,
    net: Any,
    *,
    position: dict[str, Any],
    scratch: bool,
    meta: dict[str, Any] | None = None,
) -> Path:
    """Write ``net``'s chip state to ``path`` atomically (temporary file, then rename).

    ``position``: the training position (epoch, updates, refreshed, adam_t, history);
    ``scratch``: whether the chip learned from scratch (else its initial program is stored)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    arrays = state_arrays(net)
    if not scratch:
        arrays["program"] = _program_bytes(net.initial_program)
    manifest: dict[str, Any] = {
        "format": FORMAT,
        "version": VERSION,
        "learning": dataclasses.asdict(net.config),
        "chip": net.chip.to_dict(),
        "pulse": pulse_to_dict(net.pulse),
        "scratch": bool(scratch),
        "position": position,
        "meta": meta or {},
    }
    manifest["checksum"] = {"algorithm": "sha256", "value": _checksum(manifest, arrays)}
    text = json.dumps(manifest, ensure_ascii=True, allow_nan=False)
    members = {MANIFEST_KEY: np.frombuffer(text.encode("ascii"), dtype=np.uint8)}
    members.update(arrays)
    with atomic_path(path) as tmp, open(tmp, "xb") as f:
        np.savez(f, **members)
    return path


def read_chip_state(path: str | os.PathLike) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """(manifest, arrays) of a chip-state file, validated (format, version, checksum)."""
    path = Path(path)
    if not path.is_file():
        raise ChipStateError(f"{path}: chip-state file not found")
    try:
        with np.load(path, allow_pickle=False) as npz:
            if not hasattr(npz, "files"):
                raise ChipStateError(f"{path}: not a chip-state file (a .npy array, not an .npz)")
            members = {k: npz[k] for k in npz.files}
    except ChipStateError:
        raise
    except Exception as exc:  # numpy/zipfile raise many types for foreign or damaged files
        raise ChipStateError(
            f"{path}: not a readable chip-state file ({type(exc).__name__}: {exc})"
        ) from None
    if MANIFEST_KEY not in members:
        raise ChipStateError(f"{path}: not a chip-state file (no manifest)")
    try:
        manifest = json.loads(members.pop(MANIFEST_KEY).tobytes().decode("ascii"))
    except (UnicodeDecodeError, ValueError) as exc:
        raise ChipStateError(f"{path}: damaged chip-state manifest ({exc})") from None
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise ChipStateError(f"{path}: not a chip-state file (format is not {FORMAT!r})")
    if manifest.get("version") != VERSION:
        raise ChipStateError(
            f"{path}: chip-state version {manifest.get('version')!r} is not supported "
            f"(expected {VERSION})"
        )
    stored = (manifest.get("checksum") or {}).get("value")
    if stored != _checksum(manifest, members):
        raise ChipStateError(
            f"{path}: checksum mismatch: the chip-state file was modified or damaged"
        )
    return manifest, members


def _programmed(manifest: dict[str, Any], arrays: dict[str, np.ndarray], calibration: Any) -> Any:
    """The chip as programmed, before learning: rebuilt from the manifest (learning config, chip,
    pulse device, initial program or scratch architecture, seed); pops ``program``."""
    from .network import OnChipNetwork

    config = LearningConfig(**manifest["learning"])
    chip = ChipConfig.from_dict(manifest["chip"])
    pulse = pulse_from_dict(manifest["pulse"])
    program = None if manifest["scratch"] else _program_from_bytes(arrays.pop("program"))
    return OnChipNetwork(config, chip, pulse, program, calibration=calibration)


def load_untuned_chip(
    path: str | os.PathLike, *, calibration: Any = None
) -> tuple[Any, dict[str, Any]]:
    """The chip a fine-tuning run of a chip-state file started from: (:class:`OnChipNetwork`,
    manifest), rebuilt from the stored program, chip, pulse device and seed, no array of the
    file written into it. Raises :class:`ChipStateError` for a chip that learned from scratch."""
    manifest, arrays = read_chip_state(path)
    if manifest.get("scratch"):
        raise ChipStateError(f"{path}: learned from scratch, there is no untuned chip")
    try:
        net = _programmed(manifest, arrays, calibration)
    except (KeyError, TypeError, ValueError) as exc:
        raise ChipStateError(f"{path}: invalid chip state ({type(exc).__name__}: {exc})") from None
    return net, manifest


def load_chip_state(
    path: str | os.PathLike, *, calibration: Any = None
) -> tuple[Any, dict[str, Any]]:
    """Rebuild the learned chip of a chip-state file: (:class:`OnChipNetwork`, manifest).

    The network is rebuilt from the manifest (learning config, chip, pulse device, initial
    program or scratch architecture, seed), then every stored array is written into it."""
    manifest, arrays = read_chip_state(path)
    try:
        net = _programmed(manifest, arrays, calibration)
        for k, layer in enumerate(net.layers):
            for side, mask in (("plus", layer.stuck_plus), ("minus", layer.stuck_minus)):
                if not np.array_equal(arrays.pop(f"l{k}_{side}_stuck"), mask.astype(np.int64)):
                    raise ChipStateError(
                        f"{path}: the rebuilt chip's stuck cells differ from the file's "
                        f"(layer {k}, {side}): another engine or device model"
                    )
        net.load_state_arrays(arrays)
    except ChipStateError:
        raise
    except (KeyError, TypeError, ValueError) as exc:
        raise ChipStateError(f"{path}: invalid chip state ({type(exc).__name__}: {exc})") from None
    position = manifest.get("position", {})
    net.updates = int(position.get("updates", 0))
    net.refreshed = int(position.get("refreshed", 0))
    net.adam.t = int(position.get("adam_t", 0))
    return net, manifest


#: LearningConfig fields and the ``nsmx learn`` option that sets each (named in resume errors)
_OPTIONS = {
    "model": "--model",
    "architecture": "--model",
    "mode": "--mode",
    "tune": "--tune",
    "estimator": "--estimator",
    "delta": "--delta",
    "update": "--update",
    "update_norm": "--update-norm",
    "pair_update": "--pair-update",
    "lr_us": "--lr-us",
    "lr_pulses": "--lr-pulses",
    "lr_decay": "--lr-decay",
    "lr_periphery": "--lr-periphery",
    "batch_size": "--batch-size",
    "eval_samples": "--eval-samples",
    "seed": "--seed",
}
_SHOWN = 4  # differences named per part; the rest are counted


def _flat(value: Any, prefix: str = "") -> dict[str, Any]:
    """Nested dicts and lists as {dotted field: leaf} (list items as ``name[i]``)."""
    if isinstance(value, dict):
        out: dict[str, Any] = {}
        for k in sorted(value):
            out.update(_flat(value[k], f"{prefix}.{k}" if prefix else str(k)))
        return out if out or not prefix else {prefix: {}}
    if isinstance(value, (list, tuple)):
        out = {}
        for i, v in enumerate(value):
            out.update(_flat(v, f"{prefix}[{i}]"))
        return out if out or not prefix else {prefix: []}
    return {prefix: value}


#: fields that describe a configuration without changing it (not compared on resume)
_INFORMATIONAL = ("description",)


def field_differences(what: str, stored: Any, given: Any) -> list[str]:
    """``"{what} field F: stored A, given B"`` for every dotted field F whose value differs
    between two nested configurations (a field only one of them has shows as 'absent';
    ``description`` texts are not compared)."""
    a, b = (
        {k: v for k, v in _flat(c).items() if k.rpartition(".")[2] not in _INFORMATIONAL}
        for c in (stored, given)
    )
    out = []
    for key in sorted(set(a) | set(b), key=lambda k: (k not in a, k)):
        va, vb = a.get(key, "absent"), b.get(key, "absent")
        if va != vb:
            out.append(f"{what} field {key}: stored {va!r}, given {vb!r}")
    return out


def _learning_differences(stored: Any, config: LearningConfig) -> list[str]:
    try:  # fields added since the file was written take their defaults
        stored_cfg = dataclasses.asdict(LearningConfig(**stored))
    except (TypeError, ValueError) as exc:
        return [f"learning configuration unreadable ({exc})"]
    given = dataclasses.asdict(config)
    out = []
    for key in given:
        if stored_cfg[key] == given[key]:
            continue
        option = f" ({_OPTIONS[key]})" if key in _OPTIONS else ""
        if key == "architecture" and stored_cfg[key] and given[key]:
            out += [
                d + option for d in field_differences("architecture", stored_cfg[key], given[key])
            ]
        else:
            out.append(
                f"learning setting {key}{option}: stored {stored_cfg[key]!r}, given {given[key]!r}"
            )
    return out


def _shown(diffs: list[str]) -> list[str]:
    extra = len(diffs) - _SHOWN
    return diffs[:_SHOWN] + ([f"and {extra} more"] if extra > 0 else [])


def check_same_chip(
    manifest: dict[str, Any],
    net: Any,
    path: str | os.PathLike,
    data: dict[str, Any] | None = None,
) -> None:
    """Refuse to continue a chip state with another learning configuration, chip (its resolved
    content, field by field), pulse device, starting point or data than ``net``'s and
    ``data``'s (``ChipStateError`` naming each differing field with both values).

    ``data``: the run's data identity (:func:`data_identity`), compared with the one the file
    stores in ``meta.data`` (files written without one are compared on ``meta.dataset``)."""
    parts: list[tuple[str, list[str]]] = [
        ("learning configuration", _learning_differences(manifest.get("learning"), net.config)),
        ("chip", field_differences("chip", manifest.get("chip"), net.chip.to_dict())),
        (
            "pulse device",
            field_differences("pulse", manifest.get("pulse"), pulse_to_dict(net.pulse)),
        ),
    ]
    stored_scratch, given_scratch = bool(manifest.get("scratch")), bool(net.scratch)
    if stored_scratch != given_scratch:
        start = {True: "from scratch (--model)", False: "a program (--program)"}
        parts.append(
            ("starting point", [f"stored {start[stored_scratch]}, given {start[given_scratch]}"])
        )
    if data is not None:
        meta = manifest.get("meta") or {}
        stored = meta.get("data")
        if stored is None:  # written before the data identity was recorded
            stored = {"dataset": meta.get("dataset")}
            given = {"dataset": data.get("dataset")}
        else:
            given = data
        parts.append(("data", field_differences("data", stored, given)))
    diffs = [(kind, d) for kind, d in parts if d]
    if diffs:
        kinds = ", ".join(kind for kind, _ in diffs)
        details = "; ".join("; ".join(_shown(d)) for _, d in diffs)
        raise ChipStateError(
            f"{path}: written with another {kinds}: {details}; cannot resume (only --epochs, "
            "--no-progress and --json may change; start a new --out for other settings)"
        )


def data_identity(
    dataset: str,
    arrays: tuple[np.ndarray, ...],
    *,
    train_subset: int | None = None,
    test_subset: int | None = None,
    data_file: str | os.PathLike | None = None,
) -> dict[str, Any]:
    """What a learning run learned from: the dataset name, the subset sizes, the number of
    train / test examples, SHA-256 of the arrays used (x_train, y_train, x_test, y_test, in
    that order: dtype, shape and bytes) and, for a ``--data`` file, SHA-256 of the file."""
    h = hashlib.sha256()
    for a in arrays:
        a = np.ascontiguousarray(a)
        h.update(f"{a.dtype.str}|{a.shape}|".encode())
        h.update(memoryview(a).cast("B"))
    out: dict[str, Any] = {
        "dataset": str(dataset),
        "train_subset": train_subset,
        "test_subset": test_subset,
        "n_train": len(arrays[0]),
        "n_test": len(arrays[2]) if len(arrays) > 2 else None,
        "content_sha256": h.hexdigest(),
    }
    if data_file is not None:
        fh = hashlib.sha256()
        with open(data_file, "rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                fh.update(block)
        out["data_file_sha256"] = fh.hexdigest()
    return out


def same_program(a: Any, b: Any) -> bool:
    """Whether two programs have the same layers and arrays (timestamps aside)."""
    if len(a.layers) != len(b.layers) or a.input_shape != b.input_shape:
        return False
    for ra, rb in zip(a.layers, b.layers, strict=True):
        if type(ra) is not type(rb):
            return False
        for f in dataclasses.fields(ra):
            va, vb = getattr(ra, f.name), getattr(rb, f.name)
            if isinstance(va, np.ndarray) or isinstance(vb, np.ndarray):
                if not np.array_equal(np.asarray(va), np.asarray(vb)):
                    return False
            elif va != vb:
                return False
    return True


__all__ = [
    "FORMAT",
    "VERSION",
    "ChipStateError",
    "check_same_chip",
    "data_identity",
    "field_differences",
    "load_chip_state",
    "load_untuned_chip",
    "read_chip_state",
    "same_program",
    "save_chip_state",
    "state_arrays",
]
