// Quantile-edge histograms (+ validation) of a real table read from HDF5, on the CPU backend and,
// when present, the CUDA backend with the table staged from host memory. The NumPy peer
// (bench/peer_numpy_histogram.py) runs np.histogram with the same edges on the same file.
//
//   bench_quantile_histogram --input=FILE.h5 [--bins=10] [google benchmark flags]
#include <benchmark/benchmark.h>

#include <cstdio>
#include <cstring>
#include <iostream>
#include <string>
#include <vector>

#include "driftguard/binning.hpp"
#include "driftguard/context.hpp"
#include "driftguard/errors.hpp"
#include "driftguard/hdf5_io.hpp"
#include "driftguard/histogram.hpp"
#include "driftguard/validate.hpp"

namespace {

using namespace driftguard;

struct Table {
  std::size_t rows = 0, features = 0;
  std::vector<float> values;
  HistogramSpec spec;
};

Table load(const std::string& path, std::size_t bins) {
  Hdf5BatchReader reader(path);
  Table t{
      reader.rows(), reader.features(), std::vector<float>(reader.rows() * reader.features()), {}};
  reader.read(0, t.rows, t.values.data());
  std::vector<float> column(t.rows);
  for (std::size_t f = 0; f < t.features; ++f) {
    for (std::size_t r = 0; r < t.rows; ++r) column[r] = t.values[r * t.features + f];
    t.spec.add_numeric(quantile_edges(column, bins));
  }
  return t;
}

void run_pass(benchmark::State& state, Backend backend, const Table& t, bool validate_too) {
  Context ctx(ContextOptions{.backend = backend});
  const ValidationRules rules = ValidationRules::permissive(t.features);
  const BatchView batch{t.values.data(), t.rows, t.features};
  for (auto _ : state) {
    HistogramCounts counts(t.spec);
    ValidationCounts validation(t.features);
    if (validate_too) {
      validate_histogram(ctx, batch, rules, t.spec, validation, counts);
    } else {
      histogram(ctx, batch, t.spec, counts);
    }
    benchmark::DoNotOptimize(counts.raw().data());
  }
  state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations() * t.values.size() * 4));
  state.counters["rows_per_second"] = benchmark::Counter(
      static_cast<double>(state.iterations() * t.rows), benchmark::Counter::kIsRate);
  state.counters["rows"] = static_cast<double>(t.rows);
  state.counters["features"] = static_cast<double>(t.features);
  state.counters["threads"] = ctx.cpu_threads();
}

}  // namespace

int main(int argc, char** argv) {
  benchmark::Initialize(&argc, argv);
  std::string input;
  std::size_t bins = 10;
  for (int i = 1; i < argc; ++i) {
    if (std::strncmp(argv[i], "--input=", 8) == 0) {
      input = argv[i] + 8;
    } else if (std::strncmp(argv[i], "--bins=", 7) == 0) {
      bins = std::stoul(argv[i] + 7);
    } else {
      std::cerr << "bench_quantile_histogram: unknown argument " << argv[i] << "\n";
      return 2;
    }
  }
  if (input.empty()) {
    std::cerr << "usage: bench_quantile_histogram --input=FILE.h5 [--bins=10] [benchmark flags]\n";
    return 2;
  }
  try {
    static const Table table = load(input, bins);
    const std::string shape = std::to_string(table.rows) + "x" + std::to_string(table.features) +
                              "/bins:" + std::to_string(bins);
    std::vector<Backend> backends = {Backend::Cpu};
    if (cuda_device_count() > 0) backends.push_back(Backend::Cuda);
    for (Backend backend : backends) {
      const std::string name(to_string(backend));
      benchmark::RegisterBenchmark(
          ("histogram/" + name + "/" + shape).c_str(),
          [backend](benchmark::State& s) { run_pass(s, backend, table, false); })
          ->Unit(benchmark::kMillisecond)
          ->UseRealTime();
      benchmark::RegisterBenchmark(
          ("validate_histogram/" + name + "/" + shape).c_str(),
          [backend](benchmark::State& s) { run_pass(s, backend, table, true); })
          ->Unit(benchmark::kMillisecond)
          ->UseRealTime();
    }
    benchmark::RunSpecifiedBenchmarks();
    benchmark::Shutdown();
  } catch (const driftguard::Error& e) {
    std::cerr << "bench_quantile_histogram: " << e.what() << "\n";
    return 1;
  }
  return 0;
}
