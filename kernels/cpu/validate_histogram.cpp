// CPU backend of the batch pass. Row blocks are spread over OpenMP threads; each thread counts
// into private arrays summed once at the end. Within a row, work runs across features on
// structure-of-arrays tables, so the compiler vectorises it (target_clones picks AVX-512 / AVX2
// at run time):
//  - a numeric feature with at most kMaxLanes bin edges keeps lane counters
//      C_i[f] = #{x : lane_i[f] <= x},  lanes = round_up(e_0) .. round_up(e_{B-1}),
//      next float above round_down(e_B), -Inf (counts every non-NaN x), NaN padding (never <= x),
//    and its slots follow by differences: missing = N - C_{B+1}, underflow = C_{B+1} - C_0,
//    bin i = C_i - C_{i+1}, overflow = C_B. One compare-and-add per lane and value, no search,
//    no scatter. Features go in chunks of one vector register: a chunk's lanes and counters stay
//    in registers while a block of rows streams past.
//  - other features (categorical, or more edges) take the scalar slot_of path, column by column
//    over each row block; categorical codes that are integers within a span of kMaxCodeSpan are
//    found by table lookup, not by search, and one lookup serves both the bins and the rule.
//  - numeric validation is branch-free per value, tested per run of rows; categorical codes are
//    looked up or searched.
#include <omp.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <vector>

#include "kernels/backend.hpp"
#include "kernels/prepared_pass.hpp"

namespace driftguard::cpu {
namespace {

constexpr std::uint32_t kMaxLanes = 66;  // at most 64 bins take the vector path
// int32 block counters cannot overflow within a block; they are flushed to 64-bit after each.
constexpr std::size_t kBlockRows = 1024;
constexpr float kInf = std::numeric_limits<float>::infinity();

// Feature chunks are kWidth floats, one register: 16 with AVX-512, 8 with AVX2, else 4 (SSE,
// NEON). Vector types wider than the ISA's registers are lowered badly by GCC (several times
// slower), narrower ones waste the AVX-512F clone (no AVX-512VL there to mask 8-wide compares).
constexpr std::size_t kChunk = 16;  // the tables' padding: a multiple of every width
template <std::size_t kWidth>
struct Chunk;  // vector types of kWidth floats / int32s (attributes on alias templates are lost)
template <>
struct Chunk<4> {
  using Floats = float __attribute__((vector_size(16)));
  using Ints = std::int32_t __attribute__((vector_size(16)));
};
template <>
struct Chunk<16> {
  using Floats = float __attribute__((vector_size(64)));
  using Ints = std::int32_t __attribute__((vector_size(64)));
};
template <>
struct Chunk<8> {
  using Floats = float __attribute__((vector_size(32)));
  using Ints = std::int32_t __attribute__((vector_size(32)));
};

// Register budgets of count_lane_chunk: a chunk runs with the smallest one that holds its lanes.
constexpr std::uint32_t kLaneBudgets[] = {4, 8, 12, 16, 24, 34, kMaxLanes};
constexpr std::uint32_t lane_budget(std::uint32_t lanes) {
  for (std::uint32_t budget : kLaneBudgets) {
    if (lanes <= budget) return budget;
  }
  return kMaxLanes;
}

// Position of each code of a categorical feature by direct lookup, for integer codes spanning at
// most kMaxCodeSpan values (the usual label-encoded categories); other code sets keep the search.
constexpr std::int64_t kMaxCodeSpan = 1 << 16;
class CodeLookup {
 public:
  CodeLookup() = default;
  CodeLookup(const float* codes, std::uint32_t count) {
    if (count == 0) return;
    for (std::uint32_t i = 0; i < count; ++i) {
      if (codes[i] != std::trunc(codes[i]) || std::fabs(codes[i]) > float(1 << 30)) return;
    }
    base_ = static_cast<std::int32_t>(codes[0]);
    const std::int64_t span = std::int64_t{static_cast<std::int32_t>(codes[count - 1])} - base_ + 1;
    if (span > kMaxCodeSpan) return;
    low_ = codes[0];
    high_ = codes[count - 1];
    position_.assign(static_cast<std::size_t>(span), 0);
    for (std::uint32_t i = 0; i < count; ++i) {
      position_[static_cast<std::size_t>(static_cast<std::int32_t>(codes[i]) - base_)] = i + 1;
    }
  }
  bool usable() const noexcept { return !position_.empty(); }
  // 1 + the index of the code equal to x, or 0 when x is no code (NaN, +-Inf, other values).
  std::uint32_t find(float x) const noexcept {
    if (!(x >= low_ && x <= high_)) return 0;
    const std::int32_t i = static_cast<std::int32_t>(x);
    return static_cast<float>(i) == x ? position_[static_cast<std::size_t>(i - base_)] : 0;
  }

