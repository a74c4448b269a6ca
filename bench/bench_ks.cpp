// Google Benchmark harness for two-sample KS (ks_two_sample and SortedColumns::from_batch).
//
//   bench_ks [--reference=REF.h5 --current=CUR.h5] [google benchmark flags]
//
// Names read op/backend/rows:R/features:F (the current window's shape; the reference has the same
// number of features). Ops:
//   ks_two_sample              the scan of one current window against a prebuilt SortedColumns
//   ks_two_sample_resident     the same against a ResidentReference of it (on CUDA: uploaded once,
//                              outside the timing, as a monitor does for its run)
//   ks_two_sample_with_sort    the same plus SortedColumns::from_batch of the reference
//   ks_two_sample_raw_windows  both windows raw, the reference sorted in the call (on CUDA both
//                              resident in device memory, the sorted reference kept there)
//   sort_columns               SortedColumns::from_batch alone
// Without files: synthetic float32 windows (bell-shaped columns, 0.5% NaN, half of the features
// shifted in the current window), 1Mi x 32 against 1Mi x 32 on the CPU and, when a CUDA device is
// present, 4Mi x 64 against 4Mi x 64 on the GPU with the current window resident in device memory
// (cudaMalloc here). GPU cases are timed on the wall clock: each call returns with its results on
// the host; ks_two_sample and ks_two_sample_with_sort include the upload of the reference columns
// (with_sort also their sort on the device and download), ks_two_sample_resident and
// ks_two_sample_raw_windows move only results (raw_windows: the reference resident too). With
// files (the SciPy peer, bench/peer_scipy_ks.py): the two tables are read once and every backend
// runs on them.
#include <benchmark/benchmark.h>

#ifdef DRIFTGUARD_WITH_CUDA
#include <cuda_runtime.h>
#endif

#include <cstdint>
#include <cstring>
#include <iostream>
#include <limits>
#include <memory>
#include <optional>
#include <random>
#include <stdexcept>
#include <string>
#include <vector>

#include "driftguard/batch.hpp"
#include "driftguard/context.hpp"
#include "driftguard/errors.hpp"
#include "driftguard/hdf5_io.hpp"
#include "driftguard/ks.hpp"

