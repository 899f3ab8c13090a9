/*
 * Packed tensors of 2-, 4- and 8-bit integers: element access for the mixed-precision kernels.
 *
 * Layout (DESIGN.md, and mcugen/quant/packing.py on the Python side): elements are packed little
 * end first over the flattened tensor. Element i of a `bits`-bit tensor lives in byte
 * i * bits / 8 at bit (i * bits) % 8; for 4 bits, element 2i is the low nibble and 2i+1 the high
 * nibble (TFLM's int4 packing). An 8-bit tensor is plain bytes. Four consecutive elements that
 * start on a byte boundary fill whole bytes at every width, the "group" the loops below read.
 *
 * Each helper takes `bits` and `is_signed` as arguments so that it is written once for every
 * width. The kernels always pass compile-time constants, and the helpers are forced inline, so
 * the compiler folds every test of them and the index arithmetic becomes shifts and masks.
 *
 * Signed fields are sign-extended by a left shift into the top bits of a uint32_t and an
 * arithmetic right shift of the int32_t it converts to: GCC and Clang (every compiler mcugen
 * targets) convert modulo 2^32 and shift arithmetically; on ARMv7-M this is one SBFX.
 */
#ifndef MCUGEN_PACKING_H
#define MCUGEN_PACKING_H

#include <stdint.h>

#if defined(__GNUC__)
#define MCUGEN_ALWAYS_INLINE static inline __attribute__((always_inline))
#else
#define MCUGEN_ALWAYS_INLINE static inline
#endif

/* log2 of the elements per byte: 0, 1, 2 for 8, 4, 2 bits. */
MCUGEN_ALWAYS_INLINE uint32_t mcugen_packed_log_per_byte(int32_t bits)
{
    return bits == 8 ? 0u : bits == 4 ? 1u : 2u;
}

/* The `bits`-bit field at bit `shift` of `word`, sign- or zero-extended. */
MCUGEN_ALWAYS_INLINE int32_t mcugen_packed_field(uint32_t word, int32_t shift, int32_t bits,
                                                 int32_t is_signed)
{
    if (is_signed) {
        return (int32_t)(word << (32 - bits - shift)) >> (32 - bits);
    }
    return (int32_t)((word >> shift) & ((UINT32_C(1) << bits) - 1u));
}

/* Element `index` (>= 0) of a packed tensor. */
MCUGEN_ALWAYS_INLINE int32_t mcugen_packed_get(const uint8_t *base, int32_t index, int32_t bits,
                                               int32_t is_signed)
{
    const uint32_t log = mcugen_packed_log_per_byte(bits);
    const uint32_t i = (uint32_t)index;
    const int32_t shift = (int32_t)(i & ((UINT32_C(1) << log) - 1u)) * bits;
    return mcugen_packed_field(base[i >> log], shift, bits, is_signed);
}

/* Sets element `index` (>= 0) to the low `bits` bits of `value`. Read-modify-write: the other
 * elements sharing the byte, and unused bits after a tensor's last element, are kept. */
MCUGEN_ALWAYS_INLINE void mcugen_packed_set(uint8_t *base, int32_t index, int32_t value,
                                            int32_t bits)
{
    const uint32_t log = mcugen_packed_log_per_byte(bits);
    const uint32_t i = (uint32_t)index;
    if (bits == 8) {
        base[i] = (uint8_t)value;
    } else {
        const uint32_t shift = (i & ((UINT32_C(1) << log) - 1u)) * (uint32_t)bits;
        const uint32_t mask = ((UINT32_C(1) << bits) - 1u) << shift;
        uint8_t *byte = base + (i >> log);
        *byte = (uint8_t)((*byte & ~mask) | (((uint32_t)value << shift) & mask));
    }
}

/* The four elements starting at byte `p` (bits / 2 bytes) as one little-endian word; element j
 * is its field at bit j * bits. Bytes are read one by one: `p` need not be aligned. */
MCUGEN_ALWAYS_INLINE uint32_t mcugen_packed_group4(const uint8_t *p, int32_t bits)
{
    uint32_t word = p[0];
    if (bits >= 4) {
        word |= (uint32_t)p[1] << 8;
    }
    if (bits == 8) {
        word |= ((uint32_t)p[2] << 16) | ((uint32_t)p[3] << 24);
    }
    return word;
}

/*
 * dst[k * stride] = element (first + k) + offset, for k < count: the unpacking the weighted
 * kernels do into int16 scratch. Elements before the first byte boundary and after the last
 * whole group are read one at a time; the rest four at a time from whole bytes.
 */
MCUGEN_ALWAYS_INLINE void mcugen_unpack_run(int16_t *dst, int32_t stride, const uint8_t *base,
                                            int32_t first, int32_t count, int32_t offset,
                                            int32_t bits, int32_t is_signed)
{
    const int32_t align = (1 << mcugen_packed_log_per_byte(bits)) - 1;
    const uint8_t *p;
    int32_t k = 0, groups;
    for (; k < count && ((first + k) & align) != 0; k++) {
        dst[k * stride] = (int16_t)(mcugen_packed_get(base, first + k, bits, is_signed) + offset);
    }
    p = base + ((uint32_t)(first + k) >> mcugen_packed_log_per_byte(bits));
    for (groups = (count - k) >> 2; groups > 0; groups--, k += 4, p += bits / 2) {
        const uint32_t word = mcugen_packed_group4(p, bits);
        int16_t *d = dst + k * stride;
        d[0] = (int16_t)(mcugen_packed_field(word, 0, bits, is_signed) + offset);
        d[stride] = (int16_t)(mcugen_packed_field(word, bits, bits, is_signed) + offset);
        d[2 * stride] = (int16_t)(mcugen_packed_field(word, 2 * bits, bits, is_signed) + offset);
        d[3 * stride] = (int16_t)(mcugen_packed_field(word, 3 * bits, bits, is_signed) + offset);
    }
    for (; k < count; k++) {
        dst[k * stride] = (int16_t)(mcugen_packed_get(base, first + k, bits, is_signed) + offset);
    }
}

#endif /* MCUGEN_PACKING_H */
