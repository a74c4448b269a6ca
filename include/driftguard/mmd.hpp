#pragma once
// Multivariate drift tests with the maximum mean discrepancy (MMD) and a Gaussian RBF kernel,
// reproducing alibi-detect's MMDDrift (0.13, `alibi_detect/utils/*/kernels.py`, `distance.py`,
// `cd/*/mmd.py`) in float64 on both backends.
//
// Windows: `reference` (X, n rows) and `current` (Y, m rows), row-major float32 with the same
// feature count; every value is widened to double. Rows holding NaN or +-inf are rejected with
// InvalidInput naming the window and the first such row: a kernel value of NaN would poison every
// statistic, and silently dropping rows would change n and m behind the caller's back. Impute or
// drop them before the call.
//
// Kernel: k(x, y) = exp(-||x - y||^2 / (2 sigma^2)), the squared distance summed in double over
// the features (alibi's GaussianRBF with one bandwidth).
//
// Bandwidth when none is given, alibi's sigma_median on the reference against itself (the
// default configure_kernel_from_x_ref=True): sigma = sqrt(0.5 * D), D the lower median of the
// squared distances of the K = n(n-1)/2 reference pairs i < j, i.e. the element at 0-based index
// floor((K - 1) / 2) in increasing order. (alibi sorts all n^2 entries of the distance matrix and
// takes index n + (n^2 - n)/2 - 1: past the n zero diagonal entries, into the off-diagonal values
// that each appear twice, which is that same element.) References above kMedianMaxRows rows use
// the pairs of an evenly strided subsample, rows floor(t * n / kMedianMaxRows) for t <
// kMedianMaxRows: alibi would sort n^2 values, which stops being possible long before the test
// itself does. A median of 0 (more than half the pairs are identical rows) throws InvalidInput:
// pass a sigma.
#include <cstdint>
#include <optional>

#include "driftguard/batch.hpp"
#include "driftguard/context.hpp"

