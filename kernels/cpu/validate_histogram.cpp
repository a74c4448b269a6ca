// CPU backend of the batch pass. Row blocks are spread over OpenMP threads; each thread counts
// into private arrays summed once at the end. Within a row, work runs across features on
// structure-of-arrays tables, so the compiler vectorises it (target_clones picks AVX-512 / AVX2
// at run time):
//  - a numeric feature with at most kMaxLanes bin edges keeps lane counters
//      C_i[f] = #{x : lane_i[f] <= x},  lanes = round_up(e_0) .. round_up(e_{B-1}),
//      next float above round_down(e_B), NaN padding (never <= x),
//    and its slots follow by differences: underflow = N - missing - C_0, bin i = C_i - C_{i+1},
//    overflow = C_B. One compare-and-add per edge and value, no search, no scatter.
//  - other features (categorical, or more edges) take the scalar slot_of path.
//  - numeric validation is branch-free per value; categorical codes are searched.
#include <omp.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <vector>

#include "kernels/backend.hpp"
#include "kernels/prepared_pass.hpp"

namespace driftguard::cpu {
namespace {

constexpr std::uint32_t kMaxLanes = 65;  // at most 64 bins take the vector path
// int32 block counters cannot overflow within a block; they are flushed to 64-bit after each.
constexpr std::size_t kBlockRows = 1024;
constexpr float kInf = std::numeric_limits<float>::infinity();

struct CpuTables {
  std::size_t features = 0;
  std::uint32_t lanes = 0;         // lane passes per row
  std::vector<float> lane_points;  // [lanes][features]; NaN where a feature has no lane
  // Lane i only concerns features [lane_begin[i], lane_end[i]): mixed bin counts cost less.
  std::vector<std::uint32_t> lane_begin, lane_end;
  std::vector<std::uint32_t> lane_features;    // features on the lane path
  std::vector<std::uint32_t> scalar_features;  // features on the slot_of path
  // Validation, per feature: categorical features get an unbounded range and search codes.
  std::vector<float> min_up, max_down;
  std::vector<std::uint32_t> missing_bad;  // 1 when a NaN makes the row invalid
  std::vector<std::uint32_t> categorical_rules;

