"""Firmware harness, cross builds, QEMU runs, instruction counts, ELF sizes and flashing, on a tiny
hand-written model library: `{name}_run` adds 1 to each of 16 bytes in two layers (+3, then -2
through a lookup table), and returns 7 when the first input byte is 0xEE."""
import subprocess
from pathlib import Path

import pytest

from mcugen.boards import load_board
from mcugen.errors import UserError
from mcugen.toolchain.elf_size import elf_sizes, largest_symbols
from mcugen.toolchain.firmware import build_firmware, toolchain_available, write_firmware
from mcugen.toolchain.flash import flash
from mcugen.toolchain.qemu import count_instructions, run_firmware

BOARDS = ["stm32f746", "nucleo-l4r5zi", "gap8"]
RECORD = 16

HEADER = """#include <stdint.h>
#define {NAME}_INPUT_BYTES 16
#define {NAME}_OUTPUT_BYTES 16
int {name}_run(const void *input, void *output);
void *{name}_input(void);
void *{name}_output(void);
#ifdef MCUGEN_PROFILE
void mcugen_profile_mark(void);
#define MCUGEN_PROFILE_MARK() mcugen_profile_mark()
#else
#define MCUGEN_PROFILE_MARK() ((void)0)
#endif
"""
NETWORK = """#include "{name}.h"
#include "add.h"
const uint8_t {name}_lut[256] = {{{lut}}};
static uint8_t scratch[{NAME}_INPUT_BYTES];
static uint8_t slots[{NAME}_INPUT_BYTES + {NAME}_OUTPUT_BYTES];
void *{name}_input(void) {{ return slots; }}
void *{name}_output(void) {{ return slots + {NAME}_INPUT_BYTES; }}
int {name}_run(const void *input, void *output)
{{
    MCUGEN_PROFILE_MARK();
    add_u8(input, scratch, {NAME}_INPUT_BYTES, 3);
    MCUGEN_PROFILE_MARK();
    lookup_u8(scratch, output, {NAME}_OUTPUT_BYTES, {name}_lut);
    MCUGEN_PROFILE_MARK();
    return ((const uint8_t *)input)[0] == 0xEE ? 7 : 0;
}}
"""
KERNEL_H = """#include <stdint.h>
void add_u8(const uint8_t *in, uint8_t *out, int n, uint8_t k);
void lookup_u8(const uint8_t *in, uint8_t *out, int n, const uint8_t *table);
"""
KERNEL_C = """#include <string.h>
#include "add.h"
void add_u8(const uint8_t *in, uint8_t *out, int n, uint8_t k)
{
    uint8_t tmp[64];
    memcpy(tmp, in, n); /* a real memcpy call: the firmware must provide it */
    for (int i = 0; i < n; i++)
        out[i] = (uint8_t)(tmp[i] + k);
}
void lookup_u8(const uint8_t *in, uint8_t *out, int n, const uint8_t *table)
{
    for (int i = 0; i < n; i++)
        out[i] = table[in[i]];
}
"""


def make_model(out: Path, name: str = "model", extra: str = "") -> Path:
    """The library codegen would write to OUT/, plus `extra` C source in OUT/extra.c."""
    (out / "kernels" / "include").mkdir(parents=True)
    (out / "kernels" / "src").mkdir()
    fmt = {"name": name, "NAME": name.upper(), "lut": ", ".join(str((i - 2) % 256) for i in range(256))}
    (out / f"{name}.h").write_text(HEADER.format(**fmt))
    (out / f"{name}.c").write_text(NETWORK.format(**fmt))
    (out / "kernels" / "include" / "add.h").write_text(KERNEL_H)
    (out / "kernels" / "src" / "add.c").write_text(KERNEL_C)
    if extra:
        (out / "extra.c").write_text(extra)
    return out


def insert_before_return(source: Path, code: str) -> None:
    """Add C statements to the model's run function, just before its return."""
    text = source.read_text().replace("    return ((const", f"    {code}\n    return ((const")
    source.write_text(text)


def expected(inputs: bytes) -> bytes:
    return bytes((x + 1) % 256 for x in inputs)


def need_toolchain(name: str):
    board = load_board(name)
    if not toolchain_available(board):
        pytest.skip(f"cross toolchain or QEMU for {name} not installed")
    return board


@pytest.fixture(scope="module", params=BOARDS)
def built(request, tmp_path_factory):
    """(board, model.elf, model_profile.elf) of the tiny model, built once per board."""
    board = need_toolchain(request.param)
    out = make_model(tmp_path_factory.mktemp(request.param))
    write_firmware(out, board)
    return board, build_firmware(out, board), build_firmware(out, board, profile=True)


def test_write_firmware_per_arch(tmp_path):
    """Only the architecture's own start-up file is written; the name reaches the harness."""
    arm = write_firmware(tmp_path / "a", load_board("stm32f746"), name="kws")
    assert (arm / "vectors.c").exists() and not (arm / "crt0.S").exists()
    assert '#include "kws.h"' in (arm / "main.c").read_text()
    assert "kws_run(input, output)" in (arm / "main.c").read_text()
    assert "mcugen_entry = kws_run;" in (arm / "link.ld").read_text()
    riscv = write_firmware(tmp_path / "a", load_board("gap8"))
    assert (riscv / "crt0.S").exists() and not (riscv / "vectors.c").exists()
    assert "0x80000000" in (riscv / "link.ld").read_text()
    with pytest.raises(UserError, match="not a C identifier"):
        write_firmware(tmp_path / "b", load_board("gap8"), name="my-model")


