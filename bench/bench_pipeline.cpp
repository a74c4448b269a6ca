// Google Benchmark harness for the streaming scan (scan.hpp) against its ceiling, the bare HDF5
// read of the same file.
//
//   bench_pipeline [--pipeline_dir=DIR] [--pipeline_sizes_mib=256,1024] [--benchmark_...]
//
// Inputs: uncompressed float32 tables of 32 features made by the synthetic generator
// (datasets/synth.hpp, scenario mean_shift) in DIR (default $DRIFTGUARD_PIPELINE_DIR, else
// /tmp/driftguard_bench_pipeline), one per size (MiB of features; default 256 and 1024, also
// $DRIFTGUARD_PIPELINE_SIZES_MIB), plus a reference profile of a 256Ki-row table (scenario none).
// Files already there are reused; each is read once before timing (page-cache hot).
//
// Cases per size (names end in /mib:S):
//   hdf5_read                    Hdf5BatchReader::read over the file in the scan's batch rows
//                                (about 16 MiB, whole chunks), one thread (compressed chunks
//                                are decoded on all cores): the ceiling.
//   scan_stream/<backend>        scan() with validation + PSI histograms only (no KS, no
//                                distances, no MMD, no windows): nothing is held, rows stream.
//   scan_windows/<backend>       scan() with windows of 1Mi rows, KS and the distances on: each
//                                window is held and its statistics computed when it closes.
//   validate_histogram/<backend> validate_histogram over up to 16 batches already read into
//                                HostBuffers (pinned under CUDA): the compute ceiling, no read.
//   h2d_pinned/cuda              cudaMemcpyAsync of the same batches from pinned HostBuffers to
//                                the device (CUDA events): the bandwidth the CUDA pass can reach.
// Counters: bytes_per_second counts the file's feature bytes (rows x 32 x 4), rows/s its rows;
// latency_p50/p95/p99_ms (ScanReport::pipeline, per batch from read start to batch done; for
// hdf5_read the read of one batch); fraction_of_read = this case's bytes/s over hdf5_read's
// (median of this process's hdf5_read runs of the same file; measured on demand when filtered
// out); stream_fraction_of_read the same with the scan's streaming pass only (current_seconds,
// without loading the profile); setup_ms = scan() wall time minus current_seconds (profile load,
// Monitor set-up: bins, rules); read_busy / compute_busy = the reader / compute thread's busy
// seconds over current_seconds. validate_histogram/cuda reports h2d_fraction = its bytes/s over
// h2d_pinned's. CUDA cases are registered only when a device is present.
#include <benchmark/benchmark.h>

#ifdef DRIFTGUARD_WITH_CUDA
#include <cuda_runtime.h>

#include "cuda_timer.hpp"
#endif

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <limits>
#include <map>
#include <memory>
#include <optional>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

#include "bench_random.hpp"
#include "driftguard/batch.hpp"
#include "driftguard/binning.hpp"
#include "driftguard/context.hpp"
#include "driftguard/hdf5_io.hpp"
#include "driftguard/histogram.hpp"
#include "driftguard/profile.hpp"
#include "driftguard/scan.hpp"
#include "driftguard/validate.hpp"
#include "synth.hpp"

