#pragma once
// Internal: the parts of the MMD tests both backends share, so that they draw the same
// permutations, pick the same median and turn sums into the same results (mmd.hpp defines them).
//
// Permutation columns: column 0 is the observed split (rows < n on the X side), column c >= 1 is
// permutation c - 1. A row's sides are bits: bit c % 64 of word c / 64 of the row's
// permutation_words(P) words, set when the row is on the X side.
#include <Random123/philox.h>

#include <cstdint>
#include <vector>

#include "driftguard/mmd.hpp"
#include "kernels/prepared_pass.hpp"  // DG_HOST_DEVICE

namespace driftguard::detail {

// The 64-bit key that orders the pooled rows in permutation `permutation` (mmd.hpp, MmdOptions).
DG_HOST_DEVICE inline std::uint64_t permutation_key(std::uint64_t seed, std::uint32_t permutation,
                                                    std::uint32_t row) {
  const r123::Philox4x32::ctr_type counter = {{row, permutation, 0u, 0u}};
  const r123::Philox4x32::key_type key = {
      {static_cast<std::uint32_t>(seed), static_cast<std::uint32_t>(seed >> 32)}};
  const r123::Philox4x32::ctr_type out = r123::Philox4x32()(counter, key);
  return out[0] | (std::uint64_t{out[1]} << 32);
}

// A row is on the X side of a permutation when (key, row) is at most the permutation's n-th
// smallest (key, row): the rank order the test defines, ties in key broken by the row.
DG_HOST_DEVICE inline bool on_x_side(std::uint64_t key, std::uint32_t row, std::uint64_t last_key,
                                     std::uint32_t last_row) {
  return key < last_key || (key == last_key && row <= last_row);
}

// Row of the median heuristic's reference subsample at position t < sample_rows.
DG_HOST_DEVICE inline std::uint64_t median_sample_row(std::uint64_t t, std::uint64_t n,
                                                      std::uint64_t sample_rows) {
  return t * n / sample_rows;
}

inline std::uint64_t median_sample_rows(std::uint64_t n) {
  return n < kMedianMaxRows ? n : kMedianMaxRows;
}

inline std::uint32_t permutation_words(std::uint32_t permutations) {
  return (permutations + 1 + 63) / 64;
}

// What a backend hands back for the quadratic test: per column, sums of k over unordered pairs
// i < j with both rows on the X side (xx), both on the Y side (yy), or one on each (xy).
struct MmdSums {
  double sigma = 0;
  std::vector<double> xx, yy, xy;  // permutations + 1 entries each
};

// What a backend hands back for the linear test: h_i per pair (mmd.hpp).
struct MmdLinearTerms {
  double sigma = 0;
  std::vector<double> h;
};

// sigma from the median squared distance; InvalidInput when it is 0.
double sigma_from_median(double median_squared_distance);
// alibi's sigma_median over all reference pairs: reorders `distances` (the K pair distances).
double median_sigma(std::vector<double>& distances);
// alibi's sigma for paired distances (index B/2 - 1): reorders `distances` (the B pairs).
double paired_median_sigma(std::vector<double>& distances);

MmdResult finish_mmd(const MmdSums& sums, std::uint64_t n, std::uint64_t m,
                     const MmdOptions& options);
MmdLinearResult finish_mmd_linear(const MmdLinearTerms& terms, std::uint64_t n, std::uint64_t m);

// InvalidInput naming the window and the first row holding NaN or +-inf.
[[noreturn]] void throw_non_finite_row(const char* what, const char* window, std::uint64_t row);

}  // namespace driftguard::detail
