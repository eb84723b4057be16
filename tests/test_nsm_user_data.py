"""The user's own data (.npz): validated at the boundary, errors naming file and array."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from nsm._idx import DatasetError
from nsm.user_data import has_split, load_npz, save_npz


@pytest.fixture
def npz(tmp_path):
    rng = np.random.default_rng(0)
    return save_npz(
        tmp_path / "d.npz",
        rng.random((20, 64)),
        rng.integers(0, 10, 20),
        rng.random((30, 64)),
        rng.integers(0, 10, 30),
    )


def test_splits_load_reshaped_to_the_network_input(npz):
    x, y = load_npz(npz, "test", input_shape=(1, 8, 8), n_classes=10)
    assert x.shape == (20, 1, 8, 8) and x.dtype == torch.float32 and y.dtype == torch.int64
    xt, _ = load_npz(npz, "train", input_shape=(64,))
    assert xt.shape == (30, 64)
    assert has_split(npz, "train") and has_split(npz, "test")


def test_uint8_inputs_are_scaled_like_image_files(tmp_path):
    p = save_npz(tmp_path / "u.npz", np.full((2, 4), 255, np.uint8), np.array([0, 1]))
    x, _ = load_npz(p)
    assert torch.all(x == 1.0)
    assert not has_split(p, "train")


@pytest.mark.parametrize(
    "x, y, match",
    [
        (np.full((3, 64), np.nan), np.zeros(3, int), r"'x' holds 192 non-finite"),
        (np.zeros((3, 63)), np.zeros(3, int), r"'x' has examples of shape \(63,\)"),
        (np.zeros((3, 64)), np.zeros(3), r"'y' has dtype float64"),
        (np.zeros((3, 64)), np.array([0, 10, 1]), r"'y' holds label 10 at index 1.*\[0, 9\]"),
        (np.zeros((3, 64)), np.zeros(2, int), r"'y' has shape \(2,\); expected \(3,\)"),
        (np.zeros((0, 64)), np.zeros(0, int), r"'x' has shape \(0, 64\)"),
        (np.array([["a"] * 64]), np.zeros(1, int), r"'x' has dtype <U1"),
    ],
)
def test_bad_arrays_are_refused_naming_file_and_array(tmp_path, x, y, match):
    p = save_npz(tmp_path / "bad.npz", x, y)
    with pytest.raises(DatasetError, match=match) as info:
        load_npz(p, input_shape=(1, 8, 8), n_classes=10)
    assert "bad.npz" in str(info.value)


def test_missing_split_and_foreign_files_are_refused(tmp_path, npz):
    only_test = save_npz(tmp_path / "t.npz", np.zeros((2, 4)), np.zeros(2, int))
    with pytest.raises(DatasetError, match=r"lacks the array\(s\) \['x_train', 'y_train'\]"):
        load_npz(only_test, "train")
    junk = tmp_path / "junk.npz"
    junk.write_bytes(b"not a zip")
    with pytest.raises(DatasetError, match=r"junk\.npz: not a readable \.npz"):
        load_npz(junk)
    with pytest.raises(DatasetError, match="not found"):
        load_npz(tmp_path / "nope.npz")
    obj = tmp_path / "obj.npz"
    np.savez(obj, x=np.array([{"a": 1}], dtype=object), y=np.zeros(1, int))
    with pytest.raises(DatasetError, match=r"obj\.npz"):
        load_npz(obj)


def test_idx_file_with_zero_examples_is_a_clear_error(tmp_path):
    from nsm import data
    from tests.test_nsm_data import small_set, write_split

    images, labels = small_set(n=3)
    write_split(tmp_path, images[:0], labels[:0], compress=False)
    with pytest.raises(DatasetError, match="holds 0 images; expected at least one example"):
        data.load_mnist(tmp_path)
