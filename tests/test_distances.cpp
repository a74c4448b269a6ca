#include "driftguard/distances.hpp"
#include "golden.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "driftguard/errors.hpp"

namespace driftguard {
namespace {

const double inf = std::numeric_limits<double>::infinity();

using testing::close;

const nlohmann::json& golden() { return testing::golden("distances_scipy.json"); }

// The golden values are float32 values written as doubles: the conversion back is exact.
std::vector<float> floats(const nlohmann::json& values) {
  std::vector<float> out;
  for (const auto& v : values) out.push_back(static_cast<float>(v.get<double>()));
  return out;
}

std::vector<std::uint64_t> counts(const nlohmann::json& values) {
  return values.get<std::vector<std::uint64_t>>();
}

TEST(Distances, GoldenIsPresent) {
  ASSERT_FALSE(golden().is_null()) << "tests/golden/distances_scipy.json missing";
  EXPECT_GE(golden()["samples"].size() + golden()["counts"].size(), 100u);
}

TEST(Distances, WassersteinMatchesScipy) {
  ASSERT_FALSE(golden().is_null());
  for (const auto& c : golden()["samples"]) {
    const auto ref = floats(c["reference"]), cur = floats(c["current"]);
    SCOPED_TRACE(c["kind"].get<std::string>() + " n1=" + std::to_string(ref.size()) +
                 " n2=" + std::to_string(cur.size()));
    EXPECT_TRUE(close(wasserstein1(ref, cur), c["wasserstein"].get<double>(), 1e-12, 1e-300));
    EXPECT_TRUE(
        close(wasserstein1_normed(ref, cur), c["wasserstein_normed"].get<double>(), 1e-12, 1e-300));
    // The scale a monitor caches per reference gives the same bits.
    const double normed = wasserstein1_normed(ref, cur),
                 cached = wasserstein1(ref, cur) / wasserstein1_normed_scale(ref);
    EXPECT_TRUE(normed == cached || (std::isnan(normed) && std::isnan(cached)));
  }
  EXPECT_TRUE(std::isnan(wasserstein1_normed_scale({})));
}

TEST(Distances, CramerVonMisesMatchesScipy) {
  ASSERT_FALSE(golden().is_null());
  int exact_cases = 0;
  for (const auto& c : golden()["samples"]) {
    if (!c.contains("cvm")) continue;
    const auto ref = floats(c["reference"]), cur = floats(c["current"]);
    SCOPED_TRACE(c["kind"].get<std::string>() + " n1=" + std::to_string(ref.size()) +
                 " n2=" + std::to_string(cur.size()));
    for (const auto& [name, method] :
         {std::pair{"auto", CvmMethod::Auto}, std::pair{"exact", CvmMethod::Exact},
          std::pair{"asymptotic", CvmMethod::Asymptotic}}) {
      if (!c["cvm"].contains(name)) continue;
      SCOPED_TRACE(name);
      const auto& expected = c["cvm"][name];
      const CvmResult r = cramer_von_mises(ref, cur, method);
      // The statistic is computed with SciPy's operations on exact rank sums.
      EXPECT_EQ(r.statistic, expected["statistic"].get<double>());
      const bool exact = method == CvmMethod::Exact ||
                         (method == CvmMethod::Auto && std::max(ref.size(), cur.size()) <= 20);
      if (exact) {
        ++exact_cases;
        EXPECT_EQ(r.pvalue, expected["pvalue"].get<double>());
      } else {
        // 1 - cdf: Boost's Bessel K and SciPy's (AMOS) differ by ~1e-15 relative, which the
        // subtraction from 1 turns into ~10 ulps of 1.0 absolute on tiny p-values.
        EXPECT_TRUE(close(r.pvalue, expected["pvalue"].get<double>(), 1e-10, 1e-14));
      }
    }
  }
  EXPECT_GE(exact_cases, 40);
}

// Samples of a quarter million and a million values, where the rank sums pass 2^53: sums
// rounded as they go moved the statistic by ~1e-8 relative; SciPy's pairwise sums and the exact
// sums agree with the exact statistic to ~1e-12 (amplified where the statistic is small by the
// cancellation in SciPy's own formula, which is followed).
TEST(Distances, LargeSamplesMatchScipy) {
  ASSERT_TRUE(golden().contains("generated_samples"));
  const auto generated = [](const nlohmann::json& spec) {
    const auto n = spec["n"].get<std::uint64_t>(),
               multiplier = spec["multiplier"].get<std::uint64_t>(),
               modulus = spec["modulus"].get<std::uint64_t>(),
               shift = spec["shift"].get<std::uint64_t>();
    std::vector<float> values(n);
    for (std::uint64_t k = 0; k < n; ++k) {
      values[k] = static_cast<float>((k * multiplier) % modulus + shift);
    }
    std::sort(values.begin(), values.end());
    return values;
  };
  int cases = 0;
  for (const auto& c : golden()["generated_samples"]) {
    SCOPED_TRACE(c["kind"].get<std::string>());
    const auto ref = generated(c["reference"]), cur = generated(c["current"]);
    EXPECT_TRUE(close(wasserstein1(ref, cur), c["wasserstein"].get<double>(), 1e-12, 1e-300));
    const CvmResult r = cramer_von_mises(ref, cur, CvmMethod::Asymptotic);
    EXPECT_TRUE(close(r.statistic, c["cvm_asymptotic"]["statistic"].get<double>(), 1e-9, 1e-300));
    EXPECT_TRUE(close(r.pvalue, c["cvm_asymptotic"]["pvalue"].get<double>(), 1e-8, 1e-14));
    ++cases;
  }
  EXPECT_EQ(cases, 2);
}

TEST(Distances, JensenShannonMatchesScipy) {
  ASSERT_FALSE(golden().is_null());
  for (const auto& c : golden()["counts"]) {
    const auto ref = counts(c["reference"]), cur = counts(c["current"]);
    SCOPED_TRACE(c["kind"].get<std::string>() + " k=" + std::to_string(ref.size()));
    for (const auto& [name, base] : {std::pair{"js_e", std::exp(1.0)}, std::pair{"js_2", 2.0}}) {
      const double js = jensen_shannon(ref, cur, base);
      if (c[name].is_null()) {
        EXPECT_TRUE(std::isnan(js)) << name;
      } else {
        EXPECT_TRUE(close(js, c[name].get<double>(), 1e-14, 1e-15)) << name;
      }
    }
  }
}

TEST(Distances, ChiSquaredMatchesScipy) {
  ASSERT_FALSE(golden().is_null());
  for (const auto& c : golden()["counts"]) {
    const auto ref = counts(c["reference"]), cur = counts(c["current"]);
    SCOPED_TRACE(c["kind"].get<std::string>() + " k=" + std::to_string(ref.size()));
    const ChiSquaredResult r = chi_squared(ref, cur);
    if (c["chi2"].is_null()) {
      EXPECT_TRUE(std::isnan(r.statistic));
      EXPECT_TRUE(std::isnan(r.pvalue));
      EXPECT_EQ(r.dof, 0u);
      continue;
    }
    const auto& expected = c["chi2"];
    EXPECT_EQ(r.dof, expected["dof"].get<std::uint64_t>());
    EXPECT_TRUE(close(r.statistic, expected["statistic"].get<double>(), 1e-14, 1e-300));
    EXPECT_TRUE(close(r.pvalue, expected["pvalue"].get<double>(), 1e-10, 1e-300));
  }
}

TEST(Distances, EmptySamplesGiveNaN) {
  const std::vector<float> empty, some = {1.0f, 2.0f, 3.0f};
  EXPECT_TRUE(std::isnan(wasserstein1(empty, some)));
  EXPECT_TRUE(std::isnan(wasserstein1(some, empty)));
  EXPECT_TRUE(std::isnan(wasserstein1_normed(empty, some)));
  EXPECT_TRUE(std::isnan(wasserstein1_normed(some, empty)));
  const CvmResult cvm = cramer_von_mises(empty, some);
  EXPECT_TRUE(std::isnan(cvm.statistic));
  EXPECT_TRUE(std::isnan(cvm.pvalue));
  const std::vector<std::uint64_t> none;
  EXPECT_TRUE(std::isnan(jensen_shannon(none, none, 2.0)));
  EXPECT_TRUE(std::isnan(chi_squared(none, none).pvalue));
}

TEST(Distances, OneValueEach) {
  const std::vector<float> a = {1.5f}, b = {4.0f};
  EXPECT_EQ(wasserstein1(a, b), 2.5);
  EXPECT_EQ(wasserstein1(a, a), 0.0);
  // np.std of one value is 0, so evidently divides by its floor 0.001.
  EXPECT_DOUBLE_EQ(wasserstein1_normed(a, b), 2500.0);
  // SciPy needs two observations per sample for Cramér-von Mises.
  EXPECT_TRUE(std::isnan(cramer_von_mises(a, b).statistic));
  const std::vector<float> two = {0.0f, 1.0f};
  EXPECT_TRUE(std::isnan(cramer_von_mises(two, b).pvalue));
}

TEST(Distances, AllZeroCounts) {
  const std::vector<std::uint64_t> zero = {0, 0, 0}, some = {1, 2, 3};
  EXPECT_TRUE(std::isnan(jensen_shannon(zero, some, 2.0)));
  EXPECT_TRUE(std::isnan(jensen_shannon(some, zero, 2.0)));
  const ChiSquaredResult r = chi_squared(zero, zero);
  EXPECT_TRUE(std::isnan(r.statistic));
  EXPECT_EQ(r.dof, 0u);
  EXPECT_TRUE(std::isnan(chi_squared(some, zero).statistic));
}

TEST(Distances, InfinitiesFollowScipy) {
  // wasserstein_distance([0, 1, inf], [0, 2]) = inf; ([0, 1, inf], [0, inf]) = nan (inf - inf).
  const std::vector<float> with_inf = {0.0f, 1.0f, static_cast<float>(inf)};
  const std::vector<float> finite = {0.0f, 2.0f}, also_inf = {0.0f, static_cast<float>(inf)};
  EXPECT_EQ(wasserstein1(with_inf, finite), inf);
  EXPECT_TRUE(std::isnan(wasserstein1(with_inf, also_inf)));
  EXPECT_TRUE(std::isnan(wasserstein1_normed(with_inf, finite)));  // np.std is NaN
}

TEST(Distances, RejectsBrokenContracts) {
  const std::vector<float> unsorted = {2.0f, 1.0f}, with_nan = {1.0f, std::nanf("")},
                           ok = {1.0f, 2.0f};
  EXPECT_THROW(wasserstein1(unsorted, ok), InvalidInput);
  EXPECT_THROW(wasserstein1(ok, with_nan), InvalidInput);
  EXPECT_THROW(cramer_von_mises(with_nan, ok), InvalidInput);
  const std::vector<std::uint64_t> two = {1, 2}, three = {1, 2, 3};
  EXPECT_THROW(jensen_shannon(two, three, 2.0), InvalidInput);
  EXPECT_THROW(chi_squared(two, three), InvalidInput);
  EXPECT_THROW(jensen_shannon(two, two, 1.0), InvalidInput);
  EXPECT_THROW(jensen_shannon(two, two, -2.0), InvalidInput);
  // binom(140, 70) does not fit in 64 bits.
  const std::vector<float> big(70, 1.0f);
  EXPECT_THROW(cramer_von_mises(big, big, CvmMethod::Exact), InvalidInput);
  // binom(1400003, 2) does, but the exact method's sums, up to lcm^2 (n1 + n2) = 1.1e19, do not.
  std::vector<float> many(1400001);
  for (std::size_t i = 0; i < many.size(); ++i) many[i] = static_cast<float>(i);
  EXPECT_THROW(cramer_von_mises(std::vector<float>{0.25f, 0.75f}, many, CvmMethod::Exact),
               InvalidInput);
  // Counts adding up to 2^64: refused, not wrapped into proportions above 1.
  const std::uint64_t half = std::uint64_t{1} << 63;
  const std::vector<std::uint64_t> huge = {half, half, 2}, small = {1, 1, 1};
  EXPECT_THROW(jensen_shannon(huge, small, 2.0), InvalidInput);
  EXPECT_THROW(jensen_shannon(small, huge, 2.0), InvalidInput);
}

// The value-by-value pooled walks that wasserstein1 and cramer_von_mises shortcut (runs of equal
// values at once, one sample's value at a time): the same operations in the same order, so the
// results must agree to the bit, NaN included.
// n_u n_v |U - V| (an exact integer) times the step, summed with Neumaier's compensation, then
// divided by n_u n_v, as the library computes it.
double pooled_walk_wasserstein(const std::vector<float>& u, const std::vector<float>& v) {
  std::size_t iu = 0, iv = 0, cu = 0, cv = 0;
  double sum = 0.0, compensation = 0.0, previous = 0.0;
  const auto nu = static_cast<std::int64_t>(u.size()), nv = static_cast<std::int64_t>(v.size());
  for (std::size_t i = 0; i < u.size() + v.size(); ++i) {
    const double value = (iv == v.size() || (iu < u.size() && u[iu] <= v[iv])) ? u[iu++] : v[iv++];
    if (i > 0) {
      const double term = static_cast<double>(std::abs(static_cast<std::int64_t>(cu) * nv -
                                                       static_cast<std::int64_t>(cv) * nu)) *
                          (value - previous);
      const double t = sum + term;
      if (std::isfinite(t)) {
        compensation += std::abs(sum) >= std::abs(term) ? (sum - t) + term : (term - t) + sum;
      }
      sum = t;
    }
    while (cu < u.size() && u[cu] <= value) ++cu;
    while (cv < v.size() && v[cv] <= value) ++cv;
    previous = value;
  }
  return (std::isfinite(sum) ? sum + compensation : sum) /
         (static_cast<double>(nu) * static_cast<double>(nv));
}

double pooled_walk_cvm(const std::vector<float>& x, const std::vector<float>& y) {
  const std::size_t nx = x.size(), ny = y.size();
  double sum_x = 0.0, sum_y = 0.0;
  std::size_t ix = 0, iy = 0;
  while (ix < nx || iy < ny) {
    const float value = (iy == ny || (ix < nx && x[ix] <= y[iy])) ? x[ix] : y[iy];
    std::size_t ex = ix, ey = iy;
    while (ex < nx && x[ex] == value) ++ex;
    while (ey < ny && y[ey] == value) ++ey;
    const double rank =
        (2.0 * static_cast<double>(ix + iy) + static_cast<double>(ex - ix + ey - iy) + 1.0) / 2.0;
    for (std::size_t i = ix; i < ex; ++i) sum_x += (rank - (i + 1.0)) * (rank - (i + 1.0));
    for (std::size_t i = iy; i < ey; ++i) sum_y += (rank - (i + 1.0)) * (rank - (i + 1.0));
    ix = ex;
    iy = ey;
  }
  const double u = static_cast<double>(nx) * sum_x + static_cast<double>(ny) * sum_y;
  const std::uint64_t k = nx * ny, big_n = nx + ny;
  return u / static_cast<double>(k * big_n) -
         static_cast<double>(4 * k - 1) / static_cast<double>(6 * big_n);
}

::testing::AssertionResult same_bits(double actual, double expected) {
  if (std::memcmp(&actual, &expected, sizeof(double)) == 0) return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure() << "actual " << actual << " expected " << expected;
}

// Within 4 ulps (both NaN counts as equal): the library sums the terms of several ranges apart,
// each compensated, then the partial sums; the reference adds them one by one.
::testing::AssertionResult within_ulps(double actual, double expected) {
  if (std::isnan(actual) && std::isnan(expected)) return ::testing::AssertionSuccess();
  const double ulp = std::nextafter(std::abs(expected), HUGE_VAL) - std::abs(expected);
  if (actual == expected || std::abs(actual - expected) <= 4 * ulp) {
    return ::testing::AssertionSuccess();
  }
  return ::testing::AssertionFailure() << "actual " << actual << " expected " << expected;
}

TEST(Distances, RunsOfTiesMatchTheValueByValueWalk) {
  std::mt19937_64 rng(20240611);
  const float f_inf = std::numeric_limits<float>::infinity();
  for (int trial = 0; trial < 400; ++trial) {
    // Long runs (few distinct values), runs of -0.0 and +0.0 in either order, runs of
    // infinities, samples of very different sizes, plain tie-free values, and tie-free values
    // with a few runs (walked value by value, the runs apart).
    const int kind = trial % 5;
    const auto draw = [&]() -> float {
      const int r = static_cast<int>(rng() % 100);
      if (kind == 0) return static_cast<float>(r % 7) / 4.0f;
      if (kind == 1) {
        if (r < 5) return r % 2 ? f_inf : -f_inf;
        if (r < 40) return r % 2 ? 0.0f : -0.0f;
        return static_cast<float>(r % 5);
      }
      if (kind == 2) return std::round(std::normal_distribution<float>(0, 1)(rng) * 100) / 100;
      if (kind == 4 && r < 4) return r % 2 ? 0.25f : -0.0f;
      return std::uniform_real_distribution<float>(-1, 1)(rng);
    };
    const std::size_t n1 = 2 + rng() % (trial % 8 == 0 ? 6 : 3000);
    const std::size_t n2 = 2 + rng() % (trial % 8 == 1 ? 6 : 3000);
    std::vector<float> ref(n1), cur(n2);
    for (auto& v : ref) v = draw();
    for (auto& v : cur) v = draw();
    std::sort(ref.begin(), ref.end());
    std::sort(cur.begin(), cur.end());
    SCOPED_TRACE("trial " + std::to_string(trial));
    EXPECT_TRUE(within_ulps(wasserstein1(ref, cur), pooled_walk_wasserstein(ref, cur)));
    EXPECT_TRUE(within_ulps(wasserstein1(cur, ref), pooled_walk_wasserstein(cur, ref)));
    if (kind != 1) {  // ranks of infinities are fine, but keep the p-value series finite
      EXPECT_TRUE(same_bits(cramer_von_mises(ref, cur, CvmMethod::Asymptotic).statistic,
                            pooled_walk_cvm(ref, cur)));
    }
    EXPECT_TRUE(same_bits(cramer_von_mises(cur, ref, CvmMethod::Asymptotic).statistic,
                          pooled_walk_cvm(cur, ref)));
  }
  // A run of +Inf in both samples: Inf - Inf makes the distance NaN, as SciPy's.
  const std::vector<float> a = {0.0f, f_inf, f_inf}, b = {1.0f, f_inf};
  EXPECT_TRUE(std::isnan(wasserstein1(a, b)));
  EXPECT_TRUE(same_bits(wasserstein1(a, b), pooled_walk_wasserstein(a, b)));
}

// The one-walk call returns the two calls' bits, on the samples it walks once (continuous values,
// with a few runs of ties inside, of sizes on both sides of the 2^16 rounds between settlements)
// and on those it hands to the two calls (runs dominating, infinities, fewer than 2 values).
TEST(Distances, WassersteinAndCramerVonMisesInOneWalkEqualTheTwoCalls) {
  std::mt19937_64 rng(20261127);
  const float f_inf = std::numeric_limits<float>::infinity();
  for (int trial = 0; trial < 300; ++trial) {
    const int kind = trial % 6;
    const auto draw = [&]() -> float {
      const int r = static_cast<int>(rng() % 100);
      if (kind == 1 && r < 3) return r % 2 ? 0.5f : -0.0f;     // a few runs, +-0 among them
      if (kind == 2) return static_cast<float>(r % 9) / 8.0f;  // runs dominate
      if (kind == 3 && r == 0) return -f_inf;
      if (kind == 4 && r == 0) return f_inf;
      return std::normal_distribution<float>(0, 1)(rng);
    };
    const std::size_t longest = trial % 25 == 0 ? 150000 : 3000;
    const std::size_t n1 = rng() % longest + (kind == 5 ? 0 : 2);
    const std::size_t n2 = rng() % longest + (kind == 5 ? 0 : 2);
    std::vector<float> ref(kind == 5 ? n1 % 3 : n1), cur(n2);
    for (auto& v : ref) v = draw();
    for (auto& v : cur) v = draw();
    std::sort(ref.begin(), ref.end());
    std::sort(cur.begin(), cur.end());
    SCOPED_TRACE("trial " + std::to_string(trial) + ", sizes " + std::to_string(ref.size()) +
                 " and " + std::to_string(cur.size()));
    for (CvmMethod method : {CvmMethod::Auto, CvmMethod::Asymptotic}) {
      const WassersteinAndCvm both = wasserstein1_and_cramer_von_mises(ref, cur, method);
      const CvmResult cvm = cramer_von_mises(ref, cur, method);
      EXPECT_TRUE(same_bits(both.wasserstein, wasserstein1(ref, cur)));
      EXPECT_TRUE(same_bits(both.cramer_von_mises.statistic, cvm.statistic));
      EXPECT_TRUE(same_bits(both.cramer_von_mises.pvalue, cvm.pvalue));
    }
  }
  const std::vector<float> unsorted = {2.0f, 1.0f}, ok = {1.0f, 2.0f};
  EXPECT_THROW(wasserstein1_and_cramer_von_mises(unsorted, ok), InvalidInput);
  EXPECT_THROW(wasserstein1_and_cramer_von_mises(ok, unsorted), InvalidInput);
}

TEST(Distances, JensenShannonBounds) {
  const std::vector<std::uint64_t> a = {5, 0}, b = {0, 7};
  EXPECT_DOUBLE_EQ(jensen_shannon(a, b, 2.0), 1.0);  // disjoint supports, in bits
  EXPECT_EQ(jensen_shannon(a, a, 2.0), 0.0);
  // Proportional counts are the same distribution.
  const std::vector<std::uint64_t> c = {1, 2, 3}, d = {10, 20, 30};
  EXPECT_EQ(jensen_shannon(c, d, 2.0), 0.0);
}

}  // namespace
}  // namespace driftguard
