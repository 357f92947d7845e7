// The 2^(i/32) table of GlibcExpf (numerics.h), computed on the host and
// uploaded to each device once.
#ifndef SHARDLM_BACKENDS_CUDA_EXP_TABLE_H_
#define SHARDLM_BACKENDS_CUDA_EXP_TABLE_H_

#include <array>
#include <cstdint>

#include "backends/cuda/numerics.h"

namespace shardlm::cuda {

// entry[i] = bits(double(2^(i/32))) - (i << 47): adding k << 47 to the
// entry of k % 32 gives the bits of 2^(k/32) for the exponent range expf
// needs.
const std::array<uint64_t, kExpTableSize>& ExpTable();

}  // namespace shardlm::cuda

#endif  // SHARDLM_BACKENDS_CUDA_EXP_TABLE_H_
