#pragma once
// Internal: the functions each backend implements. The dispatch (dispatch.cpp) validates the
// arguments once and calls one of them; backends may assume the checks below hold.
#include <memory>
#include <string>

#include "driftguard/histogram.hpp"
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

namespace driftguard::cpu {
// Host batches only; `threads` workers (OpenMP).
void batch_pass(int threads, const detail::BatchPassArgs& args);
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
// Host or device batches; results are identical to cpu::batch_pass.
void batch_pass(DeviceState& state, const detail::BatchPassArgs& args);

}  // namespace driftguard::cuda
