"""Host builds of C code into importable Python modules, with cffi in API mode.

Builds are cached by content: the key hashes the module name, cdef, preamble, compile flags,
the interpreter's extension ABI, and the bytes of every source and of every header that the
compiler could pick up (in `include_dirs` and next to the sources). A second build of the same
inputs, in this or any later process, only imports the module.

A build runs in a private temporary directory that is renamed into place when complete, so
concurrent builds of the same module (pytest-xdist workers) never see a half-written one: the
first rename wins and the others discard their copy.
"""
from __future__ import annotations

import hashlib
import importlib.machinery
import importlib.util
import os
import shutil
import tempfile
import threading
from pathlib import Path
from typing import Any, Iterable, Sequence

import cffi

_loaded: dict[Path, tuple[Any, Any]] = {}
_lock = threading.Lock()


def cache_root() -> Path:
    """`${MCUGEN_CACHE:-~/.cache/mcugen}/host`."""
    return Path(os.environ.get("MCUGEN_CACHE", "~/.cache/mcugen")).expanduser() / "host"


def _headers(dirs: Iterable[Path]) -> list[Path]:
    return sorted({h for d in dirs if d.is_dir() for h in d.rglob("*.h")})


def _cache_key(name: str, cdef: str, preamble: str, sources: Sequence[Path],
               include_dirs: Sequence[Path], flags: Sequence[str]) -> str:
    digest = hashlib.sha256()

    def add(label: str, data: bytes) -> None:
        digest.update(f"{label}:{len(data)}:".encode())
        digest.update(data)

    add("name", name.encode())
    add("cdef", cdef.encode())
    add("preamble", preamble.encode())
    add("flags", "\0".join(flags).encode())
    add("abi", (importlib.machinery.EXTENSION_SUFFIXES[0] + cffi.__version__).encode())
    add("cc", os.environ.get("CC", "").encode())
    for src in sources:  # order matters for the link, so no sorting
        add("source", src.name.encode() + b"\0" + src.read_bytes())
    for header in _headers([*include_dirs, *(s.parent for s in sources)]):
        add("header", header.name.encode() + b"\0" + header.read_bytes())
    return digest.hexdigest()[:32]


def _compile(build_dir: Path, name: str, cdef: str, preamble: str, sources: Sequence[Path],
             include_dirs: Sequence[Path], flags: Sequence[str]) -> None:
    ffibuilder = cffi.FFI()
    ffibuilder.cdef(cdef)
    ffibuilder.set_source(name, preamble, sources=[str(s) for s in sources],
                          include_dirs=[str(d) for d in include_dirs],
                          extra_compile_args=list(flags))
    ffibuilder.compile(tmpdir=str(build_dir))


def _import(module_dir: Path, name: str) -> tuple[Any, Any]:
    (path,) = [p for p in module_dir.iterdir()
               if p.name.startswith(name + ".") and p.suffix in (".so", ".pyd")]
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.ffi, module.lib


def build_host_module(name: str, cdef: str, sources: list[Path], include_dirs: list[Path],
                      extra_compile_args: Sequence[str] = ("-O2", "-std=c99"), *,
                      preamble: str | None = None) -> tuple[Any, Any]:
    """Compile `sources` into the cffi extension module `name` and return its `(ffi, lib)`.

    `cdef` declares what Python may call (cffi syntax: plain C declarations). `preamble` is the C
    text the generated glue starts with, normally the `#include` of the header that declares
    the cdef'd functions; by default it is the cdef itself, which suits self-contained
    declarations. Paths may be relative; they are made absolute, as cffi compiles elsewhere.
    Compiler errors propagate as cffi's `VerificationError` (the compiler output is on stderr).
    """
    sources = [Path(s).resolve() for s in sources]
    include_dirs = [Path(d).resolve() for d in include_dirs]
    preamble = cdef if preamble is None else preamble
    flags = tuple(extra_compile_args)
    module_dir = cache_root() / _cache_key(name, cdef, preamble, sources, include_dirs, flags)
    with _lock:
        if module_dir in _loaded:
            return _loaded[module_dir]
        if not module_dir.is_dir():
            module_dir.parent.mkdir(parents=True, exist_ok=True)
            build_dir = Path(tempfile.mkdtemp(prefix=".build-", dir=module_dir.parent))
            try:
                _compile(build_dir, name, cdef, preamble, sources, include_dirs, flags)
                os.rename(build_dir, module_dir)
            except OSError:
                if not module_dir.is_dir():  # not a lost race: a real failure
                    raise
            finally:
                shutil.rmtree(build_dir, ignore_errors=True)
        _loaded[module_dir] = _import(module_dir, name)
        return _loaded[module_dir]
