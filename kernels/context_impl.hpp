#pragma once
// Internal: what a Context holds.
#include "driftguard/context.hpp"
#include "kernels/backend.hpp"

namespace driftguard {

struct Context::Impl {
  Backend backend = Backend::Cpu;
  int cpu_threads = 1;
  cuda::DeviceStatePtr cuda;  // set when backend == Cuda
};

}  // namespace driftguard