namespace driftguard {

// Largest reference whose pairs all enter the median heuristic (8.0e6 pairs).
inline constexpr std::uint64_t kMedianMaxRows = 4000;

// Permuted statistics within this fraction of the statistic's scale below the observed one count
// as ">=" (see MmdResult::exceed_count).
inline constexpr double kMmdTieTolerance = 1e-10;

struct MmdOptions {
  // Kernel bandwidth (> 0, finite); empty: alibi's median heuristic (see above).
  std::optional<double> sigma = std::nullopt;
  // Number of permutations P (>= 1).
  std::uint32_t permutations = 100;
  // Permutation k (0 <= k < P) is a function of (seed, k) only, identical on every backend and
  // thread count. Over the pooled rows, reference 0..n-1 then current n..n+m-1 (alibi's order),
  // row i gets the 64-bit key w0 | w1 << 32, where (w0, w1, w2, w3) is Random123's Philox4x32-10
  // (philox4x32, 10 rounds) of counter {i, k, 0, 0} under key {seed & 0xffffffff, seed >> 32}.
  // The permuted X side is the n rows that come first in increasing (key, i) order, the other m
  // rows are the permuted Y side. This is a uniformly random split (the tie-break by i matters
  // only with probability ~(n+m)^2 / 2^65) and, unlike a Fisher-Yates shuffle, every row's key is
  // independent of the others, so a GPU draws all of them at once.
  std::uint64_t seed = 0;
  enum class PValue {
    // (1 + #{perm >= obs}) / (1 + P): a valid p-value, never 0.
    Conservative,
    // #{perm >= obs} / P, alibi's mean(mmd2 <= mmd2_permuted) (its TensorFlow backend returns
    // this double; its PyTorch backend rounds it to float32). 0 when no permutation reaches obs.
    Alibi,
  };
  PValue pvalue = PValue::Conservative;
  // alibi's p_val (0 < significance < 1); only sets MmdResult::threshold.
  double significance = 0.05;
};

struct MmdResult {
  // Unbiased MMD^2 of alibi's mmd2_from_kernel_matrix:
  //   sum_{i != j in X} k / (n(n-1)) + sum_{i != j in Y} k / (m(m-1)) - 2 sum_{x in X, y in Y} k /
  //   (nm)
  // It can be negative.
  double mmd2 = 0;
  double pvalue = 1;
  double sigma = 0;  // the bandwidth used
  // alibi's distance_threshold: the permuted statistics sorted in decreasing order, the one at
  // 0-based index floor(significance * P) (the (1 - significance) quantile of the null sample).
  double threshold = 0;
  // #{k : perm_k >= mmd2 - kMmdTieTolerance * s}, s = the sum of the absolute values of the
  // observed statistic's three terms. Float64 rounding differs between backends and thread counts
  // by ~1e-15 of s, far inside the tolerance, so a tie in exact arithmetic (discrete data) counts
  // on every backend. Residual risk: a permuted statistic within ~1e-15 s of the edge of the
  // tolerance band could be counted differently by two backends; for data with a continuous part
  // that is a ~1e-13 chance per permutation.
  std::uint32_t exceed_count = 0;
  std::uint32_t permutations = 0;
  std::uint64_t n_reference = 0;
  std::uint64_t n_current = 0;
};

// MMD^2 of the two windows with a permutation test. InvalidInput when a window has < 2 rows, the
// feature counts differ or are 0, n + m >= 2^32 (2^31 on the CUDA backend), a value is NaN or
// infinite, the sigma or significance is out of range, permutations == 0, or the median heuristic
// gives 0. Cost: O((n+m)^2 (d + P)) time, O((n+m)(d + P)) memory; the kernel matrix is never
// stored. Both backends compute in float64 and draw the same permutations: they return the same
// exceed_count and p-value, and MMD^2 values that differ only by summation order (the tests allow
// 1e-6 relative).
MmdResult mmd_test(Context& ctx, BatchView reference, BatchView current,
                   const MmdOptions& options = {});

struct MmdLinearOptions {
  // Kernel bandwidth (> 0, finite); empty: alibi's median rule for paired distances (below).
  std::optional<double> sigma = std::nullopt;
};

struct MmdLinearResult {
  double mmd2 = 0;      // mean of h over the pairs (Gretton et al. 2012, Lemma 14)
  double variance = 0;  // unbiased sample variance of h
  double z = 0;         // mmd2 / sqrt(variance / pairs); +-inf or NaN when variance == 0
  double pvalue = 1;    // upper tail of the standard normal at z
  double sigma = 0;
  std::uint64_t pairs = 0;
  std::uint64_t n_reference = 0;
  std::uint64_t n_current = 0;
};

// Linear-time MMD (Gretton et al. 2012, JMLR 13, Lemma 14 and Corollary 16), for windows too large
// for the quadratic test. With B = floor(min(n, m) / 2) pairs over the first 2B rows of each
// window,
//   h_i = k(x_2i, x_2i+1) + k(y_2i, y_2i+1) - k(x_2i, y_2i+1) - k(x_2i+1, y_2i),
// the terms of alibi's `linear_mmd2` (utils/pytorch/distance.py); MMD^2_l = mean(h), and under
// H0 sqrt(B) MMD^2_l / std(h) is asymptotically standard normal, so p = P(Z >= z). Rows past 2B
// are not used. When variance == 0: p = 0 if mmd2 > 0, else 1.
// Bandwidth when none is given: alibi's GaussianRBF rule for paired (pairwise=False) distances,
// sigma = sqrt(0.5 * d_(B/2 - 1)) with d_(j) the 0-based j-th smallest of the B reference pair
// distances ||x_2i - x_2i+1||^2 (selection, so O(n) too).
// Trade-off: O((n + m) d) time and O(n + m) memory against the quadratic test's O((n+m)^2 (d + P)),
// but each row enters one pair instead of n + m - 1, so the statistic's variance is ~B times larger
// and the test needs far more data for the same power; its p-value is asymptotic, not exact.
// InvalidInput when min(n, m) < 4, on the shapes, non-finite values or a bad sigma, as mmd_test.
MmdLinearResult mmd_linear_test(Context& ctx, BatchView reference, BatchView current,
                                const MmdLinearOptions& options = {});

}  // namespace driftguard
