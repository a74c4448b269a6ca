// Google Benchmark harness for the MMD tests.
//
//   bench_mmd [--reference=FILE --current=FILE --features=D] [google benchmark flags]
//
// Default cases: mmd/cpu/n:2000/d:32/P:100 and mmd_linear/cpu/n:200000/d:32; with a CUDA device
// also mmd/cuda/n:{10000,100000}/d:32/P:100 and mmd_linear/cuda/n:1000000/d:32, timed on
// device-resident windows with CUDA events (manual time) after an L2 flush. n is the size of each
// window; the median heuristic picks sigma (it is part of the cost). With --reference/--current
// (raw little-endian float32, row-major, D features: what bench/peer_mmd.py writes) the
// harness times mmd/cpu/input and, with a device, mmd/cuda/input on that data instead.
// Counters: the result (mmd2, pvalue, sigma), so that a peer can check it computed the same thing.
#include <benchmark/benchmark.h>

#ifdef DRIFTGUARD_WITH_CUDA
#include <cuda_runtime.h>

#include "cuda_timer.hpp"
#endif

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <fstream>
#include <iostream>
#include <memory>
#include <optional>
#include <random>
#include <stdexcept>
#include <string>
#include <vector>

#include "driftguard/context.hpp"
#include "driftguard/mmd.hpp"

namespace {

using namespace driftguard;

struct Windows {
  std::size_t features = 0;
  std::vector<float> reference, current;
  std::size_t rows(const std::vector<float>& w) const { return w.size() / features; }
};

// Standard normal reference; the current window is shifted by 0.05 in every feature, a drift
// that the quadratic test sees at n = 2000 but that leaves the permutation loop doing all its work.
Windows synthetic(std::size_t n, std::size_t features, std::uint64_t seed) {
  Windows w{features, std::vector<float>(n * features), std::vector<float>(n * features)};
  std::mt19937_64 engine(seed);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  for (float& v : w.reference) v = normal(engine);
  for (float& v : w.current) v = normal(engine) + 0.05f;
  return w;
}

std::vector<float> read_floats(const std::string& path) {
  std::ifstream in(path, std::ios::binary | std::ios::ate);
  if (!in) throw std::runtime_error("cannot read " + path);
  std::vector<float> values(static_cast<std::size_t>(in.tellg()) / sizeof(float));
  in.seekg(0);
  in.read(reinterpret_cast<char*>(values.data()),
          static_cast<std::streamsize>(values.size() * sizeof(float)));
  return values;
}

void report(benchmark::State& state, const MmdResult& r) {
  state.counters["mmd2"] = r.mmd2;
  state.counters["pvalue"] = r.pvalue;
  state.counters["sigma"] = r.sigma;
}

Context& cpu_context() {
  static Context ctx(ContextOptions{.backend = Backend::Cpu});
  return ctx;
}

void bench_cpu(benchmark::State& state, const Windows* w, std::uint32_t permutations) {
  const BatchView x{w->reference.data(), w->rows(w->reference), w->features};
  const BatchView y{w->current.data(), w->rows(w->current), w->features};
  MmdResult r;
  for (auto _ : state) r = mmd_test(cpu_context(), x, y, {.permutations = permutations});
  report(state, r);
  state.counters["threads"] = cpu_context().cpu_threads();
}

void bench_cpu_linear(benchmark::State& state, const Windows* w) {
  const BatchView x{w->reference.data(), w->rows(w->reference), w->features};
  const BatchView y{w->current.data(), w->rows(w->current), w->features};
  MmdLinearResult r;
  for (auto _ : state) r = mmd_linear_test(cpu_context(), x, y);
  state.counters["mmd2"] = r.mmd2;
  state.counters["pvalue"] = r.pvalue;
}

#ifdef DRIFTGUARD_WITH_CUDA
using driftguard::bench::cuda_check;

// Device copies of one case's windows, the L2 flush buffer and timing events.
struct CudaCase {
  Context ctx{ContextOptions{.backend = Backend::Cuda}};
  float* d_reference = nullptr;
  float* d_current = nullptr;
  bench::CudaTimer timer;
  BatchView x, y;

