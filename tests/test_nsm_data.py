"""Tests of nsm.data: IDX parsing and validation, loaders, digits split, checksummed downloader.

Small IDX files are written by the tests themselves (independently of the reader, with struct);
the real-MNIST checks and the loopback download need NSMX_MNIST_DIR and are skipped without it.
"""

from __future__ import annotations

import gzip
import hashlib
import http.server
import shutil
import struct
import threading
from collections.abc import Iterator
from functools import partial
from pathlib import Path

import numpy as np
import pytest
import torch

from nsm import data
from nsm.data import DatasetError

MNIST_TRAIN_COUNTS = [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949]
MNIST_TEST_COUNTS = [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]

IMAGES_STEM = "train-images-idx3-ubyte"
LABELS_STEM = "train-labels-idx1-ubyte"


# --------------------------------------------------------------------------------------------
# helpers: an IDX writer that does not share code with the reader under test


def idx_bytes(array: np.ndarray, *, dtype_code: int = 0x08, magic: int | None = None) -> bytes:
    """IDX encoding of ``array`` (big-endian); ``magic`` overrides the computed magic number."""
    big_endian = {0x08: ">u1", 0x09: ">i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}
    if magic is None:
        magic = (dtype_code << 8) | array.ndim
    header = struct.pack(">I", magic) + struct.pack(f">{array.ndim}I", *array.shape)
    return header + np.ascontiguousarray(array, dtype=big_endian[dtype_code]).tobytes()


def write(path: Path, payload: bytes, *, compress: bool = False) -> Path:
    path.write_bytes(gzip.compress(payload, mtime=0) if compress else payload)
    return path


def small_set(n: int = 7, size: int = 28, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    images = rng.integers(0, 256, size=(n, size, size), dtype=np.uint8)
    labels = rng.integers(0, 10, size=n, dtype=np.uint8)
    return images, labels


def write_split(
    folder: Path,
    images: np.ndarray,
    labels: np.ndarray,
    *,
    compress: bool,
    prefix: str = "train",
) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    suffix = ".gz" if compress else ""
    write(folder / f"{prefix}-images-idx3-ubyte{suffix}", idx_bytes(images), compress=compress)
    write(folder / f"{prefix}-labels-idx1-ubyte{suffix}", idx_bytes(labels), compress=compress)


@pytest.fixture
def no_data_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("NSMX_MNIST_DIR", raising=False)
    monkeypatch.delenv("NSMX_FASHION_MNIST_DIR", raising=False)


# --------------------------------------------------------------------------------------------
# IDX reading and validation


@pytest.mark.parametrize("compress", [False, True])
def test_load_small_set_shapes_dtypes_and_values(tmp_path: Path, compress: bool) -> None:
    images, labels = small_set()
    write_split(tmp_path, images, labels, compress=compress)
    x, y = data.load_mnist(tmp_path, split="train")
    assert x.dtype == torch.float32 and x.shape == (7, 1, 28, 28)
    assert y.dtype == torch.int64 and y.shape == (7,)
    assert torch.equal((x * 255).round().to(torch.uint8)[:, 0], torch.from_numpy(images))
    assert torch.equal(y, torch.from_numpy(labels.astype(np.int64)))
    assert float(x.min()) >= 0.0 and float(x.max()) <= 1.0


def test_raw_and_gzip_give_identical_tensors(tmp_path: Path) -> None:
    images, labels = small_set(n=5, seed=3)
    write_split(tmp_path / "raw", images, labels, compress=False)
    write_split(tmp_path / "gz", images, labels, compress=True)
    x_raw, y_raw = data.load_mnist(tmp_path / "raw")
    x_gz, y_gz = data.load_mnist(tmp_path / "gz")
    assert torch.equal(x_raw, x_gz) and torch.equal(y_raw, y_gz)


def test_gzip_detected_by_content_not_extension(tmp_path: Path) -> None:
    images, labels = small_set(n=4)
    # gzip content under the raw name, raw content under the .gz name
    write(tmp_path / IMAGES_STEM, idx_bytes(images), compress=True)
    write(tmp_path / f"{LABELS_STEM}.gz", idx_bytes(labels), compress=False)
    x, y = data.load_mnist(tmp_path)
    assert x.shape == (4, 1, 28, 28)
    assert torch.equal(y, torch.from_numpy(labels.astype(np.int64)))


def test_test_split_reads_t10k_files(tmp_path: Path) -> None:
    images, labels = small_set(n=3, seed=1)
    write_split(tmp_path, images, labels, compress=True, prefix="t10k")
    x, y = data.load_mnist(tmp_path, split="test")
    assert x.shape == (3, 1, 28, 28)
    assert torch.equal(y, torch.from_numpy(labels.astype(np.int64)))
    with pytest.raises(DatasetError, match=IMAGES_STEM):  # the train files are not there
        data.load_mnist(tmp_path, split="train")


@pytest.mark.parametrize(
    ("dtype_code", "values"),
    [
        (0x09, np.array([[-128, 0], [5, 127]], dtype=np.int8)),
        (0x0B, np.array([-30000, 1, 30000], dtype=np.int16)),
        (0x0C, np.array([[[-(2**31), 7, 2**31 - 1]]], dtype=np.int32)),
        (0x0D, np.array([1.5, -2.25, 3e30], dtype=np.float32)),
        (0x0E, np.array([1e-300, -1.0], dtype=np.float64)),
    ],
)
def test_read_idx_multibyte_dtypes_round_trip(
    tmp_path: Path, dtype_code: int, values: np.ndarray
) -> None:
    path = write(tmp_path / "a.idx", idx_bytes(values, dtype_code=dtype_code))
    out = data.read_idx(path)
    assert out.dtype == values.dtype and out.dtype.isnative
    np.testing.assert_array_equal(out, values)


def test_missing_file_names_folder_and_file(tmp_path: Path) -> None:
    images, _ = small_set()
    tmp_path.joinpath(f"{IMAGES_STEM}.gz").write_bytes(gzip.compress(idx_bytes(images)))
    with pytest.raises(DatasetError) as info:
        data.load_mnist(tmp_path)
    message = str(info.value)
    assert str(tmp_path) in message
    assert f"{LABELS_STEM} and {LABELS_STEM}.gz" in message
    assert "download=True" in message


def test_missing_folder(tmp_path: Path) -> None:
    with pytest.raises(DatasetError, match="folder not found"):
        data.load_mnist(tmp_path / "nowhere")


def test_no_folder_given_explains_argument_and_env(no_data_env: None) -> None:
    with pytest.raises(DatasetError) as info:
        data.load_mnist()
    assert "root=" in str(info.value) and "NSMX_MNIST_DIR" in str(info.value)


def test_env_variable_selects_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    images, labels = small_set(n=2)
    write_split(tmp_path, images, labels, compress=True)
    monkeypatch.setenv("NSMX_MNIST_DIR", str(tmp_path))
    x, _ = data.load_mnist()
    assert x.shape == (2, 1, 28, 28)
    # an explicit root wins over the environment variable
    with pytest.raises(DatasetError, match="from the root argument"):
        data.load_mnist(tmp_path / "other")


@pytest.mark.parametrize("compress", [False, True])
def test_wrong_magic_number(tmp_path: Path, compress: bool) -> None:
    images, labels = small_set()
    write_split(tmp_path, images, labels, compress=compress)
    suffix = ".gz" if compress else ""
    # an images file (magic 2051) where the labels file (magic 2049) belongs
    bad = write(tmp_path / f"{LABELS_STEM}{suffix}", idx_bytes(images), compress=compress)
    with pytest.raises(DatasetError) as info:
        data.load_mnist(tmp_path)
    message = str(info.value)
    assert str(bad) in message and "wrong magic number" in message
    assert "expected 2049" in message and "found 2051" in message


def test_not_an_idx_file(tmp_path: Path) -> None:
    path = write(tmp_path / "x.png", b"\x89PNG\r\n\x1a\n" + bytes(100))
    with pytest.raises(DatasetError, match=r"not an IDX file.*89 50 4e 47.*expected 2051"):
        data.read_idx(path, expected_magic=data.MAGIC_IMAGES_U8)


def test_unknown_dtype_byte(tmp_path: Path) -> None:
    payload = struct.pack(">I", (0x0A << 8) | 1) + struct.pack(">I", 2) + b"\x00\x00"
    path = write(tmp_path / "a.idx", payload)
    with pytest.raises(DatasetError, match=r"unknown IDX data type byte 0x0a"):
        data.read_idx(path)


@pytest.mark.parametrize("compress", [False, True])
def test_truncated_data(tmp_path: Path, compress: bool) -> None:
    images, labels = small_set()
    write_split(tmp_path, images, labels, compress=compress)
    full = idx_bytes(images)
    suffix = ".gz" if compress else ""
    bad = write(tmp_path / f"{IMAGES_STEM}{suffix}", full[:-10], compress=compress)
    with pytest.raises(DatasetError) as info:
        data.load_mnist(tmp_path)
    message = str(info.value)
    assert str(bad) in message and "truncated" in message
    assert f"{len(full)} bytes in total, found {len(full) - 10}" in message


def test_truncated_gzip_stream(tmp_path: Path) -> None:
    images, _ = small_set()
    compressed = gzip.compress(idx_bytes(images))
    path = write(tmp_path / "a.gz", compressed[: len(compressed) // 2])
    with pytest.raises(DatasetError, match=r"a\.gz: truncated"):
        data.read_idx(path)


def test_corrupt_gzip_crc(tmp_path: Path) -> None:
    _, labels = small_set()
    compressed = bytearray(gzip.compress(idx_bytes(labels)))
    compressed[-8] ^= 0xFF  # first byte of the CRC-32 trailer (RFC 1952)
    path = write(tmp_path / "labels.gz", bytes(compressed))
    with pytest.raises(DatasetError, match=r"labels\.gz: corrupt gzip stream"):
        data.read_idx(path)


def test_truncated_header(tmp_path: Path) -> None:
    path = write(tmp_path / "a.idx", struct.pack(">I", 2051) + b"\x00\x00\x00\x07")
    with pytest.raises(DatasetError, match=r"truncated IDX header: expected 12 bytes.*found 4"):
        data.read_idx(path)
    empty = write(tmp_path / "empty.idx", b"")
    with pytest.raises(DatasetError, match=r"empty\.idx: truncated IDX header"):
        data.read_idx(empty)


@pytest.mark.parametrize("compress", [False, True])
def test_absurd_header_size_is_rejected_before_allocation(tmp_path: Path, compress: bool) -> None:
    # 4e9 x 4e9 x 4e9 bytes would be a MemoryError if the reader trusted the header
    payload = struct.pack(">IIII", 2051, 4_000_000_000, 4_000_000_000, 4_000_000_000) + bytes(64)
    path = write(tmp_path / "a.idx", payload, compress=compress)
    with pytest.raises(DatasetError, match="truncated"):
        data.read_idx(path)


def test_trailing_bytes(tmp_path: Path) -> None:
    _, labels = small_set()
    path = write(tmp_path / "a.idx", idx_bytes(labels) + b"junk")
    with pytest.raises(DatasetError, match=r"longer than its header declares.*found 4 extra bytes"):
        data.read_idx(path)


def test_image_label_count_mismatch(tmp_path: Path) -> None:
    images, labels = small_set(n=7)
    write_split(tmp_path, images, labels[:6], compress=True)
    with pytest.raises(DatasetError) as info:
        data.load_mnist(tmp_path)
    message = str(info.value)
    assert "count mismatch" in message and "7 images" in message and "6 labels" in message
    assert IMAGES_STEM in message and LABELS_STEM in message


def test_wrong_image_size(tmp_path: Path) -> None:
    images, labels = small_set(size=20)
    write_split(tmp_path, images, labels, compress=False)
    with pytest.raises(DatasetError, match=r"wrong image size: expected \(28, 28\), found \(20, "):
        data.load_mnist(tmp_path)


def test_label_out_of_range(tmp_path: Path) -> None:
    images, labels = small_set()
    labels[3] = 10
    write_split(tmp_path, images, labels, compress=False)
    with pytest.raises(DatasetError, match=r"label out of range.*\[0, 9\].*found 10 at index 3"):
        data.load_mnist(tmp_path)


def test_never_unpickles(tmp_path: Path) -> None:
    # A pickle (protocol 2 starts with 0x80) under an IDX name is rejected as "not an IDX file".
    import pickle

    path = write(tmp_path / f"{IMAGES_STEM}.gz", pickle.dumps({"a": 1}, protocol=2))
    with pytest.raises(DatasetError, match="not an IDX file"):
        data.read_idx(path)


# --------------------------------------------------------------------------------------------
# argument validation and the dataset registry


def test_argument_errors(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"split: expected 'train' or 'test', found 'val'"):
        data.load_mnist(tmp_path, split="val")
    with pytest.raises(TypeError, match="download: expected a bool"):
        data.load_mnist(tmp_path, download="yes")
    with pytest.raises(TypeError, match=r"root: expected a str or os\.PathLike"):
        data.load_mnist(123)
    with pytest.raises(ValueError, match=r"test_fraction: expected a value in \(0, 1\)"):
        data.load_digits(test_fraction=1.0)
    with pytest.raises(ValueError, match="seed: expected a non-negative int"):
        data.load_digits(seed=-1)


def test_load_dataset_unknown_name_lists_allowed() -> None:
    with pytest.raises(ValueError) as info:
        data.load_dataset("cifar10", "train")
    assert "'cifar10'" in str(info.value)
    for name in ("digits", "mnist", "fashion-mnist"):
        assert name in str(info.value)


def test_dataset_info() -> None:
    assert data.DATASET_NAMES == ("digits", "mnist", "fashion-mnist")
    assert data.dataset_info("digits").image_shape == (1, 8, 8)
    assert data.dataset_info("MNIST").n_features == 784
    fashion = data.dataset_info("fashion_mnist")
    assert fashion.n_classes == 10 and fashion.class_names[9] == "Ankle boot"
    assert fashion.env_var == "NSMX_FASHION_MNIST_DIR"


def test_load_dataset_dispatches(tmp_path: Path, no_data_env: None) -> None:
    images, labels = small_set(n=3)
    write_split(tmp_path, images, labels, compress=True)
    x_mnist, _ = data.load_dataset("mnist", "train", root=tmp_path)
    x_fashion, _ = data.load_dataset("fashion-mnist", "train", root=tmp_path)
    assert torch.equal(x_mnist, x_fashion)
    x_digits, _ = data.load_dataset("digits", "test")
    assert x_digits.shape[1:] == (1, 8, 8)


def test_fashion_env_and_system_folder_fallback(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, no_data_env: None
) -> None:
    images, labels = small_set(n=3, seed=5)
    write_split(tmp_path / "system", images, labels, compress=True)
    write_split(tmp_path / "env", images[:2], labels[:2], compress=True)
    monkeypatch.setattr(data, "FASHION_MNIST_SYSTEM_DIR", tmp_path / "system")
    assert data.load_fashion_mnist()[0].shape[0] == 3  # system folder when nothing else is given
    monkeypatch.setenv("NSMX_FASHION_MNIST_DIR", str(tmp_path / "env"))
    assert data.load_fashion_mnist()[0].shape[0] == 2  # the environment variable wins
    monkeypatch.delenv("NSMX_FASHION_MNIST_DIR")
    monkeypatch.setattr(data, "FASHION_MNIST_SYSTEM_DIR", tmp_path / "absent")
    with pytest.raises(DatasetError, match="NSMX_FASHION_MNIST_DIR"):
        data.load_fashion_mnist()


def test_fashion_download_flag_explains_when_files_missing(tmp_path: Path) -> None:
    with pytest.raises(DatasetError, match="downloading is supported for MNIST only"):
        data.load_fashion_mnist(tmp_path, download=True)


# --------------------------------------------------------------------------------------------
# scikit-learn digits


def test_digits_split_deterministic_disjoint_and_complete() -> None:
    from sklearn.datasets import load_digits

    x_train, y_train = data.load_digits("train")
    x_test, y_test = data.load_digits("test")
    assert x_train.shape[1:] == (1, 8, 8) and x_train.dtype == torch.float32
    assert y_train.dtype == torch.int64
    assert float(x_train.min()) == 0.0 and float(x_train.max()) == 1.0
    assert len(y_train) + len(y_test) == 1797

    # Same call, same split.
    x_again, y_again = data.load_digits("train")
    assert torch.equal(x_train, x_again) and torch.equal(y_train, y_again)

    # Disjoint and complete: train + test is exactly the full set as a multiset of (image, label)
    # rows (multisets, because the digits set contains a few duplicate images).
    full = load_digits()
    full_rows = np.column_stack([full.images.reshape(-1, 64) / 16.0, full.target])
    split_rows = np.column_stack(
        [
            torch.cat([x_train, x_test]).reshape(-1, 64).numpy(),
            torch.cat([y_train, y_test]).numpy(),
        ]
    )

    def sort_rows(a: np.ndarray) -> np.ndarray:
        return a[np.lexsort(a.T[::-1])]

    np.testing.assert_array_equal(sort_rows(full_rows.astype(np.float32)), sort_rows(split_rows))

    # Stratified: each class contributes round(0.25 * n_class) test samples.
    expected = [round(0.25 * n) for n in np.bincount(full.target)]
    assert torch.bincount(y_test, minlength=10).tolist() == expected

    # Another seed gives another split of the same sizes.
    _, y_test_seed1 = data.load_digits("test", seed=1)
    x_test_seed1, _ = data.load_digits("test", seed=1)
    assert len(y_test_seed1) == len(y_test) and not torch.equal(x_test_seed1, x_test)


# --------------------------------------------------------------------------------------------
# real MNIST (and Fashion-MNIST when installed)


def _mnist_dir() -> Path:
    import os

    folder = os.environ.get("NSMX_MNIST_DIR", "").strip()
    if not folder:
        pytest.skip("NSMX_MNIST_DIR is not set: no folder with the MNIST IDX files")
    return Path(folder)


@pytest.mark.mnist
def test_real_mnist_shapes_and_class_counts() -> None:
    folder = _mnist_dir()
    for split, n, counts in (
        ("train", 60_000, MNIST_TRAIN_COUNTS),
        ("test", 10_000, MNIST_TEST_COUNTS),
    ):
        x, y = data.load_mnist(folder, split=split)
        assert x.shape == (n, 1, 28, 28) and x.dtype == torch.float32
        assert y.shape == (n,) and y.dtype == torch.int64
        assert float(x.min()) == 0.0 and float(x.max()) == 1.0
        assert torch.bincount(y, minlength=10).tolist() == counts
    assert y[:10].tolist() == [7, 2, 1, 0, 4, 1, 4, 9, 5, 9]  # the well-known first test labels


@pytest.mark.skipif(
    not data.FASHION_MNIST_SYSTEM_DIR.is_dir(), reason="Debian dataset-fashion-mnist not installed"
)
def test_real_fashion_mnist_test_split() -> None:
    x, y = data.load_fashion_mnist(data.FASHION_MNIST_SYSTEM_DIR, split="test")
    assert x.shape == (10_000, 1, 28, 28)
    assert torch.bincount(y, minlength=10).tolist() == [1000] * 10  # balanced by construction


# --------------------------------------------------------------------------------------------
# downloader against a loopback HTTP server


class _MirrorHandler(http.server.SimpleHTTPRequestHandler):
    """Serves a folder; counts GETs; /short/<name> announces the full length but sends half."""

    requests: list[str]

    def do_GET(self) -> None:
        self.requests.append(self.path)
        if self.path.startswith("/short/"):
            body = (Path(self.directory) / self.path.removeprefix("/short/")).read_bytes()
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body[: len(body) // 2])
            return
        super().do_GET()

    def log_message(self, format: str, *args: object) -> None:  # keep pytest output clean
        pass


@pytest.fixture
def mirror(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> Iterator:
    """A loopback HTTP server with copies of the four MNIST gz files and a tampered folder."""
    source = _mnist_dir()
    root = tmp_path_factory.mktemp("mirror")
    good = root / "good"
    good.mkdir()
    for remote in data.MNIST_FILES:
        shutil.copyfile(source / remote.name, good / remote.name)
    # Tampered: one label changed inside otherwise valid gzip -> only the checksum can catch it.
    tampered = root / "tampered"
    tampered.mkdir()
    raw = bytearray(gzip.decompress((source / "t10k-labels-idx1-ubyte.gz").read_bytes()))
    raw[8] = (raw[8] + 1) % 10
    (tampered / "t10k-labels-idx1-ubyte.gz").write_bytes(gzip.compress(bytes(raw)))

    for var in ("http_proxy", "HTTP_PROXY", "https_proxy", "HTTPS_PROXY", "all_proxy", "ALL_PROXY"):
        monkeypatch.delenv(var, raising=False)
    requests: list[str] = []
    handler = type("Handler", (_MirrorHandler,), {"requests": requests})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), partial(handler, directory=root))
    thread = threading.Thread(
        target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
    )
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", requests
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def _leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.endswith(".part"))


@pytest.mark.mnist
def test_download_verifies_and_skips_present_files(
    tmp_path: Path, mirror: tuple[str, list[str]]
) -> None:
    url, requests = mirror
    dest = tmp_path / "mnist"
    paths = data.download_mnist(dest, base_url=f"{url}/good/", progress=False)
    assert [p.name for p in paths] == [r.name for r in data.MNIST_FILES]
    assert len(requests) == 4 and _leftovers(dest) == []
    for remote, path in zip(data.MNIST_FILES, paths, strict=True):
        content = gzip.decompress(path.read_bytes())
        assert hashlib.md5(content).hexdigest() == remote.raw_md5
    _, y = data.load_mnist(dest, split="test")
    assert torch.bincount(y, minlength=10).tolist() == MNIST_TEST_COUNTS

    # Everything present and valid: a second call fetches nothing.
    data.download_mnist(dest, base_url=f"{url}/good/", progress=False)
    assert len(requests) == 4


@pytest.mark.mnist
def test_download_rejects_tampered_file_and_removes_partial(
    tmp_path: Path, mirror: tuple[str, list[str]]
) -> None:
    url, _ = mirror
    dest = tmp_path / "mnist"
    dest.mkdir()
    remote = data.MNIST_FILES[3]  # t10k-labels
    with pytest.raises(DatasetError) as info:
        data.download_files(dest, [remote], base_urls=[f"{url}/tampered/"], progress=False)
    message = str(info.value)
    assert "checksum verification failed" in message and remote.raw_md5 in message
    assert remote.name in message
    assert list(dest.iterdir()) == []  # neither the final file nor a temporary one


@pytest.mark.mnist
def test_download_incomplete_transfer_then_next_mirror(
    tmp_path: Path, mirror: tuple[str, list[str]]
) -> None:
    url, requests = mirror
    dest = tmp_path / "mnist"
    remote = data.MNIST_FILES[1]  # train-labels: small
    with pytest.raises(DatasetError) as info:
        data.download_files(dest, [remote], base_urls=[f"{url}/short/good/"], progress=False)
    assert f"{url}/short/good/{remote.name}" in str(info.value)
    assert list(dest.iterdir()) == []
    # A failing mirror (404, then truncated) falls through to a good one.
    paths = data.download_files(
        dest,
        [remote],
        base_urls=[f"{url}/missing/", f"{url}/short/good/", f"{url}/good/"],
        progress=False,
    )
    assert paths == [dest / remote.name] and _leftovers(dest) == []
    assert requests[-3:] == [
        f"/missing/{remote.name}",
        f"/short/good/{remote.name}",
        f"/good/{remote.name}",
    ]


@pytest.mark.mnist
def test_load_mnist_download_true_end_to_end(
    tmp_path: Path,
    mirror: tuple[str, list[str]],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    url, _ = mirror
    monkeypatch.setattr(data, "MNIST_MIRRORS", (f"{url}/good/",))
    x, y = data.load_mnist(tmp_path / "fresh", split="test", download=True)
    assert x.shape == (10_000, 1, 28, 28)
    assert torch.bincount(y, minlength=10).tolist() == MNIST_TEST_COUNTS


def test_download_argument_errors(tmp_path: Path) -> None:
    with pytest.raises(DatasetError, match=r"unsupported scheme 'ftp'"):
        data.download_mnist(tmp_path, base_url="ftp://example.invalid/mnist/", progress=False)
    with pytest.raises(DatasetError, match="at least one mirror"):
        data.download_mnist(tmp_path, base_url=[], progress=False)
    with pytest.raises(ValueError, match="timeout_s"):
        data.download_mnist(tmp_path, timeout_s=0)


def test_existing_bad_raw_file_is_not_overwritten(tmp_path: Path) -> None:
    remote = data.MNIST_FILES[3]
    bad = write(tmp_path / remote.raw_name, b"\x00\x00\x08\x01\x00\x00\x00\x00")
    with pytest.raises(DatasetError, match=r"checksum verification failed.*remove or replace"):
        data.download_files(tmp_path, [remote], base_urls=["file:///nonexistent/"], progress=False)
    assert bad.read_bytes() == b"\x00\x00\x08\x01\x00\x00\x00\x00"


def test_file_url_mirror_and_verify_file(tmp_path: Path) -> None:
    # A file:// mirror needs no server; a RemoteFile made for the test data exercises the checks.
    _, labels = small_set(n=50)
    content = idx_bytes(labels)
    mirror_dir = tmp_path / "mirror"
    mirror_dir.mkdir()
    write(mirror_dir / "toy-labels-idx1-ubyte.gz", content, compress=True)
    remote = data.RemoteFile(
        "toy-labels-idx1-ubyte.gz",
        raw_md5=hashlib.md5(content).hexdigest(),
        raw_sha256=hashlib.sha256(content).hexdigest(),
        raw_size_bytes=len(content),
    )
    dest = tmp_path / "dest"
    (path,) = data.download_files(dest, [remote], base_urls=[mirror_dir.as_uri()], progress=False)
    data.verify_file(path, remote)
    np.testing.assert_array_equal(data.read_idx(path), labels)
    wrong_sha = data.RemoteFile(remote.name, remote.raw_md5, "0" * 64, remote.raw_size_bytes)
    with pytest.raises(DatasetError, match=r"expected SHA-256 0{64}.*found"):
        data.verify_file(path, wrong_sha)
    wrong_size = data.RemoteFile(remote.name, remote.raw_md5, remote.raw_sha256, 1)
    with pytest.raises(DatasetError, match=r"expected 1 bytes of uncompressed content, found"):
        data.verify_file(path, wrong_size)
