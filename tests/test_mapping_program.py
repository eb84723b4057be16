"""The program records and the .nsmx file format: validation, round trip, every failure mode on
real files, loading without torch, and the numpy reference semantics.

This file does not import torch (the format must not need it). Failure-mode tests assert that
each damaged file raises ProgramError (a ValueError) whose message names the file and the problem:
never a numpy/zipfile exception, never a silently different program."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest
from scipy import special

from mapping import reference as ref
from mapping.program import Program, ProgramError, load_program, save_program
from mapping.program_file import MANIFEST_KEY, VERSION, compute_checksum
from mapping.records import (
    ARRAY_DTYPE,
    BinariseLayer,
    ConvLayer,
    DenseLayer,
    FlattenLayer,
    MaxPoolLayer,
    OutputLayer,
)

REPO = Path(__file__).resolve().parents[1]


def make_program(seed: int = 0) -> Program:
    """A small program with every layer kind and every option the format has."""
    rng = np.random.default_rng(seed)
    layers = [
        BinariseLayer(name="0", in_shape=(2, 7, 6)),
        ConvLayer(
            name="1",
            in_shape=(2, 7, 6),
            weight=rng.normal(size=(2 * 3 * 3, 3)),
            beta=rng.uniform(0.3, 2.0, size=(3, 4, 3)),
            bias=rng.normal(size=3),
            kernel_size=(3, 3),
            stride=(2, 2),
            padding=(1, 1),
            beta_per="location",
            noise="gaussian",
            sigma=0.7,
            structure="per_synapse",
        ),
        ConvLayer(
            name="2",
            in_shape=(3, 4, 3),
            weight=rng.normal(size=(3 * 2 * 3, 4)),
            beta=rng.uniform(0.3, 2.0, size=4),
            bias=rng.normal(size=4),
            kernel_size=(2, 3),
            stride=(1, 1),
            padding=(1, 0),
            noise="bernoulli",
            p=0.3,
            structure="per_input",
        ),
        MaxPoolLayer(
            name="3", in_shape=(4, 5, 1), kernel_size=(2, 2), stride=(1, 1), padding=(1, 1)
        ),
        FlattenLayer(name="4", in_shape=(4, 6, 2)),
        DenseLayer(
            name="5",
            in_shape=(48,),
            weight=rng.normal(size=(48, 6)),
            beta=rng.uniform(0.3, 2.0, size=6),
            bias=rng.normal(size=6),
            noise="bernoulli",
            p=0.5,
        ),
        DenseLayer(
            name="6",
            in_shape=(6,),
            weight=rng.normal(size=(6, 5)),
            beta=np.ones(5),
            bias=rng.normal(size=5),
            noise="none",
            structure="none",
            deterministic=True,
            weight_norm=False,
            rule="sign_ste",
            scale_policy="global",
            encoding="reference_column",
        ),
        OutputLayer(
            name="7", in_shape=(5,), weight=rng.normal(size=(5, 3)), bias=rng.normal(size=3)
        ),
    ]
    return Program(tuple(layers), (2, 7, 6), source={"model": "hand-made", "epochs": 0})


@pytest.fixture()
def program_file(tmp_path: Path) -> Path:
    return save_program(make_program(), tmp_path / "model.nsmx")


def read_members(path: Path) -> dict[str, np.ndarray]:
    with np.load(path, allow_pickle=False) as npz:
        return {k: npz[k] for k in npz.files}


def write_members(path: Path, members: dict[str, np.ndarray]) -> None:
    with open(path, "wb") as f:
        np.savez(f, **members)


def manifest_of(members: dict[str, np.ndarray]) -> dict:
    return json.loads(members[MANIFEST_KEY].tobytes().decode())


def encode(manifest: dict) -> np.ndarray:
    return np.frombuffer(json.dumps(manifest).encode(), dtype=np.uint8)


def rewrite(path: Path, edit, *, fix_checksum: bool) -> None:
    """Apply ``edit(manifest, arrays)`` to a program file; optionally re-sign it like a tool."""
    members = read_members(path)
    manifest = manifest_of(members)
    arrays = {k: v for k, v in members.items() if k != MANIFEST_KEY}
    edit(manifest, arrays)
    if fix_checksum:
        manifest["checksum"]["value"] = compute_checksum(manifest, arrays)
    write_members(path, {MANIFEST_KEY: encode(manifest), **arrays})


def assert_program_error(path: Path, *fragments: str) -> str:
    with pytest.raises(ProgramError) as info:
        load_program(path)
    msg = str(info.value)
    assert str(path) in msg, msg
    for fragment in fragments:
        assert fragment in msg, msg
    return msg


# ------------------------------------------------------------------------------------ round trip


def test_round_trip_equal(program_file: Path, tmp_path: Path) -> None:
    original = make_program()
    loaded = load_program(program_file)
    assert loaded == original
    # Bitwise equal arrays, identical attributes, float32, read-only.
    for a, b in zip(original.layers, loaded.layers, strict=True):
        assert type(a) is type(b) and a.name == b.name and a.in_shape == b.in_shape
        for key in a.array_fields:
            x, y = getattr(a, key), getattr(b, key)
            assert y.dtype == ARRAY_DTYPE and np.array_equal(x, y)
            assert not y.flags.writeable
    conv, conv2 = loaded.layers[1], loaded.layers[2]
    assert (conv.noise, conv.sigma, conv.p, conv.beta_per) == ("gaussian", 0.7, None, "location")
    assert (conv.kernel_size, conv.stride, conv.padding) == ((3, 3), (2, 2), (1, 1))
    assert (conv2.structure, conv2.p) == ("per_input", 0.3)
    sign = loaded.layers[6]
    assert sign.deterministic and not sign.weight_norm and sign.encoding == "reference_column"
    assert loaded.source == {"model": "hand-made", "epochs": 0}
    assert loaded.created["package"] == "nsm-crossbar" and loaded.created["created_utc"]
    # Saving what was loaded gives the same program again.
    again = load_program(save_program(loaded, tmp_path / "again.nsmx"))
    assert again == original
    # No temporary files are left behind by the atomic write.
    assert sorted(p.name for p in tmp_path.iterdir()) == ["again.nsmx", "model.nsmx"]


def test_file_layout_is_plain_npz_with_json_manifest(program_file: Path) -> None:
    with zipfile.ZipFile(program_file) as zf:
        names = sorted(zf.namelist())
    assert f"{MANIFEST_KEY}.npy" in names
    members = read_members(program_file)  # allow_pickle=False: nothing is pickled
    assert members[MANIFEST_KEY].dtype == np.uint8
    manifest = manifest_of(members)
    assert manifest["format"] == "nsmx-program" and manifest["version"] == VERSION
    assert manifest["checksum"]["algorithm"] == "sha256"
    declared = [s["key"] for r in manifest["layers"] for s in r["arrays"]]
    assert sorted([*declared, MANIFEST_KEY]) == sorted(members)
    assert all(members[k].dtype == np.dtype("<f4") for k in declared)


def test_save_replaces_atomically_and_keeps_old_file_on_failure(tmp_path: Path) -> None:
    path = save_program(make_program(0), tmp_path / "p.nsmx")
    save_program(make_program(1), path)
    assert load_program(path) == make_program(1)
    with pytest.raises(TypeError, match="program must be a Program"):
        save_program("not a program", path)  # type: ignore[arg-type]
    assert load_program(path) == make_program(1)


def test_summary_params_and_cells() -> None:
    prog = make_program()
    rows = prog.summary()
    assert [r["kind"] for r in rows] == [
        "binarize",
        "conv",
        "conv",
        "maxpool",
        "flatten",
        "dense",
        "dense",
        "output",
    ]
    # Differential pairs: 2·K·N cells; reference column: K·(N + 1).
    expected_cells = 2 * 18 * 3 + 2 * 18 * 4 + 2 * 48 * 6 + 6 * (5 + 1) + 2 * 5 * 3
    assert prog.cells() == expected_cells
    expected_params = (18 * 3 + 36 + 3) + (18 * 4 + 4 + 4) + (48 * 6 + 12) + (30 + 10) + (15 + 3)
    assert prog.params() == expected_params
    assert rows[1]["level"] == "sigma=0.7" and rows[2]["level"] == "p=0.3"
    assert rows[6]["level"] == "deterministic"
    assert prog.n_classes == 3 and len(prog.binary_layers) == 4


# ----------------------------------------------------------------------------- failure modes


@pytest.mark.parametrize("fraction", [0.05, 0.3, 0.5, 0.7, 0.95])
def test_flipped_bytes_never_load_a_different_program(program_file: Path, fraction: float) -> None:
    data = bytearray(program_file.read_bytes())
    at = int(len(data) * fraction)
    for i in range(at, min(at + 8, len(data))):
        data[i] ^= 0xA5
    program_file.write_bytes(bytes(data))
    try:
        loaded = load_program(program_file)
    except ProgramError as exc:
        assert str(program_file) in str(exc)
    else:
        # Only bytes that carry no program data (e.g. a zip timestamp) may be hit unnoticed.
        assert loaded == make_program()


def test_every_single_byte_flip_is_caught_or_harmless(tmp_path: Path) -> None:
    path = save_program(make_program(), tmp_path / "m.nsmx")
    clean = path.read_bytes()
    caught = 0
    for at in range(0, len(clean), max(1, len(clean) // 300)):
        data = bytearray(clean)
        data[at] ^= 0xFF
        path.write_bytes(bytes(data))
        try:
            loaded = load_program(path)
        except ProgramError:
            caught += 1
        else:
            assert loaded == make_program(), f"byte {at} changed the program silently"
    assert caught > 200  # nearly every byte of the file carries data or structure


def test_flipped_array_bytes_fail_on_crc_or_checksum(program_file: Path) -> None:
    data = bytearray(program_file.read_bytes())
    members = read_members(program_file)
    target = members["layer5.weight"].tobytes()
    at = bytes(data).find(target[:64])
    assert at > 0
    data[at + 100] ^= 0x01  # one bit of one float32 weight
    program_file.write_bytes(bytes(data))
    assert_program_error(program_file)


@pytest.mark.parametrize("keep", [0, 1, 10, 100, 0.5, -22, -1])
def test_truncated(program_file: Path, keep: float) -> None:
    data = program_file.read_bytes()
    if isinstance(keep, float):
        n = int(len(data) * keep)
    else:
        n = keep if keep >= 0 else len(data) + keep
    program_file.write_bytes(data[:n])
    assert_program_error(program_file)


def test_edited_manifest_number_without_checksum_update(program_file: Path) -> None:
    def edit(manifest: dict, arrays: dict) -> None:
        assert manifest["layers"][5]["p"] == 0.5
        manifest["layers"][5]["p"] = 0.25

    rewrite(program_file, edit, fix_checksum=False)
    assert_program_error(program_file, "checksum mismatch")


def test_edited_array_without_checksum_update(program_file: Path) -> None:
    def edit(manifest: dict, arrays: dict) -> None:
        arrays["layer7.bias"] = arrays["layer7.bias"] + np.float32(1.0)

    rewrite(program_file, edit, fix_checksum=False)
    assert_program_error(program_file, "checksum mismatch")


def test_missing_array(program_file: Path) -> None:
    rewrite(program_file, lambda m, a: a.pop("layer1.beta"), fix_checksum=False)
    assert_program_error(program_file, "missing", "layer1.beta")


def test_extra_array(program_file: Path) -> None:
    def edit(manifest: dict, arrays: dict) -> None:
        arrays["layer9.weight"] = np.zeros(3, dtype=np.float32)

    rewrite(program_file, edit, fix_checksum=True)
    assert_program_error(program_file, "unexpected", "layer9.weight")


@pytest.mark.parametrize("version", [VERSION + 1, 0, "1", None])
def test_wrong_version(program_file: Path, version: object) -> None:
    def edit(manifest: dict, arrays: dict) -> None:
        manifest["version"] = version

    rewrite(program_file, edit, fix_checksum=True)
    msg = assert_program_error(program_file, "version", repr(version))
    if version == VERSION + 1:
        assert "newer" in msg


def test_wrong_format_tag(program_file: Path) -> None:
    rewrite(program_file, lambda m, a: m.update(format="something-else"), fix_checksum=True)
    assert_program_error(program_file, "not an nsmx program")


def test_array_shape_differs_from_manifest(program_file: Path) -> None:
    def edit(manifest: dict, arrays: dict) -> None:
        arrays["layer5.weight"] = arrays["layer5.weight"].reshape(6, 48)

    rewrite(program_file, edit, fix_checksum=False)
    assert_program_error(program_file, "layer5.weight", "shape")


def test_array_dtype_differs_from_manifest(program_file: Path) -> None:
    def edit(manifest: dict, arrays: dict) -> None:
        arrays["layer5.bias"] = arrays["layer5.bias"].astype(np.float64)

    rewrite(program_file, edit, fix_checksum=False)
    assert_program_error(program_file, "layer5.bias", "dtype")


def test_non_finite_values_even_with_valid_checksum(program_file: Path) -> None:
    def edit(manifest: dict, arrays: dict) -> None:
        w = arrays["layer2.weight"].copy()
        w[3, 1] = np.nan
        arrays["layer2.weight"] = w

    rewrite(program_file, edit, fix_checksum=True)
    assert_program_error(program_file, "layer2.weight", "non-finite")


def test_inconsistent_layer_chain_even_with_valid_checksum(program_file: Path) -> None:
    def edit(manifest: dict, arrays: dict) -> None:
        manifest["layers"][4]["in_shape"] = [4, 4, 3]  # flatten no longer fits the max-pool

    rewrite(program_file, edit, fix_checksum=True)
    assert_program_error(program_file, "in_shape", "does not match")


def test_inconsistent_out_shape_even_with_valid_checksum(program_file: Path) -> None:
    def edit(manifest: dict, arrays: dict) -> None:
        manifest["layers"][1]["stride"] = [1, 1]  # conv output would be 7x6, not 4x3

    rewrite(program_file, edit, fix_checksum=True)
    assert_program_error(program_file, "invalid program")


@pytest.mark.parametrize(
    ("layer", "field", "value", "fragment"),
    [
        (5, "p", 1.5, "p=1.5"),
        (5, "noise", "poisson", "noise='poisson'"),
        (1, "sigma", -1.0, "sigma=-1.0"),
        (6, "deterministic", False, "deterministic=False"),
        (1, "beta_per", "channel", "beta has shape"),
        (0, "kind", "dropout", "kind='dropout'"),
    ],
)
def test_invalid_record_fields_even_with_valid_checksum(
    program_file: Path, layer: int, field: str, value: object, fragment: str
) -> None:
    rewrite(program_file, lambda m, a: m["layers"][layer].update({field: value}), fix_checksum=True)
    assert_program_error(program_file, fragment)


def test_unknown_or_missing_record_fields(program_file: Path, tmp_path: Path) -> None:
    rewrite(program_file, lambda m, a: m["layers"][3].update(dilation=2), fix_checksum=True)
    assert_program_error(program_file, "unknown fields", "dilation")
    path = save_program(make_program(), tmp_path / "b.nsmx")
    rewrite(path, lambda m, a: m["layers"][5].pop("structure"), fix_checksum=True)
    assert_program_error(path, "lacks", "structure")


def test_not_a_program(tmp_path: Path) -> None:
    cases = {
        "missing.nsmx": None,
        "empty.nsmx": b"",
        "text.nsmx": b"hello, I am not a zip archive\n" * 10,
    }
    for name, content in cases.items():
        path = tmp_path / name
        if content is not None:
            path.write_bytes(content)
        assert_program_error(path)
    npy = tmp_path / "array.nsmx"
    with open(npy, "wb") as f:
        np.save(f, np.zeros(3))
    assert_program_error(npy, ".npy")
    other = tmp_path / "other.nsmx"
    write_members(other, {"weights": np.zeros(3)})
    assert_program_error(other, "no 'manifest'")
    bad_json = tmp_path / "bad_json.nsmx"
    write_members(bad_json, {MANIFEST_KEY: np.frombuffer(b"{not json", dtype=np.uint8)})
    assert_program_error(bad_json, "not valid JSON")
    str_manifest = tmp_path / "str_manifest.nsmx"
    write_members(str_manifest, {MANIFEST_KEY: np.array(["{}"])})
    assert_program_error(str_manifest, "uint8")


def test_pickled_member_is_refused(program_file: Path) -> None:
    members = read_members(program_file)
    members["layer7.bias"] = np.array([{"evil": 1}], dtype=object)
    with open(program_file, "wb") as f:
        np.savez(f, **members)  # writing an object array pickles it
    assert_program_error(program_file, "layer7.bias")


# --------------------------------------------------------------------------- loading w/o torch


def test_load_and_reference_forward_without_torch(program_file: Path, tmp_path: Path) -> None:
    x = np.random.default_rng(3).random((4, 2, 7, 6))
    expected = ref.program_forward_reference(make_program(), x, np.random.default_rng(9))
    np.save(tmp_path / "x.npy", x)
    np.save(tmp_path / "expected.npy", expected)
    code = f"""
