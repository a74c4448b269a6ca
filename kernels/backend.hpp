#pragma once
// Internal: the functions each backend implements. The dispatch (dispatch.cpp) validates the
// arguments once and calls one of them; backends may assume the checks below hold.
#include <array>
#include <cstdint>
#include <memory>
#include <mutex>
#include <span>
#include <string>

#include "driftguard/histogram.hpp"
#include "driftguard/ks.hpp"
#include "driftguard/mmd.hpp"
#include "driftguard/model.hpp"
#include "driftguard/validate.hpp"

namespace driftguard::detail {

// One pass over a batch. A null `rules` skips validation (and `validation`, `masks`); a null
// `spec` skips the histogram. Checked before a backend sees it: shapes agree, the counts are laid
// out for the rules/spec, data is non-null when rows > 0, masks live in the batch's memory space.
struct BatchPassArgs {
  BatchView batch;
  const ValidationRules* rules = nullptr;
  const HistogramSpec* spec = nullptr;
  ValidationCounts* validation = nullptr;
  HistogramCounts* histogram = nullptr;
  ValidationMasks masks;
};

}  // namespace driftguard::detail

namespace driftguard::detail {
struct MmdSums;
struct MmdLinearTerms;
}  // namespace driftguard::detail

namespace driftguard::cpu {
// Host batches only; `threads` workers (OpenMP).
void batch_pass(int threads, const detail::BatchPassArgs& args);
// MMD tests (kernels/mmd_common.hpp says what they return). Checked before: shapes, sizes, sigma,
// options; the backend rejects non-finite rows itself.
detail::MmdSums mmd(int threads, BatchView reference, BatchView current, const MmdOptions& options);
detail::MmdLinearTerms mmd_linear(int threads, BatchView reference, BatchView current,
                                  const MmdLinearOptions& options);
}  // namespace driftguard::cpu

namespace driftguard::cuda {

// Per-Context CUDA resources (device, stream, workspace, pinned pool); defined in kernels/cuda.
class DeviceState;
struct DeviceStateDeleter {
  void operator()(DeviceState* state) const noexcept;
};
using DeviceStatePtr = std::unique_ptr<DeviceState, DeviceStateDeleter>;

// 0 when the build has no CUDA backend, no device, or no usable driver.
int device_count() noexcept;
// BackendUnavailable when the build has no CUDA backend or `device` is not usable.
DeviceStatePtr create_device_state(int device);
std::string device_name(const DeviceState& state);
// Page-locked host memory; null when the allocation fails (the caller falls back to pageable).
void* allocate_pinned(std::size_t bytes) noexcept;
void free_pinned(void* pointer) noexcept;
// Host or device batches; results are identical to cpu::batch_pass. `host_threads` copy a
// pageable host batch into pinned staging.
void batch_pass(DeviceState& state, int host_threads, const detail::BatchPassArgs& args);
// Host or device windows (each in its own space); the same contract as cpu::mmd / cpu::mmd_linear.
// `host_threads` copy host windows into pinned staging. mmd needs mmd_runs_here (else
// BackendUnavailable).
detail::MmdSums mmd(DeviceState& state, int host_threads, BatchView reference, BatchView current,
                    const MmdOptions& options);
detail::MmdLinearTerms mmd_linear(DeviceState& state, int host_threads, BatchView reference,
                                  BatchView current, const MmdLinearOptions& options);
// Whether the quadratic test's kernel runs on this device: FP64 tensor cores (compute capability
// 8.0) and code built for them (a build for compute_75 JIT-compiled on an H100 has not).
bool mmd_runs_here(DeviceState& state);

}  // namespace driftguard::cuda

// ---- Two-sample Kolmogorov–Smirnov (driftguard/ks.hpp) ----
namespace driftguard::detail {

// F_R(v) - F_C(v) at one pooled value v, and whether v occurs in the reference; `value` is v
// (the last copy of v in the reference when it occurs there, else in the current sample).
struct KsCandidate {
  double diff;
  float value;
  std::uint32_t in_reference;
};

// What a backend finds for one feature; the host turns it into a KsResult. max/min are the
// extremes of F_R - F_C chosen by ks_precedes_as_max / ks_precedes_as_min (ks_common.hpp); both
// are left as {NaN, NaN, 0} when either sample is empty.
struct KsExtremes {
  KsCandidate max;
  KsCandidate min;
  std::uint64_t n_current;    // non-NaN current values
  std::uint64_t nan_current;  // NaN current values
};

}  // namespace driftguard::detail