namespace {

using namespace driftguard;
namespace fs = std::filesystem;

constexpr std::size_t kFeatures = 32;
constexpr std::size_t kReferenceRows = std::size_t{1} << 18;
constexpr std::size_t kWindowRows = std::size_t{1} << 20;
constexpr std::size_t kComputeBatches = 16;  // validate_histogram / h2d_pinned: 256 MiB at most
constexpr std::uint64_t kSeed = 20261126;

double now_seconds() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

double median(std::vector<double> values) {
  if (values.empty()) return 0;
  std::sort(values.begin(), values.end());
  const std::size_t n = values.size();
  return n % 2 == 1 ? values[n / 2] : (values[n / 2 - 1] + values[n / 2]) / 2;
}

double percentile(std::vector<double> values, double q) {
  if (values.empty()) return 0;
  std::sort(values.begin(), values.end());
  const double position = q * static_cast<double>(values.size() - 1);
  const auto below = static_cast<std::size_t>(position);
  const std::size_t above = std::min(below + 1, values.size() - 1);
  return values[below] + (position - below) * (values[above] - values[below]);
}

// synth_gzip: the synth tables written with shuffle + deflate level 4 (h5py's and many
// producers' compressed layout), for the decoding side of the reader.
enum class DataKind { Synth, SynthGzip, Numeric };
const char* kind_name(DataKind kind) {
  return kind == DataKind::Synth ? "synth" : kind == DataKind::SynthGzip ? "synth_gzip" : "numeric";
}

struct Config {
  std::string dir;
  std::vector<std::size_t> sizes_mib;
  std::vector<DataKind> kinds = {DataKind::Synth, DataKind::Numeric};
};

std::vector<DataKind> parse_kinds(const std::string& text) {
  std::vector<DataKind> kinds;
  std::stringstream in(text);
  for (std::string item; std::getline(in, item, ',');) {
    if (item == "synth") {
      kinds.push_back(DataKind::Synth);
    } else if (item == "synth_gzip") {
      kinds.push_back(DataKind::SynthGzip);
    } else if (item == "numeric") {
      kinds.push_back(DataKind::Numeric);
    } else if (!item.empty()) {
      throw std::invalid_argument("unknown data kind '" + item + "' (synth, synth_gzip, numeric)");
    }
  }
  if (kinds.empty()) throw std::invalid_argument("no data kinds in '" + text + "'");
  return kinds;
}

std::vector<std::size_t> parse_sizes(const std::string& text) {
  std::vector<std::size_t> sizes;
  std::stringstream in(text);
  for (std::string item; std::getline(in, item, ',');) {
    if (!item.empty()) sizes.push_back(std::stoul(item));
  }
  if (sizes.empty()) throw std::invalid_argument("no sizes in '" + text + "'");
  return sizes;
}

// Takes --pipeline_dir / --pipeline_sizes_mib / --pipeline_data out of argv (Google Benchmark
// rejects them).
Config parse_config(int& argc, char** argv) {
  Config config;
  const char* dir = std::getenv("DRIFTGUARD_PIPELINE_DIR");
  config.dir = dir != nullptr && *dir != '\0' ? dir : "/tmp/driftguard_bench_pipeline";
  const char* sizes = std::getenv("DRIFTGUARD_PIPELINE_SIZES_MIB");
  config.sizes_mib = parse_sizes(sizes != nullptr && *sizes != '\0' ? sizes : "256,1024");
  int kept = 1;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    if (arg.rfind("--pipeline_dir=", 0) == 0) {
      config.dir = arg.substr(15);
    } else if (arg.rfind("--pipeline_sizes_mib=", 0) == 0) {
      config.sizes_mib = parse_sizes(arg.substr(21));
    } else if (arg.rfind("--pipeline_data=", 0) == 0) {
      config.kinds = parse_kinds(arg.substr(16));
    } else {
      argv[kept++] = argv[i];
    }
  }
  argc = kept;
  return config;
}

// The scan's default batch: about 16 MiB of rows, whole HDF5 chunks (as scan.cpp chooses it). The
// harness passes it explicitly so that hdf5_read and the scans read the same blocks.
std::size_t scan_batch_rows(const Hdf5BatchReader& reader) {
  const std::size_t chunk = std::max<std::size_t>(1, reader.chunk_rows());
  const std::size_t target = (std::size_t{16} << 20) / (reader.features() * sizeof(float));
  return std::max(chunk, target / chunk * chunk);
}

// The input tables. Synth: the credit-scoring generator (datasets/synth.hpp; 12 named features,
// 5 of them categorical, then numeric x_NNN), reference under `none`, current under
// `mean_shift`. Numeric: every feature numeric and bell-shaped (sum of three uniforms) with its
// own centre and scale and 0.5% NaN, the current's centres shifted by a tenth of the scale; this
// is the validate_histogram kernel's vector path only (categorical features take a table lookup).
using driftguard::bench::Random;

void write_numeric(const std::string& path, std::size_t rows, bool current) {
  std::vector<std::string> names;
  for (std::size_t f = 0; f < kFeatures; ++f) {
    char name[16];
    std::snprintf(name, sizeof name, "x%02zu", f);  // (std::string + to_string trips -Wrestrict)
    names.emplace_back(name);
  }
  Random shape{kSeed};
  std::vector<double> centre(kFeatures), scale(kFeatures);
  for (std::size_t f = 0; f < kFeatures; ++f) {
    centre[f] = 100.0 * (shape.unit() - 0.5);
    scale[f] = 0.5 + 10.0 * shape.unit();
    if (current) centre[f] += 0.1 * scale[f];
  }
  Hdf5Writer writer(path, names);
  constexpr std::size_t kBlock = std::size_t{1} << 17;
  std::vector<float> block(kBlock * kFeatures);
  Random rng{kSeed + (current ? 1 : 2)};
  for (std::size_t first = 0; first < rows; first += kBlock) {
    const std::size_t n = std::min(kBlock, rows - first);
    for (std::size_t i = 0; i < n * kFeatures; ++i) {
      const std::size_t f = i % kFeatures;
      const double u = rng.unit();
      block[i] =
          u < 0.005
              ? std::numeric_limits<float>::quiet_NaN()
              : static_cast<float>(centre[f] + scale[f] * (u + rng.unit() + rng.unit() - 1.5));
    }
    writer.append(block.data(), n);
  }
  writer.close();
}

