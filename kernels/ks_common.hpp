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

}  // namespace driftguard::detail
