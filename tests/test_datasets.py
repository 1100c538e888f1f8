"""MNIST / Fashion-MNIST loading against the real files.

Expected numbers come from outside the code under test: the class counts and md5s of
/work/shared/data/mnist/README.md, and the published sizes of the data sets (60,000 training
and 10,000 test images of 28x28; Fashion-MNIST has 6,000 training images per class).
No test touches the network: downloads use file:// mirrors, and a guard fails any other URL.
"""

from __future__ import annotations

import gzip
import hashlib
import os
import urllib.request
from pathlib import Path

import numpy as np
import pytest
import torch

from pruning import datasets
from pruning.datasets import (DATASETS, DataError, DatasetSplits, download, find_files,
                              load_dataset, read_idx, search_path, verify)

MNIST_DIR = Path(__file__).resolve().parents[2] / "shared" / "data" / "mnist"
FASHION_DIR = Path("/usr/share/datasets/fashion-mnist")
FILES = ("train-images-idx3-ubyte", "train-labels-idx1-ubyte",
         "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")
# From /work/shared/data/mnist/README.md.
MNIST_MD5 = {
    "train-images-idx3-ubyte": "6bbc9ace898e44ae57da46a324031adb",
    "train-labels-idx1-ubyte": "a25bea736e30d166cdddb491f175f624",
    "t10k-images-idx3-ubyte": "2646ac647ad5339dbf082846283269ea",
    "t10k-labels-idx1-ubyte": "27ae3e4e09519cfbb04c329615203637",
}
MNIST_TRAIN_COUNTS = [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949]

needs_mnist = pytest.mark.skipif(not MNIST_DIR.is_dir(),
                                 reason=f"offline MNIST copy {MNIST_DIR} is absent")
needs_fashion = pytest.mark.skipif(
    not FASHION_DIR.is_dir(),
    reason=f"{FASHION_DIR} is absent (install Debian's package dataset-fashion-mnist)")


@pytest.fixture(autouse=True)
def _no_network(monkeypatch):
    """Fail any URL that is not file:// so a test can never reach the network."""
    real = urllib.request.urlopen

    def guarded(url, *args, **kwargs):
        text = url if isinstance(url, str) else url.full_url
        assert text.startswith("file:"), f"test tried to reach the network: {text}"
        return real(url, *args, **kwargs)

    monkeypatch.setattr(urllib.request, "urlopen", guarded)


