// Google Benchmark harness for validate, histogram and validate_histogram on both backends.
//
//   bench_validate_histogram [--benchmark_filter=REGEX] [--benchmark_out=FILE ...]
//
// Names read op/backend/rows:R/features:F/bins:B. Axes: rows {64Ki, 1Mi, 4Mi} x features {32, 64}
// x bins {10, 64}, edges at quantiles of the data; "_one_bin" cases put every value in one bin.
// The CPU's 4Mi-row cases are registered only when a --benchmark_filter is given, so that the
// default run stays near a minute on a small machine.
// CUDA cases (registered when a device is present) time device-resident batches with CUDA events
// (manual time) after flushing L2, and copy_d2d times a device-to-device copy of the same bytes:
// its bytes_per_second counts read + write, the copy bandwidth the kernels are compared with
// (counter copy_fraction = kernel input bytes/s over that bandwidth).
#include <benchmark/benchmark.h>

#ifdef DRIFTGUARD_WITH_CUDA
#include <cuda_runtime.h>

#include "cuda_timer.hpp"
#endif

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <limits>
#include <map>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include "bench_random.hpp"
#include "driftguard/batch.hpp"
#include "driftguard/context.hpp"
#include "driftguard/histogram.hpp"
#include "driftguard/validate.hpp"

namespace {

using namespace driftguard;

enum class Op { Validate, Histogram, Fused };
const char* op_name(Op op) {
  return op == Op::Validate ? "validate" : op == Op::Histogram ? "histogram" : "validate_histogram";
}

using driftguard::bench::Random;

struct Dataset {
  std::uint64_t id = 0;  // distinct for every dataset built
  std::size_t rows = 0, features = 0, bins = 0;
  bool one_bin = false;
  std::vector<float> data;
  ValidationRules rules;
  HistogramSpec spec;
};

// Per feature a bell-shaped column (sum of three uniforms) with its own centre and scale, 0.5%
// missing; edges at the quantiles of a sample, bounds at its 0.1% / 99.9% quantiles.
std::unique_ptr<Dataset> make_dataset(std::size_t rows, std::size_t features, std::size_t bins,
                                      bool one_bin) {
  static std::uint64_t next_id = 0;
  auto d = std::make_unique<Dataset>();
  d->id = ++next_id;
  d->rows = rows;
  d->features = features;
  d->bins = bins;
  d->one_bin = one_bin;
  d->data.resize(rows * features);
  d->rules = ValidationRules::permissive(features);
  Random rng{rows * 131 + features * 7 + bins};
  std::vector<double> centre(features), scale(features);
  for (std::size_t f = 0; f < features; ++f) {
    centre[f] = 100.0 * (rng.unit() - 0.5);
    scale[f] = 0.5 + 10.0 * rng.unit();
  }
  for (std::size_t r = 0; r < rows; ++r) {
    float* row = d->data.data() + r * features;
    for (std::size_t f = 0; f < features; ++f) {
      const double u = rng.unit();
      row[f] = u < 0.005
                   ? std::numeric_limits<float>::quiet_NaN()
                   : static_cast<float>(centre[f] + scale[f] * (u + rng.unit() + rng.unit() - 1.5));
    }
  }
  const std::size_t sample_rows = std::min<std::size_t>(rows, 65536);
  std::vector<float> sample;
  for (std::size_t f = 0; f < features; ++f) {
    sample.clear();
    for (std::size_t r = 0; r < sample_rows; ++r) {
      const float x = d->data[(r * rows / sample_rows) * features + f];
      if (!std::isnan(x)) sample.push_back(x);
    }
    std::sort(sample.begin(), sample.end());
    auto quantile = [&](double q) {
      return static_cast<double>(sample[static_cast<std::size_t>(q * (sample.size() - 1))]);
    };
    std::vector<double> edges;
    for (std::size_t i = 0; i <= bins; ++i) {
      const double e = quantile(static_cast<double>(i) / bins);
      if (edges.empty() || e > edges.back()) edges.push_back(e);
    }
    if (edges.size() < 2) edges.push_back(edges.back() + 1.0);
    d->spec.add_numeric(edges);
    d->rules.min[f] = quantile(0.001);
    d->rules.max[f] = quantile(0.999);
    d->rules.missing_allowed[f] = f % 8 != 0;
  }
  if (one_bin) {
    for (std::size_t r = 0; r < rows; ++r) {
      for (std::size_t f = 0; f < features; ++f) {
        const auto p = d->spec.points_of(f);
        d->data[r * features + f] = static_cast<float>((p[0] + p[1]) / 2);
      }
    }
  }
  return d;
}

// One dataset at a time: benchmarks are registered grouped by dataset, so each is built once.
const Dataset& dataset(std::size_t rows, std::size_t features, std::size_t bins, bool one_bin) {
  static std::unique_ptr<Dataset> cached;
  if (!cached || cached->rows != rows || cached->features != features || cached->bins != bins ||
      cached->one_bin != one_bin) {
    cached.reset();
    cached = make_dataset(rows, features, bins, one_bin);
  }
  return *cached;
}

// Accumulating outputs of one benchmark (counts keep growing; nothing is reallocated per call).
struct Outputs {
  ValidationCounts validation;
  HistogramCounts counts;
  explicit Outputs(const Dataset& d) : validation(d.features), counts(d.spec) {}
};

void run_op(Context& ctx, Op op, const Dataset& d, BatchView batch, Outputs& out) {
  switch (op) {
    case Op::Validate:
      validate(ctx, batch, d.rules, out.validation);
      break;
    case Op::Histogram:
      histogram(ctx, batch, d.spec, out.counts);
      break;
    case Op::Fused:
      validate_histogram(ctx, batch, d.rules, d.spec, out.validation, out.counts);
      break;
  }
}

void set_throughput(benchmark::State& state, const Dataset& d) {
  const auto iterations = static_cast<double>(state.iterations());
  state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations()) *
                          static_cast<std::int64_t>(d.rows * d.features * sizeof(float)));
  state.counters["rows/s"] =
      benchmark::Counter(iterations * static_cast<double>(d.rows), benchmark::Counter::kIsRate);
}

