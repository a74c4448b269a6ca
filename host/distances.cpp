#include "driftguard/distances.hpp"

#include <algorithm>
#include <array>
#include <bit>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <numbers>
#include <numeric>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include <boost/math/special_functions/bessel.hpp>
#include <boost/math/special_functions/gamma.hpp>

#include "driftguard/errors.hpp"
#include "host/count_total.hpp"

namespace driftguard {
namespace {

constexpr double nan = std::numeric_limits<double>::quiet_NaN();
constexpr float kMaxFloat = std::numeric_limits<float>::max();

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
  // Every partial sum of (a v - b u)^2 along a path is at most lcm^2 (m + n), as is zeta's
  // factor: beyond int64 they would wrap.
  const std::uint64_t lcm_mn = std::lcm(m, n);
  if (static_cast<unsigned __int128>(lcm_mn) * lcm_mn * (m + n) >
      static_cast<unsigned __int128>(std::numeric_limits<std::int64_t>::max())) {
    throw InvalidInput(
        "cramer_von_mises: the exact method needs lcm(n1, n2)^2 (n1 + n2) < 2^63; use the "
        "asymptotic method");
  }
  const auto lcm = static_cast<std::int64_t>(lcm_mn);
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

// ---- merge walks over two sorted samples, side by side ----
// The pooled sorted samples are cut into kWalks ranges at values of the current sample; a range
// starts at the first value >= its cut in both samples, so a run of equal values is never cut.
// Each range is merged by its own walk and the walks step in turn, so that one walk's
// load-compare latency overlaps the others'. A step compares integer keys by arithmetic (GCC
// turns float comparisons and selects into branches, which mispredict about once per value when
// the samples interleave) and takes the smaller head, the reference's on ties. Reading one value
// past a range is safe: it belongs to the next range and is above every value left in this one;
// past the end of a sample the key is kPastEnd.
constexpr int kWalks = 4;
constexpr std::int64_t kPastEnd = std::int64_t{1} << 40;

// Order-preserving key of a non-NaN float, with -0.0 and +0.0 equal (one run of ties).
inline std::int64_t order_key(float value) {
  const auto bits = std::bit_cast<std::int32_t>(value);
  const std::int32_t sign = bits >> 31;  // 0 or -1
  return (bits ^ (sign & 0x7fffffff)) - sign;
}

struct Head {
  float value;
  std::int64_t key;
};
inline Head head(const float* values, std::size_t k, std::size_t n) {
  const float value = values[std::min(k, n - 1)];
  return {value, k < n ? order_key(value) : kPastEnd};
}

// 1 when a <= b, by arithmetic.
inline std::uint64_t at_most(std::int64_t a, std::int64_t b) {
  return static_cast<std::uint64_t>(b - a) >> 63 ^ 1;
}

// Whether equal neighbours are common (a discrete feature), probed at 64 places: walking by runs
// of equal values then takes fewer steps, and walks side by side would be cut unevenly.
bool runs_dominate(const float* values, std::size_t n) {
  if (n < 2) return false;
  const std::size_t probes = std::min<std::size_t>(64, n - 1);
  std::size_t equal = 0;
  for (std::size_t p = 0; p < probes; ++p) {
    const std::size_t k = (n - 1) * p / probes;
    equal += values[k] == values[k + 1] ? 1 : 0;
  }
  return 8 * equal >= probes;
}

struct Walk {
  std::size_t i = 0, j = 0;          // next reference and current value (pooled positions i + j)
  std::size_t i_end = 0, j_end = 0;  // the range's end in each sample
  std::size_t left() const { return (i_end - i) + (j_end - j); }
};

template <class State>
std::array<State, kWalks> cut_walks(const float* u, std::size_t n_u, const float* v,
                                    std::size_t n_v) {
  std::array<std::size_t, kWalks + 1> cut_i{}, cut_j{};
  for (int w = 1; w < kWalks; ++w) {
    const float cut = v[n_v * static_cast<std::size_t>(w) / kWalks];
    cut_i[w] = static_cast<std::size_t>(std::lower_bound(u, u + n_u, cut) - u);
    cut_j[w] = static_cast<std::size_t>(std::lower_bound(v, v + n_v, cut) - v);
  }
  cut_i[kWalks] = n_u;
  cut_j[kWalks] = n_v;
  std::array<State, kWalks> walks{};
  for (int w = 0; w < kWalks; ++w) {
    walks[w].i = cut_i[w];
    walks[w].j = cut_j[w];
    walks[w].i_end = cut_i[w + 1];
    walks[w].j_end = cut_j[w + 1];
  }
  return walks;
}

// Steps the walks in turn while each has values left, then each to its end; `settle` runs on
// every walk after at most `batch` rounds and at the end. A step takes at least one value; one
// that can take several must return at once from a walk with none left.
template <class State, class Step, class Settle>
void walk_side_by_side(std::array<State, kWalks>& walks, std::size_t batch, Step step,
                       Settle settle) {
  for (;;) {
    std::size_t rounds = batch;
    for (const State& w : walks) rounds = std::min(rounds, w.left());
    if (rounds == 0) break;
    for (std::size_t t = 0; t < rounds; ++t) {
#pragma GCC unroll 4
      for (State& w : walks) step(w);
    }
    for (State& w : walks) settle(w);
  }
  for (State& w : walks) {
    while (w.left() > 0) {
      for (std::size_t t = 0; t < batch && w.left() > 0; ++t) step(w);
      settle(w);
    }
  }
}

// wasserstein1 of two finite samples whose sizes multiply to less than 2^62, by walks side by
// side. n_u n_v |U - V| = |i n_v - j n_u| is an exact integer, so each walk sums
// |i n_v - j n_u| (value - previous) with Neumaier's compensation, from the counts before its
// range; runs of equal values need no care (within a run the step is +0.0, which adds nothing,
// so a walk may also step over a whole run at once). The walks' sums are added in order,
// compensated too, and divided by n_u n_v once: SciPy's sum of rounded |U - V| (value - previous)
// to within a few ulps.
struct W1Sum {
  std::int64_t k = 0;  // i n_v - j n_u
  double previous = 0.0;
  double sum = 0.0, compensation = 0.0;

