#pragma once
// Internal: what a Context holds.
#include <cstdint>
#include <memory>

#include "driftguard/context.hpp"
#include "kernels/backend.hpp"

namespace driftguard {

struct Context::Impl {
  Backend backend = Backend::Cpu;
  int cpu_threads = 1;
  cuda::DeviceStatePtr cuda;  // set when backend == Cuda
  cpu::KeyMemory key_memory;
  const char* auto_cpu_reason = "";

  // Fault injection for failover tests: DRIFTGUARD_INJECT_CUDA_FAULT=<alloc|launch>:<N> makes
  // the Nth kernel call of this context and every later one throw the CudaError that call would
  // throw (a failed device stays failed). It acts on the CPU backend the same way, so the
  // failover path is tested on machines without a GPU too. Off for the contexts a failover
  // creates.
  bool inject_faults = true;
  std::uint64_t kernel_calls = 0;
  // Called by the dispatch before each backend call.
  void fault_point(const char* operation);
};

// The CPU context a run moves to after a CUDA failure: the failed context's threads, and
// free of injected faults (they stand for a failing device).
inline std::unique_ptr<Context> cpu_fallback_context(const Context& failed) {
  auto cpu = std::make_unique<Context>(
      ContextOptions{.backend = Backend::Cpu, .cpu_threads = failed.cpu_threads()});
  cpu->impl().inject_faults = false;
  return cpu;
}

}  // namespace driftguard
