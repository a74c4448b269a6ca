#pragma once
// A batch of tabular data as the kernels see it: a row-major float32 matrix [rows x features],
// NaN = missing, categorical features as integer codes stored in floats.
#include <cstddef>

namespace driftguard {

enum class MemorySpace { Host, Device };

struct BatchView {
  const float* data = nullptr;  // rows * features values, row-major; may be null when rows == 0
  std::size_t rows = 0;
  std::size_t features = 0;
  // Device batches are accepted by the CUDA backend only (a resident batch, no copy). Host batches
  // are accepted by both; the CUDA backend stages them through its pinned pool. A device batch
  // may still be in flight on the legacy default stream (a cudaMemcpy, a default-stream kernel):
  // the library orders its work after that stream. Work on the caller's own non-blocking streams
  // must be finished (or synchronised) before the call. Every call returns with its results
  // complete, in device memory too.
  MemorySpace space = MemorySpace::Host;
};

}  // namespace driftguard
