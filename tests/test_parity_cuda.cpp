// CPU vs CUDA parity of validate / histogram / validate_histogram: bit-identical counts and masks
// on fresh random inputs, for host batches (staged in chunks) and device-resident batches, and for
// every launch variant of the CUDA kernel (vector width, row reduction, table placement, search).
// CUDA cases skip with "no CUDA device" where none is present; the bin-search check and the
// backend-choice checks run on every machine.
#include <gtest/gtest.h>

#ifdef DRIFTGUARD_TEST_CUDA_RUNTIME
#include <cuda_runtime.h>
#endif

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <limits>
#include <optional>
#include <random>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "driftguard/batch.hpp"
#include "driftguard/context.hpp"
#include "driftguard/errors.hpp"
#include "driftguard/histogram.hpp"
#include "driftguard/validate.hpp"
#include "kernels/backend.hpp"
#include "kernels/cuda/detail/bin_search.hpp"
#include "kernels/prepared_pass.hpp"

namespace driftguard {
namespace {

constexpr float kNaN = std::numeric_limits<float>::quiet_NaN();
constexpr float kInf = std::numeric_limits<float>::infinity();
constexpr std::uint8_t kPoison = 0xCD;

// Fresh inputs on every run; DRIFTGUARD_TEST_SEED replays a failure (the seed is in its trace).
std::uint64_t test_seed() {
  if (const char* env = std::getenv("DRIFTGUARD_TEST_SEED")) return std::stoull(env);
  return (std::uint64_t{std::random_device{}()} << 32) | std::random_device{}();
}

struct Case {
  std::size_t rows = 0, features = 0;
  std::vector<float> data;
  ValidationRules rules;
  HistogramSpec spec;
};

// Numeric features take their bin count from `bin_choices`; a quarter of the features are
// categorical. Edges and bounds are doubles that floats do not represent (some several within one
// float step), and values sit on them, on their float neighbours, on codes, unknown codes, NaN,
// +-Inf and +-0, so every rounding decision of the float tables is exercised.
Case make_case(std::size_t rows, std::size_t features, const std::vector<std::size_t>& bin_choices,
               std::mt19937_64& rng) {
  std::uniform_real_distribution<double> unit(0.0, 1.0);
  auto pick = [&](std::size_t n) { return static_cast<std::size_t>(unit(rng) * n) % n; };
  Case c;
  c.rows = rows;
  c.features = features;
  c.rules = ValidationRules::permissive(features);
  c.rules.category_offsets = {0};
  std::vector<std::vector<double>> specials(features);  // values worth hitting exactly
  for (std::size_t f = 0; f < features; ++f) {
    c.rules.missing_allowed[f] = unit(rng) < 0.5 ? 1 : 0;
    if (unit(rng) < 0.25) {
      std::vector<double> codes;
      const std::size_t n = 1 + pick(12);
      for (double code = -3 + static_cast<double>(pick(4)); codes.size() < n;
           code += 1 + static_cast<double>(pick(3))) {
        codes.push_back(code);
      }
      c.spec.add_categorical(codes);
      c.rules.categorical[f] = 1;
      for (double code : codes) {
        if (unit(rng) < 0.8) c.rules.category_codes.push_back(static_cast<float>(code));
      }
      specials[f] = codes;
    } else {
      const std::size_t bins = bin_choices[pick(bin_choices.size())];
      std::vector<double> edges = {std::normal_distribution<double>(0.0, 10.0)(rng) + 0.1};
      while (edges.size() < bins + 1) {
        if (unit(rng) < 0.15) {
          // An edge a fraction of a float step above the last: both round to the same floats.
          const double e = edges.back();
          const double step = std::nextafter(static_cast<float>(e), kInf) - static_cast<float>(e);
          edges.push_back(e + step * (0.1 + 0.3 * unit(rng)));
        } else {
          edges.push_back(edges.back() + 0.01 + 3.0 * unit(rng) / static_cast<double>(bins));
        }
      }
      c.spec.add_numeric(edges);
      if (unit(rng) < 0.7) c.rules.min[f] = edges[pick(edges.size())] + 1e-9;
      if (unit(rng) < 0.7) c.rules.max[f] = std::max(c.rules.min[f], edges.back() - 1e-9);
      specials[f] = edges;
      specials[f].push_back(c.rules.min[f]);
      specials[f].push_back(c.rules.max[f]);
    }
    c.rules.category_offsets.push_back(static_cast<std::uint32_t>(c.rules.category_codes.size()));
  }
  c.data.resize(rows * features);
  for (std::size_t r = 0; r < rows; ++r) {
    for (std::size_t f = 0; f < features; ++f) {
      const double u = unit(rng);
      const auto p = c.spec.points_of(f);
      float x;
      if (u < 0.04) {
        x = kNaN;
      } else if (u < 0.06) {
        x = u < 0.05 ? kInf : -kInf;
      } else if (u < 0.07) {
        x = u < 0.065 ? 0.0f : -0.0f;
      } else if (u < 0.30) {
        const float e = static_cast<float>(specials[f][pick(specials[f].size())]);
        x = u < 0.15 ? e : std::nextafter(e, u < 0.22 ? kInf : -kInf);
      } else if (c.spec.categorical[f]) {
        x = static_cast<float>(-4 + static_cast<int>(pick(45)));  // known and unknown codes
      } else {
        const double span = p.back() - p.front();
        x = static_cast<float>(p.front() - 0.1 * span + 1.2 * span * unit(rng));
      }
      c.data[r * features + f] = x;
    }
  }
  return c;
}

enum class Op { Validate, Histogram, Fused };
const char* op_name(Op op) {
  return op == Op::Validate ? "validate" : op == Op::Histogram ? "histogram" : "validate_histogram";
}

// Everything one call writes. Counts start from the same non-zero values on both backends, so
// that accumulation (adding, not overwriting) is checked too.
struct Outputs {
  ValidationCounts validation;
  HistogramCounts counts;
  std::vector<std::uint8_t> cell_flags, row_ok;

