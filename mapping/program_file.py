"""The program file (``.nsmx``): manifest, checksum, atomic write and validating read.

The file is one ``.npz`` (``np.savez``, no pickle) with a JSON manifest stored as a uint8 array
(member :data:`MANIFEST_KEY`) and one float32 member per declared array (``layer{i}.{field}``).
A SHA-256 checksum covers the canonical manifest and every declared array
(docs/program-format.md). This module speaks in layer records
(:mod:`mapping.records`) and manifests; :func:`mapping.program.save_program` and
:func:`mapping.program.load_program` wrap it for whole :class:`~mapping.program.Program` s.
Numpy only (never torch), so programs load on machines without PyTorch.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import json
import os
from collections.abc import Mapping, Sequence
from dataclasses import fields
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

from mapping.records import ARRAY_DTYPE, KINDS, Layer, attr_names, layer_attrs
from nsm.atomic_io import atomic_path

FORMAT = "nsmx-program"
VERSION = 1
#: npz member that holds the UTF-8 JSON manifest (a 1-D uint8 array).
MANIFEST_KEY = "manifest"

_TOP_KEYS = {"format", "version", "created", "input_shape", "layers", "checksum"}
_RECORD_KEYS = {"kind", "out_shape", "arrays"}


class ProgramError(ValueError):
    """A program file is missing, damaged, hand-edited, of another version or invalid."""


class ProgramParts(NamedTuple):
    """What a program file holds: the layer records, the input shape, the program's ``source``
    and the file's ``created`` information (package version, time; without ``source``)."""

    layers: tuple[Layer, ...]
    input_shape: list[int]
    source: dict[str, Any]
    created: dict[str, Any]


# --------------------------------------------------------------------------------------------
# Manifest and checksum
# --------------------------------------------------------------------------------------------


def layer_arrays(layers: Sequence[Layer]) -> dict[str, np.ndarray]:
    """Every array by its npz key (``layer{i}.{field}``), in checksum order."""
    return {
        f"layer{i}.{key}": getattr(layer, key)
        for i, layer in enumerate(layers)
        for key in layer.array_fields
    }


def build_manifest(
    layers: Sequence[Layer], input_shape: Sequence[int], created: Mapping[str, Any]
) -> dict[str, Any]:
    """The JSON manifest of ``layers`` without its checksum (see docs/program-format.md)."""
    records = []
    for i, layer in enumerate(layers):
        record: dict[str, Any] = {"kind": layer.kind, **layer_attrs(layer)}
        record["out_shape"] = list(layer.out_shape)
        record["arrays"] = [
            {
                "field": key,
                "key": f"layer{i}.{key}",
                "shape": list(getattr(layer, key).shape),
                "dtype": ARRAY_DTYPE.str,
            }
            for key in layer.array_fields
        ]
        records.append(record)
    return {
        "format": FORMAT,
        "version": VERSION,
        "created": dict(created),
        "input_shape": list(input_shape),
        "layers": records,
    }


def canonical_json(manifest: Mapping[str, Any]) -> bytes:
    """The manifest as hashed: sorted keys, no whitespace, ASCII, no NaN."""
    return json.dumps(
        manifest, sort_keys=True, separators=(",", ":"), ensure_ascii=True, allow_nan=False
    ).encode("ascii")


def compute_checksum(manifest: Mapping[str, Any], arrays: Mapping[str, np.ndarray]) -> str:
    """SHA-256 (hex) of the canonical manifest (without ``checksum``) then each declared array's
    little-endian C-order bytes, layer by layer in the order the manifest lists them."""
    body = {k: v for k, v in manifest.items() if k != "checksum"}
    h = hashlib.sha256(canonical_json(body))
    for record in body["layers"]:
        for spec in record["arrays"]:
            a = arrays[spec["key"]]
            h.update(np.ascontiguousarray(a, dtype=np.dtype(spec["dtype"])).tobytes())
    return h.hexdigest()


def _package_version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("nsm-crossbar")
    except PackageNotFoundError:
        return "unknown"


def created_now(source: Mapping[str, Any]) -> dict[str, Any]:
    """The manifest's ``created`` block for a file written now (package, version, UTC time)."""
    return {
        "package": "nsm-crossbar",
        "package_version": _package_version(),
        "created_utc": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "source": dict(source),
    }


# --------------------------------------------------------------------------------------------
# Write
# --------------------------------------------------------------------------------------------


