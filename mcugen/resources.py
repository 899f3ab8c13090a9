"""Where the shipped data directories live, for a source checkout and an installed wheel alike.

`templates/`, `boards/`, `c_kernels/` and `docs/` sit at the repository top (DESIGN.md); `mcugen/_data/`
holds symlinks to them, which a wheel build turns into real copies.
"""
from __future__ import annotations

from pathlib import Path

_DATA = Path(__file__).resolve().parent / "_data"


def templates_dir() -> Path:
    return _DATA / "templates"


def boards_dir() -> Path:
    return _DATA / "boards"


def kernels_dir() -> Path:
    return _DATA / "c_kernels"


def docs_dir() -> Path:
    return _DATA / "docs"