namespace {

using namespace driftguard;

struct Table {
  std::size_t rows = 0, features = 0;
  std::vector<float> values;  // row-major
  BatchView view() const { return {values.data(), rows, features}; }
};

// Column f ~ centre_f + scale_f * (sum of three uniforms - 1.5), shifted by 0.02 scale in the
// current window for odd f; 0.5% NaN.
Table synthetic(std::size_t rows, std::size_t features, bool current) {
  Table t{rows, features, std::vector<float>(rows * features)};
  std::mt19937_64 rng(rows * 31 + features * 7 + (current ? 1 : 0));
  std::uniform_real_distribution<double> unit(0.0, 1.0);
  std::vector<double> centre(features), scale(features);
  std::mt19937_64 shape_rng(features);
  for (std::size_t f = 0; f < features; ++f) {
    centre[f] = 100.0 * (unit(shape_rng) - 0.5);
    scale[f] = 0.5 + 10.0 * unit(shape_rng);
  }
  for (std::size_t r = 0; r < rows; ++r) {
    for (std::size_t f = 0; f < features; ++f) {
      const double u = unit(rng);
      const double shift = current && f % 2 == 1 ? 0.02 : 0.0;
      t.values[r * features + f] =
          u < 0.005 ? std::numeric_limits<float>::quiet_NaN()
                    : static_cast<float>(centre[f] +
                                         scale[f] * (u + unit(rng) + unit(rng) - 1.5 + shift));
    }
  }
  return t;
}

Table load(const std::string& path) {
  Hdf5BatchReader reader(path);
  Table t{reader.rows(), reader.features(), std::vector<float>(reader.rows() * reader.features())};
  reader.read(0, t.rows, t.values.data());
  return t;
}

struct Windows {
  Table reference, current;
};

std::string shape(const Table& current) {
  return "rows:" + std::to_string(current.rows) + "/features:" + std::to_string(current.features);
}

void set_counters(benchmark::State& state, const Windows& w, const Context& ctx) {
  const auto values = static_cast<double>(w.current.rows * w.current.features);
  state.SetItemsProcessed(state.iterations() * static_cast<std::int64_t>(values));
  state.SetBytesProcessed(state.iterations() * static_cast<std::int64_t>(values * sizeof(float)));
  state.counters["threads"] = ctx.cpu_threads();
}

enum class Op { Scan, ScanResident, ScanWithSort, ScanRawWindows, Sort };
constexpr Op kOps[] = {Op::Scan, Op::ScanResident, Op::ScanWithSort, Op::ScanRawWindows, Op::Sort};

// `reference` and `current`: the windows where the backend reads them (on CUDA, device memory).
void run(benchmark::State& state, Context& ctx, const Windows& w, BatchView reference,
         BatchView current, Op op) {
  const bool prebuilt_reference = op == Op::Scan || op == Op::ScanResident;
  const SortedColumns prebuilt =
      prebuilt_reference ? SortedColumns::from_batch(ctx, w.reference.view()) : SortedColumns{};
  std::optional<ResidentReference> resident;
  if (op == Op::ScanResident) resident.emplace(ctx, prebuilt);
  const auto test = [&]() -> std::vector<KsResult> {
    if (op == Op::Scan) return ks_two_sample(ctx, prebuilt, current);
    if (op == Op::ScanResident) return ks_two_sample(ctx, *resident, current);
    if (op == Op::ScanRawWindows) return ks_two_sample(ctx, reference, current);
    const SortedColumns sorted_reference = SortedColumns::from_batch(ctx, w.reference.view());
    return ks_two_sample(ctx, sorted_reference, current);
  };
  for (auto _ : state) {
    if (op == Op::Sort) {
      benchmark::DoNotOptimize(SortedColumns::from_batch(ctx, current).values.data());
    } else {
      benchmark::DoNotOptimize(test().data());
    }
  }
  set_counters(state, w, ctx);
  if (op != Op::Sort) {
    // What was computed, for the peers to check against theirs (bench/peer_scipy_ks.py).
    double statistics = 0, pvalues = 0;
    for (const KsResult& r : test()) {
      statistics += r.statistic;
      pvalues += r.pvalue;
    }
    state.counters["statistic_sum"] = statistics;
    state.counters["pvalue_sum"] = pvalues;
  }
}

const char* op_name(Op op) {
  return op == Op::Scan             ? "ks_two_sample"
         : op == Op::ScanResident   ? "ks_two_sample_resident"
         : op == Op::ScanWithSort   ? "ks_two_sample_with_sort"
         : op == Op::ScanRawWindows ? "ks_two_sample_raw_windows"
                                    : "sort_columns";
}

Context& cpu_context() {
  static Context ctx(ContextOptions{.backend = Backend::Cpu});
  return ctx;
}

void register_cpu(const Windows& w) {
  for (Op op : kOps) {
    benchmark::RegisterBenchmark((std::string(op_name(op)) + "/cpu/" + shape(w.current)).c_str(),
                                 [&w, op](benchmark::State& s) {
                                   run(s, cpu_context(), w, w.reference.view(), w.current.view(),
                                       op);
                                 })
        ->Unit(benchmark::kMillisecond)
        ->UseRealTime();
  }
}

#ifdef DRIFTGUARD_WITH_CUDA
// A window resident in device memory, as a scoring service on the GPU holds it.
class DeviceWindow {
 public:
  explicit DeviceWindow(const Table& t) : rows_(t.rows), features_(t.features) {
    const std::size_t bytes = t.values.size() * sizeof(float);
    check(cudaMalloc(&d_values_, bytes), "cudaMalloc");
    check(cudaMemcpy(d_values_, t.values.data(), bytes, cudaMemcpyHostToDevice), "upload");
  }
  ~DeviceWindow() { cudaFree(d_values_); }
  DeviceWindow(const DeviceWindow&) = delete;
  DeviceWindow& operator=(const DeviceWindow&) = delete;
  BatchView view() const { return {d_values_, rows_, features_, MemorySpace::Device}; }

