"""Tests of auxbench.data, on tiny files written in each real format."""

from __future__ import annotations

import gzip
import io
import os
import pickle
import tarfile
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import torch
from fixtures import (
    FASHION_FILES,
    cifar100_coarse_of,
    idx_bytes,
    image_ids,
    make_tar,
    write_cifar10,
    write_cifar100,
    write_fashion_mnist,
    write_idx,
    write_pickle,
    write_svhn,
)

from auxbench.data import (
    DATASETS,
    DataError,
    augment,
    availability,
    default_root,
    fetch_fashion_mnist,
    load,
    make_synthetic,
    normalize,
    registry,
)
from auxbench.data import fetch as fetch_module
from auxbench.data.readers import extract_archive
from auxbench.data.split import stratified_split

SYSTEM_FASHION = Path("/usr/share/datasets/fashion-mnist")


@pytest.fixture(autouse=True)
def no_system_fashion_mnist(tmp_path, monkeypatch):
    """Hide the machine's Debian Fashion-MNIST so tests see only the files they write."""
    monkeypatch.setattr(registry, "SYSTEM_FASHION_MNIST", tmp_path / "no-system-copy")


@pytest.fixture
def fashion_root(tmp_path):
    root = tmp_path / "raw"
    arrays = write_fashion_mnist(root / "fashion-mnist")
    return root, arrays


# --- Fashion-MNIST -----------------------------------------------------------------------------


@pytest.mark.parametrize("compress", [True, False])
def test_fashion_mnist_reads_idx_files(tmp_path, compress):
    arrays = write_fashion_mnist(tmp_path / "fashion-mnist", compress=compress)
    data = load("fashion-mnist", root=tmp_path, val_fraction=0.25)
    assert (len(data.train), len(data.val), len(data.test)) == (30, 10, 20)
    assert data.train.images.dtype == torch.uint8 and data.train.labels.dtype == torch.int64
    assert data.train.images.shape[1:] == (1, 28, 28)
    assert data.class_names[0] == "T-shirt/top" and data.class_names[9] == "Ankle boot"
    assert data.num_classes == 10 and data.num_aux_classes == 4
    assert (data.crop_padding, data.horizontal_flip) == (2, True)
    assert data.source == str(tmp_path / "fashion-mnist")
    assert torch.equal(data.test.images[:, 0], torch.from_numpy(arrays["test_images"]))
    assert data.test.labels.tolist() == arrays["test_labels"].tolist()


def test_fashion_mnist_human_aux_is_the_coarse_grouping(fashion_root):
    root, _ = fashion_root
    data = load("fashion-mnist", root=root)
    groups: dict[int, set[str]] = {}
    for label, aux in zip(data.train.labels.tolist(), data.train.aux_labels.tolist()):
        groups.setdefault(aux, set()).add(data.class_names[label])
    assert {frozenset(names) for names in groups.values()} == {
        frozenset({"T-shirt/top", "Pullover", "Coat", "Shirt"}),
        frozenset({"Trouser", "Dress"}),
        frozenset({"Sandal", "Sneaker", "Ankle boot"}),
        frozenset({"Bag"}),
    }


def test_fashion_mnist_coarse_swaps_primary_and_aux(fashion_root):
    root, _ = fashion_root
    fine = load("fashion-mnist", root=root, seed=3)
    coarse = load("fashion-mnist-coarse", root=root, seed=3)
    assert coarse.num_classes == 4 and coarse.num_aux_classes == 10
    assert torch.equal(coarse.test.labels, fine.test.aux_labels)
    assert torch.equal(coarse.test.aux_labels, fine.test.labels)


def test_fashion_mnist_falls_back_to_system_directory(tmp_path, monkeypatch):
    system = tmp_path / "system"
    write_fashion_mnist(system)
    monkeypatch.setattr(registry, "SYSTEM_FASHION_MNIST", system)
    assert load("fashion-mnist", root=tmp_path / "empty").source == str(system)
    assert availability("fashion-mnist", tmp_path / "empty") == (True, str(system))


