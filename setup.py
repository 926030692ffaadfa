"""Builds libsolidxc.so with SwiftPM and installs it inside the `solidxc` package.

    pip install .        # regular install: the .so is copied into site-packages/solidxc/
    pip install -e .     # editable: the .so is copied to python/solidxc/ (git-ignored)

Both run `swift build -c release -Xswiftc -static-stdlib --product solidxc`, so the library
carries the Swift runtime and needs no Swift toolchain at run time (only OpenBLAS, LAPACKE
and FFTW from the system). Set SOLIDXC_SKIP_SWIFT_BUILD=1 to reuse an existing
.build/release/libsolidxc.so.
"""

import os
import shutil
import subprocess
from pathlib import Path

from setuptools import Distribution, setup
from setuptools.command.build_py import build_py

ROOT = Path(__file__).resolve().parent
PACKAGE_DIR = ROOT / "python" / "solidxc"
LIBRARY = "libsolidxc.so"
SWIFT_BUILD = ["swift", "build", "-c", "release", "-Xswiftc", "-static-stdlib", "--product", "solidxc"]


def build_library() -> Path:
    """Runs SwiftPM (default .build scratch path) and returns the built library."""
    if os.environ.get("SOLIDXC_SKIP_SWIFT_BUILD") != "1":
        if shutil.which("swift") is None:
            raise RuntimeError("solidxc: the Swift toolchain (`swift`) is needed to build libsolidxc.so")
        print("solidxc: " + " ".join(SWIFT_BUILD), flush=True)
        subprocess.run(SWIFT_BUILD, cwd=ROOT, check=True)
    built = ROOT / ".build" / "release" / LIBRARY
    if not built.is_file():
        raise RuntimeError(f"solidxc: {built} was not built; run {' '.join(SWIFT_BUILD)}")
    return built


class BuildPyWithSwift(build_py):
    """build_py that first builds libsolidxc.so and places it in python/solidxc/.

    Putting it in the source package serves both modes: a regular install copies it as
    package data, and an editable install imports straight from python/solidxc/.
    """

    def run(self):
        built = build_library()
        target = PACKAGE_DIR / LIBRARY
        # Replace rather than overwrite in place: a process may have the old copy mapped.
        tmp = target.with_suffix(".so.tmp")
        shutil.copy2(built, tmp)
        os.replace(tmp, target)
        super().run()


class BinaryDistribution(Distribution):
    """The wheel holds a native library, so it is platform-specific."""

    def has_ext_modules(self):
        return True


setup(
    name="solidxc",
    version="0.1.0",
    description="Plane-wave Kohn-Sham DFT for crystals with learnable exchange-correlation (Swift core, C ABI, ctypes)",
    python_requires=">=3.9",
    package_dir={"": "python"},
    packages=["solidxc", "solidxc.data"],
    package_data={"solidxc": [LIBRARY], "solidxc.data": ["*.yaml", "*.md"]},
    install_requires=["numpy", "pyyaml", "scipy"],
    extras_require={"test": ["pytest"], "fuzz": ["atheris"], "ase": ["ase"], "plot": ["matplotlib"], "progress": ["tqdm"],
                    "train": ["torch", "matplotlib", "tqdm", "ase"], "deepchem": ["deepchem", "torch"]},
    entry_points={"console_scripts": ["solidxc=solidxc.cli:main"]},
    cmdclass={"build_py": BuildPyWithSwift},
    distclass=BinaryDistribution,
    zip_safe=False,
)
