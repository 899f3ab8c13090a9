/* Semihosting: the firmware's only I/O. QEMU serves it (files relative to its working directory);
 * on a real board a debug probe with semihosting enabled does. */
#ifndef MCUGEN_SEMIHOST_H
#define MCUGEN_SEMIHOST_H

#include <stddef.h>

enum { SH_MODE_RB = 1, SH_MODE_WB = 5 }; /* the fopen modes "rb" and "wb" */

void sh_write0(const char *text);                     /* to the console */
int sh_open(const char *path, int mode);              /* a handle, or -1 */
int sh_read(int handle, void *buf, size_t n);         /* 0 when all n bytes were read */
int sh_write(int handle, const void *buf, size_t n);  /* 0 when all n bytes were written */
long sh_flen(int handle);                             /* the file's length, or -1 */
int sh_close(int handle);                             /* 0 on success */
__attribute__((noreturn)) void sh_exit(int status);  /* QEMU exits with this status */

/* The start-up code fills the free stack with this word; main() reports how much was overwritten. */
#define STACK_PAINT 0x5AC3A53Cu

#endif
