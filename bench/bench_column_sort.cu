// How to sort many long device columns of 32-bit keys, the step that takes two thirds of KS's
// CUDA time (64 columns of 4Mi keys a window; results/h200_20261127_b/profile.log). The backend
// sorts such columns one after another with cub::DeviceRadixSort (CUB's segmented sort gives a
// segment one block, NVIDIA/cccl#875). This harness times the alternatives on the same keys, each
// checked against the first strategy's output:
//   sequential  the backend's way: one device-wide sort per column, on one stream;
//   streams:L   the same, columns dealt round robin to L streams (one column's kernel tails and
//               launch gaps overlap the next one's passes), joined back by events;
//   graph       `sequential` captured once into a CUDA graph and replayed;
//   segmented   one cub::DeviceSegmentedRadixSort over all columns;
//   composite   one cub::DeviceRadixSort over 64-bit keys (column << 32 | key) on the bits used,
//               built from and split back to 32-bit columns inside the timed region.
// Times are CUDA-event times on a stream after an L2 flush; each run starts from the unsorted
// keys (restored before the flush, untimed). Needs a device; prints nothing useful without one.
#include <benchmark/benchmark.h>
#include <cub/device/device_radix_sort.cuh>
#include <cub/device/device_segmented_radix_sort.cuh>

#include <algorithm>
#include <bit>
#include <cstdint>
#include <cstdio>
#include <exception>
#include <memory>
#include <string>
#include <vector>

#include "cuda_timer.hpp"

namespace {

using driftguard::bench::cuda_check;

constexpr std::size_t kRows = std::size_t{1} << 22;
constexpr std::size_t kFeatures = 64;

// Keys of floats near a normal distribution (Irwin-Hall of 4 hashed uniforms), as ks_sort_key
// makes them: many exponents, both signs.
__global__ void fill_keys_kernel(std::uint32_t* d_keys, std::size_t n, std::uint64_t seed) {
  for (std::size_t i = blockIdx.x * std::size_t{blockDim.x} + threadIdx.x; i < n;
       i += std::size_t{gridDim.x} * blockDim.x) {
    std::uint64_t h = (i + 1) * 0x9e3779b97f4a7c15ull ^ seed;
    float sum = 0;
    for (int k = 0; k < 4; ++k) {
      h ^= h >> 31;
      h *= 0xbf58476d1ce4e5b9ull;
      h ^= h >> 29;
      sum += static_cast<float>(h >> 40) * 0x1p-24f;
    }
    const std::uint32_t bits = __float_as_uint(sum - 2.0f);
    d_keys[i] = bits ^ ((bits >> 31) != 0 ? 0xffffffffu : 0x80000000u);
  }
}

__global__ void composite_keys_kernel(const std::uint32_t* d_in, std::size_t rows, std::size_t n,
                                      std::uint64_t* d_out) {
  for (std::size_t i = blockIdx.x * std::size_t{blockDim.x} + threadIdx.x; i < n;
       i += std::size_t{gridDim.x} * blockDim.x) {
    d_out[i] = (static_cast<std::uint64_t>(i / rows) << 32) | d_in[i];
  }
}

__global__ void low_words_kernel(const std::uint64_t* d_in, std::size_t n, std::uint32_t* d_out) {
  for (std::size_t i = blockIdx.x * std::size_t{blockDim.x} + threadIdx.x; i < n;
       i += std::size_t{gridDim.x} * blockDim.x) {
    d_out[i] = static_cast<std::uint32_t>(d_in[i]);
  }
}

__global__ void count_mismatches_kernel(const std::uint32_t* a, const std::uint32_t* b,
                                        std::size_t n, unsigned long long* d_count) {
  unsigned long long own = 0;
  for (std::size_t i = blockIdx.x * std::size_t{blockDim.x} + threadIdx.x; i < n;
       i += std::size_t{gridDim.x} * blockDim.x) {
    own += a[i] != b[i] ? 1 : 0;
  }
  if (own != 0) atomicAdd(d_count, own);
}

constexpr unsigned kGrid = 1024, kBlock = 256;

template <class T>
T* device_alloc(std::size_t count) {
  void* d = nullptr;
  cuda_check(cudaMalloc(&d, count * sizeof(T)), "cudaMalloc");
  return static_cast<T*>(d);
}

enum class Strategy { Sequential, Streams, Graph, Segmented, Composite };

// Everything the strategies share, allocated once for the largest shape.
struct Bench {
  driftguard::bench::CudaTimer timer;
  std::uint32_t* d_input = nullptr;  // unsorted keys, column-major
  std::uint32_t* d_keys = nullptr;   // working buffers
  std::uint32_t* d_alt = nullptr;
  std::uint32_t* d_expected = nullptr;  // `sequential`'s output
  std::uint64_t* d_wide = nullptr;      // composite keys and their alternate buffer
  std::uint64_t* d_wide_alt = nullptr;
  int* d_offsets = nullptr;
  unsigned long long* d_mismatches = nullptr;
  std::byte* d_temp = nullptr;
  std::size_t temp_bytes = 0, column_temp_bytes = 0;
  std::vector<cudaStream_t> lanes;
  std::vector<cudaEvent_t> joins;
  cudaEvent_t fork = nullptr;

