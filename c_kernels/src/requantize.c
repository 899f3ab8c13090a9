/* QUANTIZE int8 -> int8: a linear map between two quantizations. */
#include "mcugen_kernel_util.h"

void mcugen_requantize_s8(const mcugen_requantize_params *params, int32_t size,
                          const int8_t *input, int8_t *output)
{
    const mcugen_requantize_params p = *params; /* one load per field, not one per element */
    int32_t i;
    for (i = 0; i < size; i++) {
        mcugen_set_s8(output, i,
                      mcugen_requantize_acc(mcugen_get_s8(input, i) + p.input_offset, p.multiplier,
                                            p.shift, p.output_offset, p.act_min, p.act_max));
    }
}