@pytest.mark.skipif(not SYSTEM_FASHION.is_dir(), reason=f"{SYSTEM_FASHION} is not installed")
def test_real_fashion_mnist_from_debian_package(tmp_path, monkeypatch):
    monkeypatch.setattr(registry, "SYSTEM_FASHION_MNIST", SYSTEM_FASHION)
    data = load("fashion-mnist", root=tmp_path)
    assert (len(data.train), len(data.val), len(data.test)) == (54000, 6000, 10000)
    assert data.num_classes == 10 and data.source == str(SYSTEM_FASHION)
    assert Counter(data.val.labels.tolist()) == {c: 600 for c in range(10)}
    assert 0.25 < data.mean[0] < 0.32 and 0.32 < data.std[0] < 0.38


# --- CIFAR and SVHN ----------------------------------------------------------------------------


def test_cifar10_reads_python_batches(tmp_path):
    written = write_cifar10(tmp_path)
    data = load("cifar10", root=tmp_path, val_fraction=0.2)
    assert len(data.train) + len(data.val) == 30 and len(data.test) == 10
    assert data.class_names == tuple(f"name{i}" for i in range(10))
    assert not data.has_human_aux and data.train.aux_labels is None
    assert (data.crop_padding, data.horizontal_flip) == (4, True)
    expected = torch.from_numpy(written["test_data"]).reshape(-1, 3, 32, 32)
    assert torch.equal(data.test.images, expected)
    ids = image_ids(torch.cat([data.train.images, data.val.images]))
    labels = torch.cat([data.train.labels, data.val.labels]).tolist()
    assert all(written["labels"][i] == label for i, label in zip(ids, labels))


def test_cifar100_20_primary_is_the_files_coarse_labels(tmp_path):
    written = write_cifar100(tmp_path)
    data = load("cifar100-20", root=tmp_path)
    assert (data.num_classes, data.num_aux_classes) == (20, 100)
    assert data.class_names[5] == "coarse5" and data.aux_class_names[42] == "fine42"
    assert len(data.val) == 20  # 10 training examples per superclass, one of each held out
    for split in (data.train, data.val):
        fine = np.array(written["train"][b"fine_labels"])[image_ids(split.images)]
        coarse = np.array(written["train"][b"coarse_labels"])[image_ids(split.images)]
        assert split.labels.tolist() == coarse.tolist()
        assert split.aux_labels.tolist() == fine.tolist()
        assert split.labels.tolist() == cifar100_coarse_of(split.aux_labels.numpy()).tolist()
    assert data.test.labels.tolist() == written["test"][b"coarse_labels"]


@pytest.mark.parametrize(
    ("name", "write", "directory", "archive"),
    [
        ("cifar10", write_cifar10, "cifar-10-batches-py", "cifar-10-python.tar.gz"),
        ("cifar100-20", write_cifar100, "cifar-100-python", "cifar-100-python.tar.gz"),
    ],
)
@pytest.mark.parametrize("filters", [True, False])  # False: a Python without tarfile filters
def test_cifar_is_extracted_from_its_archive(
    tmp_path, name, write, directory, archive, filters, monkeypatch
):
    if not filters:
        monkeypatch.delattr(tarfile, "data_filter", raising=False)
    write(tmp_path)
    direct = load(name, root=tmp_path)
    make_tar(tmp_path, directory, archive)
    present, where = availability(name, tmp_path)
    assert present and archive in where
    data = load(name, root=tmp_path)
    assert torch.equal(data.train.images, direct.train.images)
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([archive, directory])
    assert availability(name, tmp_path) == (True, str(tmp_path / directory))


