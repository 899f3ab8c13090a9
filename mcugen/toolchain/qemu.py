"""Runs board firmware under QEMU: model outputs for a batch of inputs, and exact instruction counts.

Each run gets a fresh working directory holding `input.bin`; the harness (templates/firmware/
main.c) reads it and writes `output.bin` there through semihosting. Semihosting console output
goes to a chardev on stdout, so nothing depends on QEMU's own console handling.
"""
from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from elftools.elf.elffile import ELFFile

from mcugen.boards import Board
from mcugen.errors import UserError

_PLUGIN_SOURCE = Path(__file__).with_name("insn_count_plugin.c")


@contextmanager
def _qemu_run(elf: Path, board: Board, inputs: bytes, timeout: float,
              extra: tuple[str, ...] = ()) -> Iterator[Path]:
    """Run `elf` once with `inputs` as input.bin; yield the working directory after a clean exit."""
    if shutil.which(board.qemu_binary) is None:
        raise UserError(f"{board.qemu_binary} not found: install QEMU to run firmware for {board.name} "
                        "(Debian: apt-get install --no-install-recommends qemu-system-arm qemu-system-misc)")
    elf = Path(elf).resolve()
    with tempfile.TemporaryDirectory(prefix="mcugen-qemu-") as tmp:
        work = Path(tmp)
        (work / "input.bin").write_bytes(inputs)
        command = [
            board.qemu_binary, "-M", board.qemu_machine, *board.qemu_args,
            "-display", "none", "-serial", "none", "-monitor", "none",
            "-chardev", "stdio,id=sh0", "-semihosting-config", "enable=on,target=native,chardev=sh0",
            *extra, "-kernel", str(elf),
        ]
        try:
            proc = subprocess.run(command, cwd=work, stdin=subprocess.DEVNULL, capture_output=True,
                                  timeout=timeout)
        except subprocess.TimeoutExpired:
            raise UserError(f"{elf.name} did not finish within {timeout} s "
                            f"on QEMU {board.qemu_machine}") from None
        if proc.returncode != 0:
            log = (proc.stdout + proc.stderr).decode(errors="replace").strip()
            raise UserError(f"{elf.name} failed on QEMU {board.qemu_machine} (exit status {proc.returncode})"
                            + (f":\n{log}" if log else ""))
        yield work


def run_firmware(elf: Path, board: Board, inputs: bytes, output_bytes: int,
                 timeout: float = 60) -> bytes:
    """Run the model on every input record in one QEMU run; return the output records, concatenated."""
    with _qemu_run(elf, board, inputs, timeout) as work:
        outputs = (work / "output.bin").read_bytes()
    if len(outputs) % output_bytes:
        raise UserError(f"{Path(elf).name} wrote {len(outputs)} bytes, "
                        f"not whole records of {output_bytes} bytes")
    return outputs


def peak_stack(elf: Path, board: Board, inputs: bytes, timeout: float = 60) -> int:
    """The deepest stack use (bytes) of a firmware run on `inputs`, as the harness measures it:
    start-up paints the free stack, main() counts the overwritten words (templates/firmware/)."""
    with _qemu_run(elf, board, inputs, timeout) as work:
        return int.from_bytes((work / "stack.bin").read_bytes()[:4], "little")


def count_instructions(elf: Path, board: Board, input_record: bytes, marks: bool = False,
                       timeout: float = 60) -> dict:
    """Exact instructions executed by one call of the model's `{name}_run` on `input_record`
    (its first call, should `input_record` hold several records).

    Returns {"instructions": n}; with marks=True (on a profile ELF) also "marks": the count from
    the call's entry to each MCUGEN_PROFILE_MARK(), so per-layer counts are their differences.
    """
    args = [f"entry={_symbol(elf, 'mcugen_entry'):#x}"]
    if marks:
        args.append(f"mark={_symbol(elf, 'mcugen_profile_mark', hint='build it with profile=True'):#x}")
    with tempfile.TemporaryDirectory(prefix="mcugen-count-") as tmp:
        counts = Path(tmp) / "counts.txt"
        plugin = ",".join([str(_plugin()), *args, f"out={counts}"])
        with _qemu_run(elf, board, input_record, timeout, ("-plugin", plugin)):
            pass
        if not counts.exists():
            raise UserError(f"{Path(elf).name}: the model's run function was not called, or did not return")
        lines = [line.split() for line in counts.read_text().splitlines()]
    result = {"instructions": int(lines[0][1])}
    if marks:
        result["marks"] = [int(value) for key, value in lines[1:]]
    return result


def _symbol(elf: Path, name: str, hint: str = "build it with mcugen's firmware templates") -> int:
    """The address of symbol `name` in `elf` (the Thumb bit cleared: QEMU reports even addresses)."""
    with open(elf, "rb") as f:
        symtab = ELFFile(f).get_section_by_name(".symtab")
        found = symtab.get_symbol_by_name(name) if symtab else None
        if not found:
            raise UserError(f"{Path(elf).name} has no symbol {name}: {hint}")
        return found[0]["st_value"] & ~1


def _plugin() -> Path:
    """The instruction-count plugin, built once per source version into the user's cache."""
    source = _PLUGIN_SOURCE.read_bytes()
    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "mcugen"
    library = cache / f"insn_count_plugin-{hashlib.sha256(source).hexdigest()[:16]}.so"
    if library.exists():
        return library
    compiler = shutil.which("gcc") or shutil.which("cc")
    if compiler is None:
        raise UserError("no host C compiler (gcc) found: it builds QEMU's instruction-count plugin "
                        "(Debian: apt-get install gcc)")
    cache.mkdir(parents=True, exist_ok=True)
    partial = library.with_suffix(f".{os.getpid()}.tmp")  # then renamed: safe with parallel builds
    proc = subprocess.run([compiler, "-O2", "-shared", "-fPIC", "-o", str(partial), str(_PLUGIN_SOURCE)],
                          capture_output=True, text=True)
    if proc.returncode != 0:
        raise UserError(f"building the QEMU instruction-count plugin failed:\n{proc.stderr.strip()}")
    os.replace(partial, library)
    return library