@pytest.mark.qemu
def test_outputs(built):
    board, elf, _ = built
    inputs = bytes(range(256))[: 5 * RECORD][::-1]
    assert run_firmware(elf, board, inputs, RECORD) == expected(inputs)


@pytest.mark.qemu
def test_failing_run_exits_nonzero(built):
    board, elf, _ = built
    with pytest.raises(UserError, match=r"(?s)exit status 1.*model_run failed"):
        run_firmware(elf, board, bytes(RECORD) + b"\xee" * RECORD, RECORD)
    with pytest.raises(UserError, match="not a whole number of input records"):
        run_firmware(elf, board, bytes(RECORD + 1), RECORD)


@pytest.mark.qemu
def test_instruction_count_is_exact_and_repeatable(built):
    board, elf, _ = built
    first = count_instructions(elf, board, bytes(range(RECORD)))
    assert first == count_instructions(elf, board, bytes(range(RECORD)))
    assert first["instructions"] > 0 and "marks" not in first


@pytest.mark.qemu
def test_marks_give_per_layer_counts(built):
    board, elf, profile_elf = built
    counts = count_instructions(profile_elf, board, bytes(RECORD), marks=True)
    marks = counts["marks"]
    assert len(marks) == 3 and marks == sorted(marks)
    layers = [b - a for a, b in zip(marks, marks[1:])]
    assert all(n > 0 for n in layers) and sum(layers) <= counts["instructions"]
    with pytest.raises(UserError, match="mcugen_profile_mark"):
        count_instructions(elf, board, bytes(RECORD), marks=True)


@pytest.mark.qemu
def test_elf_sizes_match_size_tool(built):
    board, elf, _ = built
    size_tool = [board.cross_prefix + "size", "-A", str(elf)]
    listing = subprocess.run(size_tool, capture_output=True, text=True, check=True).stdout
    rows = [line.split() for line in listing.splitlines() if line.startswith(".")]
    sections = {row[0]: int(row[1]) for row in rows}
    text = sections.get(".isr_vector", 0) + sections[".text"]
    rodata = sections[".rodata"] + sections.get(".ARM.exidx", 0)
    data, bss = sections[".data"], sections[".bss"]
    assert elf_sizes(elf, board.stack_bytes) == {
        "text": text, "rodata": rodata, "data": data, "bss": bss,
        "ro_bytes": text + rodata + data, "rw_bytes": data + bss + board.stack_bytes,
    }
    assert ("model_lut", 256) in largest_symbols(elf, n=10, kind="ro")
    assert ("scratch", RECORD) in largest_symbols(elf, n=10, kind="rw")


@pytest.mark.qemu
@pytest.mark.parametrize("name", ["stm32f746", "gap8"])
def test_ram_overflow_is_a_user_error(tmp_path, name):
    board = need_toolchain(name)
    big = "unsigned char big[400 * 1024];\nunsigned char *big_buffer(void) { return big; }\n"
    out = make_model(tmp_path, extra=big)
    insert_before_return(out / "model.c", "extern unsigned char *big_buffer(void); big_buffer()[0] = 1;")
    write_firmware(out, board)
    with pytest.raises(UserError, match=r"(?s)region `RAM' overflowed by \d+ bytes"):
        build_firmware(out, board)


@pytest.mark.qemu
def test_model_name_and_timeout(tmp_path):
    board = need_toolchain("gap8")
    forever = "void spin(void) { for (;;) __asm__ volatile(\"\"); }\n"
    out = make_model(tmp_path, name="kws", extra=forever)
    spin_on_aa = "if (((const uint8_t *)input)[0] == 0xAA) { extern void spin(void); spin(); }"
    insert_before_return(out / "kws.c", spin_on_aa)
    write_firmware(out, board, name="kws")
    elf = build_firmware(out, board)
    assert run_firmware(elf, board, bytes(2 * RECORD), RECORD) == expected(bytes(2 * RECORD))
    assert count_instructions(elf, board, bytes(RECORD))["instructions"] > 0
    with pytest.raises(UserError, match="did not finish within 1 s"):
        run_firmware(elf, board, b"\xaa" * RECORD, RECORD, timeout=1)


@pytest.mark.qemu
def test_flash_dry_run(tmp_path):
    board = need_toolchain("stm32f746")
    out = make_model(tmp_path)
    write_firmware(out, board)
    elf = build_firmware(out, board, for_board=True)
    assert flash(elf, board, "pyocd", dry_run=True) == f"pyocd flash -t stm32f746nghx {elf}"
    assert flash(elf, board, "stlink", dry_run=True).splitlines() == [
        f"arm-none-eabi-objcopy -O ihex {elf} {elf.with_suffix('.hex')}",
        f"st-flash --reset --format ihex write {elf.with_suffix('.hex')}",
    ]
    with pytest.raises(UserError, match="not linked for stm32f746's flash at 0x08000000"):
        flash(build_firmware(out, board), board, "pyocd", dry_run=True)
