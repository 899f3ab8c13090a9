#include "semihost.h"

#include <stdint.h>
#include <string.h>

enum {
    SYS_OPEN = 0x01,
    SYS_CLOSE = 0x02,
    SYS_WRITE0 = 0x04,
    SYS_WRITE = 0x05,
    SYS_READ = 0x06,
    SYS_FLEN = 0x0C,
    SYS_EXIT_EXTENDED = 0x20, /* the only exit call that passes any status on AArch32 and RV32 */
};
#define ADP_STOPPED_APPLICATION_EXIT 0x20026u

/* One call: the operation in r0/a0, its argument block in r1/a1; the result comes back in r0/a0. */
static intptr_t semihost(uintptr_t op, const void *args)
{
#if defined(__arm__)
    register uintptr_t r0 __asm__("r0") = op;
    register const void *r1 __asm__("r1") = args;
    __asm__ volatile("bkpt 0xab" : "+r"(r0) : "r"(r1) : "memory");
#elif defined(__riscv)
    register uintptr_t r0 __asm__("a0") = op;
    register const void *r1 __asm__("a1") = args;
    /* The debugger recognises ebreak as a semihosting call only inside this exact,
       uncompressed three-instruction sequence. */
    __asm__ volatile(".option push\n\t.option norvc\n\t"
                     "slli zero, zero, 0x1f\n\tebreak\n\tsrai zero, zero, 7\n\t"
                     ".option pop"
                     : "+r"(r0) : "r"(r1) : "memory");
#else
#error "semihosting: unsupported architecture"
#endif
    return (intptr_t)r0;
}

void sh_write0(const char *text)
{
    semihost(SYS_WRITE0, text);
}

int sh_open(const char *path, int mode)
{
    const uintptr_t args[3] = {(uintptr_t)path, (uintptr_t)mode, strlen(path)};
    return (int)semihost(SYS_OPEN, args);
}

int sh_read(int handle, void *buf, size_t n)
{
    const uintptr_t args[3] = {(uintptr_t)handle, (uintptr_t)buf, n};
    return (int)semihost(SYS_READ, args); /* the number of bytes not read */
}

int sh_write(int handle, const void *buf, size_t n)
{
    const uintptr_t args[3] = {(uintptr_t)handle, (uintptr_t)buf, n};
    return (int)semihost(SYS_WRITE, args); /* the number of bytes not written */
}

long sh_flen(int handle)
{
    const uintptr_t args[1] = {(uintptr_t)handle};
    return (long)semihost(SYS_FLEN, args);
}

int sh_close(int handle)
{
    const uintptr_t args[1] = {(uintptr_t)handle};
    return (int)semihost(SYS_CLOSE, args);
}

void sh_exit(int status)
{
    const uintptr_t args[2] = {ADP_STOPPED_APPLICATION_EXIT, (uintptr_t)status};
    semihost(SYS_EXIT_EXTENDED, args);
    for (;;) {
    }
}
