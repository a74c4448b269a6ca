#pragma once
// Internal: the CUDA resources one Context keeps and reuses across calls.
#include <cuda_runtime.h>

#include <array>
#include <cstddef>
#include <utility>
#include <vector>

#include "kernels/backend.hpp"

namespace driftguard::cuda {

// Makes `device` current on the calling thread for a scope and restores the previous device, so
// that the library does not change the caller's CUDA state.
class DeviceGuard {
 public:
  explicit DeviceGuard(int device);
  ~DeviceGuard();
  DeviceGuard(const DeviceGuard&) = delete;
  DeviceGuard& operator=(const DeviceGuard&) = delete;

 private:
  int previous_ = -1;
};

// Whether host memory at `pointer` is page-locked (cudaHostAlloc, cudaHostRegister): the GPU's
// copy engines read it where it lies, without staging.
bool is_page_locked(const void* pointer);

class DeviceState {
 public:
  // Host batches are staged through this many buffers: the CPU fills one while the GPU reads the
  // other.
  static constexpr int kStagingSlots = 2;
  struct SlotEvents {
    cudaEvent_t h2d_done = nullptr;      // the slot's pinned input may be refilled
    cudaEvent_t compute_done = nullptr;  // the slot's device input may be overwritten
    cudaEvent_t d2h_done = nullptr;      // the slot's pinned masks hold a finished chunk
  };

  explicit DeviceState(int device);
  ~DeviceState();
  DeviceState(const DeviceState&) = delete;
  DeviceState& operator=(const DeviceState&) = delete;

  int device() const noexcept { return device_; }
  const cudaDeviceProp& properties() const noexcept { return properties_; }
  // Kernels, memsets and downloads run on `stream`; uploads of host batches on `copy_stream`.
  // Both are non-blocking: they never synchronise with the legacy default stream.
  cudaStream_t stream() const noexcept { return stream_; }
  cudaStream_t copy_stream() const noexcept { return copy_stream_; }
  const SlotEvents& slot_events(int slot) const noexcept { return slot_events_[slot]; }
  // Call before a kernel reads a caller's device batch: orders `stream` after the work already
  // queued on the legacy default stream (and, through it, on every blocking stream), such as the
  // cudaMemcpy that filled the batch, which may return before its last DMA lands. Nothing for a
  // host batch. Work on the caller's own non-blocking streams is the caller's to finish first
  // (batch.hpp).
  void follow_caller(const BatchView& batch);

  // At least `bytes` of device memory, 256-byte aligned. Grows geometrically and is kept, so that
  // steady-state calls allocate nothing; contents are not preserved across growth. Waits for the
  // streams before freeing the old buffer.
  std::byte* device_workspace(std::size_t bytes);
  // The same for pinned host memory (staging of host batches, uploads and downloads).
  std::byte* host_staging(std::size_t bytes);
  // Synchronous copies between host memory and the device at the copy engine's speed, after the
  // work queued on `stream`. Pageable host memory goes through host_staging in pieces, two in
  // flight, the host's side copied by `host_threads` (a single thread's copy out of or into
  // pageable memory moves a fraction of what the link takes); page-locked memory and small
  // copies go directly.
  void upload(int host_threads, void* d_dst, const void* h_src, std::size_t bytes);
  void download(int host_threads, void* h_dst, const void* d_src, std::size_t bytes);
  // Resident blocks per SM of `kernel` at this launch shape, after raising the kernel's dynamic
  // shared-memory limit where needed (48 KiB less its static shared memory, by default). Cached:
  // the runtime's queries are not free, and this sits on every call's path.
  int blocks_per_sm(const void* kernel, int threads, std::size_t shared_bytes);

 private:
  void synchronize();
  void release() noexcept;

  int device_;
  cudaDeviceProp properties_{};
  cudaStream_t stream_ = nullptr;
  cudaStream_t copy_stream_ = nullptr;
  std::array<SlotEvents, kStagingSlots> slot_events_{};
  cudaEvent_t caller_done_ = nullptr;
  std::byte* d_workspace_ = nullptr;
  std::size_t workspace_bytes_ = 0;
  std::byte* h_staging_ = nullptr;
  std::size_t staging_bytes_ = 0;
  struct Occupancy {
    const void* kernel;
    int threads;
    std::size_t shared_bytes;
    int blocks_per_sm;
  };
  std::vector<Occupancy> occupancy_;
};

}  // namespace driftguard::cuda