  Outputs(const Case& c, std::uint64_t seed) : validation(c.features), counts(c.spec) {
    std::mt19937_64 rng(seed);
    for (auto& v : validation.flag_counts) v = rng() % 1000;
    validation.rows = 5000 + rng() % 1000;
    validation.rows_ok = rng() % 5000;
    for (auto& v : counts.raw()) v = rng() % 1000;
    cell_flags.assign(c.rows * c.features, kPoison);
    row_ok.assign(c.rows, kPoison);
  }
};

void run_op(Context& ctx, Op op, const Case& c, BatchView batch, Outputs& out,
            ValidationMasks masks) {
  switch (op) {
    case Op::Validate:
      validate(ctx, batch, c.rules, out.validation, masks);
      break;
    case Op::Histogram:
      histogram(ctx, batch, c.spec, out.counts);
      break;
    case Op::Fused:
      validate_histogram(ctx, batch, c.rules, c.spec, out.validation, out.counts, masks);
      break;
  }
}

void expect_same(const Outputs& cpu, const Outputs& gpu) {
  EXPECT_EQ(gpu.validation, cpu.validation);
  EXPECT_EQ(gpu.counts.raw(), cpu.counts.raw());
  EXPECT_TRUE(gpu.cell_flags == cpu.cell_flags) << "cell flags differ";
  EXPECT_TRUE(gpu.row_ok == cpu.row_ok) << "row_ok differs";
}

#ifdef DRIFTGUARD_TEST_CUDA_RUNTIME
void cuda_check(cudaError_t status, const char* what) {
  if (status != cudaSuccess) {
    throw std::runtime_error(std::string(what) + ": " + cudaGetErrorString(status));
  }
}

// Device memory owned by the test: resident batches and device masks.
class DeviceBuffer {
 public:
  explicit DeviceBuffer(std::size_t bytes) {
    cuda_check(cudaMalloc(&d_ptr_, std::max<std::size_t>(bytes, 1)), "cudaMalloc");
  }
  ~DeviceBuffer() { cudaFree(d_ptr_); }
  DeviceBuffer(const DeviceBuffer&) = delete;
  DeviceBuffer& operator=(const DeviceBuffer&) = delete;
  template <class T>
  T* get() const {
    return static_cast<T*>(d_ptr_);
  }
  void upload(const void* h_src, std::size_t bytes) {
    cuda_check(cudaMemcpy(d_ptr_, h_src, bytes, cudaMemcpyHostToDevice), "upload");
  }
  void download(void* h_dst, std::size_t bytes) const {
    cuda_check(cudaMemcpy(h_dst, d_ptr_, bytes, cudaMemcpyDeviceToHost), "download");
  }

