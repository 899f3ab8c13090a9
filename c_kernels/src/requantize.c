/* QUANTIZE int8 -> int8: a linear map between two quantizations. */
#include "mcugen_kernel_util.h"

static int32_t requantize_one(const void *params, int32_t x)
{
    const mcugen_requantize_params *p = (const mcugen_requantize_params *)params;
    return mcugen_requantize_acc(x + p->input_offset, p->multiplier, p->shift, p->output_offset,
                                 p->act_min, p->act_max);
}

void mcugen_requantize_s8(const mcugen_requantize_params *params, int32_t size,
                          const int8_t *input, int8_t *output)
{
    const mcugen_requantize_params p = *params; /* output stores may alias anything: copy once */
    mcugen_map_s8(requantize_one, &p, input, size, output);
}
