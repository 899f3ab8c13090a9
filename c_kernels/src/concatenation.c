/* CONCATENATION, int8 (all inputs share the output's quantization: a copy). */
#include <string.h>

#include "mcugen_kernel_util.h"

void mcugen_concatenation_s8(int32_t num_inputs, const int8_t *const *inputs,
                             const int32_t *copy_size, int32_t outer, int8_t *output)
{
    int32_t r, k;
    for (r = 0; r < outer; r++) {
        for (k = 0; k < num_inputs; k++) {
            memcpy(output, inputs[k] + r * copy_size[k], (size_t)copy_size[k]);
            output += copy_size[k];
        }
    }
}
