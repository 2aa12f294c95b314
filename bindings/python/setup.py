"""Build step that puts libkp into the package and compiles kp._native.

`pip install ./bindings/python` runs `cargo build --release --lib` in the repository
root (this file's grandparent) and bundles target/release/libkp.so (CARGO_TARGET_DIR
is honoured). Set KP_LIBRARY=/path/to/libkp.so to bundle an already built library
instead (then cargo is not needed). kp/_native.c (produce(), poll(), flush() and
delivery reports in C) is compiled against the repository's include/kp.h (or the
kp.h in KP_INCLUDE, a directory) with the C compiler Python was built with; it does
not link libkp: it finds libkp's functions at import time in the library
kp/_ffi.py loaded.
"""

import os
import shutil
import subprocess
import sys
from pathlib import Path

from setuptools import Extension, setup
from setuptools.command.build_py import build_py

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


def kp_include() -> str:
    inc = Path(os.environ.get("KP_INCLUDE") or Path(__file__).resolve().parents[2] / "include")
    if not (inc / "kp.h").is_file():
        sys.exit(f"kp: {inc / 'kp.h'} not found; set KP_INCLUDE to the directory of kp.h")
    return str(inc)


class BuildPyWithLibkp(build_py):
    def run(self) -> None:
        super().run()
        lib = libkp()
        if not lib.is_file():
            sys.exit(f"kp: {lib} not found")
        dest = Path(self.build_lib) / "kp" / LIBNAME
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(lib, dest)


native = Extension(
    "kp._native",
    ["kp/_native.c"],
    include_dirs=[kp_include()],
    libraries=[] if sys.platform == "darwin" else ["dl"],
    extra_compile_args=["-O2"],
)

setup(cmdclass={"build_py": BuildPyWithLibkp}, ext_modules=[native])