@pytest.fixture
def isolated(tmp_path, monkeypatch):
    """No data anywhere on the search path except what a test puts there."""
    monkeypatch.delenv("PRUNESIM_DATA", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg-cache"))
    monkeypatch.setattr(datasets, "_REPO_SHARED_DATA", tmp_path / "no-shared" / "data")
    monkeypatch.setattr(datasets, "_DEBIAN_ROOT", tmp_path / "no-debian")
    work = tmp_path / "repo"
    work.mkdir()
    monkeypatch.chdir(work)  # ../shared/data relative to cwd: tmp_path/shared/data, absent
    return tmp_path


def link_all(dst: Path, src: Path = MNIST_DIR) -> Path:
    dst.mkdir(parents=True, exist_ok=True)
    for name in FILES:
        os.symlink(src / f"{name}.gz", dst / f"{name}.gz")
    return dst


def raw_bytes(name: str, src: Path = MNIST_DIR) -> bytes:
    return gzip.decompress((src / f"{name}.gz").read_bytes())


@pytest.fixture(scope="module")
def mnist() -> DatasetSplits:
    if not MNIST_DIR.is_dir():
        pytest.skip(f"offline MNIST copy {MNIST_DIR} is absent")
    return load_dataset("mnist", data_dir=MNIST_DIR)


@pytest.fixture(scope="module")
def mnist_raw_train() -> np.ndarray:
    if not MNIST_DIR.is_dir():
        pytest.skip(f"offline MNIST copy {MNIST_DIR} is absent")
    return read_idx(MNIST_DIR / "train-images-idx3-ubyte.gz")


def pixels_back(x: torch.Tensor, mean: float, std: float) -> np.ndarray:
    """Undo the normalisation: the uint8 images the split was built from."""
    return np.rint((x.squeeze(1).double().numpy() * std + mean) * 255).astype(np.uint8)


# --------------------------------------------------------------------------- real MNIST


@needs_mnist
def test_mnist_shapes_dtypes_and_checksums(mnist):
    assert DATASETS == ("mnist", "fashion-mnist")
    assert mnist.name == "mnist" and mnist.source == MNIST_DIR
    x, y = mnist.train.tensors
    assert x.dtype == torch.float32 and y.dtype == torch.int64
    assert x.shape == (55000, 1, 28, 28) and y.shape == (55000,)
    assert mnist.val.tensors[0].shape == (5000, 1, 28, 28)
    assert mnist.test.tensors[0].shape == (10000, 1, 28, 28)
    assert mnist.test.tensors[1].shape == (10000,)
    assert len(mnist.train) + len(mnist.val) == 60000
    verify("mnist", MNIST_DIR)  # raises on any mismatch
    for name in FILES:
        assert hashlib.md5(raw_bytes(name)).hexdigest() == MNIST_MD5[name]


@needs_mnist
def test_mnist_training_class_counts(mnist):
    labels = read_idx(MNIST_DIR / "train-labels-idx1-ubyte.gz")
    assert labels.shape == (60000,) and labels.dtype == np.uint8
    assert np.bincount(labels, minlength=10).tolist() == MNIST_TRAIN_COUNTS
    # The train and validation splits partition exactly those labels.
    split = (torch.bincount(mnist.train.tensors[1], minlength=10)
             + torch.bincount(mnist.val.tensors[1], minlength=10))
    assert split.tolist() == MNIST_TRAIN_COUNTS
    assert read_idx(MNIST_DIR / "t10k-images-idx3-ubyte.gz").shape == (10000, 28, 28)


@needs_mnist
def test_mnist_normalisation(mnist, mnist_raw_train):
    x = mnist.train.tensors[0].double()
    assert abs(x.mean().item()) < 1e-6
    assert abs(x.std(unbiased=False).item() - 1.0) < 1e-6
    # MNIST's well-known pixel statistics (0.1307, 0.3081 on all 60k); 55k differ slightly.
    assert mnist.mean == pytest.approx(0.1307, abs=2e-3)
    assert mnist.std == pytest.approx(0.3081, abs=2e-3)
    # mean/std are those of the training split, not of all 60,000 images.
    train_u8 = pixels_back(mnist.train.tensors[0], mnist.mean, mnist.std)
    assert mnist.mean == pytest.approx(train_u8.mean() / 255, rel=1e-9)
    assert mnist.mean != pytest.approx(mnist_raw_train.mean() / 255, rel=1e-6)
    # The test split is normalised with the training statistics, so its mean is near 0 too.
    assert abs(mnist.test.tensors[0].mean().item()) < 0.02


@needs_mnist
def test_mnist_validation_split(mnist, mnist_raw_train):
    def rows(x, split):
        u8 = pixels_back(x, split.mean, split.std).reshape(len(x), -1)
        return {r.tobytes() for r in u8}

    train_rows = rows(mnist.train.tensors[0], mnist)
    val_rows = rows(mnist.val.tensors[0], mnist)
    all_rows = {r.tobytes() for r in mnist_raw_train.reshape(60000, -1)}
    assert len(all_rows) == 60000  # MNIST has no duplicate training images
    assert len(val_rows) == 5000 and not (val_rows & train_rows)
    assert val_rows | train_rows == all_rows

    # The split is torch.randperm under Generator(seed): val = first val_size indices.
    perm = torch.randperm(60000, generator=torch.Generator().manual_seed(0)).numpy()
    expected_val = mnist_raw_train[np.sort(perm[:5000])]
    assert np.array_equal(pixels_back(mnist.val.tensors[0], mnist.mean, mnist.std),
                          expected_val)

    same = load_dataset("mnist", data_dir=MNIST_DIR, seed=0)
    assert torch.equal(same.val.tensors[0], mnist.val.tensors[0])
    assert torch.equal(same.train.tensors[1], mnist.train.tensors[1])
    other = load_dataset("mnist", data_dir=MNIST_DIR, seed=1)
    assert rows(other.val.tensors[0], other) != val_rows
    assert len(other.val) == 5000


@needs_mnist
def test_limit_and_val_size(mnist_raw_train):
    small = load_dataset("mnist", data_dir=MNIST_DIR, limit=1000, val_size=100, seed=3)
    assert (len(small.train), len(small.val), len(small.test)) == (900, 100, 1000)
    # limit keeps the first images of the training file before the split.
    back = np.concatenate([pixels_back(small.train.tensors[0], small.mean, small.std),
                           pixels_back(small.val.tensors[0], small.mean, small.std)])
    first = {r.tobytes() for r in mnist_raw_train[:1000].reshape(1000, -1)}
    assert {r.tobytes() for r in back.reshape(1000, -1)} == first
    with pytest.raises(DataError, match="val_size"):
        load_dataset("mnist", data_dir=MNIST_DIR, limit=100, val_size=100)
    with pytest.raises(DataError, match="limit"):
        load_dataset("mnist", data_dir=MNIST_DIR, limit=0)


def test_unknown_name_lists_datasets():
    with pytest.raises(DataError, match="mnist, fashion-mnist"):
        load_dataset("cifar10")
    with pytest.raises(DataError, match="cifar10"):
        search_path("cifar10")


# --------------------------------------------------------------------------- search path


def test_search_path_order(tmp_path, monkeypatch):
    monkeypatch.setenv("PRUNESIM_DATA", str(tmp_path / "env"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    monkeypatch.chdir(tmp_path)
    got = search_path("fashion-mnist", tmp_path / "cli")
    repo_shared = Path(datasets.__file__).resolve().parents[2] / "shared" / "data"
    expected = [tmp_path / "cli" / "fashion-mnist", tmp_path / "cli",
                tmp_path / "env" / "fashion-mnist", tmp_path / "env",
                tmp_path.parent / "shared" / "data" / "fashion-mnist",
                tmp_path.parent / "shared" / "data",
                repo_shared / "fashion-mnist", repo_shared,
                Path("/usr/share/datasets/fashion-mnist"), Path("/usr/share/datasets"),
                tmp_path / "xdg" / "prunesim" / "fashion-mnist", tmp_path / "xdg" / "prunesim"]
    assert got == expected
    monkeypatch.delenv("PRUNESIM_DATA")
    assert tmp_path / "env" not in search_path("mnist")


@needs_mnist
def test_data_dir_beats_env_beats_shared(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    cli = link_all(tmp_path / "cli")              # data_dir holding the files directly
    env = link_all(tmp_path / "env" / "mnist")    # $PRUNESIM_DATA/<name>/
    monkeypatch.setenv("PRUNESIM_DATA", str(tmp_path / "env"))
    assert find_files("mnist", cli) == cli
    assert find_files("mnist") == env
    monkeypatch.delenv("PRUNESIM_DATA")
    assert find_files("mnist") == MNIST_DIR       # the shared offline copy
    # A data_dir without the files does not hide the later folders.
    assert find_files("mnist", tmp_path / "empty") == MNIST_DIR
    # load_dataset reads from the folder that won.
    monkeypatch.setenv("PRUNESIM_DATA", str(tmp_path / "env"))
    assert load_dataset("mnist", limit=200, val_size=20).source == env


@needs_mnist
def test_folder_named_for_another_dataset_is_not_used(isolated):
    with pytest.raises(DataError, match="fashion-mnist"):
        find_files("fashion-mnist", MNIST_DIR)


def test_missing_files_message(isolated):
    empty = isolated / "empty"
    empty.mkdir()
    (empty / "train-images-idx3-ubyte.gz").write_bytes(b"")  # a partial folder
    with pytest.raises(DataError) as info:
        load_dataset("mnist", data_dir=empty)
    msg = str(info.value)
    assert "\n" not in msg
    assert "--data-dir" in msg and "PRUNESIM_DATA" in msg and "download" in msg
    for folder in search_path("mnist", empty):
        assert str(folder) in msg
    assert f"{empty} lacks train-labels-idx1-ubyte" in msg


# --------------------------------------------------------------------------- formats


@needs_mnist
def test_raw_files_accepted(tmp_path):
    folder = tmp_path / "raw"
    folder.mkdir()
    for name in FILES:
        (folder / name).write_bytes(raw_bytes(name))
    assert find_files("mnist", folder) == folder
    verify("mnist", folder)
    images = read_idx(folder / "t10k-images-idx3-ubyte")
    assert images.shape == (10000, 28, 28) and images.dtype == np.uint8
    assert np.array_equal(images, read_idx(MNIST_DIR / "t10k-images-idx3-ubyte.gz"))
    small = load_dataset("mnist", data_dir=folder, limit=500, val_size=50)
    ref = load_dataset("mnist", data_dir=MNIST_DIR, limit=500, val_size=50)
    assert small.source == folder
    assert torch.equal(small.train.tensors[0], ref.train.tensors[0])


@needs_mnist
def test_truncated_gzip_rejected(tmp_path):
    folder = link_all(tmp_path / "m")
    bad = folder / "train-labels-idx1-ubyte.gz"
    data = (MNIST_DIR / "train-labels-idx1-ubyte.gz").read_bytes()
    bad.unlink()
    bad.write_bytes(data[: len(data) // 2])
    with pytest.raises(DataError, match="truncated gzip") as info:
        read_idx(bad)
    assert str(bad) in str(info.value)
    for check in (True, False):
        with pytest.raises(DataError) as info:
            load_dataset("mnist", data_dir=folder, verify_checksums=check)
        assert str(bad) in str(info.value)


@needs_mnist
def test_wrong_magic_rejected(tmp_path):
    folder = link_all(tmp_path / "m")
    bad = folder / "t10k-labels-idx1-ubyte"
    data = bytearray(raw_bytes("t10k-labels-idx1-ubyte"))
    assert data[:4] == b"\x00\x00\x08\x01"
    data[0] = 0x42
    (folder / "t10k-labels-idx1-ubyte.gz").unlink()
    bad.write_bytes(bytes(data))
    with pytest.raises(DataError, match="magic number") as info:
        read_idx(bad)
    assert str(bad) in str(info.value)
    with pytest.raises(DataError, match="magic number") as info:
        load_dataset("mnist", data_dir=folder, verify_checksums=False)
    assert str(bad) in str(info.value)
    # Header and payload that disagree in size are caught too.
    short = tmp_path / "short-idx1"
    short.write_bytes(raw_bytes("t10k-labels-idx1-ubyte")[:-1])
    with pytest.raises(DataError, match="truncated or corrupt") as info:
        read_idx(short)
    assert str(short) in str(info.value)


@needs_mnist
def test_checksum_mismatch_rejected(tmp_path):
    folder = link_all(tmp_path / "m")
    name = "t10k-labels-idx1-ubyte"
    data = bytearray(raw_bytes(name))
    data[100] = (data[100] + 1) % 10  # still a valid label: only the md5 can tell
    (folder / f"{name}.gz").unlink()
    bad = folder / name
    bad.write_bytes(bytes(data))
    actual = hashlib.md5(bytes(data)).hexdigest()
    with pytest.raises(DataError) as info:
        verify("mnist", folder)
    msg = str(info.value)
    assert str(bad) in msg and MNIST_MD5[name] in msg and actual in msg
    with pytest.raises(DataError, match="checksum mismatch"):
        load_dataset("mnist", data_dir=folder, limit=100, val_size=10)
    # The parse itself succeeds: it is the checksum that rejects the file.
    ok = load_dataset("mnist", data_dir=folder, limit=200, val_size=10,
                      verify_checksums=False)
    assert len(ok.test) == 200


# --------------------------------------------------------------------------- download


def _mirror(folder: Path, corrupt: str | None = None) -> str:
    folder.mkdir(parents=True)
    for name in FILES:
        data = (MNIST_DIR / f"{name}.gz").read_bytes()
        if name == corrupt:
            raw = bytearray(gzip.decompress(data))
            raw[-1] ^= 0xFF
            data = gzip.compress(bytes(raw), compresslevel=1)
        (folder / f"{name}.gz").write_bytes(data)
    return folder.as_uri() + "/"


@needs_mnist
def test_download_from_file_mirror(tmp_path, capsys):
    missing = (tmp_path / "nowhere").as_uri()  # first mirror fails: fall back to the next
    good = _mirror(tmp_path / "mirror")
    cache = tmp_path / "cache"
    got = download("mnist", cache_dir=cache, mirrors=[missing, good], progress=True)
    assert got == cache / "mnist"
    assert sorted(p.name for p in got.iterdir()) == sorted(f"{n}.gz" for n in FILES)
    for name in FILES:
        assert (got / f"{name}.gz").read_bytes() == (MNIST_DIR / f"{name}.gz").read_bytes()
    verify("mnist", got)
    # Second call: files present and valid, nothing fetched (a dead mirror is fine).
    assert download("mnist", cache_dir=cache, mirrors=[missing], progress=False) == got


@needs_mnist
@pytest.mark.parametrize("corrupt", ["train-images-idx3-ubyte", "t10k-labels-idx1-ubyte"])
def test_download_rejects_corrupt_mirror(tmp_path, corrupt):
    bad = _mirror(tmp_path / "mirror", corrupt=corrupt)
    cache = tmp_path / "cache"
    with pytest.raises(DataError) as info:
        download("mnist", cache_dir=cache, mirrors=[bad], progress=False)
    assert corrupt in str(info.value) and "checksum mismatch" in str(info.value)
    stored = sorted(p.name for p in cache.rglob("*") if p.is_file())
    # Nothing of the corrupt file (no final file, no temporary .part); files fetched
    # before it were verified and stay.
    assert not any(corrupt in n for n in stored)
    assert not any(n.endswith(".part") for n in stored)
    done = FILES[: FILES.index(corrupt)]
    assert stored == sorted(f"{n}.gz" for n in done)


@needs_mnist
def test_load_dataset_downloads_only_when_asked(isolated, monkeypatch):
    mirror = _mirror(isolated / "mirror")
    monkeypatch.setitem(datasets._MIRRORS, "mnist", (mirror,))
    with pytest.raises(DataError, match="--data-dir"):
        load_dataset("mnist", limit=100, val_size=10)
    assert not (isolated / "xdg-cache").exists()
    got = load_dataset("mnist", limit=100, val_size=10, download_missing=True)
    assert got.source == isolated / "xdg-cache" / "prunesim" / "mnist"
    verify("mnist", got.source)


# --------------------------------------------------------------------------- Fashion-MNIST


@needs_fashion
def test_fashion_mnist_loads_and_verifies():
    verify("fashion-mnist", FASHION_DIR)
    assert find_files("fashion-mnist", FASHION_DIR) == FASHION_DIR
    labels = read_idx(FASHION_DIR / "train-labels-idx1-ubyte.gz")
    assert np.bincount(labels).tolist() == [6000] * 10
    fm = load_dataset("fashion-mnist", data_dir=FASHION_DIR)
    assert fm.name == "fashion-mnist" and fm.source == FASHION_DIR
    assert (len(fm.train), len(fm.val), len(fm.test)) == (55000, 5000, 10000)
    assert fm.train.tensors[0].shape[1:] == (1, 28, 28)
    assert abs(fm.train.tensors[0].double().mean().item()) < 1e-6
    # Fashion-MNIST's known pixel statistics (about 0.286, 0.353), unlike MNIST's.
    assert fm.mean == pytest.approx(0.286, abs=3e-3)
    assert fm.std == pytest.approx(0.353, abs=3e-3)
    # The MNIST files fail the Fashion-MNIST checksums.
    if MNIST_DIR.is_dir():
        with pytest.raises(DataError, match="checksum mismatch"):
            verify("fashion-mnist", MNIST_DIR)
