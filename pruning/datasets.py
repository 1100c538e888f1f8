"""MNIST and Fashion-MNIST from their IDX files, found offline first, verified, split, normalised.

Contract
--------
``load_dataset(name)`` returns a :class:`DatasetSplits` with three ``TensorDataset`` splits
(images ``float32`` of shape ``(N, 1, 28, 28)``, labels ``int64``). The validation split is
drawn from the *training* file with a seeded permutation, so ``(name, val_size, seed, limit)``
fixes the split exactly; the test split is the official 10,000-image test file. Images are
normalised with the mean and (population) standard deviation of the training-split pixels
scaled to [0, 1], so the training split has mean 0 and std 1.

Files are looked for in the folders of :func:`search_path` (``--data-dir``, ``$PRUNESIM_DATA``,
the offline copy ``../shared/data``, Debian's ``/usr/share/datasets``, the user cache), each
file either gzip-compressed (``.gz``) or raw. Nothing is downloaded unless asked
(``download_missing=True`` or :func:`download`). Checksums are md5 digests of the
*uncompressed* IDX bytes, so a file recompressed by a mirror or a distribution still verifies.
Every failure is a :class:`DataError` with a one-line message that names the file or the
folders searched and says how to fix it.
"""

from __future__ import annotations

import functools
import gzip
import hashlib
import os
import tempfile
import urllib.error
import urllib.request
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np
import torch
from torch.utils.data import TensorDataset

DATASETS: tuple[str, ...] = ("mnist", "fashion-mnist")

# Role -> file name without the ".gz" suffix; the same four names for both data sets.
_FILES: dict[str, str] = {
    "train_images": "train-images-idx3-ubyte",
    "train_labels": "train-labels-idx1-ubyte",
    "test_images": "t10k-images-idx3-ubyte",
    "test_labels": "t10k-labels-idx1-ubyte",
}

# md5 of the UNCOMPRESSED IDX bytes. The compressed bytes are deliberately not checked:
# gzip headers carry a timestamp and compressor settings, so the same data recompressed
# (the offline copy in ../shared/data, Debian's package, the various mirrors) has a
# different .gz digest but the same payload digest.
_MD5: dict[str, dict[str, str]] = {
    # From /work/shared/data/mnist/README.md (the original LeCun/Cortes/Burges IDX files).
    "mnist": {
        "train-images-idx3-ubyte": "6bbc9ace898e44ae57da46a324031adb",
        "train-labels-idx1-ubyte": "a25bea736e30d166cdddb491f175f624",
        "t10k-images-idx3-ubyte": "2646ac647ad5339dbf082846283269ea",
        "t10k-labels-idx1-ubyte": "27ae3e4e09519cfbb04c329615203637",
    },
    # Computed with `zcat FILE.gz | md5sum` from Debian's package dataset-fashion-mnist
    # (version 0.0~git20200523.55506a9-1, /usr/share/datasets/fashion-mnist/), which ships
    # the original files of github.com/zalandoresearch/fashion-mnist (data/fashion/)
    # repackaged by Debian. Debian's .gz files differ from upstream's published .gz md5s
    # (e.g. train-images upstream 8d4fb7e6c68d591d4c3dfef9ec88bf0d) only in the gzip
    # wrapper; the uncompressed sizes are the IDX sizes (47040016, 60008, 7840016, 10008).
    "fashion-mnist": {
        "train-images-idx3-ubyte": "f4a8712d7a061bf5bd6d2ca38dc4d50a",
        "train-labels-idx1-ubyte": "9018921c3c673c538a1fc5bad174d6f9",
        "t10k-images-idx3-ubyte": "8181f5470baa50b63fa0f6fddb340f0a",
        "t10k-labels-idx1-ubyte": "15d484375f8d13e6eb1aabb0c3f46965",
    },
}

