/* PAD and CONCATENATION on hand-computed numbers. */
#include "check.h"
#include "mcugen_kernels.h"

static void test_pad(void)
{
    const int8_t input[2] = {1, 2};
    const mcugen_pad_params p = {{0, 0, 1, 0}, {0, 1, 0, 1}, 9};
    const mcugen_dims in_dims = {1, 1, 2, 1};
    /* output {1, 2, 3, 2}: one padded pixel before each row, one padded row, a padded channel */
    const int8_t want[12] = {9, 9, 1, 9, 2, 9, 9, 9, 9, 9, 9, 9};
    int8_t out[12];
    mcugen_pad_s8(&p, &in_dims, input, out);
    CHECK_ARRAY(out, want, 12);
}

static void test_concatenation(void)
{
    const int8_t a[2] = {1, 2}, b[4] = {5, 6, 7, 8}; /* [2, 1] and [2, 2] along axis 1 */
    const int8_t *const inputs[2] = {a, b};
    const int32_t copy_size[2] = {1, 2};
    const int8_t want[6] = {1, 5, 6, 2, 7, 8};
    int8_t out[6];
    mcugen_concatenation_s8(2, inputs, copy_size, 2, out);
    CHECK_ARRAY(out, want, 6);
}

int main(void)
{
    test_pad();
    test_concatenation();
    return 0;
}