 private:
  float low_ = 0, high_ = -1;
  std::int32_t base_ = 0;
  std::vector<std::uint32_t> position_;
};

struct CpuTables {
  std::size_t features = 0;
  std::size_t width = 4;                       // vector_width(): floats per chunk
  std::size_t padded = 0;                      // features rounded up to whole chunks
  std::uint32_t lanes = 0;                     // most lanes of any feature
  std::vector<float> lane_points;              // [lanes][padded]; NaN where a feature has no lane
  std::vector<std::uint32_t> chunk_lanes;      // per chunk, most lanes of its features
  std::vector<std::uint32_t> lane_features;    // features on the lane path
  std::vector<std::uint32_t> scalar_features;  // features on the slot_of path
  // Validation, per feature: the range clamped to finite floats (a finite value is below or
  // above it exactly when it is below or above the rule's; categorical features get the whole
  // float range and search codes), and -1 (all bits) where a NaN makes the row invalid; padded
  // to whole chunks, the padding never invalid.
  std::vector<float> low_finite, high_finite;
  std::vector<std::int32_t> missing_bad;
  std::vector<std::uint32_t> categorical_rules;
  std::vector<CodeLookup> bin_codes;   // per scalar-path feature; usable when categorical
  std::vector<CodeLookup> rule_codes;  // per categorical rule
  // A categorical feature both binned by code lookup and validated by a rule: whether a value in
  // each of its slots is allowed (a rule code, or missing), so that one lookup serves both
  // passes. Per scalar-path feature, empty for the others; rule_in_bins per categorical rule.
  std::vector<std::vector<std::uint8_t>> slot_allowed;
  std::vector<std::uint8_t> rule_in_bins;

