"""Setting up Fashion-MNIST: use Debian's package files, install that package, or download it."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from pathlib import Path

from auxbench.data import registry
from auxbench.data.dataset import DataError
from auxbench.data.loader import default_root

APT_PACKAGE = "dataset-fashion-mnist"


def _is_root() -> bool:
    return hasattr(os, "geteuid") and os.geteuid() == 0


def _run(command: list[str]) -> bool:
    """Run ``command`` non-interactively, output to the terminal; True when it succeeded."""
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    return subprocess.run(command, env=env, check=False).returncode == 0


def _apt_install() -> bool:
    install = ["apt-get", "install", "-y", APT_PACKAGE]
    return _run(install) or (_run(["apt-get", "update"]) and _run(install))


def _download(target: Path) -> None:
    """Download the gzipped idx files with torchvision; move them into ``target`` atomically."""
    from torchvision.datasets import FashionMNIST

    target.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        try:
            FashionMNIST(tmp, train=True, download=True)
        except (OSError, RuntimeError) as exc:
            raise DataError(
                f"downloading Fashion-MNIST failed ({exc}); try `apt install {APT_PACKAGE}` "
                f"or put the four .gz files into {target}"
            ) from exc
        downloaded = Path(tmp) / "FashionMNIST" / "raw"
        for name in registry.FASHION_MNIST_FILES:
            partial = target / f".{name}.gz.partial"
            shutil.copyfile(downloaded / f"{name}.gz", partial)
            os.replace(partial, target / f"{name}.gz")


def fetch_fashion_mnist(root: str | Path | None = None) -> str:
    """Make Fashion-MNIST available and return a message saying how.

    In order: use ``/usr/share/datasets/fashion-mnist`` if it holds the files; use
    ``root/fashion-mnist`` if that does; as root with apt-get, install the Debian package
    ``dataset-fashion-mnist``; otherwise (or if that fails) download with torchvision into
    ``root/fashion-mnist``. ``root`` defaults to ``default_root()``.
    """
    system = registry.SYSTEM_FASHION_MNIST
    target = (Path(root) if root is not None else default_root()) / "fashion-mnist"
    if not registry.missing_fashion_mnist_files(system):
        return f"Fashion-MNIST is installed at {system}; auxbench reads it from there."
    if not registry.missing_fashion_mnist_files(target):
        return f"Fashion-MNIST is already in {target}."
    note = ""
    if _is_root() and shutil.which("apt-get"):
        if _apt_install() and not registry.missing_fashion_mnist_files(system):
            return f"Installed the Debian package {APT_PACKAGE}; Fashion-MNIST is at {system}."
        note = f"`apt-get install {APT_PACKAGE}` did not provide the files, so instead: "
    _download(target)
    return f"{note}Downloaded Fashion-MNIST with torchvision into {target}."