def test_svhn_maps_label_10_to_digit_0(tmp_path):
    written = write_svhn(tmp_path)
    data = load("svhn", root=tmp_path, val_fraction=0.2)
    assert (len(data.train), len(data.val), len(data.test)) == (
        20,
        10,
        20,
    )  # 3 per digit, 1 held out
    assert not data.horizontal_flip and data.crop_padding == 4
    assert torch.equal(data.test.images, torch.from_numpy(written["test"]["images"]))
    assert data.test.labels.tolist() == (written["test"]["y"].ravel() % 10).tolist()
    assert 0 in data.test.labels.tolist() and data.test.labels.max() == 9


# --- split and statistics ----------------------------------------------------------------------


def test_split_is_stratified_disjoint_and_covers_train(tmp_path):
    arrays = write_fashion_mnist(tmp_path / "fashion-mnist", n_train=200)
    data = load("fashion-mnist", root=tmp_path, val_fraction=0.1)
    train_ids, val_ids = image_ids(data.train.images), image_ids(data.val.images)
    assert not set(train_ids) & set(val_ids)
    assert sorted(train_ids + val_ids) == list(range(200))
    assert Counter(data.val.labels.tolist()) == {c: 2 for c in range(10)}
    labels = arrays["train_labels"]
    assert data.train.labels.tolist() == labels[train_ids].tolist()
    assert data.val.labels.tolist() == labels[val_ids].tolist()


def test_split_is_deterministic_per_seed_and_leaves_test_alone(fashion_root):
    root, _ = fashion_root
    first, again, other = (load("fashion-mnist", root=root, seed=s) for s in (0, 0, 1))
    assert image_ids(first.val.images) == image_ids(again.val.images)
    assert image_ids(first.val.images) != image_ids(other.val.images)
    assert torch.equal(first.test.images, other.test.images)


def test_stratified_split_sizes_per_class():
    labels = torch.tensor([0] * 25 + [1] * 3 + [2] * 2 + [3])
    train, val = stratified_split(labels, 0.1, seed=0)
    assert Counter(labels[val].tolist()) == {
        0: 2,
        1: 1,
        2: 1,
    }  # round(2.5) = 2; >= 1 for 2+ examples
    assert sorted(torch.cat([train, val]).tolist()) == list(range(len(labels)))
    _, most = stratified_split(labels, 0.9, seed=0)
    assert (
        3 not in labels[most].tolist() and Counter(labels[most].tolist())[2] == 1
    )  # never the whole class


@pytest.mark.parametrize("fraction", [0, 1, -0.1, 1.5])
def test_val_fraction_must_be_strictly_between_0_and_1(fashion_root, fraction):
    root, _ = fashion_root
    with pytest.raises(ValueError, match="val_fraction"):
        load("fashion-mnist", root=root, val_fraction=fraction)


def test_mean_std_come_from_the_train_split_and_normalize_standardises(tmp_path):
    write_cifar10(tmp_path, per_batch=20)
    data = load("cifar10", root=tmp_path)
    pixels = data.train.images.double().div(255).transpose(0, 1).reshape(3, -1)
    assert np.allclose(data.mean, pixels.mean(1).numpy()) and np.allclose(
        data.std, pixels.std(1, correction=0)
    )
    x = normalize(data.train.images, data.mean, data.std)
    assert x.dtype == torch.float32 and x.shape == data.train.images.shape
    assert torch.allclose(x.mean(dim=(0, 2, 3)), torch.zeros(3), atol=1e-4)
    assert torch.allclose(x.std(dim=(0, 2, 3), correction=0), torch.ones(3), atol=1e-4)
    with pytest.raises(TypeError, match="uint8"):
        normalize(x, data.mean, data.std)


# --- errors ------------------------------------------------------------------------------------


def test_unknown_name_lists_the_choices():
    with pytest.raises(ValueError, match="unknown dataset 'mnist'") as info:
        load("mnist")
    assert all(name in str(info.value) for name in DATASETS)