import sys
sys.modules["torch"] = None  # any import of torch now raises ImportError
import numpy as np
from mapping.program import load_program
from mapping.reference import program_forward_reference
prog = load_program({str(program_file)!r})
x = np.load({str(tmp_path / "x.npy")!r})
logits = program_forward_reference(prog, x, np.random.default_rng(9))
assert np.array_equal(logits, np.load({str(tmp_path / "expected.npy")!r}))
assert sys.modules["torch"] is None
print("ok", prog.n_classes)
"""
    env = dict(os.environ, PYTHONPATH=str(REPO))
    res = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, cwd=REPO, timeout=120
    )
    assert res.returncode == 0, res.stderr
    assert res.stdout.strip() == "ok 3"


# ----------------------------------------------------------------------- record validation


def test_layer_validation_messages() -> None:
    w = np.zeros((4, 2))
    with pytest.raises(ValueError, match=r"p=0\.0 is out of range"):
        DenseLayer(
            name="d",
            in_shape=(4,),
            weight=w,
            beta=np.ones(2),
            bias=np.zeros(2),
            noise="bernoulli",
            p=0.0,
        )
    with pytest.raises(ValueError, match=r"beta has shape \(3,\)"):
        DenseLayer(
            name="d",
            in_shape=(4,),
            weight=w,
            beta=np.ones(3),
            bias=np.zeros(2),
            noise="bernoulli",
            p=0.5,
        )
    with pytest.raises(ValueError, match="does not match weight rows 4"):
        DenseLayer(
            name="d",
            in_shape=(5,),
            weight=w,
            beta=np.ones(2),
            bias=np.zeros(2),
            noise="bernoulli",
            p=0.5,
        )
    with pytest.raises(ValueError, match="non-finite"):
        DenseLayer(
            name="d",
            in_shape=(4,),
            weight=w + np.inf,
            beta=np.ones(2),
            bias=np.zeros(2),
            noise="bernoulli",
            p=0.5,
        )
    with pytest.raises(ValueError, match=r"p=0\.5 must be null"):
        DenseLayer(
            name="d",
            in_shape=(4,),
            weight=w,
            beta=np.ones(2),
            bias=np.zeros(2),
            noise="gaussian",
            p=0.5,
            sigma=1.0,
        )
    with pytest.raises(ValueError, match="weight_norm=true"):
        DenseLayer(
            name="d",
            in_shape=(4,),
            weight=w,
            beta=np.ones(2),
            bias=np.zeros(2),
            noise="bernoulli",
            p=0.5,
            weight_norm=False,
        )
    with pytest.raises(ValueError, match="structure='per_synapse' is not allowed"):
        DenseLayer(
            name="d",
            in_shape=(4,),
            weight=w,
            beta=np.ones(2),
            bias=np.zeros(2),
            noise="none",
            deterministic=True,
        )
    with pytest.raises(ValueError, match="scale_policy='per_row'"):
        OutputLayer(name="o", in_shape=(4,), weight=w, bias=np.zeros(2), scale_policy="per_row")
    with pytest.raises(ValueError, match="C_in·kH·kW = 18"):
        ConvLayer(
            name="c",
            in_shape=(2, 5, 5),
            weight=np.zeros((9, 3)),
            beta=np.ones(3),
            bias=np.zeros(3),
            kernel_size=3,
            noise="bernoulli",
            p=0.5,
        )
    with pytest.raises(ValueError, match="smaller than kernel_size"):
        ConvLayer(
            name="c",
            in_shape=(1, 2, 2),
            weight=np.zeros((9, 3)),
            beta=np.ones(3),
            bias=np.zeros(3),
            kernel_size=3,
            noise="bernoulli",
            p=0.5,
        )
    with pytest.raises(ValueError, match=r"padding=\(2, 2\) must be at most half"):
        MaxPoolLayer(name="m", in_shape=(1, 4, 4), kernel_size=2, stride=2, padding=2)


def test_program_validation_messages() -> None:
    rng = np.random.default_rng(0)
    out = OutputLayer(name="o", in_shape=(4,), weight=rng.normal(size=(4, 2)), bias=np.zeros(2))
    dense = DenseLayer(
        name="d",
        in_shape=(4,),
        weight=rng.normal(size=(4, 4)),
        beta=np.ones(4),
        bias=np.zeros(4),
        noise="bernoulli",
        p=0.5,
    )
    binz = BinariseLayer(name="b", in_shape=(4,))
    assert Program((binz, dense, out), (4,)).n_classes == 2
    with pytest.raises(ValueError, match="put a binarize layer before it"):
        Program((dense, out), (4,))
    with pytest.raises(ValueError, match="ends with a real-valued output layer"):
        Program((binz, dense), (4,))
    with pytest.raises(ValueError, match="output layer must be the last"):
        Program((binz, out, dense), (4,))
    with pytest.raises(ValueError, match=r"in_shape \(4,\) does not match the shape \(5,\)"):
        Program((BinariseLayer(name="b", in_shape=(5,)), dense, out), (5,))
    with pytest.raises(ValueError, match="duplicate layer name"):
        Program(
            (
                binz,
                DenseLayer(
                    name="o",
                    in_shape=(4,),
                    weight=np.ones((4, 4)),
                    beta=np.ones(4),
                    bias=np.zeros(4),
                    noise="bernoulli",
                    p=0.5,
                ),
                out,
            ),
            (4,),
        )


# ------------------------------------------------------------------------- reference semantics


def test_reference_forward_samples_match_firing_probability() -> None:
    """Each binary layer's states are +1 with frequency P (independent draws per neuron).

    z-score per neuron with the exact binomial standard error; |z| < 4.5 for all 4·(6 + 3·4·3)
    neurons at a fixed seed (per-neuron false alarm 7e-6 under the null)."""
    prog = make_program(2)
    x = np.random.default_rng(5).random((1, 2, 7, 6))
    rng = np.random.default_rng(6)
    n = 4000
    _, states0 = ref.program_forward_reference(prog, x, rng, return_states=True)
    z0 = states0[0]
    p_conv = ref.firing_probability(prog.layers[1], z0)
    counts = np.zeros_like(p_conv)
    for _ in range(n):
        counts += ref.sample_states(prog.layers[1], z0, rng) > 0
    freq = counts / n
    ok = (p_conv > 1e-6) & (p_conv < 1 - 1e-6)
    zs = (freq[ok] - p_conv[ok]) / np.sqrt(p_conv[ok] * (1 - p_conv[ok]) / n)
    assert ok.sum() > 10 and np.max(np.abs(zs)) < 4.5
    # Deterministic sign layer: states equal sign(s) and draw nothing from rng.
    z6 = np.where(np.random.default_rng(1).random((3, 6)) < 0.5, 1.0, -1.0)
    state = rng.bit_generator.state
    det = ref.sample_states(prog.layers[6], z6, rng)
    assert rng.bit_generator.state == state
    s = z6 @ prog.layers[6].weight.astype(float) + prog.layers[6].bias
    assert np.array_equal(det, np.where(s >= 0, 1.0, -1.0))


def test_reference_dense_probability_formula() -> None:
    """P = ½[1 + erf(β v̂·z + b/(c‖w‖))] written out by hand (docs/model.md §1)."""
    rng = np.random.default_rng(4)
    w, beta, b = rng.normal(size=(30, 5)), rng.uniform(0.5, 2, 5), rng.normal(size=5)
    for noise, kw, c in [
        ("bernoulli", {"p": 0.25}, np.sqrt(2 * 0.25 * 0.75)),
        ("gaussian", {"sigma": 0.4}, np.sqrt(2) * 0.4),
    ]:
        layer = DenseLayer(name="d", in_shape=(30,), weight=w, beta=beta, bias=b, noise=noise, **kw)
        z = np.where(rng.random((7, 30)) < 0.5, 1.0, -1.0)
        w32 = layer.weight.astype(float)
        norm = np.linalg.norm(w32, axis=0)
        expected = 0.5 * (
            1
            + special.erf(
                beta.astype(np.float32) * (z @ w32) / norm + b.astype(np.float32) / (c * norm)
            )
        )
        np.testing.assert_allclose(ref.firing_probability(layer, z), expected, rtol=0, atol=1e-12)


def test_reference_maxpool_flatten_binarise() -> None:
    layer = MaxPoolLayer(name="m", in_shape=(1, 3, 3), kernel_size=2, stride=1, padding=1)
    z = np.array([[[[1, -1, -1], [-1, -1, -1], [-1, -1, 1]]]], dtype=float)
    out = ref.maxpool(layer, z)
    assert out.shape == (1, 1, 4, 4)
    expected = [[1, 1, -1, -1], [1, 1, -1, -1], [-1, -1, 1, 1], [-1, -1, 1, 1]]
    assert np.array_equal(out[0, 0], expected)
    binz = BinariseLayer(name="b", in_shape=(3,))
    assert np.array_equal(ref.binarise(binz, np.array([[0.0, 0.5, 0.49999997]])), [[-1, 1, -1]])
    flat = FlattenLayer(name="f", in_shape=(2, 2, 1))
    assert np.array_equal(ref.flatten(flat, np.arange(4.0).reshape(1, 2, 2, 1)), [[0, 1, 2, 3]])
    with pytest.raises(ValueError, match=r"expects input of shape \(batch, 2, 2, 1\)"):
        ref.flatten(flat, np.zeros((1, 4)))


def test_predict_reference_is_a_probability_average() -> None:
    prog = make_program(3)
    x = np.random.default_rng(0).random((5, 2, 7, 6))
    prob = ref.predict_reference(prog, x, samples=20, rng=np.random.default_rng(0), batch_size=2)
    assert prob.shape == (5, 3)
    np.testing.assert_allclose(prob.sum(axis=1), 1.0, atol=1e-12)
    again = ref.predict_reference(prog, x, samples=20, rng=np.random.default_rng(0), batch_size=2)
    assert np.array_equal(prob, again)
    with pytest.raises(ValueError, match="samples=0"):
        ref.predict_reference(prog, x, samples=0, rng=np.random.default_rng(0))
    with pytest.raises(TypeError, match=r"numpy\.random\.Generator"):
        ref.program_forward_reference(prog, x, 0)  # type: ignore[arg-type]


def test_offset_from_beta_matches_design_table() -> None:
    beta = np.array([0.5, 1.0, 2.0])
    np.testing.assert_allclose(
        ref.offset_from_beta(beta, noise="bernoulli", p=0.25), beta * np.sqrt(2 * 0.1875) - 0.25
    )
    np.testing.assert_allclose(
        ref.offset_from_beta(beta, noise="gaussian", sigma=0.3), beta * np.sqrt(2) * 0.3 - 1
    )
    with pytest.raises(ValueError, match=r"p=1\.0"):
        ref.offset_from_beta(beta, noise="bernoulli", p=1.0)