Context& cpu_context() {
  static Context ctx(ContextOptions{.backend = Backend::Cpu});
  return ctx;
}

void bench_cpu(benchmark::State& state, Op op, std::size_t rows, std::size_t features,
               std::size_t bins, bool one_bin) {
  const Dataset& d = dataset(rows, features, bins, one_bin);
  Outputs out(d);
  const BatchView batch{d.data.data(), d.rows, d.features, MemorySpace::Host};
  for (auto _ : state) run_op(cpu_context(), op, d, batch, out);
  set_throughput(state, d);
  state.counters["threads"] = cpu_context().cpu_threads();
}

#ifdef DRIFTGUARD_WITH_CUDA
using driftguard::bench::cuda_check;

// The harness's own CUDA resources: the resident copy of the current dataset, a buffer twice the
// L2 size that is rewritten before each timed call, a stream and timing events.
struct CudaBench {
  std::optional<Context> ctx;
  bench::CudaTimer timer;
  float* d_data = nullptr;
  float* d_copy = nullptr;
  std::uint64_t resident_id = 0;
  std::size_t resident_bytes = 0;
  // Copy bandwidth (bytes read + written per second) per batch size, from copy_d2d.
  std::map<std::size_t, double> copy_bandwidth;

  CudaBench() { ctx.emplace(ContextOptions{.backend = Backend::Cuda}); }
  ~CudaBench() {
    cudaFree(d_data);
    cudaFree(d_copy);
  }

  // The dataset on the device (uploaded once), plus a same-sized copy target for copy_d2d.
  const float* upload(const Dataset& d) {
    if (resident_id == d.id) return d_data;
    const std::size_t bytes = d.data.size() * sizeof(float);
    if (bytes > resident_bytes) {
      cudaFree(d_data);
      cudaFree(d_copy);
      d_data = d_copy = nullptr;
      cuda_check(cudaMalloc(&d_data, bytes), "cudaMalloc batch");
      cuda_check(cudaMalloc(&d_copy, bytes), "cudaMalloc copy");
      resident_bytes = bytes;
    }
    cuda_check(cudaMemcpy(d_data, d.data.data(), bytes, cudaMemcpyHostToDevice), "upload");
    resident_id = d.id;
    return d_data;
  }
};

std::unique_ptr<CudaBench> cuda_bench;

void bench_cuda(benchmark::State& state, Op op, std::size_t rows, std::size_t features,
                std::size_t bins, bool one_bin) {
  const Dataset& d = dataset(rows, features, bins, one_bin);
  CudaBench& cb = *cuda_bench;
  const BatchView batch{cb.upload(d), d.rows, d.features, MemorySpace::Device};
  Outputs out(d);
  run_op(*cb.ctx, op, d, batch, out);  // warm-up: workspace growth, module load
  int salt = 0;
  // The library call returns once its results are on the host, so the stop event also covers
  // the count download and API overhead: this is the per-batch latency a caller sees.
  for (auto _ : state) {
    state.SetIterationTime(cb.timer.timed([&] { run_op(*cb.ctx, op, d, batch, out); }, ++salt));
  }
  set_throughput(state, d);
  const std::size_t bytes = d.rows * d.features * sizeof(float);
  if (auto it = cb.copy_bandwidth.find(bytes); it != cb.copy_bandwidth.end()) {
    state.counters["copy_fraction"] = benchmark::Counter(
        static_cast<double>(state.iterations()) * static_cast<double>(bytes) / it->second,
        benchmark::Counter::kIsRate);
  }
}