def test_missing_fashion_mnist_names_paths_and_remedies(tmp_path):
    with pytest.raises(DataError) as info:
        load("fashion-mnist", root=tmp_path)
    message = str(info.value)
    assert str(tmp_path / "fashion-mnist" / "train-images-idx3-ubyte.gz") in message
    assert (
        "auxbench datasets --fetch fashion-mnist" in message and "dataset-fashion-mnist" in message
    )
    assert availability("fashion-mnist", tmp_path) == (False, message)


@pytest.mark.parametrize(
    ("name", "missing", "remedy"),
    [
        ("cifar10", "cifar-10-batches-py", "cifar-10-python.tar.gz"),
        ("cifar100-20", "cifar-100-python", "cifar-100-python.tar.gz"),
        ("svhn", "svhn", "train_32x32.mat"),
    ],
)
def test_missing_files_name_the_path_and_archive(tmp_path, name, missing, remedy):
    with pytest.raises(DataError, match=remedy) as info:
        load(name, root=tmp_path)
    assert str(tmp_path / missing) in str(info.value)


def test_partially_missing_files_are_listed(tmp_path):
    write_cifar10(tmp_path)
    (tmp_path / "cifar-10-batches-py" / "data_batch_3").unlink()
    with pytest.raises(DataError, match="data_batch_3") as info:
        load("cifar10", root=tmp_path)
    assert "data_batch_2" not in str(info.value)


def test_default_root_uses_environment_then_cwd(tmp_path, monkeypatch):
    monkeypatch.setenv("AUXBENCH_DATA", str(tmp_path))
    assert default_root() == tmp_path
    write_fashion_mnist(tmp_path / "fashion-mnist")
    assert load("fashion-mnist").source == str(tmp_path / "fashion-mnist")
    monkeypatch.delenv("AUXBENCH_DATA")
    monkeypatch.chdir(tmp_path)
    assert default_root() == tmp_path / "data" / "raw"


@pytest.mark.parametrize(
    ("file", "content", "problem"),
    [
        (
            "train-images-idx3-ubyte.gz",
            gzip.compress(idx_bytes(np.zeros((40, 28, 28), np.uint8))[:-5], mtime=0),
            "truncated",
        ),
        (
            "train-images-idx3-ubyte.gz",
            gzip.compress(idx_bytes(np.zeros((40, 28, 28), np.uint8)) + b"x", mtime=0),
            "trailing",
        ),
        (
            "train-labels-idx1-ubyte.gz",
            gzip.compress(idx_bytes(np.zeros((40, 28, 28), np.uint8)), mtime=0),
            "magic",
        ),
        ("train-labels-idx1-ubyte.gz", gzip.compress(b"\0\0\x08", mtime=0), "header"),
        (
            "train-labels-idx1-ubyte.gz",
            gzip.compress(idx_bytes(np.zeros(39, np.uint8)), mtime=0),
            "count mismatch",
        ),
        (
            "train-labels-idx1-ubyte.gz",
            gzip.compress(idx_bytes(np.full(40, 10, np.uint8)), mtime=0),
            "out of range",
        ),
        (
            "t10k-images-idx3-ubyte.gz",
            gzip.compress(idx_bytes(np.zeros((20, 28, 28), np.uint8)), mtime=0)[:-20],
            "gzip",
        ),
    ],
    ids=lambda value: value if isinstance(value, str) else "content",
)
def test_corrupt_idx_files_raise_data_error(fashion_root, file, content, problem):
    root, _ = fashion_root
    path = root / "fashion-mnist" / file
    path.write_bytes(content)
    with pytest.raises(DataError, match=problem) as info:
        load("fashion-mnist", root=root)
    assert str(path) in str(info.value)


def test_train_and_test_image_sizes_must_agree(fashion_root):
    root, _ = fashion_root
    write_idx(
        root / "fashion-mnist" / "t10k-images-idx3-ubyte.gz", np.zeros((20, 32, 32), np.uint8)
    )
    with pytest.raises(DataError, match="test images are"):
        load("fashion-mnist", root=root)