  CpuTables(const detail::PreparedPass& prep, std::size_t n_features, std::size_t vector_width)
      : features(n_features), width(vector_width) {
    for (std::uint32_t f = 0; f < prep.bins.size(); ++f) {
      const detail::FeatureBins& bins = prep.bins[f];
      const bool lane = !bins.categorical && bins.point_count + 1 <= kMaxLanes;
      (lane ? lane_features : scalar_features).push_back(f);
      if (lane) lanes = std::max(lanes, bins.point_count + 1);
    }
    lanes = lanes == 0 ? 0 : lane_budget(lanes);  // count_lane_chunk reads that many rows
    padded = (features + kChunk - 1) / kChunk * kChunk;
    lane_points.assign(std::size_t{lanes} * padded, std::numeric_limits<float>::quiet_NaN());
    chunk_lanes.assign(padded / kChunk, 0);
    for (std::uint32_t f : lane_features) {
      const detail::FeatureBins& bins = prep.bins[f];
      const float* p = prep.points.data() + bins.point_offset;
      const std::uint32_t n = bins.point_count;
      chunk_lanes[f / kChunk] = std::max(chunk_lanes[f / kChunk], n + 1);
      for (std::uint32_t i = 0; i + 1 < n; ++i) lane_points[i * padded + f] = p[i];
      lane_points[(n - 1) * padded + f] = std::nextafter(bins.last_edge_down, kInf);
      lane_points[n * padded + f] = -kInf;
    }
    constexpr float kMax = std::numeric_limits<float>::max();
    for (std::uint32_t f = 0; f < prep.rules.size(); ++f) {
      const detail::FeatureRule& rule = prep.rules[f];
      const float low = rule.categorical ? -kInf : rule.min_up;
      const float high = rule.categorical ? kInf : rule.max_down;
      // A NaN bound compares false with every value, as no bound does.
      low_finite.push_back(low >= -kMax ? low : -kMax);
      high_finite.push_back(high <= kMax ? high : kMax);
      missing_bad.push_back((rule.row_bad_flags & kMissing) ? -1 : 0);
      if (rule.categorical) {
        categorical_rules.push_back(f);
        rule_codes.emplace_back(prep.codes.data() + rule.code_offset, rule.code_count);
      }
    }
    if (!prep.rules.empty()) {
      low_finite.resize(padded, -kMax);
      high_finite.resize(padded, kMax);
      missing_bad.resize(padded, 0);
    }
    rule_in_bins.assign(categorical_rules.size(), 0);
    std::vector<std::int64_t> rule_of(features, -1);  // feature -> its categorical rule
    for (std::size_t i = 0; i < categorical_rules.size(); ++i) {
      rule_of[categorical_rules[i]] = static_cast<std::int64_t>(i);
    }
    for (std::uint32_t f : scalar_features) {
      const detail::FeatureBins& bins = prep.bins[f];
      const float* points = prep.points.data() + bins.point_offset;
      bin_codes.push_back(bins.categorical ? CodeLookup(points, bins.point_count) : CodeLookup());
      slot_allowed.emplace_back();
      const std::int64_t rule = f < rule_of.size() ? rule_of[f] : -1;
      if (!bins.categorical || !bin_codes.back().usable() || rule < 0) continue;
      rule_in_bins[static_cast<std::size_t>(rule)] = 1;
      const detail::FeatureRule& feature_rule = prep.rules[f];
      const float* codes = prep.codes.data() + feature_rule.code_offset;
      // Slots: underflow (unused), the codes, other (finite: unknown; +-Inf: flagged as such),
      // missing.
      std::vector<std::uint8_t>& allowed = slot_allowed.back();
      allowed.assign(bins.point_count + 3, 0);
      for (std::uint32_t k = 0; k < bins.point_count; ++k) {
        allowed[k + 1] = detail::cell_flags(points[k], feature_rule, codes) != kUnknownCategory;
      }
      allowed[bins.point_count + 2] = 1;
    }
  }
};

// Private counts of one thread: int32 block counters and their 64-bit totals.
struct ThreadCounts {
  std::vector<std::int32_t> lane_block;  // [lanes][padded]
  std::vector<std::uint64_t> lane_total;
  std::vector<std::uint64_t> slots;      // scalar-path features, by slot
  std::vector<std::int32_t> flag_block;  // [4 numeric flags][features]
  std::vector<std::uint64_t> flags;      // [features][kCellFlagCount]
  std::uint64_t rows = 0, rows_ok = 0;
};

// Lane counters of the features [f0, f0 + kChunk) over rows [row_begin, row_end), added into
// `counters` ([lanes][padded]). kLanes >= the chunk's lanes; extra lanes are NaN and count nothing.
template <std::uint32_t kLanes, std::size_t kWidth>
__attribute__((always_inline)) inline void count_lane_chunk(const CpuTables& t, const float* data,
                                                            std::size_t f0, std::size_t row_begin,
                                                            std::size_t row_end,
                                                            std::int32_t* counters) {
  typename Chunk<kWidth>::Floats lane[kLanes];
  typename Chunk<kWidth>::Ints count[kLanes];
  for (std::uint32_t i = 0; i < kLanes; ++i) {
    std::memcpy(&lane[i], t.lane_points.data() + i * t.padded + f0, sizeof lane[i]);
    count[i] = typename Chunk<kWidth>::Ints{};
  }
  const std::size_t width = std::min(kWidth, t.features - f0);
  for (std::size_t row = row_begin; row < row_end; ++row) {
    const float* values = data + row * t.features + f0;
    typename Chunk<kWidth>::Floats x;
    if (width == kWidth) {
      std::memcpy(&x, values, sizeof x);
    } else {  // the last, partial chunk: NaN beyond the row compares false with every lane
      for (std::size_t j = 0; j < kWidth; ++j) {
        x[j] = j < width ? values[j] : std::numeric_limits<float>::quiet_NaN();
      }
    }
    for (std::uint32_t i = 0; i < kLanes; ++i) count[i] -= lane[i] <= x;  // true is -1
  }
  for (std::uint32_t i = 0; i < kLanes; ++i) {
    for (std::size_t j = 0; j < kWidth; ++j) counters[i * t.padded + f0 + j] += count[i][j];
  }
}

// Whether any lane of a mask (lanes 0 or -1) is set, by halving the register.
template <std::size_t kWidth>
__attribute__((always_inline)) inline std::int32_t any_lane(typename Chunk<kWidth>::Ints mask) {
  if constexpr (kWidth == 4) {
    return (mask[0] | mask[1]) | (mask[2] | mask[3]);
  } else {
    typename Chunk<kWidth / 2>::Ints low, high;
    std::memcpy(&low, &mask, sizeof low);
    std::memcpy(&high, reinterpret_cast<const char*>(&mask) + sizeof low, sizeof high);
    return any_lane<kWidth / 2>(low | high);
  }
}

// Numeric validation flags of the features [f0, f0 + kWidth) over rows [row_begin, row_end),
// added into `flags` ([4 numeric flags][features]); a row with an invalid value in the chunk gets
// row_bad[row - row_begin] = 1. The ranges and five counters stay in registers while the rows
// stream (counters in memory would chain every row's additions through store forwarding).
// The ranges are clamped to finite floats, so that -Inf always falls below and +Inf above them:
//   below = #{x < low} - #{-Inf},  above = #{x > high} - #{+Inf},  infinite = #{-Inf} + #{+Inf},
// and a value is invalid when it falls outside or is a NaN that makes the row invalid. Every
// comparison is consumed by arithmetic, never combined with another by & or |: GCC lowers such
// combinations in this generic-target code to scalar compares, even inside the AVX-512 clone.
template <std::size_t kWidth>
__attribute__((always_inline)) inline void validate_chunk(const CpuTables& t, const float* data,
                                                          std::size_t f0, std::size_t row_begin,
                                                          std::size_t row_end, std::int32_t* flags,
                                                          std::uint8_t* row_bad) {
  using Floats = typename Chunk<kWidth>::Floats;
  using Ints = typename Chunk<kWidth>::Ints;
  Floats low, high;
  Ints missing_bad;
  std::memcpy(&low, t.low_finite.data() + f0, sizeof low);
  std::memcpy(&high, t.high_finite.data() + f0, sizeof high);
  std::memcpy(&missing_bad, t.missing_bad.data() + f0, sizeof missing_bad);
  const Floats lowest = Floats{} - std::numeric_limits<float>::max();
  const Floats highest = Floats{} + std::numeric_limits<float>::max();
  Ints missing{}, outside_low{}, outside_high{}, negative_infinite{}, positive_infinite{};
  const std::size_t width = std::min(kWidth, t.features - f0);
  // By reference, not by value: vectors wider than the generic target's registers have no
  // portable calling convention (-Wpsabi), inlined or not.
  const auto load = [&](std::size_t row, Floats& x) {
    const float* values = data + row * t.features + f0;
    if (width == kWidth) {
      std::memcpy(&x, values, sizeof x);
    } else {  // the last, partial chunk: NaN padding, never invalid (missing_bad is 0 there)
      for (std::size_t j = 0; j < kWidth; ++j) {
        x[j] = j < width ? values[j] : std::numeric_limits<float>::quiet_NaN();
      }
    }
  };
  // Invalid rows are rare: a run of rows is checked as a whole, and only a run holding one is
  // walked again row by row (a horizontal test per row costs as much as the counting).
  constexpr std::size_t kRun = 64;
  for (std::size_t run = row_begin; run < row_end; run += kRun) {
    const std::size_t run_end = std::min(run + kRun, row_end);
    Ints any_invalid{};
    for (std::size_t row = run; row < run_end; ++row) {
      Floats x;
      load(row, x);
      // Lanes are 0 or -1 (true): counters subtract them; `invalid` sums are 0 or negative.
      const Ints is_missing = x != x;
      const Ints is_low = x < low;
      const Ints is_high = x > high;
      missing -= is_missing;
      outside_low -= is_low;
      outside_high -= is_high;
      negative_infinite -= x < lowest;
      positive_infinite -= x > highest;
      any_invalid += (is_missing & missing_bad) + is_low + is_high;
    }
    if (any_lane<kWidth>(any_invalid) == 0) continue;
    for (std::size_t row = run; row < run_end; ++row) {
      Floats x;
      load(row, x);
      const Ints invalid = (Ints(x != x) & missing_bad) + Ints(x < low) + Ints(x > high);
      row_bad[row - row_begin] |= static_cast<std::uint8_t>(any_lane<kWidth>(invalid) != 0);
    }
  }
  const std::size_t n = t.features;
  for (std::size_t j = 0; j < width; ++j) {
    flags[f0 + j] += missing[j];
    flags[n + f0 + j] += negative_infinite[j] + positive_infinite[j];
    flags[2 * n + f0 + j] += outside_low[j] - negative_infinite[j];
    flags[3 * n + f0 + j] += outside_high[j] - positive_infinite[j];
  }
}

template <std::size_t kWidth>
__attribute__((always_inline)) inline void validate_of_width(const CpuTables& t, const float* data,
                                                             std::size_t row_begin,
                                                             std::size_t row_end,
                                                             std::int32_t* flags,
                                                             std::uint8_t* row_bad) {
  for (std::size_t f0 = 0; f0 < t.features; f0 += kWidth) {
    validate_chunk<kWidth>(t, data, f0, row_begin, row_end, flags, row_bad);
  }
}

template <std::size_t kWidth>
__attribute__((always_inline)) inline void count_lanes_of_width(const CpuTables& t,
                                                                const float* data,
                                                                std::size_t row_begin,
                                                                std::size_t row_end,
                                                                std::int32_t* counters) {
  for (std::size_t f0 = 0; f0 < t.features; f0 += kWidth) {
    const std::uint32_t lanes = t.chunk_lanes[f0 / kChunk];
    if (lanes == 0) continue;
    switch (lane_budget(lanes)) {
      case 4:
        count_lane_chunk<4, kWidth>(t, data, f0, row_begin, row_end, counters);
        break;
      case 8:
        count_lane_chunk<8, kWidth>(t, data, f0, row_begin, row_end, counters);
        break;
      case 12:
        count_lane_chunk<12, kWidth>(t, data, f0, row_begin, row_end, counters);
        break;
      case 16:
        count_lane_chunk<16, kWidth>(t, data, f0, row_begin, row_end, counters);
        break;
      case 24:
        count_lane_chunk<24, kWidth>(t, data, f0, row_begin, row_end, counters);
        break;
      case 34:
        count_lane_chunk<34, kWidth>(t, data, f0, row_begin, row_end, counters);
        break;
      default:
        count_lane_chunk<kMaxLanes, kWidth>(t, data, f0, row_begin, row_end, counters);
    }
  }
}

// Register width in floats: the widest the CPU has, or DRIFTGUARD_CPU_VECTOR_WIDTH (4, 8 or 16,
// if supported) so that tests cover every path on one machine.
std::size_t vector_width() {
  const std::size_t best = __builtin_cpu_supports("avx512f") ? 16
                           : __builtin_cpu_supports("avx2")  ? 8
                                                             : 4;
  const char* forced = std::getenv("DRIFTGUARD_CPU_VECTOR_WIDTH");
  if (forced == nullptr) return best;
  const std::size_t width = std::strtoul(forced, nullptr, 10);
  return (width == 4 || width == 8 || width == 16) && width <= best ? width : best;
}

// Numeric validation of every chunk.
__attribute__((always_inline)) inline void validate_numeric(const CpuTables& t, const float* data,
                                                            std::size_t row_begin,
                                                            std::size_t row_end,
                                                            std::int32_t* flags,
                                                            std::uint8_t* row_bad) {
  if (t.width == 16) {
    validate_of_width<16>(t, data, row_begin, row_end, flags, row_bad);
  } else if (t.width == 8) {
    validate_of_width<8>(t, data, row_begin, row_end, flags, row_bad);
  } else {
    validate_of_width<4>(t, data, row_begin, row_end, flags, row_bad);
  }
}

// Lane counters of every chunk, each with the smallest register budget that holds its lanes.
__attribute__((always_inline)) inline void count_lanes(const CpuTables& t, const float* data,
                                                       std::size_t row_begin, std::size_t row_end,
                                                       std::int32_t* counters) {
  if (t.width == 16) {
    count_lanes_of_width<16>(t, data, row_begin, row_end, counters);
  } else if (t.width == 8) {
    count_lanes_of_width<8>(t, data, row_begin, row_end, counters);
  } else {
    count_lanes_of_width<4>(t, data, row_begin, row_end, counters);
  }
}

template <bool kValidate, bool kHistogram>
__attribute__((target_clones("avx512f", "avx2", "default"))) void count_rows(
    const detail::PreparedPass& prep, const CpuTables& t, const detail::BatchPassArgs& args,
    std::size_t row_begin, std::size_t row_end, ThreadCounts& out) {
  const std::size_t n = t.features;
  std::int32_t* const lane_block = out.lane_block.data();
  std::int32_t* const flag_block = out.flag_block.data();
  if constexpr (kHistogram) count_lanes(t, args.batch.data, row_begin, row_end, lane_block);
  std::uint8_t row_bad[kBlockRows] = {};
  if constexpr (kValidate) {
    validate_numeric(t, args.batch.data, row_begin, row_end, flag_block, row_bad);
  }
  // The scalar-path features and the categorical rules go column by column over the block (in
  // L2 after the passes above): a feature's tables are read once per block, not once per value.
  const float* const block = args.batch.data + row_begin * n;
  const std::size_t block_rows = row_end - row_begin;
  std::uint8_t* const cell_flags = kValidate ? args.masks.cell_flags : nullptr;
  if (cell_flags != nullptr) {
    for (std::size_t row = row_begin; row < row_end; ++row) {
      const float* __restrict__ x = args.batch.data + row * n;
      std::uint8_t* __restrict__ cells = cell_flags + row * n;
      for (std::size_t f = 0; f < n; ++f) {
        const float v = x[f];
        const std::uint32_t finite = std::fabs(v) != kInf;
        cells[f] = static_cast<std::uint8_t>(
            static_cast<std::uint32_t>(v != v) * kMissing + (finite ^ 1u) * kNonFinite +
            (static_cast<std::uint32_t>(v < t.low_finite[f]) & finite) * kBelowMin +
            (static_cast<std::uint32_t>(v > t.high_finite[f]) & finite) * kAboveMax);
      }
    }
  }
  // An unknown code of feature f in block row r: counted, the row made invalid, its cell flag
  // set (replacing the numeric flags written above).
  const auto unknown_at = [&](std::size_t f, std::size_t r) {
    ++out.flags[f * kCellFlagCount + flag_index(kUnknownCategory)];
    row_bad[r] = 1;
    if (cell_flags != nullptr) cell_flags[(row_begin + r) * n + f] = kUnknownCategory;
  };
  if constexpr (kHistogram) {
    for (std::size_t i = 0; i < t.scalar_features.size(); ++i) {
      const std::uint32_t f = t.scalar_features[i];
      const detail::FeatureBins& bins = prep.bins[f];
      const CodeLookup& codes = t.bin_codes[i];
      std::uint64_t* const slots = out.slots.data() + bins.slot_offset;
      const std::uint32_t other = bins.point_count + 1, missing = bins.point_count + 2;
      const std::vector<std::uint8_t>& allowed = t.slot_allowed[i];
      if (kValidate && !allowed.empty()) {
        for (std::size_t r = 0; r < block_rows; ++r) {
          const float x = block[r * n + f];
          const std::uint32_t code = codes.find(x);
          const std::uint32_t slot = code != 0 ? code : x != x ? missing : other;
          ++slots[slot];
          if (allowed[slot] == 0 && std::fabs(x) != kInf) unknown_at(f, r);
        }
      } else if (codes.usable()) {
        for (std::size_t r = 0; r < block_rows; ++r) {
          const float x = block[r * n + f];
          const std::uint32_t code = codes.find(x);
          ++slots[code != 0 ? code : x != x ? missing : other];
        }
      } else {
        const float* const points = prep.points.data() + bins.point_offset;
        for (std::size_t r = 0; r < block_rows; ++r) {
          ++slots[detail::slot_of(block[r * n + f], bins, points)];
        }
      }
    }
  }
  if constexpr (kValidate) {
    for (std::size_t i = 0; i < t.categorical_rules.size(); ++i) {
      if (kHistogram && t.rule_in_bins[i] != 0) continue;  // checked with its bins above
      const std::uint32_t f = t.categorical_rules[i];
      const detail::FeatureRule& rule = prep.rules[f];
      const CodeLookup& codes = t.rule_codes[i];
      const float* const rule_codes = prep.codes.data() + rule.code_offset;
      for (std::size_t r = 0; r < block_rows; ++r) {
        const float x = block[r * n + f];
        // Unknown: finite and no code (NaN and +-Inf are flagged as such).
        const bool unknown = codes.usable()
                                 ? codes.find(x) == 0 && std::fabs(x) != kInf && x == x
                                 : detail::cell_flags(x, rule, rule_codes) == kUnknownCategory;
        if (unknown) unknown_at(f, r);
      }
    }
    for (std::size_t r = 0; r < block_rows; ++r) {
      out.rows_ok += row_bad[r] == 0 ? 1 : 0;
      if (args.masks.row_ok != nullptr) args.masks.row_ok[row_begin + r] = row_bad[r] == 0 ? 1 : 0;
    }
  }
  out.rows += row_end - row_begin;
  for (std::size_t i = 0; i < out.lane_block.size(); ++i) {
    out.lane_total[i] += static_cast<std::uint64_t>(out.lane_block[i]);
    out.lane_block[i] = 0;
  }
  if constexpr (kValidate) {
    constexpr CellFlag kNumericFlags[] = {kMissing, kNonFinite, kBelowMin, kAboveMax};
    for (std::size_t k = 0; k < 4; ++k) {
      for (std::size_t f = 0; f < n; ++f) {
        out.flags[f * kCellFlagCount + flag_index(kNumericFlags[k])] +=
            static_cast<std::uint64_t>(flag_block[k * n + f]);
        flag_block[k * n + f] = 0;
      }
    }
  }
}

// Adds one thread's histogram counts into the caller's totals.
void add_histogram(const detail::PreparedPass& prep, const CpuTables& t, const ThreadCounts& c,
                   std::vector<std::uint64_t>& total) {
  for (std::size_t i = 0; i < total.size(); ++i) total[i] += c.slots[i];
  for (std::uint32_t f : t.lane_features) {
    const detail::FeatureBins& bins = prep.bins[f];
    const std::uint32_t b = bins.point_count - 1;  // bins
    const auto cumulative = [&](std::uint32_t lane) { return c.lane_total[lane * t.padded + f]; };
    const std::uint64_t present = cumulative(b + 1);  // the -Inf lane
    std::uint64_t* s = total.data() + bins.slot_offset;
    s[0] += present - cumulative(0);
    for (std::uint32_t i = 1; i <= b; ++i) s[i] += cumulative(i - 1) - cumulative(i);
    s[b + 1] += cumulative(b);
    s[b + 2] += c.rows - present;
  }
}

template <bool kValidate, bool kHistogram>
void run(int threads, const detail::PreparedPass& prep, const detail::BatchPassArgs& args) {
  const std::size_t rows = args.batch.rows, n = args.batch.features;
  const CpuTables tables(prep, n, vector_width());
  // Below ~16k cells per thread, waking threads costs more than it saves.
  const int workers = static_cast<int>(
      std::clamp<std::size_t>(rows * n / 16384, 1, static_cast<std::size_t>(threads)));
  std::vector<ThreadCounts> counts(static_cast<std::size_t>(workers));
#pragma omp parallel num_threads(workers)
  {
    ThreadCounts& mine = counts[static_cast<std::size_t>(omp_get_thread_num())];
    if constexpr (kHistogram) {
      mine.lane_block.assign(tables.lane_points.size(), 0);
      mine.lane_total.assign(tables.lane_points.size(), 0);
      mine.slots.assign(prep.total_slots, 0);
    }
    if constexpr (kValidate) {
      mine.flag_block.assign(4 * n, 0);
      mine.flags.assign(n * kCellFlagCount, 0);
    }
    const std::size_t blocks = (rows + kBlockRows - 1) / kBlockRows;
#pragma omp for schedule(static)
    for (std::size_t block = 0; block < blocks; ++block) {
      const std::size_t begin = block * kBlockRows;
      count_rows<kValidate, kHistogram>(prep, tables, args, begin,
                                        std::min(rows, begin + kBlockRows), mine);
    }
  }
  for (const ThreadCounts& c : counts) {
    if constexpr (kHistogram) add_histogram(prep, tables, c, args.histogram->raw());
    if constexpr (kValidate) {
      std::vector<std::uint64_t>& total = args.validation->flag_counts;
      for (std::size_t i = 0; i < total.size(); ++i) total[i] += c.flags[i];
      args.validation->rows_ok += c.rows_ok;
    }
  }
  if constexpr (kValidate) args.validation->rows += rows;
}

}  // namespace

void batch_pass(int threads, const detail::BatchPassArgs& args) {
  const detail::PreparedPass prep(args);
  if (args.rules != nullptr && args.spec != nullptr) {
    run<true, true>(threads, prep, args);
  } else if (args.rules != nullptr) {
    run<true, false>(threads, prep, args);
  } else if (args.spec != nullptr) {
    run<false, true>(threads, prep, args);
  }
}

}  // namespace driftguard::cpu
