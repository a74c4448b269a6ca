// Compiled in place of kernels/cuda/ when the build has no CUDA compiler.
#include "driftguard/errors.hpp"
#include "kernels/backend.hpp"
#include "kernels/mmd_common.hpp"

namespace driftguard::cuda {

namespace {
[[noreturn]] void unavailable() { throw BackendUnavailable("CUDA backend: built without CUDA"); }
}  // namespace

class DeviceState {};
void DeviceStateDeleter::operator()(DeviceState* state) const noexcept { delete state; }
int device_count() noexcept { return 0; }
DeviceStatePtr create_device_state(int) { unavailable(); }
std::string device_name(const DeviceState&) { unavailable(); }
void* allocate_pinned(std::size_t) noexcept { return nullptr; }
void free_pinned(void*) noexcept {}
void batch_pass(DeviceState&, int, const detail::BatchPassArgs&) { unavailable(); }
detail::MmdSums mmd(DeviceState&, int, BatchView, BatchView, const MmdOptions&) { unavailable(); }
detail::MmdLinearTerms mmd_linear(DeviceState&, int, BatchView, BatchView,
                                  const MmdLinearOptions&) {
  unavailable();
}
bool mmd_runs_here(DeviceState&) { unavailable(); }

}  // namespace driftguard::cuda

// Two-sample Kolmogorov–Smirnov.
namespace driftguard::cuda {
void sort_columns(DeviceState&, int, BatchView, SortedColumns&) { unavailable(); }
void ks_statistics(DeviceState&, int, const SortedColumns&, const float*, BatchView,
                   std::span<detail::KsExtremes>) {
  unavailable();
}
SortedColumns ks_statistics_raw(DeviceState&, int, BatchView, BatchView,
                                std::span<detail::KsExtremes>) {
  unavailable();
}
float* upload_values(DeviceState&, int, std::span<const float>) { unavailable(); }
void free_values(DeviceState&, float*) noexcept {}
}  // namespace driftguard::cuda

// Batch scoring.
namespace driftguard::cuda {
void score(DeviceState&, int, const detail::BoundTables&, BatchView, const ScoreOutputs&) {
  unavailable();
}
}  // namespace driftguard::cuda
