// Backend choice at run time (ggml-backend style: CUDA when usable, CPU always there).
#include <omp.h>

#include <cstdlib>
#include <iostream>
#include <string>

#include "driftguard/errors.hpp"
#include "kernels/context_impl.hpp"

namespace driftguard {

Backend parse_backend(std::string_view name) {
  if (name == "auto") return Backend::Auto;
  if (name == "cpu") return Backend::Cpu;
  if (name == "cuda") return Backend::Cuda;
  throw InvalidInput("unknown backend '" + std::string(name) + "' (expected auto, cpu or cuda)");
}

std::string_view to_string(Backend backend) {
  switch (backend) {
    case Backend::Auto:
      return "auto";
    case Backend::Cpu:
      return "cpu";
    case Backend::Cuda:
      return "cuda";
  }
  return "unknown";
}

bool cuda_compiled() noexcept {
#ifdef DRIFTGUARD_WITH_CUDA
  return true;
#else
  return false;
#endif
}

int cuda_device_count() noexcept { return cuda::device_count(); }

namespace {

Backend requested_backend(Backend requested) {
  if (requested != Backend::Auto) return requested;
  const char* env = std::getenv("DRIFTGUARD_BACKEND");
  if (env == nullptr || *env == '\0') return Backend::Auto;
  try {
    return parse_backend(env);
  } catch (const InvalidInput& e) {
    throw InvalidInput(std::string("DRIFTGUARD_BACKEND: ") + e.what());
  }
}

}  // namespace

Context::Context(ContextOptions options) : impl_(std::make_unique<Impl>()) {
  if (options.cpu_threads < 0) throw InvalidInput("cpu_threads must be >= 0");
  impl_->cpu_threads = options.cpu_threads > 0 ? options.cpu_threads : omp_get_max_threads();

  Backend backend = requested_backend(options.backend);
  if (backend == Backend::Auto) {
    if (cuda::device_count() > 0) {
      backend = Backend::Cuda;
    } else {
      backend = Backend::Cpu;
      if (!options.quiet) {
        std::cerr << "driftguard: "
                  << (cuda_compiled() ? "no CUDA device found" : "built without CUDA")
                  << ", using the CPU backend (" << impl_->cpu_threads << " threads)\n";
      }
    }
  }
  if (backend == Backend::Cuda) {
    if (!cuda_compiled())
      throw BackendUnavailable("CUDA backend requested, but built without CUDA");
    if (cuda::device_count() == 0) {
      throw BackendUnavailable("CUDA backend requested, but no usable CUDA device was found");
    }
    impl_->cuda = cuda::create_device_state(options.device);
  }
  impl_->backend = backend;
}

Context::~Context() = default;
Context::Context(Context&&) noexcept = default;
Context& Context::operator=(Context&&) noexcept = default;

Backend Context::backend() const noexcept { return impl_->backend; }
int Context::cpu_threads() const noexcept { return impl_->cpu_threads; }

std::string Context::device_name() const {
  if (impl_->backend == Backend::Cuda) return cuda::device_name(*impl_->cuda);
  return "CPU (" + std::to_string(impl_->cpu_threads) + " threads)";
}

}  // namespace driftguard