_MIRRORS: dict[str, tuple[str, ...]] = {
    "mnist": (
        "https://ossci-datasets.s3.amazonaws.com/mnist/",
        "https://storage.googleapis.com/cvdf-datasets/mnist/",
    ),
    "fashion-mnist": ("http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",),
}

_NUM_CLASSES = 10
_IMAGE_SIDE = 28
_GZIP_MAGIC = b"\x1f\x8b"
_DEBIAN_ROOT = Path("/usr/share/datasets")
# The offline copy beside the repository: this file is <repo>/pruning/datasets.py, so the
# repository root is parents[1] and the folder holding it (with shared/) is parents[2].
_REPO_SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"



def _fix_hint(key: str) -> str:
    """Tail of every "not found" message, so each such error says how to fix it."""
    return (f"fix: pass --data-dir DIR (a folder holding the files, or holding a {key}/ "
            f"subfolder with them), set $PRUNESIM_DATA likewise, or download them "
            f"(load_dataset({key!r}, download_missing=True) or "
            f"pruning.datasets.download({key!r}))")


class DataError(ValueError):
    """A data set is missing, corrupt or unknown. The message is one line: what is wrong,
    which file or folders, and how to fix it."""


@dataclass(frozen=True)
class DatasetSplits:
    """Train/validation/test splits of one data set.

    ``train``/``val``/``test`` hold ``(images, labels)``: images ``float32 (N, 1, 28, 28)``
    normalised as ``(x / 255 - mean) / std``; labels ``int64`` in ``0..9``. ``mean``/``std``
    are those of the training-split pixels in [0, 1] (population std). ``source`` is the
    folder the IDX files were read from.
    """

    name: str
    train: TensorDataset
    val: TensorDataset
    test: TensorDataset
    mean: float
    std: float
    source: Path


# --------------------------------------------------------------------------- lookup


def _check_name(name: str) -> str:
    """Canonical data-set name ('MNIST', 'fashion_mnist' accepted); DataError otherwise."""
    key = str(name).strip().lower().replace("_", "-")
    if key not in DATASETS:
        raise DataError(f"unknown data set {name!r}; known data sets: {', '.join(DATASETS)}")
    return key


def _cache_root() -> Path:
    xdg = os.environ.get("XDG_CACHE_HOME")
    base = Path(xdg).expanduser() if xdg else Path.home() / ".cache"
    return base / "prunesim"


def _roots(data_dir: str | Path | None) -> list[Path]:
    roots: list[Path] = []
    if data_dir is not None and str(data_dir) != "":
        roots.append(Path(data_dir).expanduser())
    env = os.environ.get("PRUNESIM_DATA")
    if env:
        roots.append(Path(env).expanduser())
    # The offline copy sits beside the repository (../shared/data): once relative to where
    # the command runs, once relative to this file, so it is found from any working
    # directory inside a checkout.
    roots.append(Path.cwd().parent / "shared" / "data")
    roots.append(_REPO_SHARED_DATA)
    roots.append(_DEBIAN_ROOT)
    roots.append(_cache_root())
    return roots


def search_path(name: str, data_dir: str | Path | None = None) -> list[Path]:
    """Folders looked in for data set ``name``, in order, without duplicates.

    Roots in order: ``data_dir`` (if given), ``$PRUNESIM_DATA`` (if set), the offline copy
    ``../shared/data`` relative to the working directory and relative to the repository,
    ``/usr/share/datasets`` (Debian), the user cache ``$XDG_CACHE_HOME/prunesim`` (default
    ``~/.cache/prunesim``). Each root ``R`` contributes ``R/<name>`` and then ``R`` itself
    (for a ``data_dir`` pointing straight at the folder holding the four files). Paths are
    absolute but not required to exist.
    """
    key = _check_name(name)
    folders: list[Path] = []
    seen: set[str] = set()
    for root in _roots(data_dir):
        for folder in (root / key, root):
            absolute = Path(os.path.abspath(folder))
            if str(absolute) not in seen:
                seen.add(str(absolute))
                folders.append(absolute)
    return folders