 private:
  void* d_ptr_ = nullptr;
};
#endif

class CudaParity : public ::testing::Test {
 protected:
  void SetUp() override {
    if (cuda_device_count() == 0) GTEST_SKIP() << "no CUDA device";
    cpu_.emplace(ContextOptions{.backend = Backend::Cpu});
    gpu_.emplace(ContextOptions{.backend = Backend::Cuda});
    seed_ = test_seed();
    rng_.seed(seed_);
  }

  // Every op on a host batch, masks on and off, against the CPU backend.
  void expect_host_parity(const Case& c) {
    SCOPED_TRACE("seed " + std::to_string(seed_) + ", " + std::to_string(c.rows) + " x " +
                 std::to_string(c.features) + ", host batch");
    const BatchView batch{c.data.data(), c.rows, c.features, MemorySpace::Host};
    for (Op op : {Op::Validate, Op::Histogram, Op::Fused}) {
      for (bool with_masks : {true, false}) {
        SCOPED_TRACE(std::string(op_name(op)) + (with_masks ? " with masks" : ""));
        Outputs cpu(c, seed_), gpu(c, seed_);
        run_op(*cpu_, op, c, batch, cpu,
               with_masks ? ValidationMasks{cpu.cell_flags.data(), cpu.row_ok.data()}
                          : ValidationMasks{});
        run_op(*gpu_, op, c, batch, gpu,
               with_masks ? ValidationMasks{gpu.cell_flags.data(), gpu.row_ok.data()}
                          : ValidationMasks{});
        expect_same(cpu, gpu);
      }
    }
  }

  // Every op on a device-resident copy, `offset` floats into its allocation (a non-zero offset
  // takes the kernel's scalar-load path), with device masks.
  void expect_device_parity(const Case& c, std::size_t offset = 0) {
    SCOPED_TRACE("seed " + std::to_string(seed_) + ", " + std::to_string(c.rows) + " x " +
                 std::to_string(c.features) + ", device batch at offset " + std::to_string(offset));
#ifdef DRIFTGUARD_TEST_CUDA_RUNTIME
    const std::size_t cells = c.rows * c.features;
    DeviceBuffer d_data((cells + offset) * sizeof(float));
    if (cells > 0) {
      cuda_check(cudaMemcpy(d_data.get<float>() + offset, c.data.data(), cells * sizeof(float),
                            cudaMemcpyHostToDevice),
                 "upload");
    }
    DeviceBuffer d_cell_flags(cells + offset), d_row_ok(c.rows);
    const BatchView host_batch{c.data.data(), c.rows, c.features, MemorySpace::Host};
    const BatchView device_batch{c.rows > 0 ? d_data.get<float>() + offset : nullptr, c.rows,
                                 c.features, MemorySpace::Device};
    for (Op op : {Op::Validate, Op::Histogram, Op::Fused}) {
      SCOPED_TRACE(op_name(op));
      Outputs cpu(c, seed_), gpu(c, seed_);
      run_op(*cpu_, op, c, host_batch, cpu, {cpu.cell_flags.data(), cpu.row_ok.data()});
      std::vector<std::uint8_t> poison(cells + offset, kPoison);
      d_cell_flags.upload(poison.data(), poison.size());
      d_row_ok.upload(poison.data(), c.rows);
      run_op(*gpu_, op, c, device_batch, gpu,
             {d_cell_flags.get<std::uint8_t>() + offset, d_row_ok.get<std::uint8_t>()});
      d_cell_flags.download(poison.data(), poison.size());
      std::copy(poison.begin() + static_cast<std::ptrdiff_t>(offset), poison.end(),
                gpu.cell_flags.begin());
      d_row_ok.download(gpu.row_ok.data(), c.rows);
      expect_same(cpu, gpu);
    }
#else
    FAIL() << "device batches need the test built with the CUDA runtime";
#endif
  }