class _Evil:
    def __reduce__(self):
        return (os.system, ("echo pwned",))


@pytest.mark.parametrize(
    ("content", "problem"),
    [
        (b"not a pickle at all", "not a readable CIFAR pickle"),
        (
            pickle.dumps({b"data": np.zeros((6, 3072), np.uint8)})[:-9],
            "not a readable CIFAR pickle",
        ),
        (pickle.dumps(_Evil()), "not allowed"),
        (pickle.dumps([1, 2]), "expected a pickled dict"),
        (pickle.dumps({b"labels": [0] * 6}), "missing key b'data'"),
        (
            pickle.dumps({b"data": np.zeros((6, 3000), np.uint8), b"labels": [0] * 6}),
            "shape mismatch",
        ),
        (
            pickle.dumps({b"data": np.zeros((6, 3072), np.uint8), b"labels": [0] * 5}),
            "count mismatch",
        ),
        (
            pickle.dumps({b"data": np.zeros((6, 3072), np.uint8), b"labels": [10] * 6}),
            "out of range",
        ),
        (pickle.dumps({b"data": np.zeros((6, 3072), np.uint8), b"labels": ["a"] * 6}), "integers"),
    ],
    ids=lambda value: value if isinstance(value, str) else "content",
)
def test_bad_cifar_pickles_raise_data_error(tmp_path, content, problem):
    write_cifar10(tmp_path)
    path = tmp_path / "cifar-10-batches-py" / "data_batch_2"
    path.write_bytes(content)
    with pytest.raises(DataError, match=problem) as info:
        load("cifar10", root=tmp_path)
    assert str(path) in str(info.value)


def test_bad_meta_and_cifar100_keys_raise_data_error(tmp_path):
    write_cifar100(tmp_path)
    meta = tmp_path / "cifar-100-python" / "meta"
    write_pickle(meta, {b"fine_label_names": [b"x"] * 100})
    with pytest.raises(DataError, match="coarse_label_names"):
        load("cifar100-20", root=tmp_path)


def test_corrupt_archive_raises_data_error(tmp_path):
    write_cifar10(tmp_path)
    archive = make_tar(tmp_path, "cifar-10-batches-py", "cifar-10-python.tar.gz")
    archive.write_bytes(archive.read_bytes()[:200])
    with pytest.raises(DataError, match="archive") as info:
        load("cifar10", root=tmp_path)
    assert str(archive) in str(info.value)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cifar-10-python.tar.gz"]


def test_bad_svhn_file_raises_data_error(tmp_path):
    write_svhn(tmp_path)
    path = tmp_path / "svhn" / "train_32x32.mat"
    path.write_bytes(b"MATLAB 5.0 MAT-file, truncated")
    with pytest.raises(DataError, match="not a readable MATLAB file"):
        load("svhn", root=tmp_path)


# --- augmentation ------------------------------------------------------------------------------


