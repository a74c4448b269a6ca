#pragma once
// The histogram kernel's bin search: a fixed number of halving steps over a feature's points
// padded with +inf, so that the loop unrolls completely and each step is one shared-memory load,
// one compare and one add. Plain C++ so that tests check it against detail::slot_of on the host.
#include <algorithm>
#include <cstdint>
#include <limits>
#include <utility>
#include <vector>

#include "kernels/prepared_pass.hpp"

#ifdef __CUDACC__
#define DG_UNROLL _Pragma("unroll")
#else
#define DG_UNROLL
#endif

namespace driftguard::cuda {

// Entries per feature in the padded layout. Odd, so that consecutive features start in different
// shared-memory banks.
constexpr std::uint32_t padded_points(int steps) { return (1u << steps) - 1u; }

// Equals detail::count_not_above(points, count, x) for every x (NaN included) when `points`
// holds `count` increasing values followed by +inf up to padded_points(kSteps) entries.
template <int kSteps>
DG_HOST_DEVICE inline std::uint32_t count_not_above_padded(const float* points, std::uint32_t count,
                                                           float x) {
  std::uint32_t lo = 0;
  DG_UNROLL
  for (int i = kSteps - 1; i >= 0; --i) {
    const std::uint32_t step = 1u << i;
    lo = x < points[lo + step - 1] ? lo : lo + step;
  }
  // Padding counts only for x = +inf or NaN, where every real point counts too.
  return lo < count ? lo : count;
}

// detail::slot_of over the padded layout: the same slot for every x.
template <int kSteps>
DG_HOST_DEVICE inline std::uint32_t slot_of_padded(float x, const detail::FeatureBins& bins,
                                                   const float* points) {
  return detail::slot_from_count(count_not_above_padded<kSteps>(points, bins.point_count, x), x,
                                 bins, points);
}

// Smallest supported step count whose padded length holds `max_points`; 0 when none does (the
// kernel then runs detail::slot_of over the unpadded points).
constexpr int padded_steps_for(std::uint32_t max_points) {
  if (max_points <= padded_points(4)) return 4;
  if (max_points <= padded_points(7)) return 7;
  return 0;
}

// Rewrites `bins` / `points` (PreparedPass's layout) into the padded layout of `steps`.
inline void pad_points(int steps, std::vector<detail::FeatureBins>& bins,
                       std::vector<float>& points) {
  const std::uint32_t stride = padded_points(steps);
  std::vector<float> padded(bins.size() * stride, std::numeric_limits<float>::infinity());
  for (std::size_t f = 0; f < bins.size(); ++f) {
    const auto first = points.begin() + bins[f].point_offset;
    std::copy(first, first + bins[f].point_count, padded.begin() + f * stride);
    bins[f].point_offset = static_cast<std::uint32_t>(f * stride);
  }
  points = std::move(padded);
}

}  // namespace driftguard::cuda