  Case make(std::size_t rows, std::size_t features, const std::vector<std::size_t>& bins) {
    return make_case(rows, features, bins, rng_);
  }

  std::optional<Context> cpu_, gpu_;
  std::uint64_t seed_ = 0;
  std::mt19937_64 rng_;
};

// Bin counts that select each search of the kernel: padded 4 steps (<= 14 bins), padded 7 steps
// (<= 126 bins), and the plain binary search (more).
const std::vector<std::size_t> kFewBins = {1, 2, 5, 10, 14};
const std::vector<std::size_t> kManyBins = {3, 10, 64, 126};
const std::vector<std::size_t> kHugeBins = {10, 300};

TEST_F(CudaParity, VectorWarpRowsFewBins) { expect_host_parity(make(5000, 64, kFewBins)); }
TEST_F(CudaParity, VectorWarpRowsManyBins) { expect_host_parity(make(5000, 32, kManyBins)); }
TEST_F(CudaParity, PlainSearchForHugeBinCounts) { expect_host_parity(make(3000, 8, kHugeBins)); }
// 12 features = 3 vectors per row: rows do not tile a warp, row_ok goes through the row scratch.
TEST_F(CudaParity, VectorBlockRows) { expect_host_parity(make(4000, 12, kManyBins)); }
TEST_F(CudaParity, ScalarWarpRows) { expect_host_parity(make(4000, 2, kFewBins)); }
TEST_F(CudaParity, ScalarBlockRows) { expect_host_parity(make(4000, 37, kFewBins)); }
TEST_F(CudaParity, OneRow) { expect_host_parity(make(1, 9, kFewBins)); }
TEST_F(CudaParity, OneFeature) { expect_host_parity(make(4001, 1, kManyBins)); }
TEST_F(CudaParity, EmptyBatch) {
  expect_host_parity(make(0, 5, kFewBins));
  expect_device_parity(make(0, 5, kFewBins));
}
// Tables too large for shared memory: global atomics; columns wider than one block pass.
TEST_F(CudaParity, ThreeThousandFeatures) { expect_host_parity(make(1500, 3000, kFewBins)); }
TEST_F(CudaParity, WideScalarRows) { expect_host_parity(make(300, 1030, kFewBins)); }
// Several 8 MiB staging chunks, so both pinned slots are reused and masks drain in order.
TEST_F(CudaParity, HostBatchInSeveralChunks) { expect_host_parity(make(1500000, 4, kFewBins)); }

// A batch in page-locked memory (HostBuffer, as the scan's ring holds it) is copied to the device
// from where it lies, without the staging copy: same results, in one chunk and in several.
TEST_F(CudaParity, PageLockedHostBatch) {
  for (const std::size_t rows : {std::size_t{5000}, std::size_t{1500000}}) {
    Case c = make(rows, 4, kFewBins);
    HostBuffer pinned(*gpu_, c.data.size() * sizeof(float));
    ASSERT_TRUE(pinned.pinned());
    std::copy(c.data.begin(), c.data.end(), static_cast<float*>(pinned.data()));
    const BatchView batch{static_cast<const float*>(pinned.data()), c.rows, c.features};
    Outputs cpu(c, seed_), gpu(c, seed_);
    run_op(*cpu_, Op::Fused, c, batch, cpu, {cpu.cell_flags.data(), cpu.row_ok.data()});
    run_op(*gpu_, Op::Fused, c, batch, gpu, {gpu.cell_flags.data(), gpu.row_ok.data()});
    expect_same(cpu, gpu);
  }
}

TEST_F(CudaParity, DeviceBatches) {
  expect_device_parity(make(5000, 64, kManyBins));
  expect_device_parity(make(3000, 12, kFewBins));
  expect_device_parity(make(3000, 37, kFewBins));
  expect_device_parity(make(200, 3000, kFewBins));
  expect_device_parity(make(1, 3, kFewBins));
}
TEST_F(CudaParity, MisalignedDeviceBatch) { expect_device_parity(make(3000, 16, kFewBins), 1); }

TEST_F(CudaParity, AllValuesInOneBin) {
  Case c = make(200000, 16, {10});
  for (std::size_t f = 0; f < c.features; ++f) {
    const auto p = c.spec.points_of(f);
    const float inside = static_cast<float>(c.spec.categorical[f] ? p[0] : (p[3] + p[4]) / 2);
    for (std::size_t r = 0; r < c.rows; ++r) c.data[r * c.features + f] = inside;
  }
  expect_host_parity(c);
  expect_device_parity(c);
}

TEST_F(CudaParity, AllValuesMissing) {
  Case c = make(100000, 8, kFewBins);
  std::fill(c.data.begin(), c.data.end(), kNaN);
  expect_host_parity(c);
}

TEST_F(CudaParity, AccumulatesOverCalls) {
  SCOPED_TRACE("seed " + std::to_string(seed_));
  const Case c = make(9000, 20, kManyBins);
  Outputs cpu(c, seed_), gpu(c, seed_);
  for (std::size_t begin = 0; begin < c.rows; begin += 2500) {
    const std::size_t n = std::min<std::size_t>(2500, c.rows - begin);
    const BatchView part{c.data.data() + begin * c.features, n, c.features};
    validate_histogram(*cpu_, part, c.rules, c.spec, cpu.validation, cpu.counts);
    validate_histogram(*gpu_, part, c.rules, c.spec, gpu.validation, gpu.counts);
    histogram(*cpu_, part, c.spec, cpu.counts);
    histogram(*gpu_, part, c.spec, gpu.counts);
  }
  expect_same(cpu, gpu);
}

// The kernel's padded fixed-step search must give detail::slot_of's slot for every value; this
// runs on the host, so it guards the GPU path even where no GPU is present.
TEST(CudaBinSearch, PaddedSearchEqualsSlotOf) {
  const std::uint64_t seed = test_seed();
  SCOPED_TRACE("seed " + std::to_string(seed));
  std::mt19937_64 rng(seed);
  for (const auto& [bins, expected_steps] : {std::pair{&kFewBins, 4}, std::pair{&kManyBins, 7}}) {
    const Case c = make_case(500, 40, *bins, rng);
    detail::BatchPassArgs args;
    args.batch = {c.data.data(), c.rows, c.features};
    args.spec = &c.spec;
    const detail::PreparedPass prep(args);
    std::uint32_t max_points = 0;
    for (const auto& b : prep.bins) max_points = std::max(max_points, b.point_count);
    const int steps = cuda::padded_steps_for(max_points);
    ASSERT_EQ(steps, expected_steps);
    std::vector<detail::FeatureBins> padded_bins = prep.bins;
    std::vector<float> padded = prep.points;
    cuda::pad_points(steps, padded_bins, padded);
    for (std::size_t i = 0; i < c.data.size(); ++i) {
      const std::size_t f = i % c.features;
      const float x = c.data[i];
      const std::uint32_t expected =
          detail::slot_of(x, prep.bins[f], prep.points.data() + prep.bins[f].point_offset);
      const float* p = padded.data() + padded_bins[f].point_offset;
      const std::uint32_t got = steps == 4 ? cuda::slot_of_padded<4>(x, padded_bins[f], p)
                                           : cuda::slot_of_padded<7>(x, padded_bins[f], p);
      ASSERT_EQ(got, expected) << "feature " << f << ", x = " << x;
    }
  }
}

TEST(CudaBackend, RequestWithoutDeviceThrows) {
  if (cuda_device_count() > 0) GTEST_SKIP() << "a CUDA device is present";
  EXPECT_THROW(Context(ContextOptions{.backend = Backend::Cuda}), BackendUnavailable);
}

TEST(CudaBackend, MissingDeviceOrdinalThrows) {
  const int devices = cuda_device_count();
  if (devices == 0) GTEST_SKIP() << "no CUDA device";
  EXPECT_THROW(Context(ContextOptions{.backend = Backend::Cuda, .device = devices}),
               BackendUnavailable);
}

}  // namespace
}  // namespace driftguard