  Bench() {
    const std::size_t n = kRows * kFeatures;
    d_input = device_alloc<std::uint32_t>(n);
    d_keys = device_alloc<std::uint32_t>(n);
    d_alt = device_alloc<std::uint32_t>(n);
    d_expected = device_alloc<std::uint32_t>(n);
    d_wide = device_alloc<std::uint64_t>(n);
    d_wide_alt = device_alloc<std::uint64_t>(n);
    d_offsets = device_alloc<int>(kFeatures + 1);
    d_mismatches = device_alloc<unsigned long long>(1);
    fill_keys_kernel<<<kGrid, kBlock>>>(d_input, n, 0x5eed);
    cuda_check(cudaGetLastError(), "fill_keys_kernel");
    std::vector<int> offsets(kFeatures + 1);
    for (std::size_t f = 0; f <= kFeatures; ++f) offsets[f] = static_cast<int>(f * kRows);
    cuda_check(
        cudaMemcpy(d_offsets, offsets.data(), offsets.size() * sizeof(int), cudaMemcpyHostToDevice),
        "offsets");
    cub::DoubleBuffer<std::uint32_t> narrow(nullptr, nullptr);
    cub::DoubleBuffer<std::uint64_t> wide(nullptr, nullptr);
    std::size_t segmented = 0, composite = 0;
    cuda_check(
        cub::DeviceRadixSort::SortKeys(nullptr, column_temp_bytes, narrow, static_cast<int>(kRows)),
        "temp size");
    column_temp_bytes = (column_temp_bytes + 255) / 256 * 256;
    cuda_check(cub::DeviceSegmentedRadixSort::SortKeys(
                   nullptr, segmented, narrow, static_cast<int>(n), static_cast<int>(kFeatures),
                   d_offsets, d_offsets + 1),
               "temp size");
    cuda_check(cub::DeviceRadixSort::SortKeys(nullptr, composite, wide, static_cast<int>(n)),
               "temp size");
    temp_bytes = std::max({4 * column_temp_bytes, segmented, composite});
    d_temp = device_alloc<std::byte>(temp_bytes);
    for (int l = 0; l < 4; ++l) {
      cudaStream_t s = nullptr;
      cudaEvent_t e = nullptr;
      cuda_check(cudaStreamCreateWithFlags(&s, cudaStreamNonBlocking), "stream");
      cuda_check(cudaEventCreateWithFlags(&e, cudaEventDisableTiming), "event");
      lanes.push_back(s);
      joins.push_back(e);
    }
    cuda_check(cudaEventCreateWithFlags(&fork, cudaEventDisableTiming), "event");
    cuda_check(cudaDeviceSynchronize(), "setup");
  }
  ~Bench() {
    for (cudaStream_t s : lanes) cudaStreamDestroy(s);
    for (cudaEvent_t e : joins) cudaEventDestroy(e);
    cudaEventDestroy(fork);
    for (void* d :
         {static_cast<void*>(d_input), static_cast<void*>(d_keys), static_cast<void*>(d_alt),
          static_cast<void*>(d_expected), static_cast<void*>(d_wide),
          static_cast<void*>(d_wide_alt), static_cast<void*>(d_offsets),
          static_cast<void*>(d_mismatches), static_cast<void*>(d_temp)}) {
      cudaFree(d);
    }
  }

