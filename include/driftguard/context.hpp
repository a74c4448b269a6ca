#pragma once
// The execution context: which backend runs the kernels, plus the resources each backend reuses
// across batches (CUDA device, streams, a device workspace that grows once, a pinned host pool).
// Because of that reuse, a Context serves one call at a time: threads working at once each take
// their own. A moved-from Context may only be destroyed or assigned to.
#include <cstddef>
#include <memory>
#include <string>
#include <string_view>

namespace driftguard {

enum class Backend { Auto, Cpu, Cuda };

// "auto" | "cpu" | "cuda" (case-sensitive); anything else throws InvalidInput.
Backend parse_backend(std::string_view name);
std::string_view to_string(Backend backend);

// True when this build contains the CUDA backend.
bool cuda_compiled() noexcept;
// Number of usable CUDA devices; 0 when none, when the driver is missing or too old, or when the
// build has no CUDA backend.
int cuda_device_count() noexcept;

// Most CPU threads a Context takes: libgomp aborts or crashes creating a team of 10^5 threads,
// and 1024 is past any machine's cores.
inline constexpr int kMaxCpuThreads = 1024;

struct ContextOptions {
  // Auto resolves, in order: the DRIFTGUARD_BACKEND environment variable (auto|cpu|cuda), then
  // CUDA when compiled in and a device is present, else CPU; Context::auto_cpu_reason() says why
  // CPU was chosen (the library writes nothing to stdout or stderr). Asking for Cuda (here or
  // through the variable) without a usable device throws BackendUnavailable: never a silent
  // fallback.
  Backend backend = Backend::Auto;
  int device = 0;       // CUDA device ordinal
  int cpu_threads = 0;  // 0 = all hardware threads; at most kMaxCpuThreads
};

// Threads: calls on one CPU context may run at once (a call that finds the context's working
// memory taken uses its own); a CUDA context serves one call at a time, its device workspace and
// streams being shared by all its calls.
class Context {
 public:
  explicit Context(ContextOptions options = {});
  ~Context();
  Context(Context&&) noexcept;
  Context& operator=(Context&&) noexcept;
  Context(const Context&) = delete;
  Context& operator=(const Context&) = delete;

  // The resolved backend: Cpu or Cuda, never Auto.
  Backend backend() const noexcept;
  int cpu_threads() const noexcept;
  // "CPU (N threads)" or the CUDA device's name.
  std::string device_name() const;
  // Why Backend::Auto resolved to the CPU: "built without CUDA" or "no CUDA device found"; empty
  // when the backend was named or CUDA was chosen.
  std::string_view auto_cpu_reason() const noexcept;

  // Backend resources; the type is private to the library.
  struct Impl;
  Impl& impl() noexcept { return *impl_; }

 private:
  std::unique_ptr<Impl> impl_;
};

// Host memory for batches: page-locked when the context runs on CUDA (copies to the device then
// run asynchronously at full bandwidth, with no staging copy), ordinary 64-byte aligned memory on
// the CPU backend or when the pinned allocation fails (pinned() says which).
class HostBuffer {
 public:
  HostBuffer() = default;
  HostBuffer(Context& ctx, std::size_t bytes);
  ~HostBuffer();
  HostBuffer(HostBuffer&& other) noexcept;
  HostBuffer& operator=(HostBuffer&& other) noexcept;
  HostBuffer(const HostBuffer&) = delete;
  HostBuffer& operator=(const HostBuffer&) = delete;

  void* data() const noexcept { return data_; }
  std::size_t bytes() const noexcept { return bytes_; }
  bool pinned() const noexcept { return pinned_; }

 private:
  void* data_ = nullptr;
  std::size_t bytes_ = 0;
  bool pinned_ = false;
};

}  // namespace driftguard