  explicit CpuTables(const detail::PreparedPass& prep, std::size_t n_features)
      : features(n_features) {
    for (std::uint32_t f = 0; f < prep.bins.size(); ++f) {
      const detail::FeatureBins& bins = prep.bins[f];
      const bool lane = !bins.categorical && bins.point_count <= kMaxLanes;
      (lane ? lane_features : scalar_features).push_back(f);
      if (lane) lanes = std::max(lanes, bins.point_count);
    }
    lane_points.assign(std::size_t{lanes} * features, std::numeric_limits<float>::quiet_NaN());
    lane_begin.assign(lanes, static_cast<std::uint32_t>(features));
    lane_end.assign(lanes, 0);
    for (std::uint32_t f : lane_features) {
      const detail::FeatureBins& bins = prep.bins[f];
      const float* p = prep.points.data() + bins.point_offset;
      const std::uint32_t n = bins.point_count;
      for (std::uint32_t i = 0; i < n; ++i) {
        lane_begin[i] = std::min(lane_begin[i], f);
        lane_end[i] = std::max(lane_end[i], f + 1);
      }
      for (std::uint32_t i = 0; i + 1 < n; ++i) lane_points[i * features + f] = p[i];
      lane_points[(n - 1) * features + f] = std::nextafter(bins.last_edge_down, kInf);
    }
    for (std::uint32_t f = 0; f < prep.rules.size(); ++f) {
      const detail::FeatureRule& rule = prep.rules[f];
      min_up.push_back(rule.categorical ? -kInf : rule.min_up);
      max_down.push_back(rule.categorical ? kInf : rule.max_down);
      missing_bad.push_back((rule.row_bad_flags & kMissing) ? 1u : 0u);
      if (rule.categorical) categorical_rules.push_back(f);
    }
  }
};

// Private counts of one thread: int32 block counters and their 64-bit totals.
struct ThreadCounts {
  std::vector<std::int32_t> lane_block, lane_missing_block;  // [lanes][features], [features]
  std::vector<std::uint64_t> lane_total, lane_missing;
  std::vector<std::uint64_t> slots;      // scalar-path features, by slot
  std::vector<std::int32_t> flag_block;  // [4 numeric flags][features]
  std::vector<std::uint64_t> flags;      // [features][kCellFlagCount]
  std::uint64_t rows = 0, rows_ok = 0;
};

template <bool kValidate, bool kHistogram>
__attribute__((target_clones("avx512f", "avx2", "default"))) void count_rows(
    const detail::PreparedPass& prep, const CpuTables& t, const detail::BatchPassArgs& args,
    std::size_t row_begin, std::size_t row_end, ThreadCounts& out) {
  const std::size_t n = t.features;
  std::int32_t* const lane_block = out.lane_block.data();
  std::int32_t* const missing_block = out.lane_missing_block.data();
  std::int32_t* const flag_block = out.flag_block.data();
  std::int32_t* const missing_flags = flag_block;
  std::int32_t* const infinite_flags = flag_block + n;
  std::int32_t* const below_flags = flag_block + 2 * n;
  std::int32_t* const above_flags = flag_block + 3 * n;
  for (std::size_t row = row_begin; row < row_end; ++row) {
    const float* __restrict__ x = args.batch.data + row * n;
    if constexpr (kHistogram) {
      for (std::uint32_t i = 0; i < t.lanes; ++i) {
        const float* __restrict__ lane = t.lane_points.data() + i * n;
        std::int32_t* __restrict__ count = lane_block + i * n;
        const std::size_t begin = t.lane_begin[i], end = t.lane_end[i];
        for (std::size_t f = begin; f < end; ++f) count[f] += lane[f] <= x[f] ? 1 : 0;
      }
      for (std::size_t f = 0; f < n; ++f) missing_block[f] += x[f] != x[f] ? 1 : 0;
      for (std::uint32_t f : t.scalar_features) {
        const detail::FeatureBins& bins = prep.bins[f];
        ++out.slots[bins.slot_offset +
                    detail::slot_of(x[f], bins, prep.points.data() + bins.point_offset)];
      }
    }
    if constexpr (kValidate) {
      std::uint32_t bad = 0;
      for (std::size_t f = 0; f < n; ++f) {
        const float v = x[f];
        // Bitwise, not &&: branches would stop the vectoriser.
        const std::uint32_t missing = v != v;
        const std::uint32_t infinite = std::fabs(v) == kInf;
        const std::uint32_t below = static_cast<std::uint32_t>(v < t.min_up[f]) & (infinite ^ 1u);
        const std::uint32_t above = static_cast<std::uint32_t>(v > t.max_down[f]) & (infinite ^ 1u);
        missing_flags[f] += static_cast<std::int32_t>(missing);
        infinite_flags[f] += static_cast<std::int32_t>(infinite);
        below_flags[f] += static_cast<std::int32_t>(below);
        above_flags[f] += static_cast<std::int32_t>(above);
        bad |= (missing & t.missing_bad[f]) | infinite | below | above;
      }
      if (std::uint8_t* cell_flags = args.masks.cell_flags) {
        std::uint8_t* __restrict__ cells = cell_flags + row * n;
        for (std::size_t f = 0; f < n; ++f) {
          const float v = x[f];
          const std::uint32_t finite = std::fabs(v) != kInf;
          cells[f] = static_cast<std::uint8_t>(
              static_cast<std::uint32_t>(v != v) * kMissing + (finite ^ 1u) * kNonFinite +
              (static_cast<std::uint32_t>(v < t.min_up[f]) & finite) * kBelowMin +
              (static_cast<std::uint32_t>(v > t.max_down[f]) & finite) * kAboveMax);
        }
      }
      for (std::uint32_t f : t.categorical_rules) {
        const detail::FeatureRule& rule = prep.rules[f];
        const std::uint32_t cell =
            detail::cell_flags(x[f], rule, prep.codes.data() + rule.code_offset);
        if (cell == kUnknownCategory) {
          ++out.flags[f * kCellFlagCount + flag_index(kUnknownCategory)];
          bad = 1;
          if (args.masks.cell_flags != nullptr)
            args.masks.cell_flags[row * n + f] = kUnknownCategory;
        }
      }
      out.rows_ok += bad == 0 ? 1 : 0;
      if (args.masks.row_ok != nullptr) args.masks.row_ok[row] = bad == 0 ? 1 : 0;
    }
  }
  out.rows += row_end - row_begin;
  for (std::size_t i = 0; i < out.lane_block.size(); ++i) {
    out.lane_total[i] += static_cast<std::uint64_t>(out.lane_block[i]);
    out.lane_block[i] = 0;
  }
  for (std::size_t f = 0; f < out.lane_missing_block.size(); ++f) {
    out.lane_missing[f] += static_cast<std::uint64_t>(out.lane_missing_block[f]);
    out.lane_missing_block[f] = 0;
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
    const auto cumulative = [&](std::uint32_t lane) { return c.lane_total[lane * t.features + f]; };
    const std::uint64_t missing = c.lane_missing[f];
    std::uint64_t* s = total.data() + bins.slot_offset;
    s[0] += c.rows - missing - cumulative(0);
    for (std::uint32_t i = 1; i <= b; ++i) s[i] += cumulative(i - 1) - cumulative(i);
    s[b + 1] += cumulative(b);
    s[b + 2] += missing;
  }
}

template <bool kValidate, bool kHistogram>
void run(int threads, const detail::PreparedPass& prep, const detail::BatchPassArgs& args) {
  const std::size_t rows = args.batch.rows, n = args.batch.features;
  const CpuTables tables(prep, n);
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
      mine.lane_missing_block.assign(n, 0);
      mine.lane_missing.assign(n, 0);
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
