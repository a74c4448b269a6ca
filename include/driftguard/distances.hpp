#pragma once
// Univariate drift measures on one feature, computed on the host from inputs the library already
// holds: sorted non-NaN columns (SortedColumns::column, driftguard/ks.hpp) or histogram counts
// (HistogramCounts::bins or ::slots, driftguard/histogram.hpp). Each reproduces SciPy 1.17 with
// the reference as SciPy's first argument; tests/golden/distances_scipy.json holds the evidence.
//
// Conventions shared by all of them:
//   - Sorted inputs must be ascending and NaN-free (-0.0 and +0.0 may both appear, in either
//     order); anything else throws InvalidInput. +-Inf are ordinary values and flow through
//     SciPy's arithmetic unchanged, so results are Inf or NaN exactly where SciPy's are.
//   - An empty sample (or an all-zero count vector) gives NaN results, as ks_two_sample does for
//     an all-NaN feature: SciPy raises there, but a window where a feature is entirely missing is
//     data to report, not a programming error.
#include <cstdint>
#include <span>

namespace driftguard {

// First Wasserstein distance between the two empirical distributions:
// scipy.stats.wasserstein_distance(reference, current), the integral of |F_R - F_C| over the
// pooled sorted values. Each step weighs n_R n_C |F_R - F_C|, an exact integer, where SciPy
// subtracts the rounded ECDFs; the terms are summed with compensation and divided by n_R n_C
// once. The result is within a few ulps of the exact value, and SciPy's within ~1e-13 of it
// (1.3e-12 where its subtraction cancels: tests/golden/README.md).
double wasserstein1(std::span<const float> sorted_reference, std::span<const float> sorted_current);

// Evidently's "Wasserstein distance (normed)" (evidently 0.7.23,
// evidently/legacy/calculations/stattests/wasserstein_distance_norm.py):
// wasserstein1 / max(np.std(reference), 0.001), the population standard deviation (ddof = 0) of
// the reference computed in double. NaN when the reference holds an infinity (Python's max keeps
// the NaN standard deviation, and so does this).
double wasserstein1_normed(std::span<const float> sorted_reference,
                           std::span<const float> sorted_current);
// Its divisor, max(np.std(reference), 0.001): depends on the reference only, so a monitor
// scanning many windows computes it once. wasserstein1_normed == wasserstein1 / this, bit for bit.
double wasserstein1_normed_scale(std::span<const float> sorted_reference);

// Jensen-Shannon DISTANCE (the square root of the divergence) between the normalised count
// vectors: scipy.spatial.distance.jensenshannon(reference, current, base), with NumPy's pairwise
// summation, so it matches SciPy to the last bit or two. Pass e for nats, 2 for bits (then the
// result is in [0, 1]). Where rounding makes the divergence a tiny negative number SciPy returns
// NaN; this returns 0 (the distributions are equal to rounding). InvalidInput when the vectors
// differ in length or base is not finite and > 0 and != 1; NaN when a vector is empty or all zero.
double jensen_shannon(std::span<const std::uint64_t> reference_counts,
                      std::span<const std::uint64_t> current_counts, double base);

struct ChiSquaredResult {
  double statistic = 0;
  double pvalue = 0;
  std::uint64_t dof = 0;
};

// Pearson's chi-squared test of homogeneity on the 2 x k table [reference; current]:
// scipy.stats.chi2_contingency(table, correction=True) after removing the categories that are
// empty in both rows (SciPy refuses a table with a zero expected count; an empty category carries
// no evidence either way, so dropping it is the test SciPy would run on the remaining ones).
// Yates' continuity correction applies only when dof == 1, as in SciPy; dof == 0 (one category
// left) gives statistic 0 and p-value 1. The p-value is the chi-squared survival function
// (Boost.Math gamma_q), within 1e-10 relative of SciPy's. InvalidInput when the vectors differ in
// length; statistic and p-value NaN and dof 0 when either row sums to 0.
ChiSquaredResult chi_squared(std::span<const std::uint64_t> reference_counts,
                             std::span<const std::uint64_t> current_counts);

// SciPy's method argument: Auto is Exact when both samples have at most 20 values, else
// Asymptotic.
enum class CvmMethod { Auto, Exact, Asymptotic };

struct CvmResult {
  double statistic = 0;
  double pvalue = 0;
};

// Two-sample Cramér-von Mises test: scipy.stats.cramervonmises_2samp(reference, current, method).
// The statistic comes from average ranks of the pooled sample (ties allowed) and is bit-identical
// to SciPy's for samples up to about 5000 values each (the rank sums stay exact in double).
// Exact: the counting recursion of Xiao, Gordon & Yakovlev (2006) as SciPy's
// _pval_cvm_2samp_exact runs it, bit-identical; InvalidInput when binom(n1 + n2, n1) does not fit
// in 64 bits (its cost grows with that count: keep it to small samples). Asymptotic: Anderson's
// normalised statistic against the limiting distribution (series in Bessel K_{1/4}), within
// 1e-10 relative or 1e-14 absolute of SciPy's (p = 1 - cdf: Boost's and SciPy's Bessel K differ
// in the last digits, and tiny p-values keep only the absolute error). Statistic and p-value NaN
// when a sample has fewer than 2 values (SciPy returns NaN there too).
CvmResult cramer_von_mises(std::span<const float> sorted_reference,
                           std::span<const float> sorted_current,
                           CvmMethod method = CvmMethod::Auto);

// wasserstein1 and cramer_von_mises of the same samples, bit for bit what the two calls return,
// in one walk over the pooled sample where both would walk it side by side (finite samples whose
// ties are rare, as a drift scan's numeric windows mostly are): a fifth less time than the two
// calls on 2^18 against 2^20 normal values. Otherwise it makes the two calls.
struct WassersteinAndCvm {
  double wasserstein = 0;
  CvmResult cramer_von_mises;
};
WassersteinAndCvm wasserstein1_and_cramer_von_mises(std::span<const float> sorted_reference,
                                                    std::span<const float> sorted_current,
                                                    CvmMethod method = CvmMethod::Auto);

}  // namespace driftguard