// A table at `path` with `rows` rows, made unless a complete one is there (written to a
// temporary name and renamed, so an interrupted run leaves nothing that looks complete).
void ensure_table(const std::string& path, std::size_t rows, DataKind kind, bool current) {
  if (fs::exists(path)) {
    try {
      Hdf5BatchReader reader(path);
      if (reader.rows() == rows && reader.features() == kFeatures) return;
    } catch (const std::exception&) {
    }
  }
  const std::string partial = path + ".partial";
  std::fprintf(stderr, "bench_pipeline: generating %s (%zu rows x %zu features)...\n", path.c_str(),
               rows, kFeatures);
  const double start = now_seconds();
  if (kind == DataKind::Numeric) {
    write_numeric(partial, rows, current);
  } else {
    data::SynthOptions options;
    options.rows = rows;
    options.features = kFeatures;
    options.seed = kSeed;
    options.scenario = current ? data::Scenario::MeanShift : data::Scenario::None;
    options.gzip_level = kind == DataKind::SynthGzip ? 4 : 0;
    options.output = partial;
    data::synth(options);
  }
  fs::rename(partial, path);
  std::fprintf(stderr, "bench_pipeline: %s written in %.1f s\n", path.c_str(),
               now_seconds() - start);
}

Context& cpu_context() {
  static Context ctx(ContextOptions{.backend = Backend::Cpu});
  return ctx;
}

std::unique_ptr<Context> cuda_ctx;

Context& context(Backend backend) { return backend == Backend::Cuda ? *cuda_ctx : cpu_context(); }

const char* backend_name(Backend backend) { return backend == Backend::Cuda ? "cuda" : "cpu"; }

// The reference profile every scan compares with (no MMD sample: MMD is off).
struct Reference {
  std::string profile_path;
  ValidationRules rules;
  HistogramSpec spec;
};

Reference make_reference(const Config& config, DataKind kind) {
  const std::string stem = config.dir + "/" + kind_name(kind) + "_reference";
  const std::string table = stem + "_f32_r" + std::to_string(kReferenceRows) + ".h5";
  ensure_table(table, kReferenceRows, kind, false);
  Reference ref;
  ref.profile_path = stem + "_profile.h5";
  std::optional<ReferenceProfile> profile;
  if (ReferenceProfile::is_profile(ref.profile_path)) {
    try {
      profile = ReferenceProfile::load(ref.profile_path);
      if (profile->source != table || profile->rows != kReferenceRows) profile.reset();
    } catch (const std::exception&) {
      profile.reset();
    }
  }
  if (!profile) {
    ProfileOptions options;
    options.mmd_rows = 0;
    profile = ReferenceProfile::build(cpu_context(), table, options);
    profile->save(ref.profile_path + ".partial");
    fs::rename(ref.profile_path + ".partial", ref.profile_path);
  }
  // The monitor's rules and bins (monitor.cpp: quantile binning, 10 bins).
  ref.rules = ValidationRules::from_schema(profile->schema);
  ref.spec = build_histogram_spec(profile->schema, BinningOptions{}, profile->sorted,
                                  profile->column_stats(), nullptr);
  return ref;
}

struct PipelineFile {
  DataKind kind = DataKind::Synth;
  const Reference* reference = nullptr;
  std::size_t mib = 0;
  std::string path;
  std::size_t rows = 0;
  std::size_t batch_rows = 0;
  std::size_t bytes() const { return rows * kFeatures * sizeof(float); }
  std::string suffix() const { return "/mib:" + std::to_string(mib) + "/data:" + kind_name(kind); }
};