  explicit CudaCase(const Windows& w) {
    const std::size_t rb = w.reference.size() * sizeof(float),
                      cb = w.current.size() * sizeof(float);
    cuda_check(cudaMalloc(&d_reference, rb), "cudaMalloc reference");
    cuda_check(cudaMalloc(&d_current, cb), "cudaMalloc current");
    cuda_check(cudaMemcpy(d_reference, w.reference.data(), rb, cudaMemcpyHostToDevice), "upload");
    cuda_check(cudaMemcpy(d_current, w.current.data(), cb, cudaMemcpyHostToDevice), "upload");
    x = {d_reference, w.rows(w.reference), w.features, MemorySpace::Device};
    y = {d_current, w.rows(w.current), w.features, MemorySpace::Device};
  }
  ~CudaCase() {
    cudaFree(d_reference);
    cudaFree(d_current);
  }
};

void bench_cuda(benchmark::State& state, const Windows* w, std::uint32_t permutations) {
  CudaCase c(*w);
  MmdResult r = mmd_test(c.ctx, c.x, c.y, {.permutations = permutations});  // warm-up
  int salt = 0;
  for (auto _ : state) {
    state.SetIterationTime(c.timer.timed(
        [&] { r = mmd_test(c.ctx, c.x, c.y, {.permutations = permutations}); }, ++salt));
  }
  report(state, r);
}

void bench_cuda_linear(benchmark::State& state, const Windows* w) {
  CudaCase c(*w);
  MmdLinearResult r = mmd_linear_test(c.ctx, c.x, c.y);
  int salt = 0;
  for (auto _ : state) {
    state.SetIterationTime(c.timer.timed([&] { r = mmd_linear_test(c.ctx, c.x, c.y); }, ++salt));
  }
  state.counters["mmd2"] = r.mmd2;
  state.counters["pvalue"] = r.pvalue;
}
#endif

// Windows live for the whole run: benchmarks keep pointers to them.
std::vector<std::unique_ptr<Windows>> windows;

const Windows* keep(Windows w) {
  windows.push_back(std::make_unique<Windows>(std::move(w)));
  return windows.back().get();
}

void register_quadratic(const std::string& name, const Windows* w, bool cuda) {
  benchmark::RegisterBenchmark(("mmd/cpu/" + name).c_str(), bench_cpu, w, 100u)
      ->Unit(benchmark::kMillisecond)
      ->UseRealTime();
#ifdef DRIFTGUARD_WITH_CUDA
  if (cuda) {
    benchmark::RegisterBenchmark(("mmd/cuda/" + name).c_str(), bench_cuda, w, 100u)
        ->Unit(benchmark::kMillisecond)
        ->UseManualTime();
  }
#else
  (void)cuda;
#endif
}

}  // namespace

int main(int argc, char** argv) {
  benchmark::Initialize(&argc, argv);
  std::string reference, current;
  std::size_t features = 0;
  for (int i = 1; i < argc; ++i) {
    if (std::strncmp(argv[i], "--reference=", 12) == 0) {
      reference = argv[i] + 12;
    } else if (std::strncmp(argv[i], "--current=", 10) == 0) {
      current = argv[i] + 10;
    } else if (std::strncmp(argv[i], "--features=", 11) == 0) {
      features = std::stoul(argv[i] + 11);
    } else {
      std::cerr << "bench_mmd: unknown argument " << argv[i] << "\n";
      return 1;
    }
  }
  const bool cuda = cuda_device_count() > 0;
  benchmark::AddCustomContext("cpu_backend", cpu_context().device_name());
  if (!reference.empty() || !current.empty()) {
    if (reference.empty() || current.empty() || features == 0) {
      std::cerr << "bench_mmd: --reference, --current and --features go together\n";
      return 1;
    }
    register_quadratic("input", keep({features, read_floats(reference), read_floats(current)}),
                       cuda);
  } else {
    const std::size_t d = 32;
    register_quadratic("n:2000/d:32/P:100", keep(synthetic(2000, d, 1)), false);
    benchmark::RegisterBenchmark("mmd_linear/cpu/n:200000/d:32", bench_cpu_linear,
                                 keep(synthetic(200000, d, 2)))
        ->Unit(benchmark::kMillisecond)
        ->UseRealTime();
#ifdef DRIFTGUARD_WITH_CUDA
    if (cuda) {
      for (std::size_t n : {std::size_t{10000}, std::size_t{100000}}) {
        benchmark::RegisterBenchmark(("mmd/cuda/n:" + std::to_string(n) + "/d:32/P:100").c_str(),
                                     bench_cuda, keep(synthetic(n, d, n)), 100u)
            ->Unit(benchmark::kMillisecond)
            ->UseManualTime();
      }
      benchmark::RegisterBenchmark("mmd_linear/cuda/n:1000000/d:32", bench_cuda_linear,
                                   keep(synthetic(1000000, d, 3)))
          ->Unit(benchmark::kMillisecond)
          ->UseManualTime();
    }
#endif
  }
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
