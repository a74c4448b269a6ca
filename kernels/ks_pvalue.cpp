// KS p-values as scipy.stats.ks_2samp computes them (SciPy 1.17). Every function below names the
// SciPy function it follows and keeps its order of floating-point operations, so that results
// agree to rounding (tests/golden/ks_scipy.json holds SciPy's own values):
//   ks_2samp, _attempt_exact_2kssamp, _compute_prob_outside_square, _count_paths_outside_method
//     (scipy/stats/_stats_py.py); _compute_outer_prob_inside_method (_stats_pythran.py);
//   scipy.special.binom (xsf binom.h with cephes beta.h / gamma.h);
//   kstwo.sf -> kolmogn and its methods (scipy/stats/_ksstats.py);
//   scipy.special.smirnov (xsf cephes/kolmogorov.h).
// SciPy evaluates smirnov in double-double; here long double carries the powers and sums, which
// keeps the relative error near 1e-13 for n up to 10^6 (beyond that both use the same closed-form
// approximation). Matrix products and convolutions sum in a different order than BLAS does.
#include <algorithm>
#include <bit>
#include <cmath>
#include <cstdint>
#include <limits>
#include <numeric>
#include <optional>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

#include "driftguard/errors.hpp"
#include "driftguard/ks.hpp"

namespace driftguard {
namespace {

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();
constexpr double kInf = std::numeric_limits<double>::infinity();
constexpr double kPi = 3.14159265358979323846;
constexpr double kLn2 = 0.69314718055994530942;
constexpr long double kLn2Wide = 0.693147180559945309417232121458L;
constexpr std::uint64_t kMaxAutoExact = 10000;  // ks_2samp's MAX_AUTO_N
constexpr int kScaleExponent = 128;             // _ksstats' _E128 rescaling step
const long double kScaleUp = std::ldexp(1.0L, kScaleExponent);
const long double kScaleDown = std::ldexp(1.0L, -kScaleExponent);

double clip01(double p) { return std::clamp(p, 0.0, 1.0); }  // NaN stays NaN, as np.clip

// Python's // on integers: rounds towards -infinity.
std::int64_t floor_div(std::int64_t a, std::int64_t b) {
  const std::int64_t q = a / b;
  return (a % b != 0 && (a < 0) != (b < 0)) ? q - 1 : q;
}

// NumPy's pairwise summation (np.sum of a contiguous float64 array), for the short arrays here.
double numpy_sum(const std::vector<double>& a) {
  const std::size_t n = a.size();
  if (n < 8) {
    double s = 0.0;
    for (double x : a) s += x;
    return s;
  }
  double r[8];
  std::copy(a.begin(), a.begin() + 8, r);
  std::size_t i = 8;
  for (; i < n - n % 8; i += 8) {
    for (int k = 0; k < 8; ++k) r[k] += a[i + k];
  }
  double s = ((r[0] + r[1]) + (r[2] + r[3])) + ((r[4] + r[5]) + (r[6] + r[7]));
  for (; i < n; ++i) s += a[i];
  return s;
}

// ---- scipy.special.binom for integers 0 <= k <= n (xsf) ----

constexpr double kMaxGamma = 171.624376956302725;     // cephes MAXGAM
constexpr double kMaxLog = 7.09782712893383996843e2;  // cephes MAXLOG

// cephes lgam for x >= 13 (all binom needs: its beta arguments are >= 21): Stirling's series with
// cephes' coefficients, the highest fitted (8.116e-4 rather than 1/1188).
double cephes_lgamma_large(double x) {
  constexpr double kLogSqrt2Pi = 0.91893853320467274178;
  double q = (x - 0.5) * std::log(x) - x + kLogSqrt2Pi;
  if (x > 1.0e8) return q;
  const double p = 1.0 / (x * x);
  if (x >= 1000.0) {
    return q + ((1.0 / 1260 * p - 1.0 / 360) * p + 1.0 / 12) / x;
  }
  double s = 8.11614167470508450300e-4;
  for (double c : {-1.0 / 1680, 1.0 / 1260, -1.0 / 360, 1.0 / 12}) s = s * p + c;
  return q + s / x;
}

// cephes beta(a, b) for a, b >= 21.
double cephes_beta(double a, double b) {
  if (std::abs(a) < std::abs(b)) std::swap(a, b);
  if (a > 1e6 * b && a > 1e6) {
    // log B(a, b) for a >> b, where lgamma(a + b) - lgamma(a) would cancel (lbeta_asymp).
    double r = cephes_lgamma_large(b) - b * std::log(a);
    r += b * (1 - b) / (2 * a);
    r += b * (1 - b) * (1 - 2 * b) / (12 * a * a);
    r += -b * b * (1 - b) * (1 - b) / (12 * a * a * a);
    return std::exp(r);
  }
  double y = a + b;
  if (std::abs(y) > kMaxGamma || std::abs(a) > kMaxGamma || std::abs(b) > kMaxGamma) {
    y = cephes_lgamma_large(y);
    y = cephes_lgamma_large(b) - y;
    y = cephes_lgamma_large(a) + y;
    return y > kMaxLog ? kInf : std::exp(y);
  }
  y = std::tgamma(y);
  a = std::tgamma(a);
  b = std::tgamma(b);
  if (std::abs(std::abs(a) - std::abs(y)) > std::abs(std::abs(b) - std::abs(y))) {
    y = b / y;
    return y * a;
  }
  y = a / y;
  return y * b;
}

double binom(double n, double k) {
  double kx = std::floor(k);
  if (kx > n / 2 && n > 0) kx = n - kx;  // binom(n, k) == binom(n, n - k)
  if (kx < 20) {
    double num = 1.0, den = 1.0;
    for (int i = 1; i < 1 + static_cast<int>(kx); ++i) {
      num *= i + n - kx;
      den *= i;
      if (std::abs(num) > 1e50) {
        num /= den;
        den = 1.0;
      }
    }
    return num / den;
  }
  return 1 / (n + 1) / cephes_beta(1 + n - k, 1 + k);
}

// ---- exact two-sample distribution (ks_2samp's exact method) ----

// _compute_prob_outside_square: P(D_{n,n} >= h/n), Hodges' alternating sum in Horner form.
double prob_outside_square(std::int64_t n, std::int64_t h) {
  double p = 0.0;
  for (auto k = static_cast<std::int64_t>(std::floor(static_cast<double>(n) / h)); k >= 0; --k) {
    double p1 = 1.0;
    for (std::int64_t j = 0; j < h; ++j) {
      p1 = static_cast<double>(n - k * h - j) * p1 / static_cast<double>(n + k * h + j + 1);
    }
    p = p1 * (1.0 - p);
  }
  return 2 * p;
}

// _compute_outer_prob_inside_method: 1 - P(|x/m - y/n| < h/lcm over the whole lattice path),
// by Viehmann's recursion on one sliding column of the lattice.
double prob_outside_band(std::int64_t m, std::int64_t n, std::int64_t g, std::int64_t h) {
  if (m < n) std::swap(m, n);
  const std::int64_t mg = m / g, ng = n / g;
  std::int64_t minj = 0;
  std::int64_t maxj =
      std::min(static_cast<std::int64_t>(std::ceil(static_cast<double>(h) / mg)), n + 1);
  std::int64_t curlen = maxj - minj;
  const std::int64_t len = std::min(2 * maxj + 2, n + 1);
  std::vector<double> a(static_cast<std::size_t>(len), 1.0);
  std::fill(a.begin(), a.begin() + std::min(maxj, len), 0.0);
  for (std::int64_t i = 1; i <= m; ++i) {
    const std::int64_t lastminj = minj, lastlen = curlen;
    minj = std::max(static_cast<std::int64_t>(std::floor(static_cast<double>(ng * i - h) / mg)) + 1,
                    std::int64_t{0});
    minj = std::min(minj, n);
    maxj =
        std::min(static_cast<std::int64_t>(std::ceil(static_cast<double>(ng * i + h) / mg)), n + 1);
    if (maxj <= minj) return 1.0;
    double val = minj == 0 ? 0.0 : 1.0;
    for (std::int64_t jj = 0; jj < maxj - minj; ++jj) {
      const std::int64_t j = jj + minj;
      val = (a[jj + minj - lastminj] * static_cast<double>(i) + val * static_cast<double>(j)) /
            static_cast<double>(i + j);
      a[jj] = val;
    }
    curlen = maxj - minj;
    if (lastlen > curlen) {
      std::fill(a.begin() + curlen, a.begin() + std::min(curlen + (lastlen - curlen), len), 1.0);
    }
  }
  return a[maxj - minj - 1];
}

// _count_paths_outside_method: lattice paths (0,0)->(m,n) that reach m*y <= n*x - h*g (Hodges).
// NaN once a value overflows: SciPy stops there (FloatingPointError) and the exact method fails,
// which also keeps the O(n^2) loop short for large samples.
double paths_outside(std::int64_t m, std::int64_t n, std::int64_t g, std::int64_t h) {
  if (m < n) std::swap(m, n);
  const std::int64_t mg = m / g, ng = n / g;
  const std::int64_t lxj = n + floor_div(mg - h, mg);
  std::vector<std::int64_t> xj(static_cast<std::size_t>(lxj));
  for (std::int64_t j = 0; j < lxj; ++j) xj[j] = (h + mg * j + ng - 1) / ng;
  std::vector<double> b(static_cast<std::size_t>(lxj), 0.0);
  b[0] = 1;
  for (std::int64_t j = 1; j < lxj; ++j) {
    double bj = binom(static_cast<double>(xj[j] + j), static_cast<double>(j));
    for (std::int64_t i = 0; i < j && std::isfinite(bj); ++i) {
      bj -= binom(static_cast<double>(xj[j] - xj[i] + j - i), static_cast<double>(j - i)) * b[i];
    }
    if (!std::isfinite(bj)) return kNaN;
    b[j] = bj;
  }
  double num_paths = 0;
  for (std::int64_t j = 0; j < lxj && std::isfinite(num_paths); ++j) {
    num_paths +=
        b[j] * binom(static_cast<double>((m - xj[j]) + (n - j)), static_cast<double>(n - j));
  }
  return num_paths;
}

struct ExactAttempt {
  bool success;
  double d;  // the statistic on the 1/lcm lattice
  double p;
};

// _attempt_exact_2kssamp. SciPy turns floating-point overflow into a failure; every overflow
// here ends in a non-finite value or a probability outside [0, 1], which is tested instead.
ExactAttempt attempt_exact(std::int64_t n1, std::int64_t n2, std::int64_t g, double d,
                           KsAlternative alternative) {
  const std::int64_t lcm = (n1 / g) * n2;
  const auto h = static_cast<std::int64_t>(std::nearbyint(d * static_cast<double>(lcm)));
  d = static_cast<double>(h) / static_cast<double>(lcm);
  if (h == 0) return {true, d, 1.0};
  double prob = kNaN;
  if (alternative == KsAlternative::TwoSided) {
    prob = n1 == n2 ? prob_outside_square(n1, h) : prob_outside_band(n1, n2, g, h);
  } else if (n1 == n2) {
    // binom(2n, n - h) / binom(2n, n) as a product: NumPy multiplies left to right.
    prob = 1.0;
    for (std::int64_t j = 0; j < h; ++j) {
      prob *= static_cast<double>(n1 - j) / (static_cast<double>(n1 + j) + 1.0);
    }
  } else {
    const double num_paths = paths_outside(n1, n2, g, h);
    const double all_paths = binom(static_cast<double>(n1 + n2), static_cast<double>(n1));
    if (!std::isfinite(num_paths) || !std::isfinite(all_paths) || num_paths > all_paths) {
      return {false, d, kNaN};
    }
    prob = num_paths / all_paths;
  }
  return {prob >= 0 && prob <= 1, d, prob};
}

// ---- kstwo.sf: the one-sample two-sided distribution (scipy/stats/_ksstats.py) ----

// Both the double and the long double path of a probability, as NumPy switches a float64 scalar
// to longdouble the first time it is rescaled by _EP128 / _EM128.
struct Probability {
  double narrow = 0;
  long double wide = 0;
  bool is_wide = false;
  long double value() const { return is_wide ? wide : narrow; }
  // 1 - p in the same precision, then rounded to double.
  double complement() const { return is_wide ? static_cast<double>(1.0L - wide) : 1.0 - narrow; }
};

// _log_nfactorial_div_n_pow_n: log(n! / n^n) by Stirling's series.
double log_nfactorial_div_n_pow_n(double n) {
  // B_{2j} / (2j (2j - 1)), j = 8 .. 1.
  constexpr double kStirling[] = {-3617.0 / 122400, 7.0 / 1092, -691.0 / 360360, 1.0 / 1188,
                                  -1.0 / 1680,      1.0 / 1260, -1.0 / 360,      1.0 / 12};
  const double rn = 1.0 / n;
  double poly = 0.0;
  for (double c : kStirling) poly = poly * (rn / n) + c;
  return std::log(n) / 2 - n + std::log(2 * kPi) / 2 + rn * poly;
}

// _kolmogn_DMTW: CDF by Durbin's matrix, as Marsaglia, Tsang & Wang compute it.
Probability kolmogn_dmtw_cdf(std::int64_t n, double d) {
  if (d >= 1.0) return {1.0};
  const double nd = static_cast<double>(n) * d;
  if (nd <= 0.5) return {0.0};
  const auto k = static_cast<std::int64_t>(std::ceil(nd));
  const double h = static_cast<double>(k) - nd;
  const std::int64_t m = 2 * k - 1;
  const auto mm = static_cast<std::size_t>(m);
  using Matrix = std::vector<double>;  // m x m, row-major
  Matrix hm(mm * mm, 0.0);
  std::vector<double> v(mm), w(mm);
  double fac = 1.0;
  for (std::int64_t j = 1; j <= m; ++j) {
    v[j - 1] = 1.0 - std::pow(h, static_cast<double>(j));
    w[j - 1] = fac;
    fac /= static_cast<double>(j);
    v[j - 1] *= fac;
  }
  const double tt = std::pow(std::max(2 * h - 1.0, 0.0), static_cast<double>(m)) -
                    2 * std::pow(h, static_cast<double>(m));
  v[mm - 1] = (1.0 + tt) * fac;
  for (std::size_t i = 1; i < mm; ++i) {
    for (std::size_t r = i - 1; r < mm; ++r) hm[r * mm + i] = w[r - (i - 1)];
  }
  for (std::size_t r = 0; r < mm; ++r) hm[r * mm] = v[r];
  for (std::size_t c = 0; c < mm; ++c) hm[(mm - 1) * mm + c] = v[mm - 1 - c];

  // Only row k-1 of the power is needed, so it is kept as a row vector.
  std::vector<double> row(mm, 0.0), next(mm);
  row[static_cast<std::size_t>(k - 1)] = 1.0;
  Matrix square(mm * mm);
  std::int64_t expnt = 0, h_expnt = 0;
  for (std::int64_t nn = n; nn > 0; nn /= 2) {
    if (nn % 2 != 0) {
      std::fill(next.begin(), next.end(), 0.0);
      for (std::size_t t = 0; t < mm; ++t) {
        for (std::size_t c = 0; c < mm; ++c) next[c] += row[t] * hm[t * mm + c];
      }
      row.swap(next);
      expnt += h_expnt;
    }
    if (nn / 2 == 0) break;  // the last squaring is never used
    std::fill(square.begin(), square.end(), 0.0);
    for (std::size_t r = 0; r < mm; ++r) {
      for (std::size_t t = 0; t < mm; ++t) {
        const double x = hm[r * mm + t];
        for (std::size_t c = 0; c < mm; ++c) square[r * mm + c] += x * hm[t * mm + c];
      }
    }
    hm.swap(square);
    h_expnt *= 2;
    const std::size_t kk = static_cast<std::size_t>(k - 1) * (mm + 1);
    if (std::abs(hm[kk]) > kScaleUp) {
      for (double& x : hm) x = static_cast<double>(x / kScaleUp);
      h_expnt += kScaleExponent;
    }
  }
  Probability p{row[static_cast<std::size_t>(k - 1)]};
  const auto nf = static_cast<double>(n);
  for (std::int64_t i = 1; i <= n; ++i) {
    if (p.is_wide) {
      p.wide = static_cast<long double>(i) * p.wide / static_cast<long double>(n);
      if (std::abs(p.wide) < kScaleDown) {
        p.wide *= kScaleUp;
        expnt -= kScaleExponent;
      }
    } else {
      p.narrow = static_cast<double>(i) * p.narrow / nf;
      if (std::abs(p.narrow) < kScaleDown) {
        p.wide = p.narrow * kScaleUp;
        p.is_wide = true;
        expnt -= kScaleExponent;
      }
    }
  }
  if (expnt != 0) {
    if (p.is_wide) {
      p.wide = std::ldexp(p.wide, static_cast<int>(expnt));
    } else {
      p.narrow = std::ldexp(p.narrow, static_cast<int>(expnt));
    }
  }
  p.narrow = std::clamp(p.narrow, 0.0, 1.0);
  p.wide = std::clamp(p.wide, 0.0L, 1.0L);
  return p;
}

// _pomeranz_compute_j1j2: the non-zero range of row i.
std::pair<std::int64_t, std::int64_t> pomeranz_j1j2(std::int64_t i, std::int64_t n, std::int64_t ll,
                                                    std::int64_t ceilf, std::int64_t roundf) {
  std::int64_t j1, j2;
  if (i == 0) {
    j1 = -ll - ceilf - 1;
    j2 = ll + ceilf - 1;
  } else {
    const std::int64_t half = (i + 1) / 2;
    if ((i + 1) % 2 == 0) {
      if (half == n + 1) {
        j1 = n - ll - ceilf - 1;
        j2 = n + ll + ceilf - 1;
      } else {
        j1 = half - 1 - ll - roundf - 1;
        j2 = half + ll - 1 + ceilf - 1;
      }
    } else {
      j1 = half - 1 - ll - 1;
      j2 = half + ll + roundf - 1;
    }
  }
  return {std::max<std::int64_t>(j1 + 2, 0), std::min(j2, n)};
}

// _kolmogn_Pomeranz: CDF by Pomeranz's recursion (rows are convolutions with Poisson-like
// weights; two rows kept, rescaled against underflow).
Probability kolmogn_pomeranz_cdf(std::int64_t n, double x) {
  const double t = static_cast<double>(n) * x;
  const auto ll = static_cast<std::int64_t>(std::floor(t));
  const double f = 1.0 * (t - static_cast<double>(ll));
  const double g = std::min(f, 1.0 - f);
  const std::int64_t ceilf = f > 0 ? 1 : 0;
  const std::int64_t roundf = f > 0.5 ? 1 : 0;
  const auto npwrs = static_cast<std::size_t>(2 * (ll + 1));
  std::vector<double> gpower(npwrs), twogpower(npwrs), onem2gpower(npwrs);
  gpower[0] = twogpower[0] = onem2gpower[0] = 1.0;
  const auto nf = static_cast<double>(n);
  const double g_over_n = g / nf, two_g_over_n = 2 * g / nf, one_minus = (1 - 2 * g) / nf;
  for (std::size_t m = 1; m < npwrs; ++m) {
    const auto md = static_cast<double>(m);
    gpower[m] = gpower[m - 1] * g_over_n / md;
    twogpower[m] = twogpower[m - 1] * two_g_over_n / md;
    onem2gpower[m] = onem2gpower[m - 1] * one_minus / md;
  }
  std::vector<double> v0(npwrs, 0.0), v1(npwrs, 0.0);
  v1[0] = 1;
  std::int64_t v0s = 0, v1s = 0, expnt = 0;
  auto [j1, j2] = pomeranz_j1j2(0, n, ll, ceilf, roundf);
  for (std::int64_t i = 1; i < 2 * n + 2; ++i) {
    const std::int64_t k1 = j1;
    v0.swap(v1);
    std::swap(v0s, v1s);
    std::fill(v1.begin(), v1.end(), 0.0);
    std::tie(j1, j2) = pomeranz_j1j2(i, n, ll, ceilf, roundf);
    const std::vector<double>& pwrs =
        (i == 1 || i == 2 * n + 1) ? gpower : (i % 2 != 0 ? twogpower : onem2gpower);
    const std::int64_t ln2 = j2 - k1 + 1;
    if (ln2 > 0) {
      // np.convolve(V0[k1 - V0s : k1 - V0s + ln2], pwrs[:ln2]), entries conv_start onwards.
      const std::int64_t a0 = k1 - v0s;
      const std::int64_t la = std::min<std::int64_t>(ln2, static_cast<std::int64_t>(npwrs) - a0);
      const std::int64_t lb = std::min<std::int64_t>(ln2, static_cast<std::int64_t>(npwrs));
      const std::int64_t conv_start = j1 - k1, conv_len = j2 - j1 + 1;
      double largest = 0;
      for (std::int64_t q = 0; q < conv_len; ++q) {
        const std::int64_t at = conv_start + q;
        double s = 0;
        for (std::int64_t ia = std::max<std::int64_t>(0, at - lb + 1); ia <= std::min(at, la - 1);
             ++ia) {
          s += v0[a0 + ia] * pwrs[at - ia];
        }
        v1[q] = s;
        largest = std::max(largest, s);
      }
      if (largest > 0 && largest < kScaleDown) {
        for (double& e : v1) e = static_cast<double>(e * kScaleUp);
        expnt -= kScaleExponent;
      }
      v1s = v0s + j1 - k1;
    }
  }
  Probability ans{v1[static_cast<std::size_t>(n - v1s)]};
  for (std::int64_t m = 1; m <= n; ++m) {
    if (ans.is_wide) {
      if (std::abs(ans.wide) > kScaleUp) {
        ans.wide *= kScaleDown;
        expnt += kScaleExponent;
      }
      ans.wide *= static_cast<long double>(m);
    } else {
      if (std::abs(ans.narrow) > kScaleUp) {
        ans.wide = ans.narrow * kScaleDown;
        ans.is_wide = true;
        expnt += kScaleExponent;
        ans.wide *= static_cast<long double>(m);
      } else {
        ans.narrow *= static_cast<double>(m);
      }
    }
  }
  if (expnt != 0) {
    if (ans.is_wide) {
      ans.wide = std::ldexp(ans.wide, static_cast<int>(expnt));
    } else {
      ans.narrow = std::ldexp(ans.narrow, static_cast<int>(expnt));
    }
  }
  ans.narrow = std::clamp(ans.narrow, 0.0, 1.0);
  ans.wide = std::clamp(ans.wide, 0.0L, 1.0L);
  return ans;
}

// _kolmogn_PelzGood: Pelz & Good's small-z form of the Li-Chien/Korolyuk expansion (CDF).
double kolmogn_pelz_good_cdf(std::int64_t n, double x) {
  if (x <= 0.0) return 0.0;
  if (x >= 1.0) return 1.0;
  const double pi2 = std::pow(kPi, 2), pi4 = std::pow(kPi, 4), pi6 = std::pow(kPi, 6);
  const double sqrt2pi = std::sqrt(2 * kPi);
  const auto nf = static_cast<double>(n);
  const double z = std::sqrt(nf) * x;
  const double z2 = std::pow(z, 2), z3 = std::pow(z, 3), z4 = std::pow(z, 4), z6 = std::pow(z, 6);
  const double qlog = -pi2 / 8 / z2;
  if (qlog < -708) return 0.0;
  double q = std::exp(qlog);

  const double k1a = -z2, k1b = pi2 / 4;
  const double k2a = 6 * z6 + 2 * z4, k2b = (2 * z4 - 5 * z2) * pi2 / 4,
               k2c = pi4 * (1 - 2 * z2) / 16;
  const double k3d = pi6 * (5 - 30 * z2) / 64, k3c = pi4 * (-60 * z2 + 212 * z4) / 16,
               k3b = pi2 * (135 * z4 - 96 * z6) / 4, k3a = -30 * z6 - 90 * std::pow(z, 8);
  double kk[4] = {0, 0, 0, 0};
  const auto maxk = static_cast<std::int64_t>(std::ceil(16 * z / kPi));
  for (std::int64_t k = maxk; k > 0; --k) {
    const auto m = static_cast<double>(2 * k - 1);
    const double m2 = m * m, m4 = m2 * m2, m6 = m4 * m2;  // exact: Python integers
    const double qpower = std::pow(q, static_cast<double>(8 * k));
    const double coeffs[4] = {1.0, k1a + k1b * m2, k2a + k2b * m2 + k2c * m4,
                              k3a + k3b * m2 + k3c * m4 + k3d * m6};
    for (int i = 0; i < 4; ++i) kk[i] = kk[i] * qpower + coeffs[i];
  }
  const double divisors[4] = {z, 6 * z4, 72 * std::pow(z, 7), 6480 * std::pow(z, 10)};
  for (int i = 0; i < 4; ++i) kk[i] = kk[i] * q * sqrt2pi / divisors[i];

  // The sums over all integers k of K_2's and K_3's extra terms.
  q = std::exp(-pi2 / 2 / z2);
  const double sqrt3z = std::sqrt(3.0) * z;
  std::vector<double> k2terms, k3terms;
  for (std::int64_t k = maxk; k > 0; --k) {
    const auto ks = static_cast<double>(k);
    const double ksquared = static_cast<double>(k * k);
    const double qpwer = std::pow(q, ksquared);
    const double kspi = kPi * ks;
    k2terms.push_back(ksquared * qpwer);
    k3terms.push_back((sqrt3z + kspi) * (sqrt3z - kspi) * ksquared * qpwer);
  }
  kk[2] += numpy_sum(k2terms) * (pi2 * sqrt2pi / (-36 * z3));
  kk[3] += numpy_sum(k3terms) * (pi2 * sqrt2pi / (216 * z6));
  double sum = 0;
  for (int i = 0; i < 4; ++i) sum += kk[i] / std::pow(nf, i / 2.0);
  return sum;
}

// ---- scipy.special.smirnov: the one-sided one-sample distribution ----

// Loader's (2000) error of Stirling's formula, log(k!) - log(sqrt(2 pi k) (k / e)^k), for
// integers k >= 1: a table evaluated in long double below 16, the asymptotic series in 1/k above
// (truncation error below 1e-17 there).
constexpr int kStirlingTable = 16;
const std::vector<double> kStirlingErrors = [] {
  std::vector<double> t(kStirlingTable, 0.0);
  long double log_factorial = 0;
  for (int i = 1; i < kStirlingTable; ++i) {
    const auto li = static_cast<long double>(i);
    log_factorial += std::log(li);
    t[i] = static_cast<double>(log_factorial - (li + 0.5L) * std::log(li) + li -
                               0.918938533204672741780329736405617639861L);  // log sqrt(2 pi)
  }
  return t;
}();

// The series with r = 1 / k.
double stirling_series(double r) {
  const double w = r * r;
  return r * (1.0 / 12 -
              w * (1.0 / 360 -
                   w * (1.0 / 1260 -
                        w * (1.0 / 1680 - w * (1.0 / 1188 - w * (691.0 / 360360 - w / 156))))));
}

double stirling_error(double k, double r) {
  return k < kStirlingTable ? kStirlingErrors[static_cast<std::size_t>(k)] : stirling_series(r);
}

// Loader's deviance bd0(x, np) = x log(x / np) + np - x >= 0, given diff = x - np exactly and
// sum = x + np: a series in u = diff / sum when |u| < 0.1, where the direct form would cancel.
double deviance(double x, double np, double diff, double sum) {
  if (std::abs(diff) < 0.1 * sum) {
    const double u = diff / sum, w = u * u;
    // sum_{j >= 1} w^j / (2j + 1) for w < 0.01: ten terms reach double precision.
    double series = 1.0 / 21;
    for (double odd : {19.0, 17.0, 15.0, 13.0, 11.0, 9.0, 7.0, 5.0, 3.0}) {
      series = series * w + 1.0 / odd;
    }
    return u * (diff + 2 * x * (series * w));
  }
  return x * std::log1p(diff / np) - diff;  // x log(x / np) - (x - np)
}

// The lower Birnbaum-Tingey sum over v = 1 .. last for large n, from every step-th term. Where
// smirnov is used (n x^2 >= 2.2) the terms form a bell: A_v is log-concave in v (each deviance is
// convex in v with curvature ~ (n x)^2 / v^3, far above that of the square-root factors) and
// analytic away from v = 0 and v = n, and its width grows like n / (4 sqrt(n x^2)). By Poisson's
// summation formula the sum over every integer then equals step times the sum over a grid of
// spacing step, up to the bell's Fourier transform at multiples of 1 / step: exp(-2 pi^2
// (width / step)^2) for a Gaussian, below 1e-30 at a step of half the width. The step is checked
// rather than trusted: it is halved until two steps agree to 2^-40 (the terms themselves carry
// ~1e-13). A grid walks out from the middle both ways until a term falls below 2^-80 of the
// largest; beyond it every term is smaller (unimodal), so the rest is below n 2^-80 of the sum.
// Nothing is returned -- the caller sums every term -- for short ranges, or when a grid runs into
// an end of the range (where the terms stop abruptly) or into the first values (tabled Stirling
// errors).
template <class Term>
std::optional<long double> sum_of_bell(const Term& term, std::int64_t last, std::int64_t n,
                                       double nx) {
  constexpr std::int64_t kMinTerms = std::int64_t{1} << 14;
  constexpr std::int64_t kLow = kStirlingTable;
  const std::int64_t high = std::min(last, n - kStirlingTable);
  if (high - kLow < kMinTerms) return std::nullopt;
  const long double negligible = std::ldexp(1.0L, -80);
  const std::int64_t middle =
      std::clamp(static_cast<std::int64_t>((static_cast<double>(n) - nx) / 2), kLow, high);
  auto grid_sum = [&](std::int64_t step) -> std::optional<long double> {
    long double total = 0, largest = 0;
    // Up first, so that the walk down compares against the bell's top wherever it lies.
    for (const std::int64_t direction : {step, -step}) {
      for (std::int64_t v = direction > 0 ? middle : middle - step;; v += direction) {
        if (v < kLow || v > high) return std::nullopt;
        const long double t = term(v);
        total += t;
        largest = std::max(largest, t);
        if (t < negligible * largest) break;
      }
    }
    return total * static_cast<long double>(step);
  };
  const double c = nx * nx / static_cast<double>(n);  // n x^2
  const double width = static_cast<double>(n) / (4 * std::sqrt(c));
  auto step = static_cast<std::int64_t>(
      std::bit_floor(static_cast<std::uint64_t>(std::max(2.0, width / 2))));
  std::optional<long double> coarse = grid_sum(step);
  constexpr long double kAgreement = 0x1p-40L;
  while (step >= 32) {  // a coarse grid may step past an end that a finer one stops before
    step /= 2;
    const std::optional<long double> fine = grid_sum(step);
    if (coarse && fine && std::abs(*fine - *coarse) <= kAgreement * *fine) return fine;
    coarse = fine;
  }
  return std::nullopt;
}

// smirnov(n, x) = P(D+_n >= x) by the Birnbaum-Tingey sum (cephes _smirnov, sf only).
double smirnov_sf(std::int64_t n, double x) {
  if (!(n > 0 && x >= 0.0 && x <= 1.0)) return kNaN;
  if (n == 1) return 1 - x;
  if (x == 0.0) return 1.0;
  if (x == 1.0) return 0.0;
  const auto nf = static_cast<double>(n);
  // floor(n x) and its fraction, exactly (modNX): n x = nx + err with fma.
  const double nx = nf * x;
  const double err = std::fma(nf, x, -nx);
  double fl = std::floor(nx);
  double alpha;
  if (nx == fl) {
    alpha = err < 0 ? 1 + err : err;
    if (err < 0) fl -= 1;
  } else {
    alpha = (nx - fl) + err;
  }
  if (alpha == 1) {
    fl += 1;
    alpha = 0;
  }
  const auto nxfl = static_cast<std::int64_t>(fl);
  std::int64_t n1mxfl = n - nxfl - (alpha == 0 ? 0 : 1);
  std::int64_t n1mxceil = n - nxfl;
  if (alpha == 0) {
    n1mxfl -= 1;
    n1mxceil += 1;
  }
  if (nxfl == 0 || (nxfl == 1 && alpha == 0)) {  // x <= 1/n
    const auto t = static_cast<double>(
        std::exp(static_cast<long double>(n - 1) * std::log1p(static_cast<long double>(x))));
    return std::clamp(1 - x * t, 0.0, 1.0);
  }
  constexpr double kMinLog = -7.08396418532264106224e2;  // cephes MINLOG
  if (static_cast<double>(-2 * n) * x * x < kMinLog) return 0.0;
  if (nxfl >= n - 1) {  // x >= 1 - 1/n
    return static_cast<double>(std::exp(nf * std::log1p(-static_cast<long double>(x))));
  }
  if (n > 1000000) {  // SMIRNOV_MAX_COMPUTE_N: p ~ e^(-(6nx+1)^2 / 18n)
    const double logp = -std::pow(6.0 * nf * x + 1, 2) / 18.0 / nf;
    return std::clamp(logp < -kLn2 ? std::exp(logp) : 1 - (-std::expm1(logp)), 0.0, 1.0);
  }
  const std::int64_t upper_terms = n - n1mxceil + 1;
  const bool upper =
      (upper_terms <= 1 && x < 0.5) || (n >= 10 && upper_terms <= 3 && x <= 0.5 / std::sqrt(nf));
  if (!upper) {
    // The lower sum, v = 0 .. n1mxfl, with A_v = binom(n, v) s^(v - 1) r^(n - v), s = x + v/n,
    // r = 1 - s. A_v is pmf(v; n, s) / s, and the binomial pmf is evaluated as Loader (2000) does
    // (Stirling errors and deviances), where every part is accurate relative to itself: no
    // logarithm of size n is formed and cancelled, so double carries what long double powers
    // carried before (relative error of a term ~1e-13 at n = 10^6), at a fraction of the cost:
    //   A_v = exp(delta(n) - delta(v) - delta(n - v) - bd0(v, n s) - bd0(n - v, n r))
    //         * sqrt(n / (2 pi v (n - v))) / s.
    // n s = nx + v and n r = n - v - nx, with nx = n x + err exactly. bd0(v, n s) + bd0(n - v,
    // n r) >= 2 n x^2 (Pinsker), so exp(2 n x^2 + ...) cannot overflow; the factor exp(-2 n x^2)
    // is applied in long double, so a term underflows exactly where it left the double range.
    const double shift = 2 * nf * x * x;
    const long double unshift = std::exp(-static_cast<long double>(shift));
    const double delta_n = stirling_error(nf, 1.0 / nf);
    const double root_scale = nf / (2 * kPi);
    const std::int64_t terms = n1mxfl + 1;
    auto term_at = [&](std::int64_t v) {
      const auto k = static_cast<double>(v), m = static_cast<double>(n - v);
      const double rk = 1.0 / k, rm = 1.0 / m;
      const double ns = k + nx;
      const double nr = (m - nx) - err;  // m - nx is exact (Sterbenz) where it is small
      const double exponent = shift + delta_n - stirling_error(k, rk) - stirling_error(m, rm) -
                              deviance(k, ns, -nx, k + ns) - deviance(m, nr, nx, m + nr);
      const double scaled = std::exp(exponent) * std::sqrt(root_scale * rk * rm) * (nf / ns);
      const long double term = unshift * static_cast<long double>(scaled);
      return std::isfinite(static_cast<double>(term)) ? term : 0.0L;
    };
    const long double xl = x;
    long double sum = std::exp(static_cast<long double>(n) * std::log1p(-xl)) / xl;  // v = 0
    if (const auto bell = sum_of_bell(term_at, terms - 1, n, nx)) {
      return std::clamp(static_cast<double>(xl * (sum + *bell)), 0.0, 1.0);
    }
    for (std::int64_t v = 1; v < terms; ++v) {
      const long double term = term_at(v);
      const auto term_d = static_cast<double>(term);
      sum += term;
      if (term_d != 0.0) {
        if (4.0 * static_cast<double>(terms - v) * std::abs(term_d) <
                std::numeric_limits<double>::epsilon() * static_cast<double>(sum) &&
            v != terms - 1) {
          break;
        }
      } else if (v > n / 2) {
        break;
      }
    }
    return std::clamp(static_cast<double>(xl * sum), 0.0, 1.0);
  }
  // A_v = binom(n, v) (1 - x - v/n)^(n - v) (x + v/n)^(v - 1), summed over v from 0 up (sf) or
  // from n down (cdf); the terms are built as powers of two, binom(n, j) as mantissa * 2^exponent.
  const std::int64_t start = upper ? n : 0, step = upper ? -1 : 1;
  const std::int64_t terms = upper ? n - n1mxceil + 1 : n1mxfl + 1;
  const long double xl = x;
  long double sum = upper ? std::exp(static_cast<long double>(n - 1) * std::log1p(xl))
                          : std::exp(static_cast<long double>(n) * std::log1p(-xl)) / xl;
  long double c_mantissa = 1.0L;
  int c_exponent = 0;
  auto next_binomial = [&](std::int64_t j) {  // binom(n, j) -> binom(n, j + 1)
    int e = 0;
    c_mantissa = std::frexp(
        c_mantissa * static_cast<long double>(n - j) / static_cast<long double>(j + 1), &e);
    c_exponent += e;
  };
  next_binomial(0);
  double last_log2_term = -kInf;
  for (std::int64_t j = 1; j < terms; ++j) {
    const std::int64_t v = start + j * step;
    const long double s = xl + static_cast<long double>(v) / static_cast<long double>(n);
    // 1 - x - v/n is negative in the upper sum (alternating terms): its power carries the sign.
    const long double rest = static_cast<long double>(n - v) / static_cast<long double>(n) - xl;
    // After a term far below the double range (most of a long sum), log2 of the next is first
    // estimated in double: when it is far below the range too, the term is 0 for SciPy as well
    // and the costly long double evaluation is skipped. Either way the term is the same.
    bool representable = true;
    if (last_log2_term < -1050) {
      const auto sd = static_cast<double>(s), rest_d = static_cast<double>(rest);
      representable = std::log2(static_cast<double>(c_mantissa)) + c_exponent +
                          static_cast<double>(v - 1) * std::log2(sd) +
                          static_cast<double>(n - v) * std::log2(std::abs(rest_d)) >
                      -1100;
    }
    long double term = 0;
    last_log2_term = -kInf;
    if (representable) {
      const long double log2_rest = rest > 0 ? std::log1p(-s) / kLn2Wide : std::log2(-rest);
      const long double sign = rest < 0 && (n - v) % 2 != 0 ? -1.0L : 1.0L;
      const long double log2_term = std::log2(c_mantissa) + c_exponent +
                                    static_cast<long double>(v - 1) * std::log2(s) +
                                    static_cast<long double>(n - v) * log2_rest;
      last_log2_term = static_cast<double>(log2_term);
      term = sign * std::exp2(log2_term);
    }
    const auto term_d = static_cast<double>(term);
    if (std::isfinite(term_d) && term_d != 0.0) sum += term;
    if (term_d != 0.0) {
      if (4.0 * static_cast<double>(terms - j) * std::abs(term_d) <
              std::numeric_limits<double>::epsilon() * static_cast<double>(sum) &&
          j != terms - 1) {
        break;
      }
    } else if (j > n / 2) {
      break;
    }
    next_binomial(j);
  }
  const auto prob = static_cast<double>(xl * sum);
  return std::clamp(upper ? 1 - prob : prob, 0.0, 1.0);
}

// _kolmogn(n, x, cdf=False): Simard & L'Ecuyer's choice of method.
double kolmogn_sf(std::int64_t n, double x) {
  if (x >= 1.0) return 0.0;
  if (x <= 0.0) return 1.0;
  const auto nf = static_cast<double>(n);
  const double t = nf * x;
  if (t <= 1.0) {  // Ruben-Gambino
    if (t <= 0.5) return 1.0;
    double prob;
    if (n <= 140) {
      prob = 1.0;
      for (std::int64_t i = 1; i <= n; ++i)
        prob *= static_cast<double>(i) * (1.0 / nf) * (2 * t - 1);
    } else {
      prob = std::exp(log_nfactorial_div_n_pow_n(nf) + nf * std::log(2 * t - 1));
    }
    return clip01(1.0 - prob);
  }
  if (t >= nf - 1) return clip01(2 * std::pow(1.0 - x, nf));  // Ruben-Gambino
  if (x >= 0.5) return clip01(2 * smirnov_sf(n, x));
  const double nxsquared = t * x;
  if (n <= 140) {
    if (nxsquared <= 0.754693) return clip01(kolmogn_dmtw_cdf(n, x).complement());
    if (nxsquared <= 4) return clip01(kolmogn_pomeranz_cdf(n, x).complement());
    return clip01(2 * smirnov_sf(n, x));
  }
  if (nxsquared >= 370.0) return 0.0;
  if (nxsquared >= 2.2) return clip01(2 * smirnov_sf(n, x));
  if (n <= 100000 && nf * std::pow(x, 1.5) <= 1.4) {
    return clip01(kolmogn_dmtw_cdf(n, x).complement());
  }
  return clip01(1.0 - kolmogn_pelz_good_cdf(n, x));
}

// scipy.stats.kstwo.sf(x, n): rv_continuous.sf's support rules around kolmogn.
double kstwo_sf(double x, double n) {
  if (!(n >= 1 && n == std::nearbyint(n))) return kNaN;  // _argcheck fails: badvalue
  if (x <= 0.5 / n) return 1.0;
  if (x >= 1.0) return 0.0;
  return kolmogn_sf(static_cast<std::int64_t>(n), x);
}

}  // namespace

double ks_pvalue(double d, std::uint64_t n1, std::uint64_t n2, const KsOptions& options,
                 KsMethod* used, double* statistic) {
  // Sizes up to 2^32 keep the lattice arithmetic (lcm < 2^63) in 64-bit integers.
  constexpr std::uint64_t kMaxSize = std::uint64_t{1} << 32;
  if (n1 == 0 || n2 == 0 || n1 > kMaxSize || n2 > kMaxSize) {
    throw InvalidInput("ks_pvalue: sample sizes must be in [1, 2^32], got " + std::to_string(n1) +
                       " and " + std::to_string(n2));
  }
  if (!(d >= 0.0 && d <= 1.0)) {
    throw InvalidInput("ks_pvalue: statistic must be in [0, 1], got " + std::to_string(d));
  }
  const auto s1 = static_cast<std::int64_t>(n1), s2 = static_cast<std::int64_t>(n2);
  const std::int64_t g = std::gcd(s1, s2);
  KsMethod mode = options.method;
  if (mode == KsMethod::Auto) {
    mode = std::max(n1, n2) <= kMaxAutoExact ? KsMethod::Exact : KsMethod::Asymp;
  } else if (mode == KsMethod::Exact &&
             static_cast<double>(s1 / g) >= 2147483647.0 / static_cast<double>(s2 / g)) {
    mode = KsMethod::Asymp;  // lcm(n1, n2) too large for SciPy's exact method
  }
  double p = -kInf;
  if (mode == KsMethod::Exact) {
    const ExactAttempt exact = attempt_exact(s1, s2, g, d, options.alternative);
    d = exact.d;
    if (exact.success) {
      p = exact.p;
    } else {
      mode = KsMethod::Asymp;
    }
  }
  if (mode == KsMethod::Asymp) {
    const double m = static_cast<double>(std::max(n1, n2)),
                 n = static_cast<double>(std::min(n1, n2));
    const double en = m * n / (m + n);
    if (options.alternative == KsAlternative::TwoSided) {
      p = kstwo_sf(d, std::nearbyint(en));
    } else {
      const double z = std::sqrt(en) * d;
      // Hodges' eqn 5.3, m the larger size.
      const double expt =
          -2 * std::pow(z, 2) - 2 * z * (m + 2 * n) / std::sqrt(m * n * (m + n)) / 3.0;
      p = std::exp(expt);
    }
  }
  if (used != nullptr) *used = mode;
  if (statistic != nullptr) *statistic = d;
  return clip01(p);
}

}  // namespace driftguard
