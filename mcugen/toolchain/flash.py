"""Writes firmware to a real board through a debug probe: pyocd, openocd or st-flash.

Only an ELF linked at the board's own addresses (`model_board.elf`, build_firmware(...,
for_board=True)) can be flashed; `model.elf` is linked for QEMU's memory map.
"""
from __future__ import annotations

import shlex
import shutil
import subprocess
from pathlib import Path

from elftools.elf.elffile import ELFFile

from mcugen.boards import Board
from mcugen.errors import UserError

PROBES = ("pyocd", "openocd", "stlink")
_INSTALL = {
    "pyocd": "pip install pyocd",
    "openocd": "apt-get install openocd",
    "st-flash": "apt-get install stlink-tools",
}


def _hex_path(elf: Path) -> Path:
    return Path(elf).with_suffix(".hex")


def flash_command(elf: Path, board: Board, probe: str) -> list[str]:
    """The command that writes `elf` to `board` with `probe` (stlink takes the Intel-hex copy of it)."""
    if probe not in PROBES:
        raise UserError(f"unknown probe '{probe}'; choose one of: {', '.join(PROBES)}")
    if probe == "pyocd" and board.pyocd_target:
        return ["pyocd", "flash", "-t", board.pyocd_target, str(elf)]
    if probe == "openocd" and board.openocd_args:
        return ["openocd", *board.openocd_args, "-c", f"program {{{elf}}} verify reset exit"]
    if probe == "stlink" and board.stlink:
        # Intel hex carries the load addresses, so st-flash needs no address argument.
        return ["st-flash", "--reset", "--format", "ihex", "write", str(_hex_path(elf))]
    raise UserError(f"board {board.name} cannot be flashed with {probe}"
                    + (f": {board.flash_note}" if board.flash_note else ""))


def flash(elf: Path, board: Board, probe: str, dry_run: bool = False) -> str:
    """Flash `elf` (or only describe how, with dry_run); return the command lines run."""
    elf = Path(elf)
    commands = [flash_command(elf, board, probe)]
    _check_linked_for_board(elf, board)
    if probe == "stlink":
        commands.insert(0, [board.cross_prefix + "objcopy", "-O", "ihex", str(elf), str(_hex_path(elf))])
    text = "\n".join(shlex.join(command) for command in commands)
    if dry_run:
        return text
    for command in commands:
        tool = command[0]
        if shutil.which(tool) is None:
            hint = _INSTALL.get(tool, f"apt-get install gcc-{board.cross_prefix.rstrip('-')}")
            raise UserError(f"{tool} not found: install it ({hint}) to flash with {probe}")
        proc = subprocess.run(command, capture_output=True, text=True)
        if proc.returncode != 0:
            log = (proc.stdout + proc.stderr).strip()
            raise UserError(f"{tool} failed (exit status {proc.returncode}):\n{log}")
    return text


def _check_linked_for_board(elf: Path, board: Board) -> None:
    """Refuse an ELF whose loadable contents lie outside the board's flash (e.g. a QEMU build)."""
    if not elf.is_file():
        raise UserError(f"no firmware to flash: {elf} does not exist")
    with open(elf, "rb") as f:
        for segment in ELFFile(f).iter_segments():
            start, size = segment["p_paddr"], segment["p_filesz"]
            if segment["p_type"] != "PT_LOAD" or not size:
                continue
            if not board.flash.origin <= start <= board.flash.end - size:
                raise UserError(
                    f"{elf.name} is not linked for {board.name}'s flash at "
                    f"0x{board.flash.origin:08X} (it loads at 0x{start:08X}): flash "
                    "model_board.elf, built with build_firmware(..., for_board=True)"
                )
