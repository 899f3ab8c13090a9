"""Board files, size parsing and flash commands: no cross toolchain needed."""
from pathlib import Path

import pytest

from mcugen.boards import list_boards, load_board, parse_size
from mcugen.errors import UserError
from mcugen.toolchain.flash import flash_command


@pytest.mark.parametrize(
    "text, expected",
    [
        ("320K", 327680),
        ("320k", 327680),
        ("320KB", 327680),
        ("512KiB", 524288),
        ("1M", 1048576),
        ("2MB", 2097152),
        ("512B", 512),
        ("327680", 327680),
        (" 4096 ", 4096),
        ("0x1000", 4096),
        ("0X1000", 4096),
        (327680, 327680),
        (0, 0),
    ],
)
def test_parse_size(text, expected):
    assert parse_size(text) == expected


@pytest.mark.parametrize(
    "text", ["", "K", "abc", "1.5M", "-1", "12Q", "320iB", "320 K B x", -5, True, None, 1.5]
)
def test_parse_size_rejects(text):
    with pytest.raises(ValueError, match="invalid size"):
        parse_size(text)


def test_list_boards():
    assert {"stm32f746", "nucleo-l4r5zi", "stm32h743", "gap8"} <= set(list_boards())


@pytest.mark.parametrize("name", ["stm32f746", "nucleo-l4r5zi", "stm32h743", "gap8"])
def test_boards_are_consistent(name):
    board = load_board(name)
    assert board.name == name
    assert board.arch in ("arm", "riscv")
    assert board.clock_hz > 0 and board.stack_bytes > 0 and board.stack_bytes % 16 == 0
    # QEMU links with the board's own sizes, so what overflows the board overflows there too.
    assert board.qemu_flash.size == board.flash.size
    assert board.qemu_ram.size == board.ram.size
    assert board.ram.name


def test_board_details():
    f746 = load_board("stm32f746")
    assert f746.cflags == ("-mcpu=cortex-m7", "-mthumb", "-mfpu=fpv5-sp-d16", "-mfloat-abi=hard")
    assert (f746.flash.origin, f746.flash.size) == (0x08000000, 1 << 20)
    assert (f746.ram.origin, f746.ram.size) == (0x20000000, 320 * 1024)
    assert (f746.qemu_machine, f746.qemu_flash.origin) == ("mps2-an500", 0)
    assert load_board("nucleo-l4r5zi").qemu_machine == "mps2-an386"
    h743 = load_board("stm32h743")
    assert "-mfpu=fpv5-d16" in h743.cflags
    assert (h743.ram.name, h743.ram.origin, h743.ram.size) == ("AXI SRAM", 0x24000000, 512 * 1024)
    gap8 = load_board("gap8")
    assert gap8.cflags == ("-march=rv32imc", "-mabi=ilp32")
    assert (gap8.qemu_binary, gap8.qemu_machine) == ("qemu-system-riscv32", "virt")
    assert "-bios" in gap8.qemu_args
    assert gap8.flash.size + gap8.ram.size == 512 * 1024  # the L2 split


def test_unknown_board():
    with pytest.raises(UserError) as e:
        load_board("nope")
    assert str(e.value) == f"unknown board 'nope'; known boards: {', '.join(list_boards())}"
    with pytest.raises(UserError, match="unknown board"):
        load_board("../boards/stm32f746")


def test_flash_commands():
    board, elf = load_board("stm32f746"), Path("/o/firmware/model_board.elf")
    assert flash_command(elf, board, "pyocd") == ["pyocd", "flash", "-t", "stm32f746nghx", str(elf)]
    assert flash_command(elf, board, "openocd") == [
        "openocd", "-f", "board/stm32f7discovery.cfg", "-c", f"program {{{elf}}} verify reset exit"]
    assert flash_command(elf, board, "stlink") == [
        "st-flash", "--reset", "--format", "ihex", "write", "/o/firmware/model_board.hex"]
    with pytest.raises(UserError, match="unknown probe 'jlink'"):
        flash_command(elf, board, "jlink")
    for probe in ("pyocd", "openocd", "stlink"):
        with pytest.raises(UserError, match=f"gap8 cannot be flashed with {probe}: .*GAP SDK"):
            flash_command(elf, load_board("gap8"), probe)
