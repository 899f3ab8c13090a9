/* The firmware links no C library: these are the string functions it provides (string.c),
 * the ones GCC may also call on its own for copies and clears. */
#ifndef MCUGEN_STRING_H
#define MCUGEN_STRING_H

#include <stddef.h>

void *memcpy(void *restrict dst, const void *restrict src, size_t n);
void *memmove(void *dst, const void *src, size_t n);
void *memset(void *dst, int value, size_t n);
int memcmp(const void *a, const void *b, size_t n);
size_t strlen(const char *s);

#endif