def _bright_pixel_batch(n: int = 64, size: int = 9) -> torch.Tensor:
    x = torch.zeros(n, 2, size, size)
    x[:, :, size // 2, size // 2] = 1.0
    return x


def test_augment_disabled_is_a_no_op():
    x = torch.rand(4, 3, 8, 8)
    assert augment(x, 0, False) is x


def test_random_crop_shifts_each_image_by_at_most_the_padding():
    x, pad = _bright_pixel_batch(), 2
    out = augment(x, pad, False, generator=torch.Generator().manual_seed(0))
    assert out.shape == x.shape and out.dtype == x.dtype
    assert torch.equal(out[:, 0], out[:, 1])  # one offset per image, shared by its channels
    rows, cols = torch.nonzero(out[:, 0], as_tuple=True)[1:]
    assert len(rows) == len(x)
    assert ((rows - 4).abs() <= pad).all() and ((cols - 4).abs() <= pad).all()
    assert len(set(zip(rows.tolist(), cols.tolist()))) > 10  # offsets differ between images


def test_random_crop_pads_with_zeros():
    out = augment(torch.ones(32, 1, 6, 6), 3, False, generator=torch.Generator().manual_seed(0))
    assert set(out.unique().tolist()) == {0.0, 1.0} and (out == 0).any()


def test_horizontal_flip_mirrors_about_half_of_the_images():
    x = torch.rand(200, 3, 5, 7)
    out = augment(x, 0, True, generator=torch.Generator().manual_seed(0))
    same = (out == x).flatten(1).all(1)
    mirrored = (out == x.flip(-1)).flatten(1).all(1)
    assert (same | mirrored).all()
    assert 60 < int(mirrored.sum()) < 140


def test_augment_is_deterministic_for_a_seeded_generator():
    x = torch.rand(16, 3, 8, 8)
    first = augment(x, 2, True, generator=torch.Generator().manual_seed(7))
    again = augment(x, 2, True, generator=torch.Generator().manual_seed(7))
    other = augment(x, 2, True, generator=torch.Generator().manual_seed(8))
    assert torch.equal(first, again) and not torch.equal(first, other)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_augment_and_normalize_run_on_the_gpu():
    x = torch.randint(0, 256, (128, 3, 32, 32), dtype=torch.uint8, device="cuda")
    y = normalize(x, (0.5, 0.4, 0.3), (0.2, 0.2, 0.2))
    for generator in (
        torch.Generator(device="cuda").manual_seed(0),
        torch.Generator().manual_seed(0),
        None,
    ):
        out = augment(y, 4, True, generator=generator)
        assert out.device == y.device and out.shape == y.shape
    cpu = augment(y.cpu(), 4, True, generator=torch.Generator().manual_seed(1))
    gpu = augment(y, 4, True, generator=torch.Generator().manual_seed(1))
    assert torch.equal(cpu, gpu.cpu())


# --- synthetic ---------------------------------------------------------------------------------


def test_synthetic_shapes_and_label_hierarchy():
    data = make_synthetic(
        n_train=300, n_test=100, num_classes=3, aux_per_class=4, image_size=10, channels=2
    )
    assert (len(data.train), len(data.val), len(data.test)) == (270, 30, 100)
    assert data.train.images.shape[1:] == (2, 10, 10) and data.train.images.dtype == torch.uint8
    assert (data.num_classes, data.num_aux_classes) == (3, 12)
    for split in (data.train, data.val, data.test):
        assert torch.equal(split.labels, split.aux_labels // 4)


def test_synthetic_is_learnable_by_nearest_centroid():
    data = make_synthetic()
    x_train, x_test = (
        normalize(s.images, data.mean, data.std).flatten(1) for s in (data.train, data.test)
    )
    centroids = torch.stack([x_train[data.train.aux_labels == f].mean(0) for f in range(8)])
    predicted = torch.cdist(x_test, centroids).argmin(1)
    assert (predicted // 2 == data.test.labels).float().mean() > 0.9


def test_synthetic_by_name_and_device():
    data = load("synthetic", seed=1, device="cpu")
    assert data.name == "synthetic" and data.train.images.device.type == "cpu"
    assert availability("synthetic") == (True, "generated in memory, no files needed")
    assert not torch.equal(data.val.images, load("synthetic", seed=2).val.images)


# --- fetch -------------------------------------------------------------------------------------


@pytest.fixture
def no_commands(monkeypatch):
    """Fail the test if fetch tries to run a command or download, unless a test replaces these."""

    def refuse(*args):
        raise AssertionError(f"unexpected call {args}")

    monkeypatch.setattr(fetch_module, "_run", refuse)
    monkeypatch.setattr(fetch_module, "_download", refuse)


def test_fetch_uses_the_system_copy_without_installing(tmp_path, monkeypatch, no_commands):
    write_fashion_mnist(tmp_path / "system")
    monkeypatch.setattr(registry, "SYSTEM_FASHION_MNIST", tmp_path / "system")
    monkeypatch.setattr(fetch_module, "_is_root", lambda: True)
    assert str(tmp_path / "system") in fetch_fashion_mnist(tmp_path / "root")


def test_fetch_keeps_files_already_in_root(tmp_path, no_commands):
    write_fashion_mnist(tmp_path / "fashion-mnist")
    assert "already" in fetch_fashion_mnist(tmp_path)


def test_fetch_installs_the_debian_package_as_root(tmp_path, monkeypatch, no_commands):
    system = tmp_path / "system"
    monkeypatch.setattr(registry, "SYSTEM_FASHION_MNIST", system)
    monkeypatch.setattr(fetch_module, "_is_root", lambda: True)
    monkeypatch.setattr(fetch_module.shutil, "which", lambda name: f"/usr/bin/{name}")
    commands = []

    def run(command):
        commands.append(command)
        if command[:2] == ["apt-get", "install"] and ["apt-get", "update"] in commands:
            write_fashion_mnist(system)
            return True
        return command == ["apt-get", "update"]

    monkeypatch.setattr(fetch_module, "_run", run)
    message = fetch_fashion_mnist(tmp_path)
    assert "dataset-fashion-mnist" in message and str(system) in message
    assert [c[1] for c in commands] == ["install", "update", "install"]


class FakeFashionMNIST:
    """Stands in for torchvision's FashionMNIST: 'downloads' by writing the files where it would."""

    def __init__(self, root, train, download):
        write_fashion_mnist(Path(root) / "FashionMNIST" / "raw")


@pytest.mark.parametrize("as_root", [False, True])
def test_fetch_downloads_into_root_atomically(tmp_path, monkeypatch, as_root):
    import torchvision.datasets

    monkeypatch.setattr(fetch_module, "_is_root", lambda: as_root)
    monkeypatch.setattr(fetch_module.shutil, "which", lambda name: f"/usr/bin/{name}")
    monkeypatch.setattr(fetch_module, "_run", lambda command: False)  # apt-get fails
    monkeypatch.setattr(torchvision.datasets, "FashionMNIST", FakeFashionMNIST)
    message = fetch_fashion_mnist(tmp_path)
    assert "Downloaded" in message and str(tmp_path / "fashion-mnist") in message
    assert ("did not provide" in message) == as_root
    files = sorted(p.name for p in (tmp_path / "fashion-mnist").iterdir())
    assert files == sorted(f"{f}.gz" for f in FASHION_FILES)
    assert len(load("fashion-mnist", root=tmp_path).test) == 20


@pytest.mark.parametrize("filters", [True, False])  # False: a Python without tarfile filters
@pytest.mark.parametrize("bad", ["link", "parent"])
def test_an_archive_with_links_or_escaping_paths_is_refused(tmp_path, bad, filters, monkeypatch):
    if not filters:
        monkeypatch.delattr(tarfile, "data_filter", raising=False)
    (tmp_path / "cifar-10-batches-py").mkdir()
    (tmp_path / "cifar-10-batches-py" / "data_batch_1").write_bytes(b"x")
    archive = tmp_path / "evil.tar"
    with tarfile.open(archive, "w") as tar:
        tar.add(tmp_path / "cifar-10-batches-py", arcname="cifar-10-batches-py")
        member = tarfile.TarInfo("cifar-10-batches-py/../../outside")
        if bad == "link":
            member = tarfile.TarInfo("cifar-10-batches-py/batches.meta")
            member.type, member.linkname = tarfile.SYMTYPE, "/etc/passwd"
        tar.addfile(member, io.BytesIO(b""))
    destination = tmp_path / "out"
    destination.mkdir()
    with pytest.raises(DataError, match="refusing to extract"):
        extract_archive(archive, "cifar-10-batches-py", destination)
    assert not (tmp_path / "outside").exists() and list(destination.iterdir()) == []
