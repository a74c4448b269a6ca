// Host-side finishing of the MMD tests, shared by both backends: the same code turns the sums
// into statistics, counts and p-values, so the backends can only differ in the sums themselves.
#include "kernels/mmd_common.hpp"

#include <algorithm>
#include <cmath>
#include <functional>
#include <string>

#include "driftguard/errors.hpp"

namespace driftguard::detail {

double sigma_from_median(double median_squared_distance) {
  if (!(median_squared_distance > 0)) {
    throw InvalidInput(
        "mmd: the median heuristic gives sigma = 0 (more than half of the reference pairs are "
        "identical rows); pass a sigma");
  }
  return std::sqrt(0.5 * median_squared_distance);
}

double median_sigma(std::vector<double>& distances) {
  const auto middle = distances.begin() + static_cast<std::ptrdiff_t>((distances.size() - 1) / 2);
  std::nth_element(distances.begin(), middle, distances.end());
  return sigma_from_median(*middle);
}

double paired_median_sigma(std::vector<double>& distances) {
  const auto middle = distances.begin() + static_cast<std::ptrdiff_t>(distances.size() / 2 - 1);
  std::nth_element(distances.begin(), middle, distances.end());
  return sigma_from_median(*middle);
}

MmdResult finish_mmd(const MmdSums& sums, std::uint64_t n, std::uint64_t m,
                     const MmdOptions& options) {
  // alibi's constants: c_xx = 1 / (n (n - 1)) on the ordered-pair sum (twice ours), and
  // 2 * mean(k_xy) over the n m cross pairs.
  const double nd = static_cast<double>(n), md = static_cast<double>(m);
  const double c_xx = 1.0 / (nd * (nd - 1.0)), c_yy = 1.0 / (md * (md - 1.0));
  const double c_xy = 1.0 / (nd * md);
  const auto statistic = [&](std::size_t c) {
    return c_xx * (2.0 * sums.xx[c]) + c_yy * (2.0 * sums.yy[c]) - 2.0 * (sums.xy[c] * c_xy);
  };
  MmdResult result;
  result.mmd2 = statistic(0);
  result.sigma = sums.sigma;
  result.permutations = options.permutations;
  result.n_reference = n;
  result.n_current = m;
  const double scale = std::fabs(c_xx * (2.0 * sums.xx[0])) + std::fabs(c_yy * (2.0 * sums.yy[0])) +
                       std::fabs(2.0 * (sums.xy[0] * c_xy));
  const double floor = result.mmd2 - kMmdTieTolerance * scale;
  std::vector<double> permuted(options.permutations);
  for (std::uint32_t k = 0; k < options.permutations; ++k) {
    permuted[k] = statistic(k + 1);
    result.exceed_count += permuted[k] >= floor ? 1 : 0;
  }
  const double p = static_cast<double>(options.permutations);
  result.pvalue = options.pvalue == MmdOptions::PValue::Alibi
                      ? static_cast<double>(result.exceed_count) / p
                      : (1.0 + static_cast<double>(result.exceed_count)) / (1.0 + p);
  // alibi: idx = int(p_val * P); sort(mmd2_permuted)[::-1][idx].
  const auto index = static_cast<std::size_t>(options.significance * p);
  std::nth_element(permuted.begin(), permuted.begin() + static_cast<std::ptrdiff_t>(index),
                   permuted.end(), std::greater<>());
  result.threshold = permuted[index];
  return result;
}

MmdLinearResult finish_mmd_linear(const MmdLinearTerms& terms, std::uint64_t n, std::uint64_t m) {
  MmdLinearResult result;
  const std::size_t pairs = terms.h.size();
  const double b = static_cast<double>(pairs);
  double sum = 0;
  for (double h : terms.h) sum += h;
  const double mean = sum / b;
  // Two passes: h is a difference of kernel values, so its mean is small against its spread.
  double squares = 0;
  for (double h : terms.h) squares += (h - mean) * (h - mean);
  result.mmd2 = mean;
  result.variance = squares / (b - 1.0);
  result.z = mean / std::sqrt(result.variance / b);
  if (result.variance > 0) {
    result.pvalue = 0.5 * std::erfc(result.z / std::sqrt(2.0));
  } else {
    result.pvalue = mean > 0 ? 0.0 : 1.0;
  }
  result.sigma = terms.sigma;
  result.pairs = pairs;
  result.n_reference = n;
  result.n_current = m;
  return result;
}

void throw_non_finite_row(const char* what, const char* window, std::uint64_t row) {
  throw InvalidInput(std::string(what) + ": " + window + " row " + std::to_string(row) +
                     " holds NaN or an infinite value; drop or impute such rows first");
}

}  // namespace driftguard::detail