def _locate(folder: Path, base: str) -> Path | None:
    """The file ``base`` in ``folder``, raw or ``.gz`` (raw preferred: no decompression)."""
    for candidate in (folder / base, folder / f"{base}.gz"):
        if candidate.is_file():
            return candidate
    return None


def _paths(folder: Path) -> dict[str, Path | None]:
    return {base: _locate(folder, base) for base in _FILES.values()}


def find_files(name: str, data_dir: str | Path | None = None) -> Path:
    """First folder of :func:`search_path` holding all four IDX files (raw or ``.gz``).

    A folder named after a *different* known data set (e.g. ``.../mnist`` when looking for
    ``fashion-mnist``) is skipped, so a ``data_dir`` aimed at one data set never silently
    serves another. Raises :class:`DataError` listing every folder searched.
    """
    key = _check_name(name)
    folders = search_path(key, data_dir)
    partial: list[str] = []
    for folder in folders:
        if folder.name in DATASETS and folder.name != key:
            continue
        if not folder.is_dir():
            continue
        found = _paths(folder)
        if all(found.values()):
            return folder
        have = [b for b, p in found.items() if p is not None]
        if have:
            missing = [b for b, p in found.items() if p is None]
            partial.append(f"{folder} lacks {', '.join(missing)}")
    detail = f" ({'; '.join(partial)})" if partial else ""
    names = ", ".join(f"{b}[.gz]" for b in _FILES.values())
    raise DataError(
        f"{key}: no folder holds all four IDX files ({names}){detail}; "
        f"searched: {', '.join(str(f) for f in folders)}; {_fix_hint(key)}"
    )


# --------------------------------------------------------------------------- parsing


def _read_bytes(path: Path) -> bytes:
    """Uncompressed bytes of ``path``; gzip is detected by its magic bytes, not the suffix."""
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        raise DataError(f"cannot read {path}: {exc.strerror or exc}") from exc
    if data[:2] == _GZIP_MAGIC:
        try:
            data = gzip.decompress(data)
        except (OSError, EOFError, zlib.error) as exc:
            raise DataError(f"{path} is a corrupt or truncated gzip file ({exc}); "
                            f"delete it and fetch it again") from exc
    return data


def _parse_idx(data: bytes, path: Path) -> np.ndarray:
    # IDX: two zero bytes, a dtype code, the number of dimensions, then one big-endian
    # uint32 per dimension, then the values in C order. Only 0x08 (unsigned byte) occurs
    # in (Fashion-)MNIST, so other dtype codes are rejected rather than half-supported.
    if len(data) < 4:
        raise DataError(f"{path} is not an IDX file: only {len(data)} bytes")
    if data[0] != 0 or data[1] != 0:
        raise DataError(f"{path} is not an IDX file: bad magic number 0x{data[:4].hex()} "
                        f"(expected 0x0000080N); the file is corrupt or of another format")
    if data[2] != 0x08:
        raise DataError(f"{path}: unsupported IDX dtype code 0x{data[2]:02x} "
                        f"(only 0x08, unsigned byte, is supported)")
    ndim = data[3]
    if ndim == 0:
        raise DataError(f"{path}: IDX header declares 0 dimensions")
    header = 4 + 4 * ndim
    if len(data) < header:
        raise DataError(f"{path} is truncated: {len(data)} bytes, header alone needs {header}")
    dims = tuple(int(d) for d in np.frombuffer(data, dtype=">u4", count=ndim, offset=4))
    expected = header + int(np.prod(dims, dtype=np.int64))
    if len(data) != expected:
        raise DataError(f"{path} has {len(data)} bytes but its header {dims} implies "
                        f"{expected}; the file is truncated or corrupt")
    # Copy out of the immutable bytes object so callers get an ordinary writable array.
    return np.frombuffer(data, dtype=np.uint8, offset=header).reshape(dims).copy()


