/* Start-up shared by every core: copy .data from flash to RAM, zero .bss, enable the FPU, run main().
 * Cortex-M enters Reset_Handler from the vector table (arm/vectors.c); RISC-V from _start (riscv/crt0.S). */
#include <stdint.h>

#include "semihost.h"

extern uint32_t _sidata[], _sdata[], _edata[], _sbss[], _ebss[]; /* from link.ld, word aligned */
extern uint32_t _sstack[]; /* the bottom of the stack reserve */
int main(void);

/* Plain loops: GCC would otherwise call memcpy/memset before .data and .bss are ready. */
__attribute__((noreturn, optimize("no-tree-loop-distribute-patterns"))) void Reset_Handler(void)
{
    const uint32_t *src = _sidata;
    for (uint32_t *dst = _sdata; dst < _edata;)
        *dst++ = *src++;
    for (uint32_t *dst = _sbss; dst < _ebss;)
        *dst++ = 0;
    /* Paint the unused stack, so that the harness can measure how deep the run went. */
    uint32_t here;
    for (uint32_t *dst = _sstack; dst < &here - 16;)
        *dst++ = STACK_PAINT;
#ifdef __ARM_FP
    *(volatile uint32_t *)0xE000ED88 |= 0xFu << 20; /* CPACR: full access to CP10/CP11 */
    __asm__ volatile("dsb\n\tisb");
#endif
    sh_exit(main());
}

/* Every fault or trap ends the run with status 255, so a crash never hangs a test. */
__attribute__((noreturn)) void fault_handler(void)
{
    sh_write0("FAULT\n");
    sh_exit(255);
}