def write_program_file(
    path: str | os.PathLike,
    layers: Sequence[Layer],
    input_shape: Sequence[int],
    source: Mapping[str, Any],
) -> Path:
    """Write the records to ``path`` (one .npz; the exact name is kept) atomically.

    The file appears complete or not at all (temporary file in the same folder, then
    ``os.replace``). Returns the path.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    manifest = build_manifest(layers, input_shape, created_now(source))
    arrays = layer_arrays(layers)
    manifest["checksum"] = {"algorithm": "sha256", "value": compute_checksum(manifest, arrays)}
    text = json.dumps(manifest, indent=1, ensure_ascii=True, allow_nan=False)
    members = {MANIFEST_KEY: np.frombuffer(text.encode("ascii"), dtype=np.uint8)}
    members.update({k: np.asarray(v, dtype=ARRAY_DTYPE) for k, v in arrays.items()})
    # A temporary file in the same folder, renamed over the target (nsm.atomic_io); opened with
    # "xb" rather than mkstemp so the file gets the user's default permissions.
    with atomic_path(path) as tmp, open(tmp, "xb") as f:
        np.savez(f, **members)
        f.flush()
        os.fsync(f.fileno())
    return path


# --------------------------------------------------------------------------------------------
# Read
# --------------------------------------------------------------------------------------------


def read_program_file(path: str | os.PathLike) -> ProgramParts:
    """Read and validate a program file up to its layer records; never unpickles.

    Raises :class:`ProgramError` naming the file and what is wrong for: a missing file, a file
    that is not an npz archive, truncated or corrupted bytes, a manifest that is not valid JSON
    or not a program manifest, another format version, missing or extra arrays, arrays whose
    shape or dtype differ from the manifest, a checksum mismatch (the file was edited),
    non-finite values and invalid layer records. That the records chain is checked by
    :class:`~mapping.program.Program`.
    """
    path = Path(path)
    if not path.is_file():
        raise ProgramError(f"{path}: program file not found")
    try:
        npz = np.load(path, allow_pickle=False)
    except Exception as exc:  # numpy/zipfile raise many types for foreign or damaged files
        raise ProgramError(
            f"{path}: not a readable nsmx program (expected an .npz archive; "
            f"{type(exc).__name__}: {exc})"
        ) from None
    if not isinstance(npz, np.lib.npyio.NpzFile):
        raise ProgramError(f"{path}: not an nsmx program (a single .npy array, not an .npz)")
    try:
        with npz:
            return _read_npz(npz, path)
    except ProgramError:
        raise
    except Exception as exc:  # a damaged archive can fail anywhere while reading members
        raise ProgramError(f"{path}: damaged program file ({type(exc).__name__}: {exc})") from None


def _is_int(v: object) -> bool:
    return isinstance(v, (int, np.integer)) and not isinstance(v, (bool, np.bool_))


def _read_member(npz: Any, key: str, path: Path) -> np.ndarray:
    try:
        return npz[key]
    except Exception as exc:  # CRC errors, truncated members, bad .npy headers, pickled data
        raise ProgramError(
            f"{path}: array {key!r} is unreadable, the file is corrupted "
            f"({type(exc).__name__}: {exc})"
        ) from None


def _read_manifest(npz: Any, path: Path) -> dict[str, Any]:
    """The manifest, checked for its tag, version and top-level fields."""
    if MANIFEST_KEY not in set(npz.files):
        raise ProgramError(f"{path}: not an nsmx program (no {MANIFEST_KEY!r} member)")
    raw = _read_member(npz, MANIFEST_KEY, path)
    if raw.dtype != np.uint8 or raw.ndim != 1:
        raise ProgramError(
            f"{path}: the manifest must be a 1-D uint8 array, found {raw.dtype} {raw.shape}"
        )
    try:
        manifest = json.loads(raw.tobytes().decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ProgramError(f"{path}: the manifest is not valid JSON ({exc})") from None
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise ProgramError(f"{path}: not an nsmx program (format tag is not {FORMAT!r})")
    version = manifest.get("version")
    if not _is_int(version) or version != VERSION:
        newer = _is_int(version) and version > VERSION
        hint = "; the file is newer: upgrade nsm-crossbar" if newer else ""
        raise ProgramError(
            f"{path}: program format version {version!r} is not supported (this nsm-crossbar "
            f"reads version {VERSION}{hint})"
        )
    keys = set(manifest)
    if keys != _TOP_KEYS:
        raise ProgramError(
            f"{path}: manifest fields {sorted(keys)} differ from the expected {sorted(_TOP_KEYS)}"
        )
    records = manifest["layers"]
    if not isinstance(records, list) or not all(isinstance(r, dict) for r in records):
        raise ProgramError(f"{path}: manifest 'layers' must be a list of layer records")
    return manifest


def _read_arrays(
    npz: Any, manifest: dict[str, Any], path: Path
) -> tuple[list[tuple[int, dict[str, Any]]], dict[str, np.ndarray]]:
    """Exactly the declared arrays, each readable with the declared shape and dtype."""
    members = set(npz.files)
    declared: list[tuple[int, dict[str, Any]]] = []
    for i, record in enumerate(manifest["layers"]):
        specs = record.get("arrays")
        if not isinstance(specs, list) or not all(
            isinstance(s, dict) and set(s) == {"field", "key", "shape", "dtype"} for s in specs
        ):
            raise ProgramError(
                f"{path}: layers[{i}].arrays must be a list of {{field, key, shape, dtype}}"
            )
        declared.extend((i, s) for s in specs)
    keys_declared = [s["key"] for _, s in declared]
    if len(set(keys_declared)) != len(keys_declared):
        raise ProgramError(f"{path}: the manifest declares an array key twice")
    missing = sorted(set(keys_declared) - members)
    if missing:
        raise ProgramError(f"{path}: arrays {missing} declared in the manifest are missing")
    extra = sorted(members - set(keys_declared) - {MANIFEST_KEY})
    if extra:
        raise ProgramError(f"{path}: unexpected arrays {extra} not declared in the manifest")
    arrays: dict[str, np.ndarray] = {}
    for i, spec in declared:
        key = spec["key"]
        a = _read_member(npz, key, path)
        if spec["dtype"] != ARRAY_DTYPE.str or a.dtype != ARRAY_DTYPE:
            raise ProgramError(
                f"{path}: array {key!r} (layers[{i}].{spec['field']}) has dtype {a.dtype.str} "
                f"(manifest: {spec['dtype']!r}); programs store {ARRAY_DTYPE.str!r}"
            )
        if not isinstance(spec["shape"], list) or list(a.shape) != spec["shape"]:
            raise ProgramError(
                f"{path}: array {key!r} (layers[{i}].{spec['field']}) has shape "
                f"{list(a.shape)}, the manifest declares {spec['shape']}"
            )
        arrays[key] = a
    return declared, arrays


def _check_checksum(manifest: dict[str, Any], arrays: dict[str, np.ndarray], path: Path) -> None:
    checksum = manifest["checksum"]
    if (
        not isinstance(checksum, dict)
        or checksum.get("algorithm") != "sha256"
        or not isinstance(checksum.get("value"), str)
    ):
        raise ProgramError(f"{path}: manifest 'checksum' must be {{algorithm: sha256, value}}")
    try:
        actual = compute_checksum(manifest, arrays)
    except (TypeError, ValueError) as exc:
        raise ProgramError(f"{path}: the manifest cannot be hashed ({exc})") from None
    if actual != checksum["value"]:
        raise ProgramError(
            f"{path}: checksum mismatch: the file was modified or damaged after it was written "
            f"(stored {checksum['value'][:16]}..., computed {actual[:16]}...)"
        )


def _read_npz(npz: Any, path: Path) -> ProgramParts:
    manifest = _read_manifest(npz, path)
    declared, arrays = _read_arrays(npz, manifest, path)
    _check_checksum(manifest, arrays, path)
    for i, spec in declared:
        a = arrays[spec["key"]]
        if not np.all(np.isfinite(a)):
            raise ProgramError(
                f"{path}: array {spec['key']!r} (layers[{i}].{spec['field']}) has non-finite "
                "values (NaN or inf)"
            )
    try:
        records = manifest["layers"]
        layers = tuple(layer_from_record(i, record, arrays) for i, record in enumerate(records))
        created = manifest["created"]
        if not isinstance(created, dict):
            raise ValueError("manifest 'created' must be an object")
        source = created.get("source", {})
        if not isinstance(source, dict):
            raise ValueError("manifest 'created.source' must be an object")
        info = {k: v for k, v in created.items() if k != "source"}
    except (ValueError, TypeError) as exc:
        raise ProgramError(f"{path}: invalid program: {exc}") from None
    return ProgramParts(layers, manifest["input_shape"], source, info)


def layer_from_record(i: int, record: dict[str, Any], arrays: Mapping[str, np.ndarray]) -> Layer:
    """The layer record ``layers[i]`` of a manifest, with its arrays; ``ValueError``/``TypeError``
    naming the record when its fields or arrays are not those of its kind."""
    kind = record.get("kind")
    if kind not in KINDS:
        raise ValueError(f"layers[{i}].kind={kind!r} is not one of {sorted(KINDS)}")
    cls = KINDS[kind]
    expected = set(attr_names(cls)) | _RECORD_KEYS
    given = set(record)
    required = {f.name for f in fields(cls) if f.name not in cls.array_fields}
    if given - expected:
        raise ValueError(f"layers[{i}] ({kind}) has unknown fields {sorted(given - expected)}")
    if expected - given:
        raise ValueError(f"layers[{i}] ({kind}) lacks the fields {sorted(expected - given)}")
    specs = {s["field"]: s["key"] for s in record["arrays"]}
    if set(specs) != set(cls.array_fields) or len(specs) != len(record["arrays"]):
        raise ValueError(
            f"layers[{i}] ({kind}) declares arrays {sorted(specs)}; expected "
            f"{sorted(cls.array_fields)}"
        )
    kwargs = {k: record[k] for k in required}
    kwargs.update({f: arrays[key] for f, key in specs.items()})
    layer = cls(**kwargs)
    if record["out_shape"] != list(layer.out_shape):
        raise ValueError(
            f"layers[{i}] {layer.name!r} ({kind}): out_shape {record['out_shape']} is "
            f"inconsistent with its parameters, which give {list(layer.out_shape)}"
        )
    return layer


__all__ = [
    "FORMAT",
    "MANIFEST_KEY",
    "VERSION",
    "ProgramError",
    "ProgramParts",
    "build_manifest",
    "canonical_json",
    "compute_checksum",
    "created_now",
    "layer_arrays",
    "layer_from_record",
    "read_program_file",
    "write_program_file",
]
