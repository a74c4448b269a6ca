// Compiled in place of kernels/cuda/ when the build has no CUDA compiler.
#include "driftguard/errors.hpp"
#include "kernels/backend.hpp"

namespace driftguard::cuda {

namespace {
[[noreturn]] void unavailable() { throw BackendUnavailable("CUDA backend: built without CUDA"); }
}  // namespace

class DeviceState {};
void DeviceStateDeleter::operator()(DeviceState* state) const noexcept { delete state; }
int device_count() noexcept { return 0; }
DeviceStatePtr create_device_state(int) { unavailable(); }
std::string device_name(const DeviceState&) { unavailable(); }
void batch_pass(DeviceState&, const detail::BatchPassArgs&) { unavailable(); }

}  // namespace driftguard::cuda
