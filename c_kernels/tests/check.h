/* A minimal assertion for the kernel unit tests: report where, fail the process. */
#ifndef MCUGEN_TEST_CHECK_H
#define MCUGEN_TEST_CHECK_H

#include <stdio.h>
#include <stdlib.h>

#define CHECK_EQ(got, want)                                                                    \
    do {                                                                                       \
        const long long got_ = (long long)(got), want_ = (long long)(want);                    \
        if (got_ != want_) {                                                                   \
            fprintf(stderr, "%s:%d: %s = %lld, expected %lld\n", __FILE__, __LINE__, #got,     \
                    got_, want_);                                                              \
            exit(1);                                                                           \
        }                                                                                      \
    } while (0)

#define CHECK_ARRAY(got, want, n)                                                              \
    do {                                                                                       \
        int i_;                                                                                \
        for (i_ = 0; i_ < (int)(n); i_++) {                                                    \
            CHECK_EQ((got)[i_], (want)[i_]);                                                   \
        }                                                                                      \
    } while (0)

#endif
