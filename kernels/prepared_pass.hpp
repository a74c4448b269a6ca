#pragma once
// Internal: the per-call tables every backend compares against, built once on the host.
//
// All bounds and edges are turned into floats so kernels compare float with float and still give
// the exact double semantics of validate.hpp / histogram.hpp: for a float x and a double e,
//   x < e  <=>  x < round_up(e)     (round_up: the smallest float >= e)
//   x > e  <=>  x > round_down(e)   (round_down: the largest float <= e)
#include <cmath>
#include <cstdint>
#include <vector>

#include "kernels/backend.hpp"

// The per-value rules below are shared by the CPU and CUDA kernels so both give the same bits.
#ifdef __CUDACC__
#define DG_HOST_DEVICE __host__ __device__
#else
#define DG_HOST_DEVICE
#endif

namespace driftguard::detail {

float round_up_to_float(double value) noexcept;
float round_down_to_float(double value) noexcept;

// Numeric: points are the edges rounded up, e_0..e_B; x counts in bin k-1 where k = #{points <= x},
// k == 0 is underflow, k == B+1 is the last bin when x <= last_edge_down, else overflow.
// Categorical: points are the exact codes; no exact match means "other" (the overflow slot).
struct FeatureBins {
  std::uint32_t point_offset;
  std::uint32_t point_count;
  std::uint32_t slot_offset;  // first slot (underflow) of this feature in HistogramCounts::raw()
  std::uint32_t categorical;
  float last_edge_down;
};

// Finite x is BelowMin when x < min_up, AboveMax when x > max_down (numeric features only).
struct FeatureRule {
  float min_up;
  float max_down;
  std::uint32_t code_offset;
  std::uint32_t code_count;
  std::uint32_t categorical;
  std::uint32_t row_bad_flags;  // flags that make the row not ok
};

struct PreparedPass {
  std::vector<FeatureBins> bins;  // empty when the pass has no histogram
  std::vector<float> points;
  std::vector<FeatureRule> rules;  // empty when the pass has no validation
  std::vector<float> codes;
  std::uint32_t total_slots = 0;

  explicit PreparedPass(const BatchPassArgs& args);
};

// Number of points <= x among `count` increasing points (branch-light binary search).
DG_HOST_DEVICE inline std::uint32_t count_not_above(const float* points, std::uint32_t count,
                                                    float x) {
  std::uint32_t lo = 0;
  while (count > 0) {
    const std::uint32_t half = count / 2;
    const bool right = !(x < points[lo + half]);
    lo = right ? lo + half + 1 : lo;
    count = right ? count - half - 1 : half;
  }
  return lo;
}

// Cell flags of one value under one rule (validate.hpp); `codes` holds the rule's codes.
DG_HOST_DEVICE inline std::uint32_t cell_flags(float x, const FeatureRule& rule,
                                               const float* codes) {
  if (x != x) return kMissing;
  if (x == INFINITY || x == -INFINITY) return kNonFinite;
  if (rule.categorical) {
    const std::uint32_t k =
        count_not_above(codes, rule.code_count, x);  // codes[k-1] <= x < codes[k]
    return (k > 0 && codes[k - 1] == x) ? 0u : std::uint32_t{kUnknownCategory};
  }
  return (x < rule.min_up ? std::uint32_t{kBelowMin} : 0u) |
         (x > rule.max_down ? std::uint32_t{kAboveMax} : 0u);
}

// Slot of x within its feature from k = #{points <= x} (clamped to the point count): 0 underflow,
// 1..B bins, B+1 overflow/other, B+2 missing.
DG_HOST_DEVICE inline std::uint32_t slot_from_count(std::uint32_t k, float x,
                                                    const FeatureBins& bins, const float* points) {
  const std::uint32_t n = bins.point_count;
  if (x != x) return bins.categorical ? n + 2 : n + 1;
  if (bins.categorical) return (k > 0 && points[k - 1] == x) ? k : n + 1;
  if (k < n) return k;  // 0 = underflow, else bin k-1 lives in slot k
  return x > bins.last_edge_down ? n : n - 1;
}

// Slot of x; `points` holds the feature's points.
DG_HOST_DEVICE inline std::uint32_t slot_of(float x, const FeatureBins& bins, const float* points) {
  return slot_from_count(count_not_above(points, bins.point_count, x), x, bins, points);
}

}  // namespace driftguard::detail
