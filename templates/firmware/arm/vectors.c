/* Cortex-M vector table, placed first in flash: the core loads SP and PC from it at reset. */
extern char _estack[];
void Reset_Handler(void);
void fault_handler(void);

#define FAULT fault_handler

__attribute__((section(".isr_vector"), used)) static const struct {
    char *initial_sp;
    void (*handler[15])(void);
} vectors = {
    _estack,
    {
        Reset_Handler,
        FAULT, FAULT, FAULT, FAULT, FAULT, /* NMI, HardFault, MemManage, BusFault, UsageFault */
        0, 0, 0, 0,
        FAULT, FAULT, 0, FAULT, FAULT,     /* SVCall, DebugMonitor, -, PendSV, SysTick */
    },
};
