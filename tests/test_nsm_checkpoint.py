"""Checkpoint integrity: zip CRCs, the content hash, semantic ranges, old versions."""

from __future__ import annotations

import zipfile

import pytest
import torch

from nsm.checkpoint import (
    CheckpointError,
    content_hash,
    load_checkpoint,
    load_model,
    save_checkpoint,
)
from nsm.models import build_model


@pytest.fixture
def saved(tmp_path):
    torch.manual_seed(0)
    model = build_model("digits-mlp", "nsm")
    path = tmp_path / "checkpoint.pt"
    payload = {
        "model": "digits-mlp",
        "rule": "nsm",
        "state_dict": model.state_dict(),
        "epoch": 1,
        "config": {"model": "digits-mlp", "rule": "nsm"},
    }
    save_checkpoint(path, payload)
    return path


def test_written_checkpoint_carries_a_content_hash_that_verifies(saved):
    ckpt = load_checkpoint(saved)
    assert ckpt["version"] == 2
    assert ckpt["content_sha256"] == content_hash(ckpt)
    assert not saved.with_name(saved.name + ".tmp").exists()


def _weight_member(path):
    with zipfile.ZipFile(path) as zf:
        # torch stores each tensor's storage as data/<n>; the biggest is the first weight matrix
        info = max((i for i in zf.infolist() if "/data/" in i.filename), key=lambda i: i.file_size)
        return info.filename, info.header_offset + len(info.FileHeader()), info.file_size


def test_one_flipped_bit_in_a_weight_is_refused(saved):
    _, offset, size = _weight_member(saved)
    raw = bytearray(saved.read_bytes())
    raw[offset + size // 2] ^= 0x01
    saved.write_bytes(bytes(raw))
    with pytest.raises(CheckpointError, match="CRC"):
        load_checkpoint(saved)


def test_a_resaved_edit_without_a_new_hash_is_refused(saved):
    ckpt = torch.load(saved, weights_only=True)
    key = next(iter(ckpt["state_dict"]))
    ckpt["state_dict"][key] = ckpt["state_dict"][key] * 2.0
    torch.save(ckpt, saved)  # a valid archive with a stale hash
    with pytest.raises(CheckpointError, match="content hash mismatch"):
        load_checkpoint(saved)


@pytest.mark.parametrize("bad", [float("nan"), float("inf")])
def test_non_finite_weights_are_refused_naming_the_tensor(saved, bad):
    ckpt = torch.load(saved, weights_only=True)
    key = next(k for k in ckpt["state_dict"] if k.endswith("weight"))
    ckpt["state_dict"][key][0, 0] = bad
    ckpt["content_sha256"] = content_hash(ckpt)
    torch.save(ckpt, saved)
    with pytest.raises(CheckpointError, match=rf"{key}.*non-finite"):
        load_model(saved)


@pytest.mark.parametrize("epoch", ["x", -1, 1.5, True])
def test_bad_epoch_is_refused(saved, epoch):
    ckpt = torch.load(saved, weights_only=True)
    ckpt["epoch"] = epoch
    ckpt["content_sha256"] = content_hash(ckpt)
    torch.save(ckpt, saved)
    with pytest.raises(CheckpointError, match="epoch"):
        load_checkpoint(saved)


def test_truncated_file_is_refused(saved):
    saved.write_bytes(saved.read_bytes()[:-200])
    with pytest.raises(CheckpointError, match=str(saved.name)):
        load_checkpoint(saved)


def test_version_one_checkpoints_still_load():
    # The committed checkpoints were written before the content hash existed.
    ckpt = load_checkpoint("examples/checkpoints/mnist-mlp-nsm.pt")
    assert ckpt["version"] == 1 and "content_sha256" not in ckpt


def test_unknown_version_is_refused_clearly(saved):
    ckpt = torch.load(saved, weights_only=True)
    ckpt["version"] = 99
    torch.save(ckpt, saved)
    with pytest.raises(CheckpointError, match=r"version 99 is not supported.*\[1, 2\]"):
        load_checkpoint(saved)
