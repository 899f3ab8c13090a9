"""Boards: one TOML file per board in `boards/` (core, compiler flags, memory, QEMU stand-in, probes).

A board carries two memory maps. `flash`/`ram` are the real chip's regions: the budgets are checked
against them and `model_board.elf` is linked into them. `qemu_flash`/`qemu_ram` are where the same
firmware is linked to run on the emulated machine; their sizes equal the real ones, so a firmware
that does not fit the board does not link for QEMU either.
"""
from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass

from mcugen.errors import UserError
from mcugen.resources import boards_dir

_SIZE = re.compile(r"(0x[0-9a-f]+|[0-9]+)\s*(?:([km])(?:i?b)?|b)?", re.IGNORECASE)
_UNITS = {"": 1, "k": 1024, "m": 1024 * 1024}


def parse_size(text: str | int) -> int:
    """A byte count from 327680, "327680", "0x50000", "320K" or "1M" (K, M: 1024-based); else ValueError."""
    if isinstance(text, int) and not isinstance(text, bool) and text >= 0:
        return text
    match = _SIZE.fullmatch(text.strip()) if isinstance(text, str) else None
    if match is None:
        raise ValueError(f"invalid size {text!r}: expected a byte count such as 327680, 0x50000, 320K or 1M")
    number, unit = match.groups()
    return int(number, 0) * _UNITS[(unit or "").lower()]


@dataclass(frozen=True)
class MemoryRegion:
    origin: int
    size: int
    name: str = ""

    @property
    def end(self) -> int:
        return self.origin + self.size


@dataclass(frozen=True)
class Board:
    name: str
    description: str
    arch: str  # "arm" | "riscv"
    core: str
    cflags: tuple[str, ...]
    cross_prefix: str  # e.g. "arm-none-eabi-": the compiler is cross_prefix + "gcc"
    clock_hz: int
    stack_bytes: int  # stack reserve, counted in RW
    flash: MemoryRegion
    ram: MemoryRegion
    qemu_binary: str
    qemu_machine: str
    qemu_args: tuple[str, ...]
    qemu_flash: MemoryRegion
    qemu_ram: MemoryRegion
    pyocd_target: str = ""  # empty: this probe cannot flash the board
    openocd_args: tuple[str, ...] = ()
    stlink: bool = False
    flash_note: str = ""  # how to flash a board that none of the probes supports


def list_boards() -> list[str]:
    return sorted(p.stem for p in boards_dir().glob("*.toml"))


def load_board(name: str) -> Board:
    known = list_boards()
    if name not in known:
        raise UserError(f"unknown board '{name}'; known boards: {', '.join(known)}")
    path = boards_dir() / f"{name}.toml"
    with path.open("rb") as f:
        data = tomllib.load(f)
    try:
        return _board(data)
    except (KeyError, TypeError, ValueError) as e:
        raise UserError(f"board file {path} is malformed: {type(e).__name__}: {e}") from None


def _region(table: dict) -> MemoryRegion:
    return MemoryRegion(parse_size(table["origin"]), parse_size(table["size"]), table.get("name", ""))


def _board(data: dict) -> Board:
    qemu, probe = data["qemu"], data.get("probe", {})
    if data["arch"] not in ("arm", "riscv"):
        raise ValueError(f"arch must be 'arm' or 'riscv', not {data['arch']!r}")
    return Board(
        name=data["name"],
        description=data["description"],
        arch=data["arch"],
        core=data["core"],
        cflags=tuple(data["cflags"]),
        cross_prefix=data["cross_prefix"],
        clock_hz=int(data["clock_hz"]),
        stack_bytes=parse_size(data["stack_bytes"]),
        flash=_region(data["flash"]),
        ram=_region(data["ram"]),
        qemu_binary=qemu["binary"],
        qemu_machine=qemu["machine"],
        qemu_args=tuple(qemu.get("args", ())),
        qemu_flash=_region(qemu["flash"]),
        qemu_ram=_region(qemu["ram"]),
        pyocd_target=probe.get("pyocd_target", ""),
        openocd_args=tuple(probe.get("openocd_args", ())),
        stlink=bool(probe.get("stlink", False)),
        flash_note=probe.get("note", ""),
    )
