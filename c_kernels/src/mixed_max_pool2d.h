/*
 * MAX_POOL_2D, mixed precision: the body of every mcugen_max_pool2d_<in>o<out> variant. A wrapper
 * defines MCUGEN_IN_SIGNED, MCUGEN_IN_BITS and MCUGEN_OUT_BITS, then includes this file, which
 * defines the function they name and undefines them (see mcugen_mixed.h; no include guard on
 * purpose). Input and output share scale and zero point: no requantization, only the clamp.
 */
#include "mcugen_mixed_util.h"

MCUGEN_SIGNATURE_pool(MCUGEN_POOL_NAME(max_pool2d, MCUGEN_IN_SIGNED, MCUGEN_IN_BITS, MCUGEN_OUT_BITS))
{
    mcugen_mixed_pool(params, input_dims, input, output_dims, output, 1, MCUGEN_IN_BITS,
                      MCUGEN_IN_SIGNED, MCUGEN_OUT_BITS);
}

#undef MCUGEN_IN_SIGNED
#undef MCUGEN_IN_BITS
#undef MCUGEN_OUT_BITS
