#pragma once
// Internal: memcpy on several threads. The CUDA backend stages pageable host batches into pinned
// memory with it: one thread's copy out of pageable memory moves a fraction of what the PCIe link
// takes (about 8 GB/s against 50 on an H200 machine), and the GPU would wait on it.
#include <cstddef>

namespace driftguard::detail {

// Copies `bytes` from `src` to `dst` (not overlapping) on up to `threads` threads, in pieces of at
// least 1 MiB.
void parallel_copy(int threads, void* dst, const void* src, std::size_t bytes);

}  // namespace driftguard::detail