def read_idx(path: Path) -> np.ndarray:
    """Parse one IDX file (gzip or raw, told apart by the magic bytes ``1f 8b``).

    Returns a ``uint8`` array whose shape is the header's dimensions. Raises
    :class:`DataError` naming the file if it is unreadable, a truncated/corrupt gzip, has a
    bad magic number or dtype code, or its size disagrees with its header.
    """
    path = Path(path)
    return _parse_idx(_read_bytes(path), path)


def _md5(data: bytes) -> str:
    return hashlib.md5(data, usedforsecurity=False).hexdigest()


def _check_md5(key: str, base: str, actual: str, path: Path) -> None:
    expected = _MD5[key][base]
    if actual != expected:
        raise DataError(f"checksum mismatch for {path}: expected md5 {expected} of the "
                        f"uncompressed {key} file {base}, got {actual}; the file is corrupt "
                        f"or not the original: delete it and fetch it again")


def verify(name: str, folder: str | Path) -> None:
    """Check the four files of ``name`` in ``folder`` against the known md5 table.

    The digest is of the uncompressed IDX bytes. Raises :class:`DataError` naming the file
    with the expected and actual md5 on the first mismatch, or naming a missing/unreadable
    file.
    """
    key = _check_name(name)
    folder = Path(folder)
    for base in _FILES.values():
        path = _locate(folder, base)
        if path is None:
            raise DataError(f"{key}: {folder} has no {base} or {base}.gz; {_fix_hint(key)}")
        _check_md5(key, base, _md5(_read_bytes(path)), path)


# --------------------------------------------------------------------------- download


def _fetch(url: str, tmp: Path, label: str, progress: bool) -> None:
    from tqdm import tqdm

    with urllib.request.urlopen(url, timeout=60) as response, open(tmp, "wb") as out:
        length = response.headers.get("Content-Length")
        total = int(length) if length and length.isdigit() else None
        with tqdm(total=total, unit="B", unit_scale=True, desc=label,
                  disable=not progress, leave=False) as bar:
            while chunk := response.read(1 << 16):
                out.write(chunk)
                bar.update(len(chunk))


def download(name: str, cache_dir: str | Path | None = None,
             mirrors: Sequence[str] | None = None, progress: bool = True) -> Path:
    """Fetch the four ``.gz`` files of ``name`` into ``<cache_dir>/<name>/`` and return it.

    ``cache_dir`` is the cache root (default ``$XDG_CACHE_HOME/prunesim``, i.e.
    ``~/.cache/prunesim``, which :func:`search_path` searches). Mirrors (base URLs; default
    the canonical ones; tests pass ``file://`` URLs) are tried in order per file. Each file
    is streamed to a temporary file in the target folder and renamed into place only after
    the md5 of its uncompressed bytes matches, so a failed or corrupt download never leaves
    a file that looks complete. Files already present and valid are kept. Uses urllib only.
    Raises :class:`DataError` (listing each mirror's failure) if a file cannot be obtained.
    """
    key = _check_name(name)
    bases = list(mirrors) if mirrors is not None else list(_MIRRORS[key])
    if not bases:
        raise DataError(f"{key}: no mirrors given to download from")
    root = Path(cache_dir).expanduser() if cache_dir is not None else _cache_root()
    target = root / key
    created = not target.exists()
    target.mkdir(parents=True, exist_ok=True)
    try:
        for base in _FILES.values():
            existing = _locate(target, base)
            if existing is not None:
                try:
                    _check_md5(key, base, _md5(_read_bytes(existing)), existing)
                    continue
                except DataError:
                    pass  # a stale or damaged file: fetch a fresh copy over it
            errors: list[str] = []
            for mirror in bases:
                url = mirror.rstrip("/") + f"/{base}.gz"
                fd, tmp_name = tempfile.mkstemp(prefix=f".{base}.", suffix=".part", dir=target)
                os.close(fd)
                tmp = Path(tmp_name)
                try:
                    _fetch(url, tmp, f"{key} {base}", progress)
                    data = _read_bytes(tmp)
                    _check_md5(key, base, _md5(data), Path(url))
                    _parse_idx(data, Path(url))
                    # Name the file after what it is: a mirror serving raw IDX is accepted.
                    with open(tmp, "rb") as fh:
                        is_gz = fh.read(2) == _GZIP_MAGIC
                    final = target / (f"{base}.gz" if is_gz else base)
                    os.replace(tmp, final)
                    # Drop any other (damaged) variant so _locate never prefers it.
                    other = target / (base if is_gz else f"{base}.gz")
                    other.unlink(missing_ok=True)
                    break
                except (urllib.error.URLError, OSError, ValueError) as exc:
                    # DataError is a ValueError; URLError/timeouts are OSErrors.
                    errors.append(f"{url}: {getattr(exc, 'reason', None) or exc}")
                finally:
                    tmp.unlink(missing_ok=True)
            else:
                raise DataError(f"{key}: could not download {base}.gz from any mirror "
                                f"({'; '.join(errors)}); check the network, or put the files "
                                f"in a folder and pass --data-dir DIR or set $PRUNESIM_DATA")
    except BaseException:
        # Leave no empty folder behind when nothing could be stored.
        if created and target.is_dir() and not any(target.iterdir()):
            target.rmdir()
        raise
    return target


