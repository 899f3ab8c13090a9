"""Firmware for a board: renders OUT/firmware/ (start-up, semihosting, linker script, harness,
Makefile) around the generated model library in OUT/, and builds it with the board's cross gcc.

The sources in templates/firmware/ serve both architectures; only the files in its `arm/` or
`riscv/` subdirectory (vector table or `_start`) and the entry symbol differ.
"""
from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import jinja2

from mcugen.boards import Board, MemoryRegion
from mcugen.errors import UserError
from mcugen.resources import templates_dir

_ENTRY = {"arm": "Reset_Handler", "riscv": "_start"}
_ELF = {"qemu": "model.elf", "profile": "model_profile.elf", "board": "model_board.elf"}


def _region(region: MemoryRegion) -> dict[str, str]:
    return {"origin": f"0x{region.origin:08X}", "size": f"0x{region.size:X}"}


def write_firmware(out_dir: Path, board: Board, name: str = "model") -> Path:
    """Write OUT/firmware/ for `board` around the model `name` (OUT/{name}.h, `{name}_run`)."""
    if not name.isidentifier():
        raise UserError(f"model name {name!r} is not a C identifier")
    src = templates_dir() / "firmware"
    dst = Path(out_dir) / "firmware"
    shutil.rmtree(dst, ignore_errors=True)  # no stale sources from another board
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(src), undefined=jinja2.StrictUndefined, keep_trailing_newline=True
    )
    context = {
        "name": name,
        "macro": name.upper(),
        "board": board.name,
        "core": board.core,
        "cross_prefix": board.cross_prefix,
        "cflags": " ".join(board.cflags),
        "entry": _ENTRY[board.arch],
        "stack_bytes": f"0x{board.stack_bytes:X}",
        "qemu_machine": board.qemu_machine,
        "qemu_flash": _region(board.qemu_flash),
        "qemu_ram": _region(board.qemu_ram),
        "flash": _region(board.flash),
        "ram": _region(board.ram),
    }
    for path in sorted(p for p in src.rglob("*") if p.is_file()):
        rel = path.relative_to(src)
        if rel.parts[0] in _ENTRY:  # an architecture's own files land in firmware/ itself
            if rel.parts[0] != board.arch:
                continue
            rel = rel.relative_to(rel.parts[0])
        target = dst / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        if path.suffix == ".j2":
            template = env.get_template(path.relative_to(src).as_posix())
            target.with_suffix("").write_text(template.render(context))
        else:
            shutil.copyfile(path, target)
    return dst


def toolchain_available(board: Board) -> bool:
    """True when the board's cross gcc, make and QEMU are all installed."""
    return all(shutil.which(tool) for tool in (board.cross_prefix + "gcc", "make", board.qemu_binary))


def build_firmware(out_dir: Path, board: Board, profile: bool = False, for_board: bool = False) -> Path:
    """Build OUT/firmware/ with make and return the ELF.

    `model.elf` runs under QEMU; profile=True builds `model_profile.elf` with the per-layer
    MCUGEN_PROFILE_MARK() hooks; for_board=True builds `model_board.elf`, linked at the board's own
    addresses (the one to flash). A failed build (e.g. region `RAM' overflowed) raises UserError
    with the compiler's and linker's messages.
    """
    if profile and for_board:
        raise ValueError("profile and for_board builds are separate ELFs; ask for one at a time")
    elf = _ELF["board" if for_board else "profile" if profile else "qemu"]
    compiler = board.cross_prefix + "gcc"
    for tool, package in ((compiler, "gcc-" + board.cross_prefix.rstrip("-")), ("make", "make")):
        if shutil.which(tool) is None:
            raise UserError(f"{tool} not found: install it to build firmware for {board.name} "
                            f"(Debian: apt-get install --no-install-recommends {package})")
    fw = Path(out_dir) / "firmware"
    if not (fw / "Makefile").is_file():
        raise UserError(f"{fw} holds no firmware: write it first (write_firmware)")
    proc = subprocess.run(["make", "-C", str(fw), elf], capture_output=True, text=True)
    if proc.returncode != 0:
        messages = "\n".join(re.sub(r"^\S*/ld: ", "ld: ", line)  # the linker without its long path
                             for line in proc.stderr.splitlines() if not line.startswith("make"))
        raise UserError(f"firmware build for board {board.name} ({board.flash.size // 1024} KB flash, "
                        f"{board.ram.size // 1024} KB RAM) failed:\n{messages.strip()}")
    return fw / elf