  // At the walk's first pooled position (i, j): the counts before it and the value before it.
  void start(std::size_t i, std::size_t j, const float* u, std::size_t n_u, const float* v,
             std::size_t n_v) {
    k = static_cast<std::int64_t>(i) * static_cast<std::int64_t>(n_v) -
        static_cast<std::int64_t>(j) * static_cast<std::int64_t>(n_u);
    previous = i + j == 0 ? std::min(u[0], v[0])
                          : std::max(i > 0 ? u[i - 1] : -kMaxFloat, j > 0 ? v[j - 1] : -kMaxFloat);
  }
  // The step from the previous pooled value to `value`, before its counts are taken.
  void step_to(double value) {
    const double term = static_cast<double>(k < 0 ? -k : k) * (value - previous);
    // Knuth's TwoSum: the rounding error of sum + term exactly, as Neumaier's test finds it, with
    // no branch.
    const double t = sum + term;
    const double z = t - sum;
    compensation += (sum - (t - z)) + (term - z);
    sum = t;
    previous = value;
  }
};

// Neumaier's compensated addition of a term to (sum, compensation). An infinite sum leaves the
// plain sum as SciPy's (Inf or NaN) and nothing to compensate.
inline void add_compensated(double& sum, double& compensation, double term) {
  const double t = sum + term;
  if (std::isfinite(t)) {
    compensation += std::abs(sum) >= std::abs(term) ? (sum - t) + term : (term - t) + sum;
  }
  sum = t;
}

// The walks' sums, in order, as wasserstein1.
template <class State>
double wasserstein1_of_walks(const std::array<State, kWalks>& walks, std::size_t n_u,
                             std::size_t n_v) {
  double sum = 0.0, compensation = 0.0;
  for (const State& w : walks) {
    add_compensated(sum, compensation, w.sum);
    compensation += w.compensation;
  }
  return (sum + compensation) / (static_cast<double>(n_u) * static_cast<double>(n_v));
}

// Whether wasserstein1 walks side by side (else by runs, in one walk).
bool wasserstein1_walks(const float* u, std::size_t n_u, const float* v, std::size_t n_v) {
  return std::isfinite(u[0]) && std::isfinite(u[n_u - 1]) && std::isfinite(v[0]) &&
         std::isfinite(v[n_v - 1]) &&
         static_cast<double>(n_u) * static_cast<double>(n_v) < 0x1p62 && !runs_dominate(u, n_u) &&
         !runs_dominate(v, n_v);
}

struct W1Walk : Walk, W1Sum {};

double wasserstein1_of_finite(const float* u, std::size_t n_u, const float* v, std::size_t n_v) {
  const auto nu = static_cast<std::int64_t>(n_u), nv = static_cast<std::int64_t>(n_v);
  auto walks = cut_walks<W1Walk>(u, n_u, v, n_v);
  for (W1Walk& w : walks) w.start(w.i, w.j, u, n_u, v, n_v);
  const auto step = [&](W1Walk& w) {
    const Head a = head(u, w.i, n_u), b = head(v, w.j, n_v);
    const std::uint64_t take_u = at_most(a.key, b.key);
    const auto bits_a = std::bit_cast<std::uint32_t>(a.value),
               bits_b = std::bit_cast<std::uint32_t>(b.value);
    w.step_to(std::bit_cast<float>(
        bits_b ^ ((bits_a ^ bits_b) & (0u - static_cast<std::uint32_t>(take_u)))));
    w.k += static_cast<std::int64_t>(take_u) * (nu + nv) - nu;
    w.i += take_u;
    w.j += take_u ^ 1;
  };
  walk_side_by_side(walks, std::numeric_limits<std::size_t>::max(), step, [](W1Walk&) {});
  return wasserstein1_of_walks(walks, n_u, n_v);
}

// The rank sums of cramer_von_mises by walks side by side, in integers: a run of E equal values
// after L smaller ones has average rank (2L + E + 1) / 2, so twice every deviation from it is an
// integer, and the sums of their squares (four times SciPy's sums) are exact in 128 bits. A value
// held once is added into 64-bit sums, settled into the 128-bit ones before they could overflow;
// runs of equal values are rare in continuous data and take a branch.
struct CvmSums {
  std::uint64_t x4_part = 0, y4_part = 0;
  unsigned __int128 x4 = 0, y4 = 0;
};

// sum_{t < m} (a - 2t)^2 = m a^2 - 2 a m (m - 1) + 2 (m - 1) m (2m - 1) / 3, exactly: the squared
// deviations (doubled) of m values of one sample in a run, at consecutive positions. The
// division is in 64 bits where the product fits (a 128-bit one is a library call).
unsigned __int128 run_squares(std::int64_t a, std::uint64_t m) {
  if (m == 0) return 0;
  const unsigned __int128 cubic = m < (std::uint64_t{1} << 20)
                                      ? (m - 1) * m * (2 * m - 1) / 3
                                      : static_cast<unsigned __int128>(m - 1) * m * (2 * m - 1) / 3;
  const auto ai = static_cast<__int128>(a), mi = static_cast<__int128>(m);
  return static_cast<unsigned __int128>(mi * ai * ai - 2 * ai * mi * (mi - 1) +
                                        2 * static_cast<__int128>(cubic));
}

struct CvmWalk : Walk, CvmSums {};
// A walk that sums wasserstein1 too (as wasserstein1_of_finite does, step for step).
struct CvmW1Walk : Walk, CvmSums, W1Sum {};
template <class State>
constexpr bool kSumsW1 = std::is_base_of_v<W1Sum, State>;

// Takes the run of values equal to the next pooled value, from both samples.
template <class State>
void cvm_run(State& w, const float* x, std::size_t nx, const float* y, std::size_t ny) {
  const Head a = head(x, w.i, nx), b = head(y, w.j, ny);
  const float value = a.key <= b.key ? a.value : b.value;
  if constexpr (kSumsW1<State>) w.step_to(value);
  std::size_t ex = w.i, ey = w.j;
  while (ex < nx && x[ex] == value) ++ex;
  while (ey < ny && y[ey] == value) ++ey;
  const auto twice_rank = static_cast<std::int64_t>(2 * (w.i + w.j) + (ex - w.i) + (ey - w.j) + 1);
  // The first value at position p (0-based) deviates by twice_rank - 2 (p + 1), the next by 2 less.
  w.x4 += run_squares(twice_rank - static_cast<std::int64_t>(2 * (w.i + 1)), ex - w.i);
  w.y4 += run_squares(twice_rank - static_cast<std::int64_t>(2 * (w.j + 1)), ey - w.j);
  if constexpr (kSumsW1<State>) {
    w.k += static_cast<std::int64_t>(ex - w.i) * static_cast<std::int64_t>(ny) -
           static_cast<std::int64_t>(ey - w.j) * static_cast<std::int64_t>(nx);
  }
  w.i = ex;
  w.j = ey;
}

// Walks cramer_von_mises's rank sums (and wasserstein1's sums, for a CvmW1Walk) over x and y.
template <class State>
std::array<State, kWalks> cvm_walks(const float* x, std::size_t nx, const float* y,
                                    std::size_t ny) {
  const auto nu = static_cast<std::int64_t>(nx), nv = static_cast<std::int64_t>(ny);
  auto walks = cut_walks<State>(x, nx, y, ny);
  if constexpr (kSumsW1<State>) {
    for (State& w : walks) w.start(w.i, w.j, x, nx, y, ny);
  }
  // Every value by runs where runs are common, or where (2d)^2 could reach 2^64.
  if (nx + ny >= std::size_t{1} << 31 || runs_dominate(x, nx) || runs_dominate(y, ny)) {
    for (State& w : walks) {
      while (w.left() > 0) cvm_run(w, x, nx, y, ny);
    }
  }
  // Rounds between settlements: each adds at most one square below 4 (nx + ny)^2 to a 64-bit sum.
  // At most 2^16, so that every sample of more than 2^16 values settles more than once (and the
  // tests see it).
  const auto pooled = static_cast<unsigned __int128>(nx + ny);
  const auto batch = static_cast<std::size_t>(std::clamp<unsigned __int128>(
      (~std::uint64_t{0}) / (4 * pooled * pooled), 1, std::size_t{1} << 16));
  const auto step = [&](State& w) {
    if (w.left() == 0) return;
    const Head a = head(x, w.i, nx), b = head(y, w.j, ny);
    const std::uint64_t take_x = at_most(a.key, b.key);
    const std::int64_t mask = -static_cast<std::int64_t>(take_x);
    const std::int64_t key = b.key ^ ((a.key ^ b.key) & mask);
    const std::int64_t next_key_x = head(x, w.i + 1, nx).key, next_key_y = head(y, w.j + 1, ny).key;
    const std::int64_t next_key = next_key_y ^ ((next_key_x ^ next_key_y) & mask);
    if ((a.key == b.key) | (next_key == key)) [[unlikely]] {
      cvm_run(w, x, nx, y, ny);
      return;
    }
    // A value held once: rank i + j + 1, so twice its deviation is 2j (reference) or 2i.
    const std::uint64_t d = w.i ^ ((w.i ^ w.j) & static_cast<std::uint64_t>(mask));
    const std::uint64_t square = (2 * d) * (2 * d);
    w.x4_part += square & static_cast<std::uint64_t>(mask);
    w.y4_part += square & ~static_cast<std::uint64_t>(mask);
    if constexpr (kSumsW1<State>) {
      const auto bits_a = std::bit_cast<std::uint32_t>(a.value),
                 bits_b = std::bit_cast<std::uint32_t>(b.value);
      w.step_to(std::bit_cast<float>(
          bits_b ^ ((bits_a ^ bits_b) & (0u - static_cast<std::uint32_t>(take_x)))));
      w.k += static_cast<std::int64_t>(take_x) * (nu + nv) - nu;
    }
    w.i += take_x;
    w.j += take_x ^ 1;
  };
  walk_side_by_side(walks, batch, step, [](State& w) {
    w.x4 += w.x4_part;
    w.y4 += w.y4_part;
    w.x4_part = w.y4_part = 0;
  });
  return walks;
}

// Sums of squared deviations of the ranks from their positions, for the reference and the
// current sample, from the walks.
template <class State>
std::pair<double, double> cvm_rank_sums(const std::array<State, kWalks>& walks) {
  unsigned __int128 x4 = 0, y4 = 0;
  for (const State& w : walks) {
    x4 += w.x4;
    y4 += w.y4;
  }
  // One rounding each; dividing by 4 is exact.
  return {static_cast<double>(x4) / 4, static_cast<double>(y4) / 4};
}

// cramer_von_mises from its rank sums (nx, ny >= 2).
CvmResult cvm_result(double sum_x, double sum_y, std::uint64_t nx, std::uint64_t ny,
                     CvmMethod method) {
  if (method == CvmMethod::Auto) {
    method = std::max(nx, ny) > 20 ? CvmMethod::Asymptotic : CvmMethod::Exact;
  }
  const double u = static_cast<double>(nx) * sum_x + static_cast<double>(ny) * sum_y;
  const std::uint64_t k = nx * ny, big_n = nx + ny;
  const double t = u / static_cast<double>(k * big_n) -
                   static_cast<double>(4 * k - 1) / static_cast<double>(6 * big_n);
  const double p =
      method == CvmMethod::Exact ? cvm_exact_pvalue(u, nx, ny) : cvm_asymptotic_pvalue(t, nx, ny);
  return {t, p};
}

}  // namespace

double wasserstein1(std::span<const float> sorted_reference,
                    std::span<const float> sorted_current) {
  check_sorted(sorted_reference, "wasserstein1: reference");
  check_sorted(sorted_current, "wasserstein1: current");
  const std::size_t n_u = sorted_reference.size(), n_v = sorted_current.size();
  if (n_u == 0 || n_v == 0) return nan;
  if (wasserstein1_walks(sorted_reference.data(), n_u, sorted_current.data(), n_v)) {
    return wasserstein1_of_finite(sorted_reference.data(), n_u, sorted_current.data(), n_v);
  }
  // With infinities, many ties (or beyond 2^62), one walk over the pooled sorted sample by runs of
  // equal values: at each pooled value the ECDFs count every value <= it (searchsorted 'right'),
  // then the step to the next pooled value weights n_u n_v |U - V|, the same exact integer as the
  // walks side by side use. Within a finite run the step is +-0.0, which adds nothing; a run of
  // infinities adds its Inf - Inf (NaN) terms as SciPy does.
  const float* u = sorted_reference.data();
  const float* v = sorted_current.data();
  std::size_t iu = 0, iv = 0;  // next unmerged value of each sample == values < the next run
  double sum = 0.0, compensation = 0.0;
  double previous = 0.0;
  // n_u n_v |U - V| where U and V count the values <= the previous pooled value.
  const auto gap = [&] {
    const auto k = static_cast<__int128>(iu) * static_cast<__int128>(n_v) -
                   static_cast<__int128>(iv) * static_cast<__int128>(n_u);
    return static_cast<double>(k < 0 ? -k : k);
  };
  for (bool first = true; iu < n_u || iv < n_v; first = false) {
    const float value = (iv == n_v || (iu < n_u && u[iu] <= v[iv])) ? u[iu] : v[iv];
    if (!first) add_compensated(sum, compensation, gap() * (static_cast<double>(value) - previous));
    const std::size_t su = iu, sv = iv;
    while (iu < n_u && u[iu] == value) ++iu;
    while (iv < n_v && v[iv] == value) ++iv;
    if (!std::isfinite(value)) {
      const double step = static_cast<double>(value) - static_cast<double>(value);
      for (std::size_t k = 1; k < iu - su + iv - sv; ++k) {
        add_compensated(sum, compensation, gap() * step);
      }
    }
    previous = value;
  }
  return (std::isfinite(sum) ? sum + compensation : sum) /
         (static_cast<double>(n_u) * static_cast<double>(n_v));
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
  const std::uint64_t p_total = detail::count_total(reference_counts, "jensen_shannon");
  const std::uint64_t q_total = detail::count_total(current_counts, "jensen_shannon");
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
  const auto [sum_x, sum_y] =
      cvm_rank_sums(cvm_walks<CvmWalk>(sorted_reference.data(), nx, sorted_current.data(), ny));
  return cvm_result(sum_x, sum_y, nx, ny, method);
}

WassersteinAndCvm wasserstein1_and_cramer_von_mises(std::span<const float> sorted_reference,
                                                    std::span<const float> sorted_current,
                                                    CvmMethod method) {
  check_sorted(sorted_reference, "wasserstein1_and_cramer_von_mises: reference");
  check_sorted(sorted_current, "wasserstein1_and_cramer_von_mises: current");
  const std::size_t nx = sorted_reference.size(), ny = sorted_current.size();
  if (nx < 2 || ny < 2 ||
      !wasserstein1_walks(sorted_reference.data(), nx, sorted_current.data(), ny)) {
    return {wasserstein1(sorted_reference, sorted_current),
            cramer_von_mises(sorted_reference, sorted_current, method)};
  }
  const auto walks = cvm_walks<CvmW1Walk>(sorted_reference.data(), nx, sorted_current.data(), ny);
  const auto [sum_x, sum_y] = cvm_rank_sums(walks);
  return {wasserstein1_of_walks(walks, nx, ny), cvm_result(sum_x, sum_y, nx, ny, method)};
}

}  // namespace driftguard
