#include <string.h>

#include <stdint.h>

/* Without this, GCC recognises these loops as memcpy/memset and compiles them into calls to themselves. */
#define PLAIN_LOOPS __attribute__((optimize("no-tree-loop-distribute-patterns")))

/* A word that may alias any object, for the aligned copy. */
typedef uint32_t __attribute__((may_alias)) any_word;

PLAIN_LOOPS void *memcpy(void *restrict dst, const void *restrict src, size_t n)
{
    uint8_t *d = dst;
    const uint8_t *s = src;
    if ((((uintptr_t)d | (uintptr_t)s) & 3u) == 0) { /* the kernels' row copies: a word at a time */
        for (; n >= 4; n -= 4, d += 4, s += 4)
            *(any_word *)d = *(const any_word *)s;
    }
    while (n--)
        *d++ = *s++;
    return dst;
}

PLAIN_LOOPS void *memmove(void *dst, const void *src, size_t n)
{
    uint8_t *d = dst;
    const uint8_t *s = src;
    if (d < s) {
        while (n--)
            *d++ = *s++;
    } else {
        while (n--)
            d[n] = s[n];
    }
    return dst;
}

PLAIN_LOOPS void *memset(void *dst, int value, size_t n)
{
    uint8_t *d = dst;
    while (n--)
        *d++ = (uint8_t)value;
    return dst;
}

PLAIN_LOOPS int memcmp(const void *a, const void *b, size_t n)
{
    const uint8_t *x = a, *y = b;
    for (; n; n--, x++, y++)
        if (*x != *y)
            return *x - *y;
    return 0;
}

PLAIN_LOOPS size_t strlen(const char *s)
{
    size_t n = 0;
    while (s[n])
        n++;
    return n;
}