  // Sorts column f of d_keys (alternate d_alt) on `stream` with temp slice `lane`; the sorted
  // column ends in d_keys.
  void sort_column(std::size_t rows, std::size_t f, cudaStream_t stream, int lane) {
    cub::DoubleBuffer<std::uint32_t> column(d_keys + f * rows, d_alt + f * rows);
    std::size_t bytes = column_temp_bytes;
    cuda_check(cub::DeviceRadixSort::SortKeys(d_temp + lane * column_temp_bytes, bytes, column,
                                              static_cast<int>(rows), 0, 32, stream),
               "SortKeys");
    if (column.selector != 0) {
      cuda_check(cudaMemcpyAsync(d_keys + f * rows, column.Current(), rows * sizeof(std::uint32_t),
                                 cudaMemcpyDeviceToDevice, stream),
                 "move");
    }
  }

  void sequential(std::size_t rows, std::size_t features, cudaStream_t stream) {
    for (std::size_t f = 0; f < features; ++f) sort_column(rows, f, stream, 0);
  }

  void streams(std::size_t rows, std::size_t features, int count, cudaStream_t stream) {
    cuda_check(cudaEventRecord(fork, stream), "fork");
    for (int l = 0; l < count; ++l) cuda_check(cudaStreamWaitEvent(lanes[l], fork, 0), "wait");
    for (std::size_t f = 0; f < features; ++f) {
      const int l = static_cast<int>(f % static_cast<std::size_t>(count));
      sort_column(rows, f, lanes[l], l);
    }
    for (int l = 0; l < count; ++l) {
      cuda_check(cudaEventRecord(joins[l], lanes[l]), "join");
      cuda_check(cudaStreamWaitEvent(stream, joins[l], 0), "wait");
    }
  }

  void segmented(std::size_t rows, std::size_t features, cudaStream_t stream) {
    cub::DoubleBuffer<std::uint32_t> keys(d_keys, d_alt);
    std::size_t bytes = temp_bytes;
    cuda_check(cub::DeviceSegmentedRadixSort::SortKeys(
                   d_temp, bytes, keys, static_cast<int>(rows * features),
                   static_cast<int>(features), d_offsets, d_offsets + 1, 0, 32, stream),
               "SortKeys");
    if (keys.selector != 0) {
      cuda_check(cudaMemcpyAsync(d_keys, keys.Current(), rows * features * sizeof(std::uint32_t),
                                 cudaMemcpyDeviceToDevice, stream),
                 "move");
    }
  }

  void composite(std::size_t rows, std::size_t features, cudaStream_t stream) {
    const std::size_t n = rows * features;
    composite_keys_kernel<<<kGrid, kBlock, 0, stream>>>(d_keys, rows, n, d_wide);
    cub::DoubleBuffer<std::uint64_t> keys(d_wide, d_wide_alt);
    std::size_t bytes = temp_bytes;
    const int end_bit = 32 + std::bit_width(features - 1);
    cuda_check(cub::DeviceRadixSort::SortKeys(d_temp, bytes, keys, static_cast<int>(n), 0, end_bit,
                                              stream),
               "SortKeys");
    low_words_kernel<<<kGrid, kBlock, 0, stream>>>(keys.Current(), n, d_keys);
    cuda_check(cudaGetLastError(), "composite kernels");
  }

