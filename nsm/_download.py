"""Download of IDX dataset files with checksum verification and atomic writes.

Only ``urllib`` from the standard library; nothing is ever unpickled or executed. A file is written
to a temporary name in the destination folder, verified, then renamed into place, so an interrupted
or rejected download never leaves a file under the final name.

Verification is on the *uncompressed* content (MD5 and SHA-256), not on the gzip bytes: the same
IDX content recompressed by another tool (a different gzip header or level) is equally valid.
"""

from __future__ import annotations

import contextlib
import gzip
import hashlib
import http.client
import os
import tempfile
import urllib.error
import urllib.parse
import urllib.request
import zlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from nsm._idx import GZIP_MAGIC, DatasetError

__all__ = [
    "MNIST_FILES",
    "MNIST_MIRRORS",
    "RemoteFile",
    "download_files",
    "verify_file",
]

_CHUNK_BYTES = 1 << 20  # 1 MiB per read: bounded memory for any file size


@dataclass(frozen=True)
class RemoteFile:
    """One downloadable IDX file and the checksums of its uncompressed content.

    Attributes:
        name: file name on the mirror and on disk, e.g. ``"train-images-idx3-ubyte.gz"``.
        raw_md5: MD5 (hex) of the uncompressed IDX content.
        raw_sha256: SHA-256 (hex) of the uncompressed IDX content.
        raw_size_bytes: length of the uncompressed IDX content in bytes.
        gz_md5: MD5 of the official gzip file; informational only (not required to match).
    """

    name: str
    raw_md5: str
    raw_sha256: str
    raw_size_bytes: int
    gz_md5: str = ""

    @property
    def raw_name(self) -> str:
        """The uncompressed file's conventional name (``name`` without ``.gz``)."""
        return self.name.removesuffix(".gz")


# MNIST (LeCun, Cortes, Burges). raw_md5: the official uncompressed MD5s (equal to those listed in
# the workspace copy's README). raw_sha256 and raw_size_bytes: computed from that same content
# (identical MD5 and size). gz_md5: the official gzip files' MD5s as published by torchvision's
# MNIST resources table.
MNIST_FILES: tuple[RemoteFile, ...] = (
    RemoteFile(
        "train-images-idx3-ubyte.gz",
        raw_md5="6bbc9ace898e44ae57da46a324031adb",
        raw_sha256="ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db",
        raw_size_bytes=47_040_016,
        gz_md5="f68b3c2dcbeaaa9fbdd348bbdeb94873",
    ),
    RemoteFile(
        "train-labels-idx1-ubyte.gz",
        raw_md5="a25bea736e30d166cdddb491f175f624",
        raw_sha256="65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5",
        raw_size_bytes=60_008,
        gz_md5="d53e105ee54ea40749a09fcbcd1e9432",
    ),
    RemoteFile(
        "t10k-images-idx3-ubyte.gz",
        raw_md5="2646ac647ad5339dbf082846283269ea",
        raw_sha256="0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7",
        raw_size_bytes=7_840_016,
        gz_md5="9fb629c4189551a2d022fa330f9573f3",
    ),
    RemoteFile(
        "t10k-labels-idx1-ubyte.gz",
        raw_md5="27ae3e4e09519cfbb04c329615203637",
        raw_sha256="ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2",
        raw_size_bytes=10_008,
        gz_md5="ec29112dd5afa0611ce80d1b7f02629c",
    ),
)

# Tried in order. The first two are the mirrors torchvision and TensorFlow use; the original host
# often refuses automated downloads, so it comes last.
MNIST_MIRRORS: tuple[str, ...] = (
    "https://ossci-datasets.s3.amazonaws.com/mnist/",
    "https://storage.googleapis.com/cvdf-datasets/mnist/",
    "http://yann.lecun.com/exdb/mnist/",
)

_ALLOWED_SCHEMES = ("http", "https", "file")


def _content_digests(path: Path) -> tuple[str, str, int]:
    """MD5, SHA-256 and length of a file's content, decompressing it first if it is gzip."""
    md5, sha256, size = hashlib.md5(), hashlib.sha256(), 0
    with open(path, "rb") as probe:
        gzipped = probe.read(2) == GZIP_MAGIC
    try:
        with gzip.open(path, "rb") if gzipped else open(path, "rb") as f:
            while chunk := f.read(_CHUNK_BYTES):
                md5.update(chunk)
                sha256.update(chunk)
                size += len(chunk)
    except EOFError as exc:
        raise DatasetError(f"{path}: truncated gzip stream ({exc})") from exc
    except (gzip.BadGzipFile, zlib.error) as exc:
        raise DatasetError(f"{path}: corrupt gzip stream ({exc})") from exc
    return md5.hexdigest(), sha256.hexdigest(), size


