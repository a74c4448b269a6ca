#pragma once
// CUDA-only helpers of the benchmark harnesses: a checked runtime call, and timing with CUDA
// events on the harness's own non-blocking stream after evicting L2 (a memset of twice its size),
// so every timed call starts from device memory.
#include <cuda_runtime.h>

#include <algorithm>
#include <cstddef>
#include <stdexcept>
#include <string>

namespace driftguard::bench {

inline void cuda_check(cudaError_t status, const char* what) {
  if (status != cudaSuccess) {
    throw std::runtime_error(std::string(what) + ": " + cudaGetErrorString(status));
  }
}

class CudaTimer {
 public:
  CudaTimer() {
    int device = 0, l2 = 0;
    cuda_check(cudaGetDevice(&device), "cudaGetDevice");
    cuda_check(cudaDeviceGetAttribute(&l2, cudaDevAttrL2CacheSize, device), "L2 size");
    flush_bytes_ = 2 * static_cast<std::size_t>(std::max(l2, 1 << 20));
    cuda_check(cudaMalloc(&d_flush_, flush_bytes_), "cudaMalloc flush");
    cuda_check(cudaStreamCreateWithFlags(&stream_, cudaStreamNonBlocking), "stream");
    cuda_check(cudaEventCreate(&start_), "event");
    cuda_check(cudaEventCreate(&stop_), "event");
  }
  ~CudaTimer() {
    cudaFree(d_flush_);
    cudaEventDestroy(start_);
    cudaEventDestroy(stop_);
    cudaStreamDestroy(stream_);
  }
  CudaTimer(const CudaTimer&) = delete;
  CudaTimer& operator=(const CudaTimer&) = delete;

  cudaStream_t stream() const noexcept { return stream_; }

  // Seconds of `work` between two events, after evicting L2. Library calls return once their
  // results are on the host, so this is the latency a caller sees.
  template <class Work>
  double timed(Work&& work, int salt) {
    cuda_check(cudaMemsetAsync(d_flush_, salt & 0xff, flush_bytes_, stream_), "flush L2");
    cuda_check(cudaStreamSynchronize(stream_), "flush sync");
    cuda_check(cudaEventRecord(start_, stream_), "record");
    work();
    cuda_check(cudaEventRecord(stop_, stream_), "record");
    cuda_check(cudaEventSynchronize(stop_), "sync");
    float ms = 0;
    cuda_check(cudaEventElapsedTime(&ms, start_, stop_), "elapsed");
    return ms / 1e3;
  }

 private:
  void* d_flush_ = nullptr;
  std::size_t flush_bytes_ = 0;
  cudaStream_t stream_ = nullptr;
  cudaEvent_t start_ = nullptr, stop_ = nullptr;
};

}  // namespace driftguard::bench
