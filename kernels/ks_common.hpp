#pragma once
// Internal: the per-value rules of KS that the CPU and CUDA backends share, so that both give the
// same bits: the radix-sort key of a float and the order of candidate extremes.
#include <bit>
#include <cstdint>
#include <limits>

#include "kernels/backend.hpp"
#include "kernels/prepared_pass.hpp"  // DG_HOST_DEVICE

namespace driftguard::detail {

// Unsigned keys in the order of the floats (-Inf < ... < -0.0 < +0.0 < ... < +Inf); every NaN
// maps to the largest key, so that NaN sorts last whatever its sign and payload.
DG_HOST_DEVICE inline std::uint32_t ks_sort_key(float x) {
  if (x != x) return 0xffffffffu;
  const std::uint32_t bits = std::bit_cast<std::uint32_t>(x);
  return bits ^ ((bits >> 31) != 0 ? 0xffffffffu : 0x80000000u);
}

// Inverse of ks_sort_key for non-NaN values.
DG_HOST_DEVICE inline float ks_key_value(std::uint32_t key) {
  return std::bit_cast<float>(key ^ ((key >> 31) != 0 ? 0x80000000u : 0xffffffffu));
}

// F_R(v) - F_C(v) after the values <= v: i of n1 reference and j of n2 current values. Two
// correctly rounded divisions and one subtraction, as NumPy evaluates cdf1 - cdf2.
DG_HOST_DEVICE inline double ks_ecdf_difference(std::uint64_t i, std::uint64_t n1, std::uint64_t j,
                                                std::uint64_t n2) {
  return static_cast<double>(i) / static_cast<double>(n1) -
         static_cast<double>(j) / static_cast<double>(n2);
}

// Start values for the extremes: every real candidate precedes them.
DG_HOST_DEVICE constexpr KsCandidate ks_no_max() {
  return {-std::numeric_limits<double>::infinity(), std::numeric_limits<float>::infinity(), 0};
}
DG_HOST_DEVICE constexpr KsCandidate ks_no_min() {
  return {std::numeric_limits<double>::infinity(), std::numeric_limits<float>::infinity(), 0};
}

// Both extremes of a feature whose reference or current sample is empty.
DG_HOST_DEVICE constexpr KsCandidate ks_no_test() {
  return {std::numeric_limits<double>::quiet_NaN(), std::numeric_limits<float>::quiet_NaN(), 0};
}

// SciPy's argmax / argmin over the pooled array [sorted R, sorted C]: the first position with the
// extreme difference. Candidates are distinct pooled values, so the first position is a value
// present in the reference if there is one, else the smallest value. `a` precedes `b` when it
// would be chosen over it.
DG_HOST_DEVICE inline bool ks_precedes_as_max(const KsCandidate& a, const KsCandidate& b) {
  if (a.diff != b.diff) return a.diff > b.diff;
  if (a.in_reference != b.in_reference) return a.in_reference > b.in_reference;
  return a.value < b.value;
}
DG_HOST_DEVICE inline bool ks_precedes_as_min(const KsCandidate& a, const KsCandidate& b) {
  if (a.diff != b.diff) return a.diff < b.diff;
  if (a.in_reference != b.in_reference) return a.in_reference > b.in_reference;
  return a.value < b.value;
}

// Above this n1 * n2, two different values of F_R - F_C (which differ by at least 1 / (n1 n2))
// may round to doubles less than an ulp apart, and k = i n2 - j n1 no longer orders them as their
// doubles do.
inline constexpr std::uint64_t kKsMaxExactProduct = std::uint64_t{1} << 50;

// Whether KsExactExtremes may track the extremes of n1 reference and n2 current values (n2 >= 1).
DG_HOST_DEVICE inline bool ks_exact_in_integers(std::uint64_t n1, std::uint64_t n2) {
  return n1 <= kKsMaxExactProduct / n2;
}

// The running extremes of k = i n2 - j n1 (n1 n2 (F_R - F_C), exact in 64 bits) over evaluation
// points, for n1 n2 <= kKsMaxExactProduct: there k orders the points as their double differences
// do (distinct values differ by at least 1 / (n1 n2), far more than the rounding), and equal k are
// compared in double by SciPy's rules (ks_precedes_*). So a new extreme only moves integers, and
// a point's two divisions are paid only on a tie of k. `candidate_of(point)` makes a point's
// candidate.
template <class Point>
struct KsExactExtremes {
  std::int64_t k_max = std::numeric_limits<std::int64_t>::min();
  std::int64_t k_min = std::numeric_limits<std::int64_t>::max();
  Point max{}, min{};

  DG_HOST_DEVICE bool empty() const { return k_max == std::numeric_limits<std::int64_t>::min(); }
  template <class CandidateOf>
  DG_HOST_DEVICE void consider(std::int64_t k, const Point& p, const CandidateOf& candidate_of) {
    if (k > k_max) {
      k_max = k;
      max = p;
    } else if (k == k_max && ks_precedes_as_max(candidate_of(p), candidate_of(max))) {
      max = p;
    }
    if (k < k_min) {
      k_min = k;
      min = p;
    } else if (k == k_min && ks_precedes_as_min(candidate_of(p), candidate_of(min))) {
      min = p;
    }
  }
};

}  // namespace driftguard::detail