// One pass of Hdf5BatchReader::read over the file; the per-batch read seconds are appended.
double read_file(const PipelineFile& file, float* buffer, std::vector<double>* batch_seconds) {
  const double start = now_seconds();
  Hdf5BatchReader reader(file.path);
  for (std::size_t first = 0; first < file.rows; first += file.batch_rows) {
    const double begin = now_seconds();
    reader.read(first, file.batch_rows, buffer);
    if (batch_seconds != nullptr) batch_seconds->push_back(now_seconds() - begin);
  }
  benchmark::ClobberMemory();
  return now_seconds() - start;
}

PipelineFile make_file(const Config& config, std::size_t mib, DataKind kind,
                       const Reference& reference) {
  PipelineFile file;
  file.kind = kind;
  file.reference = &reference;
  file.mib = mib;
  file.rows = (mib << 20) / (kFeatures * sizeof(float));
  file.path =
      config.dir + "/" + kind_name(kind) + "_current_f32_r" + std::to_string(file.rows) + ".h5";
  ensure_table(file.path, file.rows, kind, true);
  {
    Hdf5BatchReader reader(file.path);
    file.batch_rows = scan_batch_rows(reader);
  }
  std::vector<float> buffer(file.batch_rows * kFeatures);
  read_file(file, buffer.data(), nullptr);  // into the page cache
  return file;
}

// hdf5_read bytes/s of each file (by path), every run of this process.
std::map<std::string, std::vector<double>> read_rates;

double read_rate(const PipelineFile& file) {
  auto& rates = read_rates[file.path];
  if (rates.empty()) {  // hdf5_read was filtered out: measure it here
    std::vector<float> buffer(file.batch_rows * kFeatures);
    for (int i = 0; i < 3; ++i)
      rates.push_back(file.bytes() / read_file(file, buffer.data(), nullptr));
  }
  return median(rates);
}

void set_throughput(benchmark::State& state, const PipelineFile& file) {
  state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations()) *
                          static_cast<std::int64_t>(file.bytes()));
  state.counters["rows/s"] =
      benchmark::Counter(static_cast<double>(state.iterations()) * static_cast<double>(file.rows),
                         benchmark::Counter::kIsRate);
  state.counters["batch_rows"] = static_cast<double>(file.batch_rows);
}

void bench_read(benchmark::State& state, const PipelineFile& file) {
  HostBuffer buffer(cpu_context(), file.batch_rows * kFeatures * sizeof(float));
  std::vector<double> batch_seconds;
  double seconds = 0;
  for (auto _ : state) {
    seconds += read_file(file, static_cast<float*>(buffer.data()), &batch_seconds);
  }
  set_throughput(state, file);
  if (seconds > 0) {
    read_rates[file.path].push_back(static_cast<double>(state.iterations()) * file.bytes() /
                                    seconds);
  }
  state.counters["latency_p50_ms"] = 1e3 * percentile(batch_seconds, 0.50);
  state.counters["latency_p95_ms"] = 1e3 * percentile(batch_seconds, 0.95);
  state.counters["latency_p99_ms"] = 1e3 * percentile(batch_seconds, 0.99);
}

void bench_scan(benchmark::State& state, const PipelineFile& file, Backend backend, bool windows) {
  const Reference& ref = *file.reference;
  ScanOptions options;
  options.reference_path = ref.profile_path;
  options.current_path = file.path;
  options.batch_rows = file.batch_rows;
  options.ks = windows;
  options.distances = windows;
  options.mmd = false;
  options.window_rows = windows ? kWindowRows : 0;
  Context& ctx = context(backend);
  double p50 = 0, p95 = 0, p99 = 0, read_busy = 0, compute_busy = 0, current_seconds = 0,
         seconds = 0;
  for (auto _ : state) {
    const double start = now_seconds();
    const ScanReport report = scan(ctx, options);
    seconds += now_seconds() - start;
    if (report.current_rows != file.rows) {
      state.SkipWithError("the scan did not count every row");
      break;
    }
    p50 += report.pipeline.latency_p50;
    p95 += report.pipeline.latency_p95;
    p99 += report.pipeline.latency_p99;
    read_busy += report.pipeline.read_seconds / report.current_seconds;
    compute_busy += report.pipeline.compute_seconds / report.current_seconds;
    current_seconds += report.current_seconds;
  }
  const auto n = static_cast<double>(state.iterations());
  if (n == 0) return;
  set_throughput(state, file);
  state.counters["latency_p50_ms"] = 1e3 * p50 / n;
  state.counters["latency_p95_ms"] = 1e3 * p95 / n;
  state.counters["latency_p99_ms"] = 1e3 * p99 / n;
  state.counters["read_busy"] = read_busy / n;
  state.counters["compute_busy"] = compute_busy / n;
  const double rate = read_rate(file);
  state.counters["fraction_of_read"] = n * file.bytes() / seconds / rate;
  state.counters["stream_fraction_of_read"] = n * file.bytes() / current_seconds / rate;
  state.counters["setup_ms"] = 1e3 * (seconds - current_seconds) / n;
  state.counters["read_bytes_per_second"] = rate;
}