 private:
  static void check(cudaError_t status, const char* what) {
    if (status != cudaSuccess) {
      throw std::runtime_error(std::string(what) + ": " + cudaGetErrorString(status));
    }
  }
  float* d_values_ = nullptr;
  std::size_t rows_, features_;
};

struct CudaBench {
  Context ctx{ContextOptions{.backend = Backend::Cuda}};
  std::unique_ptr<DeviceWindow> reference, current;
};
std::unique_ptr<CudaBench> cuda_bench;

void register_cuda(const Windows& w) {
  cuda_bench->reference = std::make_unique<DeviceWindow>(w.reference);
  cuda_bench->current = std::make_unique<DeviceWindow>(w.current);
  // Warm-up: workspace growth and module load stay out of the timings.
  ks_two_sample(cuda_bench->ctx, SortedColumns::from_batch(cuda_bench->ctx, w.reference.view()),
                cuda_bench->current->view());
  ks_two_sample(cuda_bench->ctx, cuda_bench->reference->view(), cuda_bench->current->view());
  for (Op op : kOps) {
    benchmark::RegisterBenchmark((std::string(op_name(op)) + "/cuda/" + shape(w.current)).c_str(),
                                 [&w, op](benchmark::State& s) {
                                   run(s, cuda_bench->ctx, w, cuda_bench->reference->view(),
                                       cuda_bench->current->view(), op);
                                 })
        ->Unit(benchmark::kMillisecond)
        ->UseRealTime();
  }
}
#endif

}  // namespace

int main(int argc, char** argv) {
  benchmark::Initialize(&argc, argv);
  std::string reference_path, current_path;
  for (int i = 1; i < argc; ++i) {
    if (std::strncmp(argv[i], "--reference=", 12) == 0) {
      reference_path = argv[i] + 12;
    } else if (std::strncmp(argv[i], "--current=", 10) == 0) {
      current_path = argv[i] + 10;
    } else {
      std::cerr << "bench_ks: unknown argument " << argv[i] << "\n";
      return 2;
    }
  }
  if (reference_path.empty() != current_path.empty()) {
    std::cerr << "usage: bench_ks [--reference=REF.h5 --current=CUR.h5] [benchmark flags]\n";
    return 2;
  }
  try {
    benchmark::AddCustomContext("cpu_backend", cpu_context().device_name());
    std::unique_ptr<Windows> cpu_windows;
    if (!reference_path.empty()) {
      cpu_windows = std::make_unique<Windows>(Windows{load(reference_path), load(current_path)});
    } else {
      cpu_windows = std::make_unique<Windows>(Windows{synthetic(std::size_t{1} << 20, 32, false),
                                                      synthetic(std::size_t{1} << 20, 32, true)});
    }
    register_cpu(*cpu_windows);
#ifdef DRIFTGUARD_WITH_CUDA
    std::unique_ptr<Windows> cuda_windows;  // registered benchmarks refer to it
    if (cuda_device_count() > 0) {
      cuda_bench = std::make_unique<CudaBench>();
      benchmark::AddCustomContext("cuda_device", cuda_bench->ctx.device_name());
      if (reference_path.empty()) {
        cuda_windows = std::make_unique<Windows>(Windows{
            synthetic(std::size_t{4} << 20, 64, false), synthetic(std::size_t{4} << 20, 64, true)});
      }
      register_cuda(cuda_windows ? *cuda_windows : *cpu_windows);
    }
#endif
    benchmark::RunSpecifiedBenchmarks();
    benchmark::Shutdown();
#ifdef DRIFTGUARD_WITH_CUDA
    // Before static destruction, while the CUDA runtime is still up.
    cuda_bench.reset();
#endif
  } catch (const std::exception& e) {
    std::cerr << "bench_ks: " << e.what() << "\n";
    return 1;
  }
  return 0;
}