# --------------------------------------------------------------------------- loading


def _signature(key: str, folder: Path) -> tuple[tuple[str, int, int], ...]:
    """Identity of the four files (path, size, mtime) so the in-memory cache notices edits."""
    sig = []
    for base in _FILES.values():
        path = _locate(folder, base)
        if path is None:
            raise DataError(f"{key}: {folder} has no {base} or {base}.gz; {_fix_hint(key)}")
        st = path.stat()
        sig.append((str(path), st.st_size, st.st_mtime_ns))
    return tuple(sig)


@functools.lru_cache(maxsize=4)
def _load_arrays(folder: str, key: str,
                 signature: tuple[tuple[str, int, int], ...]
                 ) -> tuple[dict[str, np.ndarray], dict[str, str]]:
    # Cached per (folder, name, file identity): decompressing and hashing the 47 MB
    # training images costs about a second, and experiments load the same set many times.
    # The md5s are cached alongside, so verification of a cached load is free.
    del key  # part of the cache key only
    arrays: dict[str, np.ndarray] = {}
    digests: dict[str, str] = {}
    for role, (path_str, _, _) in zip(_FILES, signature):
        path = Path(path_str)
        data = _read_bytes(path)
        digests[role] = _md5(data)
        array = _parse_idx(data, path)
        array.flags.writeable = False  # shared between callers through the cache
        arrays[role] = array
    return arrays, digests


def _check_shapes(arrays: dict[str, np.ndarray], paths: dict[str, Path]) -> None:
    for split in ("train", "test"):
        images, labels = arrays[f"{split}_images"], arrays[f"{split}_labels"]
        ipath, lpath = paths[f"{split}_images"], paths[f"{split}_labels"]
        if images.ndim != 3 or images.shape[1:] != (_IMAGE_SIDE, _IMAGE_SIDE):
            raise DataError(f"{ipath}: expected images of shape (N, 28, 28), "
                            f"got {images.shape}")
        if labels.ndim != 1 or labels.shape[0] != images.shape[0]:
            raise DataError(f"{lpath}: expected {images.shape[0]} labels to match {ipath}, "
                            f"got shape {labels.shape}")
        if labels.size and int(labels.max()) >= _NUM_CLASSES:
            raise DataError(f"{lpath}: label {int(labels.max())} outside 0..9")


