/* The Internet checksum's one's complement sum (RFC 1071), for the cffi accelerator.
 *
 * mirage_ones_sum returns the folded 16-bit one's complement sum of len bytes read as
 * big-endian 16-bit words (an odd last byte is padded with zero): 0 only if every
 * word is zero, 0xFFFF for any other multiple of 0xFFFF, exactly as the pure-Python
 * fallback (_checksum_py.ones_sum) computes it.
 */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

uint16_t mirage_ones_sum(const uint8_t *data, size_t len)
{
    uint64_t sum = 0;
    size_t i = 0;
    /* 32-bit big-endian words into a 64-bit accumulator: no carry is lost for
     * inputs below 2**32 words. */
    for (; i + 4 <= len; i += 4) {
        sum += ((uint32_t)data[i] << 24) | ((uint32_t)data[i + 1] << 16) |
               ((uint32_t)data[i + 2] << 8) | (uint32_t)data[i + 3];
    }
    for (; i + 2 <= len; i += 2) {
        sum += ((uint32_t)data[i] << 8) | (uint32_t)data[i + 1];
    }
    if (i < len) {
        sum += (uint32_t)data[i] << 8;
    }
    while (sum >> 16) {
        sum = (sum & 0xFFFF) + (sum >> 16);
    }
    return (uint16_t)sum;
}