void bench_copy(benchmark::State& state, std::size_t rows, std::size_t features) {
  const Dataset& d = dataset(rows, features, 10, false);
  CudaBench& cb = *cuda_bench;
  const float* d_src = cb.upload(d);
  const std::size_t bytes = d.rows * d.features * sizeof(float);
  double seconds = 0;
  int salt = 0;
  for (auto _ : state) {
    const double s = cb.timer.timed(
        [&] {
          cuda_check(
              cudaMemcpyAsync(cb.d_copy, d_src, bytes, cudaMemcpyDeviceToDevice, cb.timer.stream()),
              "copy");
        },
        ++salt);
    seconds += s;
    state.SetIterationTime(s);
  }
  const double moved = 2.0 * static_cast<double>(bytes) * static_cast<double>(state.iterations());
  state.SetBytesProcessed(static_cast<std::int64_t>(moved));
  if (seconds > 0) cb.copy_bandwidth[bytes] = moved / seconds;
}
#endif

const std::vector<std::size_t> kRows = {std::size_t{1} << 16, std::size_t{1} << 20,
                                        std::size_t{4} << 20};
const std::vector<std::size_t> kFeatures = {32, 64};
const std::vector<std::size_t> kBins = {10, 64};

std::string case_name(const char* op, const char* backend, std::size_t rows, std::size_t features,
                      std::size_t bins) {
  return std::string(op) + "/" + backend + "/rows:" + std::to_string(rows) +
         "/features:" + std::to_string(features) + "/bins:" + std::to_string(bins);
}

void register_benchmarks(bool all_cpu_sizes, [[maybe_unused]] bool cuda) {
  for (std::size_t rows : kRows) {
    const bool cpu = all_cpu_sizes || rows < kRows.back();
    for (std::size_t features : kFeatures) {
#ifdef DRIFTGUARD_WITH_CUDA
      if (cuda) {
        benchmark::RegisterBenchmark(
            ("copy_d2d/cuda/rows:" + std::to_string(rows) + "/features:" + std::to_string(features))
                .c_str(),
            bench_copy, rows, features)
            ->UseManualTime()
            ->Unit(benchmark::kMicrosecond);
      }
#endif
      for (std::size_t bins : kBins) {
        for (Op op : {Op::Validate, Op::Histogram, Op::Fused}) {
          if (cpu) {
            benchmark::RegisterBenchmark(
                case_name(op_name(op), "cpu", rows, features, bins).c_str(), bench_cpu, op, rows,
                features, bins, false)
                ->Unit(benchmark::kMillisecond)
                ->UseRealTime();
          }
#ifdef DRIFTGUARD_WITH_CUDA
          if (cuda) {
            benchmark::RegisterBenchmark(
                case_name(op_name(op), "cuda", rows, features, bins).c_str(), bench_cuda, op, rows,
                features, bins, false)
                ->UseManualTime()
                ->Unit(benchmark::kMicrosecond);
          }
#endif
        }
      }
    }
  }
  // Every value in one bin: the contention case for the histogram counters.
  const std::size_t features = kFeatures.back();
  for (std::size_t bins : kBins) {
    const std::size_t cpu_rows = all_cpu_sizes ? kRows.back() : kRows[1];
    benchmark::RegisterBenchmark(
        case_name("validate_histogram_one_bin", "cpu", cpu_rows, features, bins).c_str(), bench_cpu,
        Op::Fused, cpu_rows, features, bins, true)
        ->Unit(benchmark::kMillisecond)
        ->UseRealTime();
#ifdef DRIFTGUARD_WITH_CUDA
    if (cuda) {
      benchmark::RegisterBenchmark(
          case_name("validate_histogram_one_bin", "cuda", kRows.back(), features, bins).c_str(),
          bench_cuda, Op::Fused, kRows.back(), features, bins, true)
          ->UseManualTime()
          ->Unit(benchmark::kMicrosecond);
    }
#endif
  }
}

}  // namespace

int main(int argc, char** argv) {
  bool filtered = false;
  for (int i = 1; i < argc; ++i) {
    filtered = filtered || std::string(argv[i]).rfind("--benchmark_filter", 0) == 0;
  }
  const bool cuda = cuda_device_count() > 0;
#ifdef DRIFTGUARD_WITH_CUDA
  if (cuda) {
    cuda_bench = std::make_unique<CudaBench>();
    benchmark::AddCustomContext("cuda_device", cuda_bench->ctx->device_name());
  }
#endif
  benchmark::AddCustomContext("cpu_backend", cpu_context().device_name());
  register_benchmarks(filtered, cuda);
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
#ifdef DRIFTGUARD_WITH_CUDA
  // Before static destruction, while the CUDA runtime is still up.
  cuda_bench.reset();
#endif
  return 0;
}