// Up to kComputeBatches batches of the file read into HostBuffers of `ctx` (pinned under CUDA).
struct HostBatches {
  std::vector<HostBuffer> buffers;
  std::vector<std::size_t> rows;
  std::size_t total_rows = 0;
  std::size_t bytes() const { return total_rows * kFeatures * sizeof(float); }

  HostBatches(Context& ctx, const PipelineFile& file) {
    Hdf5BatchReader reader(file.path);
    for (std::size_t first = 0; first < file.rows && buffers.size() < kComputeBatches;
         first += file.batch_rows) {
      buffers.emplace_back(ctx, file.batch_rows * kFeatures * sizeof(float));
      rows.push_back(
          reader.read(first, file.batch_rows, static_cast<float*>(buffers.back().data())));
      total_rows += rows.back();
    }
  }
  bool pinned() const {
    return std::all_of(buffers.begin(), buffers.end(),
                       [](const HostBuffer& b) { return b.pinned(); });
  }
};

void run_validate_histogram(Context& ctx, const HostBatches& batches, const Reference& ref,
                            ValidationCounts& validation, HistogramCounts& counts) {
  for (std::size_t i = 0; i < batches.buffers.size(); ++i) {
    const BatchView batch{static_cast<const float*>(batches.buffers[i].data()), batches.rows[i],
                          kFeatures, MemorySpace::Host};
    validate_histogram(ctx, batch, ref.rules, ref.spec, validation, counts);
  }
}

void set_batches_throughput(benchmark::State& state, const HostBatches& batches) {
  state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations()) *
                          static_cast<std::int64_t>(batches.bytes()));
  state.counters["rows/s"] = benchmark::Counter(
      static_cast<double>(state.iterations()) * static_cast<double>(batches.total_rows),
      benchmark::Counter::kIsRate);
  state.counters["batches"] = static_cast<double>(batches.buffers.size());
  state.counters["pinned"] = batches.pinned() ? 1 : 0;
}

void bench_validate_histogram_cpu(benchmark::State& state, const PipelineFile& file) {
  const Reference& ref = *file.reference;
  const HostBatches batches(cpu_context(), file);
  ValidationCounts validation(kFeatures);
  HistogramCounts counts(ref.spec);
  for (auto _ : state) run_validate_histogram(cpu_context(), batches, ref, validation, counts);
  set_batches_throughput(state, batches);
}

#ifdef DRIFTGUARD_WITH_CUDA
using driftguard::bench::cuda_check;

std::unique_ptr<bench::CudaTimer> cuda_timer;
std::map<std::string, double> h2d_rates;  // h2d_pinned bytes/s by file path

// Host-to-device copies of the batches from their pinned HostBuffers into one device buffer per
// batch, on the timer's stream, timed with CUDA events.
void bench_h2d(benchmark::State& state, const PipelineFile& file) {
  const HostBatches batches(*cuda_ctx, file);
  if (!batches.pinned()) {
    state.SkipWithError("the CUDA context gave unpinned HostBuffers");
    return;
  }
  std::vector<float*> device(batches.buffers.size(), nullptr);
  for (std::size_t i = 0; i < device.size(); ++i) {
    cuda_check(cudaMalloc(&device[i], batches.buffers[i].bytes()), "cudaMalloc");
  }
  double seconds = 0;
  int salt = 0;
  for (auto _ : state) {
    const double s = cuda_timer->timed(
        [&] {
          for (std::size_t i = 0; i < device.size(); ++i) {
            cuda_check(cudaMemcpyAsync(device[i], batches.buffers[i].data(),
                                       batches.rows[i] * kFeatures * sizeof(float),
                                       cudaMemcpyHostToDevice, cuda_timer->stream()),
                       "h2d");
          }
        },
        ++salt);
    seconds += s;
    state.SetIterationTime(s);
  }
  for (float* d : device) cudaFree(d);
  set_batches_throughput(state, batches);
  if (seconds > 0) h2d_rates[file.path] = state.iterations() * batches.bytes() / seconds;
}