def verify_file(path: str | os.PathLike[str], remote: RemoteFile) -> None:
    """Check that ``path`` (raw or gzip) holds exactly ``remote``'s uncompressed content.

    Raises:
        DatasetError: naming the file, the checksum that failed, the expected and found values.
    """
    path = Path(path)
    if not path.is_file():
        raise DatasetError(f"{path}: file not found")
    md5, sha256, size = _content_digests(path)
    if size != remote.raw_size_bytes:
        raise DatasetError(
            f"{path}: checksum verification failed: expected {remote.raw_size_bytes} bytes of "
            f"uncompressed content, found {size}"
        )
    if md5 != remote.raw_md5:
        raise DatasetError(
            f"{path}: checksum verification failed: expected MD5 {remote.raw_md5} of the "
            f"uncompressed content, found {md5}"
        )
    if sha256 != remote.raw_sha256:
        raise DatasetError(
            f"{path}: checksum verification failed: expected SHA-256 {remote.raw_sha256} of the "
            f"uncompressed content, found {sha256}"
        )


def _file_url(base_url: str, name: str) -> str:
    scheme = urllib.parse.urlsplit(base_url).scheme
    if scheme not in _ALLOWED_SCHEMES:
        raise DatasetError(
            f"base_url {base_url!r}: unsupported scheme {scheme!r}; allowed: "
            f"{', '.join(_ALLOWED_SCHEMES)}"
        )
    return base_url.rstrip("/") + "/" + urllib.parse.quote(name)


def _fetch(url: str, target: Path, remote: RemoteFile, *, progress: bool, timeout_s: float) -> None:
    """Download ``url`` to a temporary file next to ``target``, verify it, rename it into place."""
    from tqdm import tqdm  # imported here: only a download needs it

    fd, tmp_name = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".part")
    tmp = Path(tmp_name)
    try:
        with (
            os.fdopen(fd, "wb") as out,
            urllib.request.urlopen(url, timeout=timeout_s) as response,
        ):
            length_header = response.headers.get("Content-Length")
            expected_bytes = int(length_header) if length_header is not None else None
            received = 0
            with tqdm(
                total=expected_bytes,
                unit="B",
                unit_scale=True,
                desc=remote.name,
                disable=not progress,
                leave=False,
            ) as bar:
                while chunk := response.read(_CHUNK_BYTES):
                    out.write(chunk)
                    received += len(chunk)
                    bar.update(len(chunk))
        if expected_bytes is not None and received != expected_bytes:
            raise DatasetError(
                f"{url}: incomplete download: expected {expected_bytes} bytes "
                f"(Content-Length), received {received}"
            )
        verify_file(tmp, remote)
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
        raise


def download_files(
    root: str | os.PathLike[str],
    files: Iterable[RemoteFile],
    *,
    base_urls: Sequence[str],
    progress: bool = True,
    timeout_s: float = 60.0,
) -> list[Path]:
    """Make sure every file in ``files`` is present and verified in ``root``; download what is not.

    A file already present under its gzip or raw name that passes :func:`verify_file` is kept.
    Otherwise each URL in ``base_urls`` is tried in order; a download that is incomplete or fails
    its checksum is deleted and the next mirror is tried.

    Returns:
        The verified path of each file, in the order of ``files``.

    Raises:
        DatasetError: when no mirror delivers a verified copy; the message lists each URL tried
            and why it failed.
    """
    if isinstance(base_urls, str):
        base_urls = (base_urls,)
    if not base_urls:
        raise DatasetError("base_urls: expected at least one mirror URL, found none")
    root = Path(root).expanduser()
    root.mkdir(parents=True, exist_ok=True)
    paths = []
    for remote in files:
        present = _verified_existing(root, remote)
        if present is not None:
            paths.append(present)
            continue
        target = root / remote.name
        failures = []
        for base_url in base_urls:
            url = _file_url(base_url, remote.name)
            try:
                _fetch(url, target, remote, progress=progress, timeout_s=timeout_s)
            except (OSError, ValueError, http.client.HTTPException) as exc:
                # URLError is an OSError, DatasetError a ValueError: each is one failed mirror.
                failures.append(f"{url}: {exc}")
                continue
            paths.append(target)
            break
        else:
            raise DatasetError(
                f"could not download {remote.name} into {root}: " + "; ".join(failures)
            )
    return paths


def _verified_existing(root: Path, remote: RemoteFile) -> Path | None:
    """The present, verified copy of ``remote`` in ``root`` (raw name first), else None.

    A raw file that fails verification is an error rather than something to overwrite: the
    download writes the gzip name, and the loader would keep reading the bad raw file. A gzip file
    that fails verification is replaced by the download.
    """
    raw = root / remote.raw_name
    if raw.is_file():
        try:
            verify_file(raw, remote)
        except DatasetError as exc:
            raise DatasetError(f"{exc}; remove or replace {raw} and retry") from exc
        return raw
    gz = root / remote.name
    if gz.is_file():
        try:
            verify_file(gz, remote)
        except DatasetError:
            return None
        return gz
    return None