def _pixel_stats(images: np.ndarray) -> tuple[float, float]:
    # Exact float64 moments from a 256-bin histogram: no 40M-element float copy needed.
    counts = np.bincount(images.reshape(-1), minlength=256).astype(np.float64)
    values = np.arange(256, dtype=np.float64) / 255.0
    n = counts.sum()
    mean = float((counts * values).sum() / n)
    var = float((counts * values**2).sum() / n - mean**2)
    return mean, float(np.sqrt(max(var, 0.0)))


def _to_dataset(images: np.ndarray, labels: np.ndarray, mean: float, std: float
                ) -> TensorDataset:
    x = torch.from_numpy(np.ascontiguousarray(images)).to(torch.float32)
    x = x.div_(255.0).sub_(mean).div_(std).unsqueeze_(1)
    y = torch.from_numpy(labels.astype(np.int64))
    return TensorDataset(x, y)


def load_dataset(name: str, data_dir: str | Path | None = None, val_size: int = 5000,
                 seed: int = 0, download_missing: bool = False,
                 verify_checksums: bool = True, limit: int | None = None) -> DatasetSplits:
    """Find, verify, parse, split and normalise data set ``name``.

    Files come from :func:`find_files`; if none are found and ``download_missing`` is true
    they are fetched with :func:`download` into the user cache (never otherwise). With
    ``verify_checksums`` the md5 of each file's uncompressed bytes must match the known
    table. ``limit`` keeps the first ``limit`` images of the training file (before the
    split) and of the test file. The validation split is ``val_size`` images of the
    training file chosen by ``torch.randperm`` with ``torch.Generator().manual_seed(seed)``;
    both index sets are sorted, so the training split keeps file order. ``mean``/``std``
    are computed on the training split only (no validation leakage). Raises
    :class:`DataError` for unknown names, missing or corrupt files and bad sizes.
    """
    key = _check_name(name)
    if limit is not None and (isinstance(limit, bool) or int(limit) < 1):
        raise DataError(f"limit must be a positive number of images or None, got {limit!r}")
    try:
        folder = find_files(key, data_dir)
    except DataError:
        if not download_missing:
            raise
        folder = download(key)
    signature = _signature(key, folder)
    arrays, digests = _load_arrays(str(folder), key, signature)
    paths = {role: Path(sig[0]) for role, sig in zip(_FILES, signature)}
    if verify_checksums:
        for role, base in _FILES.items():
            _check_md5(key, base, digests[role], paths[role])
    _check_shapes(arrays, paths)

    train_images, train_labels = arrays["train_images"], arrays["train_labels"]
    test_images, test_labels = arrays["test_images"], arrays["test_labels"]
    if limit is not None:
        train_images, train_labels = train_images[:limit], train_labels[:limit]
        test_images, test_labels = test_images[:limit], test_labels[:limit]
    n_train = train_images.shape[0]
    if isinstance(val_size, bool) or not 0 <= int(val_size) < n_train:
        raise DataError(f"val_size must be in 0..{n_train - 1} (training images available), "
                        f"got {val_size!r}")

    generator = torch.Generator().manual_seed(int(seed))
    perm = torch.randperm(n_train, generator=generator).numpy()
    val_idx = np.sort(perm[: int(val_size)])
    train_idx = np.sort(perm[int(val_size):])

    train_x = train_images[train_idx]  # fancy indexing copies: writable arrays
    mean, std = _pixel_stats(train_x)
    if std == 0.0:
        raise DataError(f"{paths['train_images']}: training images are constant (std 0)")
    return DatasetSplits(
        name=key,
        train=_to_dataset(train_x, train_labels[train_idx], mean, std),
        val=_to_dataset(train_images[val_idx], train_labels[val_idx], mean, std),
        test=_to_dataset(np.array(test_images), np.array(test_labels), mean, std),
        mean=mean,
        std=std,
        source=folder,
    )