  // Whether d_keys holds d_expected's first rows * features keys.
  bool matches(std::size_t rows, std::size_t features) {
    cuda_check(cudaMemset(d_mismatches, 0, sizeof(unsigned long long)), "memset");
    count_mismatches_kernel<<<kGrid, kBlock>>>(d_keys, d_expected, rows * features, d_mismatches);
    unsigned long long mismatches = 1;
    cuda_check(cudaMemcpy(&mismatches, d_mismatches, sizeof mismatches, cudaMemcpyDeviceToHost),
               "mismatches");
    return mismatches == 0;
  }
};

std::unique_ptr<Bench> bench;

const char* name_of(Strategy s) {
  switch (s) {
    case Strategy::Sequential:
      return "sequential";
    case Strategy::Streams:
      return "streams";
    case Strategy::Graph:
      return "graph";
    case Strategy::Segmented:
      return "segmented";
    case Strategy::Composite:
      return "composite";
  }
  return "?";
}

void time_strategy(benchmark::State& state, Strategy strategy, std::size_t rows,
                   std::size_t features, int lanes) {
  Bench& b = *bench;
  const cudaStream_t stream = b.timer.stream();
  const std::size_t bytes = rows * features * sizeof(std::uint32_t);
  const auto restore = [&] {
    cuda_check(cudaMemcpyAsync(b.d_keys, b.d_input, bytes, cudaMemcpyDeviceToDevice, stream),
               "restore");
  };
  cudaGraphExec_t graph = nullptr;
  if (strategy == Strategy::Graph) {
    cudaGraph_t captured = nullptr;
    cuda_check(cudaStreamBeginCapture(stream, cudaStreamCaptureModeThreadLocal), "capture");
    b.sequential(rows, features, stream);
    cuda_check(cudaStreamEndCapture(stream, &captured), "capture");
    cuda_check(cudaGraphInstantiate(&graph, captured, 0), "instantiate");
    cudaGraphDestroy(captured);
  }
  const auto work = [&] {
    switch (strategy) {
      case Strategy::Sequential:
        b.sequential(rows, features, stream);
        break;
      case Strategy::Streams:
        b.streams(rows, features, lanes, stream);
        break;
      case Strategy::Graph:
        cuda_check(cudaGraphLaunch(graph, stream), "launch");
        break;
      case Strategy::Segmented:
        b.segmented(rows, features, stream);
        break;
      case Strategy::Composite:
        b.composite(rows, features, stream);
        break;
    }
  };
  // The first strategy's output is the others' check.
  restore();
  work();
  cuda_check(cudaStreamSynchronize(stream), "check run");
  if (strategy == Strategy::Sequential) {
    cuda_check(cudaMemcpy(b.d_expected, b.d_keys, bytes, cudaMemcpyDeviceToDevice), "expected");
  } else if (!b.matches(rows, features)) {
    state.SkipWithError("output differs from the sequential sort");
  }
  int salt = 0;
  for (auto _ : state) {
    restore();
    state.SetIterationTime(b.timer.timed(work, ++salt));
  }
  if (graph != nullptr) cudaGraphExecDestroy(graph);
  state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations() * rows * features));
  state.counters["lanes"] = lanes;
}

void run(benchmark::State& state, Strategy strategy, std::size_t rows, std::size_t features,
         int lanes) {
  try {
    time_strategy(state, strategy, rows, features, lanes);
  } catch (const std::exception& e) {
    state.SkipWithError(e.what());
  }
}

void register_all() {
  struct Case {
    Strategy strategy;
    int lanes;
  };
  const Case cases[] = {{Strategy::Sequential, 1}, {Strategy::Streams, 2},
                        {Strategy::Streams, 4},    {Strategy::Graph, 1},
                        {Strategy::Segmented, 1},  {Strategy::Composite, 1}};
  for (const std::size_t features : {kFeatures, std::size_t{16}}) {
    for (const Case& c : cases) {
      std::string name = std::string("column_sort/") + name_of(c.strategy);
      if (c.strategy == Strategy::Streams) name += ":" + std::to_string(c.lanes);
      name += "/rows:" + std::to_string(kRows) + "/features:" + std::to_string(features);
      benchmark::RegisterBenchmark(
          name.c_str(),
          [c, features](benchmark::State& s) { run(s, c.strategy, kRows, features, c.lanes); })
          ->UseManualTime()
          ->Unit(benchmark::kMillisecond);
    }
  }
}

}  // namespace

int main(int argc, char** argv) {
  benchmark::Initialize(&argc, argv);
  int devices = 0;
  if (cudaGetDeviceCount(&devices) != cudaSuccess || devices == 0) {
    std::fprintf(stderr, "bench_column_sort: no CUDA device\n");
    return 1;
  }
  bench = std::make_unique<Bench>();
  register_all();
  benchmark::RunSpecifiedBenchmarks();
  bench.reset();  // before static destruction, while the CUDA runtime is still up
  benchmark::Shutdown();
  return 0;
}
