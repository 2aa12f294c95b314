"""Build step that puts libkp into the package.

`pip install ./bindings/python` runs `cargo build --release --lib` in the repository
root (this file's grandparent) and bundles target/release/libkp.so (CARGO_TARGET_DIR
is honoured). Set KP_LIBRARY=/path/to/libkp.so to bundle an already built library
instead (then cargo is not needed).
"""

import os
import shutil
import subprocess
import sys
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py
from setuptools.dist import Distribution

LIBNAME = "libkp.dylib" if sys.platform == "darwin" else "libkp.so"


def libkp() -> Path:
    given = os.environ.get("KP_LIBRARY")
    if given:
        return Path(given)
    root = Path(__file__).resolve().parents[2]
    if not (root / "Cargo.toml").is_file():
        sys.exit("kp: not inside the kp repository; set KP_LIBRARY to a built libkp.so")
    cargo = os.environ.get("CARGO", "cargo")
    subprocess.run([cargo, "build", "--release", "--lib"], cwd=root, check=True)
    target = Path(os.environ.get("CARGO_TARGET_DIR", root / "target"))
    if not target.is_absolute():
        target = root / target
    return target / "release" / LIBNAME


class BuildPyWithLibkp(build_py):
    def run(self) -> None:
        super().run()
        lib = libkp()
        if not lib.is_file():
            sys.exit(f"kp: {lib} not found")
        dest = Path(self.build_lib) / "kp" / LIBNAME
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(lib, dest)


class BinaryDistribution(Distribution):
    """The wheel carries a native library: tag it for this platform."""

    def has_ext_modules(self) -> bool:
        return True


setup(cmdclass={"build_py": BuildPyWithLibkp}, distclass=BinaryDistribution)
