"""Flash (RO) and RAM (RW) use of a firmware ELF, read with pyelftools.

RO = text + rodata + data (its initial values live in flash); RW = data + bss + the stack reserve.
The `.stack`/`.heap` sections are skipped: the stack is counted once, as the board's stack_bytes.
"""
from __future__ import annotations

from pathlib import Path

from elftools.elf.constants import SH_FLAGS
from elftools.elf.elffile import ELFFile
from elftools.elf.sections import Section

_RESERVES = (".stack", ".heap")
_KINDS = {"ro": ("text", "rodata", "data"), "rw": ("data", "bss")}


def _kind(section: Section) -> str | None:
    """text, rodata, data or bss for a section loaded on the target; None for the rest."""
    flags = section["sh_flags"]
    if not flags & SH_FLAGS.SHF_ALLOC or section.name in _RESERVES:
        return None
    if section["sh_type"] == "SHT_NOBITS":
        return "bss"
    if flags & SH_FLAGS.SHF_WRITE:
        return "data"
    if flags & SH_FLAGS.SHF_EXECINSTR or section.name == ".isr_vector":
        return "text"
    return "rodata"


def elf_sizes(elf: Path, stack_bytes: int) -> dict:
    """Bytes of text, rodata, data and bss, and the totals ro_bytes (flash) and rw_bytes (RAM)."""
    sizes = dict.fromkeys(("text", "rodata", "data", "bss"), 0)
    with open(elf, "rb") as f:
        for section in ELFFile(f).iter_sections():
            kind = _kind(section)
            if kind:
                sizes[kind] += section["sh_size"]
    sizes["ro_bytes"] = sizes["text"] + sizes["rodata"] + sizes["data"]
    sizes["rw_bytes"] = sizes["data"] + sizes["bss"] + stack_bytes
    return sizes


def largest_symbols(elf: Path, n: int = 5, kind: str = "ro") -> list[tuple[str, int]]:
    """The n largest functions and objects that take flash (kind="ro") or RAM (kind="rw")."""
    if kind not in _KINDS:
        raise ValueError(f"kind must be 'ro' or 'rw', not {kind!r}")
    found = []
    with open(elf, "rb") as f:
        elffile = ELFFile(f)
        symtab = elffile.get_section_by_name(".symtab")
        for symbol in symtab.iter_symbols() if symtab else ():
            index = symbol["st_shndx"]
            if (symbol["st_size"] and symbol["st_info"]["type"] in ("STT_FUNC", "STT_OBJECT")
                    and isinstance(index, int) and _kind(elffile.get_section(index)) in _KINDS[kind]):
                found.append((symbol.name, symbol["st_size"]))
    return sorted(found, key=lambda item: (-item[1], item[0]))[:n]