void bench_validate_histogram_cuda(benchmark::State& state, const PipelineFile& file) {
  const Reference& ref = *file.reference;
  const HostBatches batches(*cuda_ctx, file);
  ValidationCounts validation(kFeatures);
  HistogramCounts counts(ref.spec);
  run_validate_histogram(*cuda_ctx, batches, ref, validation, counts);  // warm-up
  double seconds = 0;
  int salt = 0;
  for (auto _ : state) {
    // The library returns once the counts are on the host: the stop event covers the whole call.
    const double s = cuda_timer->timed(
        [&] { run_validate_histogram(*cuda_ctx, batches, ref, validation, counts); }, ++salt);
    seconds += s;
    state.SetIterationTime(s);
  }
  set_batches_throughput(state, batches);
  if (auto it = h2d_rates.find(file.path); it != h2d_rates.end() && seconds > 0) {
    state.counters["h2d_fraction"] = state.iterations() * batches.bytes() / seconds / it->second;
  }
}
#endif

std::vector<std::unique_ptr<Reference>> references;  // kept alive for the registered cases
std::vector<PipelineFile> files;

void register_benchmarks(const Config& config, [[maybe_unused]] bool cuda) {
  std::vector<Backend> backends = {Backend::Cpu};
  if (cuda) backends.push_back(Backend::Cuda);
  for (DataKind kind : config.kinds) {
    references.push_back(std::make_unique<Reference>(make_reference(config, kind)));
    for (std::size_t mib : config.sizes_mib) {
      files.push_back(make_file(config, mib, kind, *references.back()));
    }
  }
  for (const PipelineFile& file : files) {
    const std::string suffix = file.suffix();
    benchmark::RegisterBenchmark(("hdf5_read" + suffix).c_str(), bench_read, file)
        ->Unit(benchmark::kMillisecond)
        ->UseRealTime()
        ->MinTime(1.0);
    for (Backend backend : backends) {
      const std::string b = backend_name(backend);
      benchmark::RegisterBenchmark(("scan_stream/" + b + suffix).c_str(), bench_scan, file, backend,
                                   false)
          ->Unit(benchmark::kMillisecond)
          ->UseRealTime()
          ->MinTime(1.0);
      // The windows' cost is KS and the distances: on both kinds of data, since the distances
      // walk discrete columns by runs of ties and continuous ones value by value.
      benchmark::RegisterBenchmark(("scan_windows/" + b + suffix).c_str(), bench_scan, file,
                                   backend, true)
          ->Unit(benchmark::kMillisecond)
          ->UseRealTime()
          ->MinTime(1.0);
    }
    // Compute without the read, on the first batches of the smallest file of each kind.
    if (file.mib != config.sizes_mib.front()) continue;
    benchmark::RegisterBenchmark(("validate_histogram/cpu" + suffix).c_str(),
                                 bench_validate_histogram_cpu, file)
        ->Unit(benchmark::kMillisecond)
        ->UseRealTime()
        ->MinTime(1.0);
#ifdef DRIFTGUARD_WITH_CUDA
    if (cuda) {
      benchmark::RegisterBenchmark(("h2d_pinned/cuda" + suffix).c_str(), bench_h2d, file)
          ->Unit(benchmark::kMillisecond)
          ->UseManualTime();
      benchmark::RegisterBenchmark(("validate_histogram/cuda" + suffix).c_str(),
                                   bench_validate_histogram_cuda, file)
          ->Unit(benchmark::kMillisecond)
          ->UseManualTime();
    }
#endif
  }
}

}  // namespace

int main(int argc, char** argv) {
  const Config config = parse_config(argc, argv);
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  fs::create_directories(config.dir);
  const bool cuda = cuda_device_count() > 0;
  if (cuda) {
    cuda_ctx = std::make_unique<Context>(ContextOptions{.backend = Backend::Cuda});
    benchmark::AddCustomContext("cuda_device", cuda_ctx->device_name());
#ifdef DRIFTGUARD_WITH_CUDA
    cuda_timer = std::make_unique<bench::CudaTimer>();
#endif
  }
  benchmark::AddCustomContext("cpu_backend", cpu_context().device_name());
  benchmark::AddCustomContext("pipeline_dir", config.dir);
  register_benchmarks(config, cuda);
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
#ifdef DRIFTGUARD_WITH_CUDA
  cuda_timer.reset();  // before static destruction, while the CUDA runtime is still up
#endif
  cuda_ctx.reset();
  return 0;
}
