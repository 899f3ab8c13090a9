/* RISC-V entry, placed first in flash: set the stack and the trap vector, then run Reset_Handler. */
    .section .text.init, "ax"
    .global _start
_start:
    la sp, _estack
    la t0, trap_entry
    .option push
    .option arch, +zicsr
    csrw mtvec, t0
    .option pop
    j Reset_Handler

    .text
    .balign 4                   /* mtvec holds a 4-byte aligned address (direct mode) */
trap_entry:
    j fault_handler
