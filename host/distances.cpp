#include "driftguard/distances.hpp"

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <numbers>
#include <numeric>
#include <string>
#include <utility>
#include <vector>

#include <boost/math/special_functions/bessel.hpp>
#include <boost/math/special_functions/gamma.hpp>

#include "driftguard/errors.hpp"

namespace driftguard {
namespace {

constexpr double nan = std::numeric_limits<double>::quiet_NaN();

void check_sorted(std::span<const float> values, const char* what) {
  // !(b >= a) holds for a descent and for a NaN on either side, so one pass of branch-free
  // comparisons (vectorisable) finds both; a lone NaN at the front needs its own test.
  const float* v = values.data();
  const std::size_t n = values.size();
  bool bad = n > 0 && std::isnan(v[0]);
  constexpr std::size_t block = 1024;
  for (std::size_t start = 1; start < n && !bad; start += block) {
    const std::size_t end = std::min(n, start + block);
    int descents = 0;
    for (std::size_t i = start; i < end; ++i) descents |= !(v[i] >= v[i - 1]);
    bad = descents != 0;
  }
  if (bad) throw InvalidInput(std::string(what) + " must be ascending and free of NaN");
}

// NumPy's pairwise summation (np.sum on a contiguous float64 array), reproduced so that sums of
// rounded terms round as SciPy's do.
double pairwise_sum(const double* a, std::size_t n) {
  if (n < 8) {
    double res = 0.0;
    for (std::size_t i = 0; i < n; ++i) res += a[i];
    return res;
  }
  if (n <= 128) {
    double r[8];
    std::copy(a, a + 8, r);
    std::size_t i = 8;
    for (; i < n - n % 8; i += 8) {
      for (std::size_t j = 0; j < 8; ++j) r[j] += a[i + j];
    }
    double res = ((r[0] + r[1]) + (r[2] + r[3])) + ((r[4] + r[5]) + (r[6] + r[7]));
    for (; i < n; ++i) res += a[i];
    return res;
  }
  std::size_t n2 = n / 2;
  n2 -= n2 % 8;
  return pairwise_sum(a, n2) + pairwise_sum(a + n2, n - n2);
}

double pairwise_sum(const std::vector<double>& a) { return pairwise_sum(a.data(), a.size()); }

// NumPy's float floor division (npy_divmod), which SciPy's exact CvM p-value uses on doubles.
double floor_divide(double a, double b) {
  double mod = std::fmod(a, b);
  double div = (a - mod) / b;
  if (mod != 0.0 && ((b < 0) != (mod < 0))) div -= 1.0;
  if (div == 0.0) return std::copysign(0.0, a / b);
  double floordiv = std::floor(div);
  if (div - floordiv > 0.5) floordiv += 1.0;
  return floordiv;
}

// Population standard deviation as np.std computes it: mean first, then the mean square
// deviation, both by pairwise summation.
double numpy_std(std::span<const float> values) {
  std::vector<double> x(values.begin(), values.end());
  const double mean = pairwise_sum(x) / static_cast<double>(x.size());
  for (double& v : x) v = (v - mean) * (v - mean);
  return std::sqrt(pairwise_sum(x) / static_cast<double>(x.size()));
}

// binom(n, k), or 0 when it does not fit in 64 bits.
std::uint64_t binomial_or_zero(std::uint64_t n, std::uint64_t k) {
  k = std::min(k, n - k);
  unsigned __int128 c = 1;
  for (std::uint64_t i = 1; i <= k; ++i) {
    // Exact at every step: c * (n - k + i) is divisible by i.
    c = c * (n - k + i) / i;
    if (c > std::numeric_limits<std::uint64_t>::max()) return 0;
  }
  return static_cast<std::uint64_t>(c);
}

// _pval_cvm_2samp_exact: the distribution of U over all binom(m + n, m) interleavings, as a
// frequency table of the partial sums of (a v - b u)^2 along each lattice path.
double cvm_exact_pvalue(double u_statistic, std::uint64_t m, std::uint64_t n) {
  const std::uint64_t combinations = binomial_or_zero(m + n, m);
  if (combinations == 0) {
    throw InvalidInput("cramer_von_mises: the exact method needs binom(n1 + n2, n1) < 2^64");
  }
  const auto lcm = static_cast<std::int64_t>(std::lcm(m, n));
  const auto a = lcm / static_cast<std::int64_t>(m);
  const auto b = lcm / static_cast<std::int64_t>(n);
  const auto mn = static_cast<std::int64_t>(m * n);
  // SciPy evaluates zeta in float64 (u arrives as a NumPy float): same operations, same order.
  const double zeta =
      floor_divide(static_cast<double>(lcm * lcm * static_cast<std::int64_t>(m + n)) *
                       (6.0 * u_statistic - static_cast<double>(mn * (4 * mn - 1))),
                   static_cast<double>(6 * mn * mn));

  using Table = std::vector<std::pair<std::int64_t, std::uint64_t>>;  // value ascending, count
  std::vector<Table> gs(m + 1);
  gs[0] = {{0, 1}};
  for (std::int64_t u = 0; u <= static_cast<std::int64_t>(n); ++u) {
    std::vector<Table> next(m + 1);
    Table tmp;
    for (std::size_t v = 0; v <= m; ++v) {
      Table merged;
      merged.reserve(tmp.size() + gs[v].size());
      std::size_t i = 0, j = 0;
      while (i < tmp.size() || j < gs[v].size()) {
        if (j == gs[v].size() || (i < tmp.size() && tmp[i].first < gs[v][j].first)) {
          merged.push_back(tmp[i++]);
        } else if (i == tmp.size() || gs[v][j].first < tmp[i].first) {
          merged.push_back(gs[v][j++]);
        } else {
          merged.emplace_back(tmp[i].first, tmp[i].second + gs[v][j].second);
          ++i;
          ++j;
        }
      }
      const std::int64_t step = a * static_cast<std::int64_t>(v) - b * u;
      for (auto& entry : merged) entry.first += step * step;
      tmp = std::move(merged);
      next[v] = tmp;
    }
    gs = std::move(next);
  }
  std::uint64_t tail = 0;
  for (const auto& [value, count] : gs[m]) {
    if (static_cast<double>(value) >= zeta) tail += count;
  }
  return static_cast<double>(tail) / static_cast<double>(combinations);
}

// _cdf_cvm_inf: Csörgő & Faraway's series (1996, eq. 1.2), summed until a term is below 1e-7.
double cdf_cvm_inf(double x) {
  const double pi_15 = std::pow(std::numbers::pi, 1.5);
  double total = 0.0;
  for (int k = 0;; ++k) {
    const double u = std::exp(std::lgamma(k + 0.5) - std::lgamma(k + 1.0)) / (pi_15 * std::sqrt(x));
    const double y = 4.0 * k + 1.0;
    const double q = y * y / (16.0 * x);
    const double z = u * std::sqrt(y) * std::exp(-q) * boost::math::cyl_bessel_k(0.25, q);
    total += z;
    if (!(std::abs(z) >= 1e-7)) return total;
  }
}

// _pval_cvm_2samp_asymptotic: Anderson (1962) eq. 11, 14 and 15.
double cvm_asymptotic_pvalue(double t, std::uint64_t nx, std::uint64_t ny) {
  const auto k = static_cast<__int128>(nx) * ny;
  const auto big_n = static_cast<__int128>(nx) + ny;
  const double et = (1.0 + 1.0 / static_cast<double>(big_n)) / 6.0;
  // Python divides these integers exactly; they can pass 2^53, hence the 128-bit products.
  const __int128 vt_num =
      (big_n + 1) * (4 * k * big_n -
                     3 * (static_cast<__int128>(nx) * nx + static_cast<__int128>(ny) * ny) - 2 * k);
  const __int128 vt_den = 45 * big_n * big_n * 4 * k;
  const double vt = static_cast<double>(vt_num) / static_cast<double>(vt_den);
  const double tn = 1.0 / 6.0 + (t - et) / std::sqrt(45.0 * vt);
  // Below 0.003 the limiting cdf is under 1.3e-18; SciPy returns 1 there without the series.
  if (!(tn >= 0.003)) return 1.0;
  return std::max(1.0 - cdf_cvm_inf(tn), 0.0);
}

}  // namespace

double wasserstein1(std::span<const float> sorted_reference,
                    std::span<const float> sorted_current) {
  check_sorted(sorted_reference, "wasserstein1: reference");
  check_sorted(sorted_current, "wasserstein1: current");
  const std::size_t n_u = sorted_reference.size(), n_v = sorted_current.size();
  if (n_u == 0 || n_v == 0) return nan;
  // Walk the pooled sorted sample; at each pooled value the ECDFs count every value <= it
  // (searchsorted 'right'), then the step to the next pooled value weights |U - V|.
  //
  // The walk goes one run of equal values at a time: after the first value of a run, the others
  // step by value - previous == +-0.0, a +-0.0 term. The sum starts at +0.0 and its terms are
  // never negative, so neither the sum nor the compensation is ever -0.0, and adding that term
  // (compensation += (sum - t) + term == +0.0) leaves both bit for bit as they were: the walk
  // skips it. Not for a run of infinities, where Inf - Inf puts a NaN into the sum.
  const float* u = sorted_reference.data();
  const float* v = sorted_current.data();
  const double du = static_cast<double>(n_u), dv = static_cast<double>(n_v);
  std::size_t iu = 0, iv = 0;  // next unmerged value of each sample == values < the next run
  double sum = 0.0, compensation = 0.0;
  double previous = 0.0;
  const auto add = [&](double term) {
    // Neumaier's compensated sum: the pooled sample can hold 10^6 terms. An infinite step
    // leaves the plain sum as SciPy's (Inf or NaN) and nothing to compensate.
    const double t = sum + term;
    if (std::isfinite(t)) {
      compensation += std::abs(sum) >= std::abs(term) ? (sum - t) + term : (term - t) + sum;
    }
    sum = t;
  };
  // |U - V| where U and V count the values <= the previous pooled value.
  const auto gap = [&](std::size_t cu, std::size_t cv) {
    return std::abs(static_cast<double>(cu) / du - static_cast<double>(cv) / dv);
  };
  // One whole run of equal values, any case (ties, infinities, an exhausted sample).
  const auto run = [&](bool first) {
    const float value = (iv == n_v || (iu < n_u && u[iu] <= v[iv])) ? u[iu] : v[iv];
    if (!first) add(gap(iu, iv) * (static_cast<double>(value) - previous));
    const std::size_t su = iu, sv = iv;
    while (iu < n_u && u[iu] == value) ++iu;
    while (iv < n_v && v[iv] == value) ++iv;
    if (!std::isfinite(value)) {
      const double step = static_cast<double>(value) - static_cast<double>(value);
      for (std::size_t k = 1; k < iu - su + iv - sv; ++k) add(gap(iu, iv) * step);
    }
    previous = value;
  };
  run(true);
  // The common case, a value held by one sample only and once: one term, one new ECDF value
  // (the quotient is cached per sample: the same division of the same count). Both samples keep
  // a value beyond the current one, so the next values are read without bound checks.
  if (iu + 1 < n_u && iv + 1 < n_v) {
    float a = u[iu], b = v[iv];
    double qu = static_cast<double>(iu) / du, qv = static_cast<double>(iv) / dv;
    while (iu + 1 < n_u && iv + 1 < n_v) {
      if (a < b && u[iu + 1] != a) {
        add(std::abs(qu - qv) * (static_cast<double>(a) - previous));
        previous = a;
        ++iu;
        qu = static_cast<double>(iu) / du;
        a = u[iu];
      } else if (b < a && v[iv + 1] != b) {
        add(std::abs(qu - qv) * (static_cast<double>(b) - previous));
        previous = b;
        ++iv;
        qv = static_cast<double>(iv) / dv;
        b = v[iv];
      } else {
        run(false);
        if (iu < n_u) {
          a = u[iu];
          qu = static_cast<double>(iu) / du;
        }
        if (iv < n_v) {
          b = v[iv];
          qv = static_cast<double>(iv) / dv;
        }
      }
    }
  }
  while (iu < n_u || iv < n_v) run(false);
  return std::isfinite(sum) ? sum + compensation : sum;
}

double wasserstein1_normed(std::span<const float> sorted_reference,
                           std::span<const float> sorted_current) {
  const double distance = wasserstein1(sorted_reference, sorted_current);
  if (sorted_reference.empty()) return distance;  // NaN; np.std would divide 0 by 0
  return distance / wasserstein1_normed_scale(sorted_reference);
}

double wasserstein1_normed_scale(std::span<const float> sorted_reference) {
  if (sorted_reference.empty()) return nan;
  return std::max(numpy_std(sorted_reference), 0.001);
}

double jensen_shannon(std::span<const std::uint64_t> reference_counts,
                      std::span<const std::uint64_t> current_counts, double base) {
  if (reference_counts.size() != current_counts.size()) {
    throw InvalidInput("jensen_shannon: the count vectors differ in length");
  }
  if (!std::isfinite(base) || !(base > 0.0) || base == 1.0) {
    throw InvalidInput("jensen_shannon: base must be finite, > 0 and != 1");
  }
  const std::uint64_t p_total =
      std::accumulate(reference_counts.begin(), reference_counts.end(), std::uint64_t{0});
  const std::uint64_t q_total =
      std::accumulate(current_counts.begin(), current_counts.end(), std::uint64_t{0});
  if (p_total == 0 || q_total == 0) return nan;
  const std::size_t k = reference_counts.size();
  std::vector<double> left(k), right(k);
  // scipy.special.rel_entr for y > 0 (m > 0 wherever x > 0): log1p near x == y, where the
  // terms of nearly equal histograms would otherwise lose their digits to log's rounding.
  const auto rel_entr = [](double x, double y) {
    if (x == 0.0) return 0.0;
    const double ratio = x / y;
    if (0.5 < ratio && ratio < 2.0) return x * std::log1p((x - y) / y);
    return x * std::log(ratio);
  };
  for (std::size_t i = 0; i < k; ++i) {
    const double p = static_cast<double>(reference_counts[i]) / static_cast<double>(p_total);
    const double q = static_cast<double>(current_counts[i]) / static_cast<double>(q_total);
    const double m = (p + q) / 2.0;
    left[i] = rel_entr(p, m);
    right[i] = rel_entr(q, m);
  }
  double js = pairwise_sum(left) + pairwise_sum(right);
  js /= std::log(base);
  return std::sqrt(std::max(js / 2.0, 0.0));
}

ChiSquaredResult chi_squared(std::span<const std::uint64_t> reference_counts,
                             std::span<const std::uint64_t> current_counts) {
  if (reference_counts.size() != current_counts.size()) {
    throw InvalidInput("chi_squared: the count vectors differ in length");
  }
  std::vector<double> row0, row1;
  for (std::size_t i = 0; i < reference_counts.size(); ++i) {
    if (reference_counts[i] == 0 && current_counts[i] == 0) continue;
    row0.push_back(static_cast<double>(reference_counts[i]));
    row1.push_back(static_cast<double>(current_counts[i]));
  }
  const std::size_t k = row0.size();
  // Sums of integer-valued doubles below 2^53 are exact in any order.
  const double r0 = std::accumulate(row0.begin(), row0.end(), 0.0);
  const double r1 = std::accumulate(row1.begin(), row1.end(), 0.0);
  if (r0 == 0.0 || r1 == 0.0) return {nan, nan, 0};
  const double total = r0 + r1;
  const std::uint64_t dof = k - 1;
  if (dof == 0) return {0.0, 1.0, 0};

  // Terms in the table's C order (reference row, then current row), as SciPy sums them.
  std::vector<double> terms(2 * k);
  for (std::size_t row = 0; row < 2; ++row) {
    const std::vector<double>& observed = row == 0 ? row0 : row1;
    const double row_sum = row == 0 ? r0 : r1;
    for (std::size_t j = 0; j < k; ++j) {
      const double expected = row_sum * (row0[j] + row1[j]) / total;
      double o = observed[j];
      if (dof == 1) {
        // Yates, no larger than the difference itself (SciPy gh-13875).
        const double diff = expected - o;
        const double direction = diff > 0 ? 1.0 : (diff < 0 ? -1.0 : 0.0);
        o = o + std::min(0.5, std::abs(diff)) * direction;
      }
      terms[row * k + j] = (o - expected) * (o - expected) / expected;
    }
  }
  const double statistic = pairwise_sum(terms);
  const double pvalue = boost::math::gamma_q(static_cast<double>(dof) / 2.0, statistic / 2.0);
  return {statistic, pvalue, dof};
}

CvmResult cramer_von_mises(std::span<const float> sorted_reference,
                           std::span<const float> sorted_current, CvmMethod method) {
  check_sorted(sorted_reference, "cramer_von_mises: reference");
  check_sorted(sorted_current, "cramer_von_mises: current");
  const std::uint64_t nx = sorted_reference.size(), ny = sorted_current.size();
  if (nx < 2 || ny < 2) return {nan, nan};
  if (method == CvmMethod::Auto) {
    method = std::max(nx, ny) > 20 ? CvmMethod::Asymptotic : CvmMethod::Exact;
  }

  // Average ranks of the pooled sample: a run of equal values occupying ranks L+1 .. L+E gets
  // (2L + E + 1) / 2, a multiple of 1/2, so every square below is exact in double.
  const float* x = sorted_reference.data();
  const float* y = sorted_current.data();
  double sum_x = 0.0, sum_y = 0.0;
  std::size_t ix = 0, iy = 0;
  // One whole run of equal values, any case.
  const auto run = [&] {
    const float value = (iy == ny || (ix < nx && x[ix] <= y[iy])) ? x[ix] : y[iy];
    std::size_t ex = ix, ey = iy;
    while (ex < nx && x[ex] == value) ++ex;
    while (ey < ny && y[ey] == value) ++ey;
    const auto below = static_cast<double>(ix + iy);
    const auto equal = static_cast<double>(ex - ix + ey - iy);
    const double rank = (2.0 * below + equal + 1.0) / 2.0;
    // Each sum in its own order; the two chains of additions interleave.
    const std::size_t both = std::min(ex - ix, ey - iy);
    for (std::size_t k = 0; k < both; ++k) {
      const double dx = rank - static_cast<double>(ix + k + 1);
      sum_x += dx * dx;
      const double dy = rank - static_cast<double>(iy + k + 1);
      sum_y += dy * dy;
    }
    for (std::size_t i = ix + both; i < ex; ++i) {
      const double d = rank - static_cast<double>(i + 1);
      sum_x += d * d;
    }
    for (std::size_t i = iy + both; i < ey; ++i) {
      const double d = rank - static_cast<double>(i + 1);
      sum_y += d * d;
    }
    ix = ex;
    iy = ey;
  };
  // The common case, a value held by one sample only and once: rank ix + iy + 1 for that one
  // value, the same operations as a run of E = 1. Both samples keep a value beyond the current
  // one, so the next values are read without bound checks.
  if (ix + 1 < nx && iy + 1 < ny) {
    float a = x[ix], b = y[iy];
    while (ix + 1 < nx && iy + 1 < ny) {
      if (a < b && x[ix + 1] != a) {
        const double rank = (2.0 * static_cast<double>(ix + iy) + 1.0 + 1.0) / 2.0;
        const double d = rank - static_cast<double>(ix + 1);
        sum_x += d * d;
        ++ix;
        a = x[ix];
      } else if (b < a && y[iy + 1] != b) {
        const double rank = (2.0 * static_cast<double>(ix + iy) + 1.0 + 1.0) / 2.0;
        const double d = rank - static_cast<double>(iy + 1);
        sum_y += d * d;
        ++iy;
        b = y[iy];
      } else {
        run();
        if (ix < nx) a = x[ix];
        if (iy < ny) b = y[iy];
      }
    }
  }
  while (ix < nx || iy < ny) run();
  const double u = static_cast<double>(nx) * sum_x + static_cast<double>(ny) * sum_y;
  const std::uint64_t k = nx * ny, big_n = nx + ny;
  const double t = u / static_cast<double>(k * big_n) -
                   static_cast<double>(4 * k - 1) / static_cast<double>(6 * big_n);
  const double p =
      method == CvmMethod::Exact ? cvm_exact_pvalue(u, nx, ny) : cvm_asymptotic_pvalue(t, nx, ny);
  return {t, p};
}

}  // namespace driftguard
