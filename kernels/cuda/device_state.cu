// CUDA backend resources: device discovery, the per-Context stream pair, events and the reusable
// device workspace / pinned staging buffers.
#include <algorithm>
#include <string>

#include "driftguard/errors.hpp"
#include "kernels/backend.hpp"
#include "kernels/cuda/detail/cuda_check.cuh"
#include "kernels/cuda/detail/device_state.cuh"
#include "kernels/parallel_copy.hpp"

namespace driftguard::cuda {
namespace {

// Growth step for the reused buffers: at least 1.5x the previous size, in whole MiB, so that a
// slowly growing batch size reallocates only a logarithmic number of times.
std::size_t grown_size(std::size_t current, std::size_t needed) {
  constexpr std::size_t kMiB = std::size_t{1} << 20;
  const std::size_t target = std::max(needed, current + current / 2);
  return (target + kMiB - 1) / kMiB * kMiB;
}

// Staged copies move pieces of this many bytes; below it, the driver's own staging is as fast.
constexpr std::size_t kStagePiece = std::size_t{32} << 20;

// Copies of at most a piece, or from or to page-locked `host` memory, need no staging: done here
// (and waited for), returning true.
bool copied_directly(cudaStream_t stream, void* dst, const void* src, std::size_t bytes,
                     cudaMemcpyKind kind, const void* host) {
  if (bytes > kStagePiece && !is_page_locked(host)) return false;
  DG_CUDA_TRY(cudaMemcpyAsync(dst, src, bytes, kind, stream));
  DG_CUDA_TRY(cudaStreamSynchronize(stream));
  return true;
}

}  // namespace

DeviceGuard::DeviceGuard(int device) {
  DG_CUDA_TRY(cudaGetDevice(&previous_));
  if (previous_ != device) DG_CUDA_TRY(cudaSetDevice(device));
}

DeviceGuard::~DeviceGuard() {
  int current = -1;
  if (cudaGetDevice(&current) == cudaSuccess && current != previous_) cudaSetDevice(previous_);
}

DeviceState::DeviceState(int device) : device_(device) {
  DeviceGuard guard(device);
  try {
    DG_CUDA_TRY(cudaGetDeviceProperties(&properties_, device));
    DG_CUDA_TRY(cudaStreamCreateWithFlags(&stream_, cudaStreamNonBlocking));
    DG_CUDA_TRY(cudaStreamCreateWithFlags(&copy_stream_, cudaStreamNonBlocking));
    DG_CUDA_TRY(cudaEventCreateWithFlags(&caller_done_, cudaEventDisableTiming));
    for (SlotEvents& events : slot_events_) {
      DG_CUDA_TRY(cudaEventCreateWithFlags(&events.h2d_done, cudaEventDisableTiming));
      DG_CUDA_TRY(cudaEventCreateWithFlags(&events.compute_done, cudaEventDisableTiming));
      DG_CUDA_TRY(cudaEventCreateWithFlags(&events.d2h_done, cudaEventDisableTiming));
    }
  } catch (...) {
    release();
    throw;
  }
}

DeviceState::~DeviceState() {
  int previous = -1;
  const bool switched = cudaGetDevice(&previous) == cudaSuccess && previous != device_ &&
                        cudaSetDevice(device_) == cudaSuccess;
  release();
  if (switched) cudaSetDevice(previous);
}

void DeviceState::release() noexcept {
  // Errors are ignored on purpose: this runs in destructors, and a failed free leaves nothing
  // the caller could repair.
  if (stream_ != nullptr) cudaStreamSynchronize(stream_);
  if (copy_stream_ != nullptr) cudaStreamSynchronize(copy_stream_);
  if (d_workspace_ != nullptr) cudaFree(d_workspace_);
  if (h_staging_ != nullptr) cudaFreeHost(h_staging_);
  for (SlotEvents& events : slot_events_) {
    for (cudaEvent_t event : {events.h2d_done, events.compute_done, events.d2h_done}) {
      if (event != nullptr) cudaEventDestroy(event);
    }
    events = {};
  }
  if (caller_done_ != nullptr) cudaEventDestroy(caller_done_);
  caller_done_ = nullptr;
  if (copy_stream_ != nullptr) cudaStreamDestroy(copy_stream_);
  if (stream_ != nullptr) cudaStreamDestroy(stream_);
  d_workspace_ = nullptr;
  h_staging_ = nullptr;
  workspace_bytes_ = staging_bytes_ = 0;
  stream_ = copy_stream_ = nullptr;
  cudaGetLastError();
}

void DeviceState::follow_caller(const BatchView& batch) {
  if (batch.space != MemorySpace::Device) return;
  DG_CUDA_TRY(cudaEventRecord(caller_done_, cudaStreamLegacy));
  DG_CUDA_TRY(cudaStreamWaitEvent(stream_, caller_done_, 0));
}

void DeviceState::synchronize() {
  DG_CUDA_TRY(cudaStreamSynchronize(copy_stream_));
  DG_CUDA_TRY(cudaStreamSynchronize(stream_));
}

std::byte* DeviceState::device_workspace(std::size_t bytes) {
  if (bytes <= workspace_bytes_) return d_workspace_;
  const std::size_t size = grown_size(workspace_bytes_, bytes);
  synchronize();
  if (d_workspace_ != nullptr) {
    DG_CUDA_TRY(cudaFree(d_workspace_));
    d_workspace_ = nullptr;
    workspace_bytes_ = 0;
  }
  void* d_new = nullptr;
  DG_CUDA_TRY(cudaMalloc(&d_new, size));
  d_workspace_ = static_cast<std::byte*>(d_new);
  workspace_bytes_ = size;
  return d_workspace_;
}

std::byte* DeviceState::host_staging(std::size_t bytes) {
  if (bytes <= staging_bytes_) return h_staging_;
  const std::size_t size = grown_size(staging_bytes_, bytes);
  synchronize();
  if (h_staging_ != nullptr) {
    DG_CUDA_TRY(cudaFreeHost(h_staging_));
    h_staging_ = nullptr;
    staging_bytes_ = 0;
  }
  void* h_new = nullptr;
  DG_CUDA_TRY(cudaHostAlloc(&h_new, size, cudaHostAllocDefault));
  h_staging_ = static_cast<std::byte*>(h_new);
  staging_bytes_ = size;
  return h_staging_;
}

void DeviceState::upload(int host_threads, void* d_dst, const void* h_src, std::size_t bytes) {
  if (bytes == 0 || copied_directly(stream_, d_dst, h_src, bytes, cudaMemcpyHostToDevice, h_src)) {
    return;
  }
  std::byte* h_slots = host_staging(kStagingSlots * kStagePiece);
  const auto* src = static_cast<const std::byte*>(h_src);
  auto* dst = static_cast<std::byte*>(d_dst);
  // Piece p goes through slot p % 2: its host copy overlaps the upload of piece p - 1.
  for (std::size_t at = 0, p = 0; at < bytes; at += kStagePiece, ++p) {
    const int slot = static_cast<int>(p % kStagingSlots);
    const std::size_t n = std::min(kStagePiece, bytes - at);
    std::byte* h_slot = h_slots + slot * kStagePiece;
    if (p >= kStagingSlots) DG_CUDA_TRY(cudaEventSynchronize(slot_events_[slot].h2d_done));
    driftguard::detail::parallel_copy(host_threads, h_slot, src + at, n);
    DG_CUDA_TRY(cudaMemcpyAsync(dst + at, h_slot, n, cudaMemcpyHostToDevice, stream_));
    DG_CUDA_TRY(cudaEventRecord(slot_events_[slot].h2d_done, stream_));
  }
  DG_CUDA_TRY(cudaStreamSynchronize(stream_));
}

void DeviceState::download(int host_threads, void* h_dst, const void* d_src, std::size_t bytes) {
  if (bytes == 0 || copied_directly(stream_, h_dst, d_src, bytes, cudaMemcpyDeviceToHost, h_dst)) {
    return;
  }
  std::byte* h_slots = host_staging(kStagingSlots * kStagePiece);
  const auto* src = static_cast<const std::byte*>(d_src);
  auto* dst = static_cast<std::byte*>(h_dst);
  const std::size_t pieces = (bytes + kStagePiece - 1) / kStagePiece;
  // Piece p lands in slot p % 2; the host copies it out while piece p + 1 downloads.
  auto start = [&](std::size_t p) {
    const int slot = static_cast<int>(p % kStagingSlots);
    const std::size_t at = p * kStagePiece;
    DG_CUDA_TRY(cudaMemcpyAsync(h_slots + slot * kStagePiece, src + at,
                                std::min(kStagePiece, bytes - at), cudaMemcpyDeviceToHost,
                                stream_));
    DG_CUDA_TRY(cudaEventRecord(slot_events_[slot].d2h_done, stream_));
  };
  start(0);
  for (std::size_t p = 0; p < pieces; ++p) {
    // Slot (p + 1) % 2 was emptied by the host copy of piece p - 1.
    if (p + 1 < pieces) start(p + 1);
    const int slot = static_cast<int>(p % kStagingSlots);
    const std::size_t at = p * kStagePiece;
    DG_CUDA_TRY(cudaEventSynchronize(slot_events_[slot].d2h_done));
    driftguard::detail::parallel_copy(host_threads, dst + at, h_slots + slot * kStagePiece,
                                      std::min(kStagePiece, bytes - at));
  }
}

int DeviceState::blocks_per_sm(const void* kernel, int threads, std::size_t shared_bytes) {
  for (const Occupancy& o : occupancy_) {
    if (o.kernel == kernel && o.threads == threads && o.shared_bytes == shared_bytes) {
      return o.blocks_per_sm;
    }
  }
  // A launch asking for more dynamic shared memory than the kernel's limit fails; the limit is
  // 48 KiB less the kernel's static shared memory until raised (and stays raised).
  cudaFuncAttributes attributes{};
  DG_CUDA_TRY(cudaFuncGetAttributes(&attributes, kernel));
  if (shared_bytes > static_cast<std::size_t>(attributes.maxDynamicSharedSizeBytes)) {
    DG_CUDA_TRY(cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize,
                                     static_cast<int>(shared_bytes)));
  }
  int blocks = 0;
  DG_CUDA_TRY(
      cudaOccupancyMaxActiveBlocksPerMultiprocessor(&blocks, kernel, threads, shared_bytes));
  occupancy_.push_back({kernel, threads, shared_bytes, blocks});
  return blocks;
}

