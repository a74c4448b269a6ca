#pragma once
// Error checks for CUDA runtime calls and kernel launches (RAFT_CUDA_TRY style).
#include <cuda_runtime.h>

#include "driftguard/errors.hpp"

namespace driftguard::cuda {

inline void check_status(cudaError_t status, const char* call, const char* file, int line) {
  if (status == cudaSuccess) return;
  // Clear a non-sticky error so that the next check on this thread does not report it again.
  cudaGetLastError();
  throw CudaError(call, file, line, cudaGetErrorString(status));
}

}  // namespace driftguard::cuda

// Throws driftguard::CudaError naming the call, file and line when `call` fails.
#define DG_CUDA_TRY(call) ::driftguard::cuda::check_status((call), #call, __FILE__, __LINE__)

// Right after a <<<...>>> launch: a bad configuration (grid, shared memory) is reported here,
// naming the kernel, instead of surfacing at a later, unrelated call.
#define DG_CUDA_TRY_LAUNCH(kernel_name) \
  ::driftguard::cuda::check_status(cudaPeekAtLastError(), kernel_name, __FILE__, __LINE__)
