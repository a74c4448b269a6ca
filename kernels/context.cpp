// Backend choice at run time (ggml-backend style: CUDA when usable, CPU always there).
#include <omp.h>

#include <cstdlib>
#include <new>
#include <string>
#include <utility>

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

struct InjectedFault {
  std::string call;  // the CUDA call the fault imitates
  std::string error;
  std::uint64_t at = 0;  // 0 = no injection
};

// DRIFTGUARD_INJECT_CUDA_FAULT=<alloc|launch>:<N>, read once per process.
const InjectedFault& injected_fault() {
  static const InjectedFault fault = [] {
    InjectedFault f;
    const char* env = std::getenv("DRIFTGUARD_INJECT_CUDA_FAULT");
    if (env == nullptr || *env == '\0') return f;
    const std::string text(env);
    const std::size_t colon = text.find(':');
    const std::string kind = text.substr(0, colon);
    char* end = nullptr;
    const unsigned long long at =
        colon == std::string::npos ? 0 : std::strtoull(text.c_str() + colon + 1, &end, 10);
    if ((kind != "alloc" && kind != "launch") || at == 0 || end == nullptr || *end != '\0') {
      throw InvalidInput(
          "DRIFTGUARD_INJECT_CUDA_FAULT: expected alloc:<N> or launch:<N> (N >= 1), got '" + text +
          "'");
    }
    f.call = kind == "alloc" ? "cudaMallocAsync" : "kernel launch";
    f.error = kind == "alloc"
                  ? "out of memory (injected by DRIFTGUARD_INJECT_CUDA_FAULT)"
                  : "unspecified launch failure (injected by DRIFTGUARD_INJECT_CUDA_FAULT)";
    f.at = at;
    return f;
  }();
  return fault;
}

}  // namespace

void Context::Impl::fault_point(const char* operation) {
  const InjectedFault& fault = injected_fault();
  if (fault.at == 0 || !inject_faults) return;
  if (++kernel_calls >= fault.at) throw CudaError(fault.call, operation, 0, fault.error);
}

HostBuffer::HostBuffer(Context& ctx, std::size_t bytes) : bytes_(bytes) {
  if (bytes == 0) return;
  if (ctx.backend() == Backend::Cuda) {
    data_ = cuda::allocate_pinned(bytes);
    pinned_ = data_ != nullptr;
  }
  if (data_ == nullptr) {
    data_ = ::operator new (bytes, std::align_val_t{64});
  }
}

HostBuffer::~HostBuffer() {
  if (data_ == nullptr) return;
  if (pinned_) {
    cuda::free_pinned(data_);
  } else {
    ::operator delete (data_, std::align_val_t{64});
  }
}

HostBuffer::HostBuffer(HostBuffer&& other) noexcept
    : data_(std::exchange(other.data_, nullptr)),
      bytes_(std::exchange(other.bytes_, 0)),
      pinned_(std::exchange(other.pinned_, false)) {}

HostBuffer& HostBuffer::operator=(HostBuffer&& other) noexcept {
  if (this != &other) {
    HostBuffer old(std::move(*this));
    data_ = std::exchange(other.data_, nullptr);
    bytes_ = std::exchange(other.bytes_, 0);
    pinned_ = std::exchange(other.pinned_, false);
  }
  return *this;
}

Context::Context(ContextOptions options) : impl_(std::make_unique<Impl>()) {
  if (options.cpu_threads < 0 || options.cpu_threads > kMaxCpuThreads) {
    throw InvalidInput("cpu_threads must be in [0, " + std::to_string(kMaxCpuThreads) +
                       "] (0: all cores), got " + std::to_string(options.cpu_threads));
  }
  impl_->cpu_threads = options.cpu_threads > 0 ? options.cpu_threads : omp_get_max_threads();

  Backend backend = requested_backend(options.backend);
  if (backend == Backend::Auto) {
    if (cuda::device_count() > 0) {
      backend = Backend::Cuda;
    } else {
      backend = Backend::Cpu;
      impl_->auto_cpu_reason = cuda_compiled() ? "no CUDA device found" : "built without CUDA";
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
  injected_fault();  // a malformed DRIFTGUARD_INJECT_CUDA_FAULT fails here, not mid-run
}

Context::~Context() = default;
Context::Context(Context&&) noexcept = default;
Context& Context::operator=(Context&&) noexcept = default;

Backend Context::backend() const noexcept { return impl_->backend; }
int Context::cpu_threads() const noexcept { return impl_->cpu_threads; }

std::string_view Context::auto_cpu_reason() const noexcept { return impl_->auto_cpu_reason; }

std::string Context::device_name() const {
  if (impl_->backend == Backend::Cuda) return cuda::device_name(*impl_->cuda);
  return "CPU (" + std::to_string(impl_->cpu_threads) + " threads)";
}

}  // namespace driftguard