void DeviceStateDeleter::operator()(DeviceState* state) const noexcept { delete state; }

bool is_page_locked(const void* pointer) {
  cudaPointerAttributes attributes{};
  if (cudaPointerGetAttributes(&attributes, pointer) != cudaSuccess) {
    cudaGetLastError();  // not sticky: treat the memory as pageable
    return false;
  }
  return attributes.type == cudaMemoryTypeHost;
}

int device_count() noexcept {
  int count = 0;
  if (cudaGetDeviceCount(&count) != cudaSuccess) {
    // No device, no driver or a driver older than the runtime: all mean "no CUDA here".
    cudaGetLastError();
    return 0;
  }
  return count;
}

DeviceStatePtr create_device_state(int device) {
  const int count = device_count();
  if (device < 0 || device >= count) {
    throw BackendUnavailable("CUDA device " + std::to_string(device) + " does not exist (" +
                             std::to_string(count) + " usable device" + (count == 1 ? "" : "s") +
                             " found)");
  }
  try {
    return DeviceStatePtr(new DeviceState(device));
  } catch (const CudaError& e) {
    // The device exists but cannot be used (exclusive mode, out of memory, driver trouble).
    throw BackendUnavailable("CUDA device " + std::to_string(device) +
                             " is not usable: " + e.what());
  }
}

std::string device_name(const DeviceState& state) { return state.properties().name; }

void* allocate_pinned(std::size_t bytes) noexcept {
  void* pointer = nullptr;
  // Portable: pinned for every device's context, whichever device is current when the ring is
  // allocated (a Context may drive another device than the caller's current one).
  if (cudaHostAlloc(&pointer, bytes, cudaHostAllocPortable) != cudaSuccess) {
    cudaGetLastError();  // not sticky; the caller uses pageable memory instead
    return nullptr;
  }
  return pointer;
}

void free_pinned(void* pointer) noexcept {
  if (pointer != nullptr) cudaFreeHost(pointer);
}

}  // namespace driftguard::cuda