namespace driftguard::detail {
// Room for `n` sorted values in `out.values` before a backend overwrites them: within its
// capacity nothing is allocated, so a window sorted into the memory of the last touches no fresh
// page; past it the old memory is freed first (its values are about to be replaced: no copy, and
// never two buffers at once).
inline void make_room_for_values(SortedColumns& out, std::size_t n) {
  if (out.values.capacity() < n) {
    out.values = std::vector<float>();
    out.values.reserve(n);
  }
}
}  // namespace driftguard::detail

// Checked before a backend sees them: batches have rows * features within size_t, non-null data
// when rows > 0, features == reference.features, and the reference's sizes and offsets agree;
// `out` has one entry per feature.
namespace driftguard::cpu {
// Sort-key memory a CPU context keeps from call to call, so that window after window is gathered
// into pages already mapped: fresh pages for a 1Mi x 32 window's keys (128 MiB, page-faulted and
// zeroed by the kernel, then unmapped) cost a windowed scan about a tenth of its time on a 2-core
// VM. A call leases all of it; a call that finds it leased (another thread on the same context)
// takes memory of its own instead, so concurrent calls stay correct.
class KeyMemory {
  struct Slots {
    std::array<std::unique_ptr<std::uint32_t[]>, 2> keys;
    std::array<std::size_t, 2> capacity{};
  };

 public:
  class Lease {
   public:
    explicit Lease(KeyMemory& memory)
        : lock_(memory.mutex_, std::try_to_lock),
          slots_(lock_.owns_lock() ? &memory.slots_ : &own_) {}
    // Uninitialised room for at least n keys in slot 0 or 1, valid while the lease lives.
    std::uint32_t* keys(int slot, std::size_t n) {
      const auto s = static_cast<std::size_t>(slot);
      if (slots_->capacity[s] < n) {
        slots_->keys[s].reset();  // before the new one: never both at once
        slots_->keys[s].reset(new std::uint32_t[n]);
        slots_->capacity[s] = n;
      }
      return slots_->keys[s].get();
    }

   private:
    std::unique_lock<std::mutex> lock_;
    Slots own_;
    Slots* slots_;
  };

 private:
  std::mutex mutex_;
  Slots slots_;
};

// Host batches only; `threads` workers (OpenMP). Sorts into `out`, reusing its memory.
void sort_columns(int threads, KeyMemory& memory, BatchView batch, SortedColumns& out);
void ks_statistics(int threads, KeyMemory& memory, const SortedColumns& reference,
                   BatchView current, std::span<detail::KsExtremes> out);
// Both samples already sorted (host data, whatever the context's backend).
void ks_statistics(int threads, const SortedColumns& reference, const SortedColumns& current,
                   std::span<detail::KsExtremes> out);
// Both windows raw: sorted as keys and walked without their values. Returns the reference's
// layout (offsets and NaN counts; values empty) for the p-values.
SortedColumns ks_statistics_raw(int threads, KeyMemory& memory, BatchView reference,
                                BatchView current, std::span<detail::KsExtremes> out);
}  // namespace driftguard::cpu

namespace driftguard::cuda {
// Host or device batches; results are identical to the cpu:: functions. `d_reference_values`:
// the reference's values already in device memory (ResidentReference), or null to copy them here.
// `host_threads` copy host data into and out of pinned staging (DeviceState::upload, download).
void sort_columns(DeviceState& state, int host_threads, BatchView batch, SortedColumns& out);
void ks_statistics(DeviceState& state, int host_threads, const SortedColumns& reference,
                   const float* d_reference_values, BatchView current,
                   std::span<detail::KsExtremes> out);
// Both windows raw (rows > 0 each): the reference is sorted on the device and stays there. Returns
// its layout (offsets and NaN counts; values empty) for the p-values.
SortedColumns ks_statistics_raw(DeviceState& state, int host_threads, BatchView reference,
                                BatchView current, std::span<detail::KsExtremes> out);
// Device memory holding `values` (CudaError on failure; null for no values), and its release
// (null accepted; errors ignored, it runs in destructors).
float* upload_values(DeviceState& state, int host_threads, std::span<const float> values);
void free_values(DeviceState& state, float* d_values) noexcept;
}  // namespace driftguard::cuda

// ---- Batch scoring (driftguard/model.hpp) ----
// Checked before a backend sees them: batch.features == tables.batch_features, data non-null when
// rows > 0, out.points null unless the model has points, at least one output requested.
namespace driftguard::cpu {
void score(int threads, const detail::BoundTables& tables, BatchView batch,
           const ScoreOutputs& out);
}  // namespace driftguard::cpu
namespace driftguard::cuda {
// Outputs live in the batch's memory space; results equal cpu::score's (see model.hpp).
// `host_threads` copy a pageable host batch into pinned staging.
void score(DeviceState& state, int host_threads, const detail::BoundTables& tables, BatchView batch,
           const ScoreOutputs& out);
}  // namespace driftguard::cuda
