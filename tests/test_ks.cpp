// Two-sample KS on every backend: SciPy's own results (tests/golden/ks_scipy.json, made by
// tests/golden/make_ks_golden.py), a float64 brute-force reference for the statistic written here
// from ks.hpp's definitions, NaN / empty / one-value edge cases and argument checks.
#include <gtest/gtest.h>

#ifdef DRIFTGUARD_TEST_CUDA_RUNTIME
#include <cuda_runtime.h>
#endif

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <iostream>
#include <limits>
#include <nlohmann/json.hpp>
#include <numeric>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "backend_param.hpp"
#include "driftguard/context.hpp"
#include "driftguard/errors.hpp"
#include "driftguard/ks.hpp"
#include "golden.hpp"
#include "kernels/cuda/detail/ks_merge.hpp"
#include "kernels/ks_common.hpp"

namespace driftguard {
namespace {

using Ks = testing::BackendTest;
constexpr float kNaN = std::numeric_limits<float>::quiet_NaN();
constexpr float kInf = std::numeric_limits<float>::infinity();
constexpr double kRelTolerance = 1e-10;
constexpr double kAbsTolerance = 1e-300;

const KsAlternative kAlternatives[] = {KsAlternative::TwoSided, KsAlternative::Less,
                                       KsAlternative::Greater};
const KsMethod kMethods[] = {KsMethod::Auto, KsMethod::Exact, KsMethod::Asymp};

// Fresh inputs on every run; DRIFTGUARD_TEST_SEED replays a failure (the seed is in its trace).
std::uint64_t test_seed() {
  if (const char* env = std::getenv("DRIFTGUARD_TEST_SEED")) return std::stoull(env);
  return (std::uint64_t{std::random_device{}()} << 32) | std::random_device{}();
}

const nlohmann::json& golden() { return testing::golden("ks_scipy.json"); }

double json_number(const nlohmann::json& v) {
  if (v.is_null()) return std::numeric_limits<double>::quiet_NaN();
  if (v.is_string()) return v.get<std::string>() == "inf" ? HUGE_VAL : -HUGE_VAL;
  return v.get<double>();
}

// A golden sample: "values" (exact doubles of float32) or "ints" * 2^"exp2".
std::vector<float> json_sample(const nlohmann::json& s) {
  std::vector<float> out;
  if (s.contains("values")) {
    for (const auto& v : s["values"]) out.push_back(static_cast<float>(json_number(v)));
  } else {
    const int exp2 = s["exp2"].get<int>();
    for (const auto& v : s["ints"]) {
      out.push_back(v.is_null() ? kNaN : std::ldexp(static_cast<float>(v.get<long>()), exp2));
    }
  }
  return out;
}

// Relative error, 0 when both are NaN or within kAbsTolerance.
double relative_error(double actual, double expected) {
  if (std::isnan(actual) && std::isnan(expected)) return 0;
  if (actual == expected || std::abs(actual - expected) <= kAbsTolerance) return 0;
  return std::abs(actual - expected) / std::abs(expected);
}

// Largest relative errors seen against SciPy, printed at the end of the golden tests.
struct WorstError {
  double statistic = 0, pvalue = 0;
  void print(const char* what) const {
    std::cout << "[ks] " << what << ": max relative error vs SciPy: statistic " << statistic
              << ", p-value " << pvalue << "\n";
  }
};

// One row-major batch holding several samples as features: sample f fills rows at random
// positions, NaN elsewhere (NaN are left out, so each feature sees exactly its sample).
std::vector<float> pack(const std::vector<std::vector<float>>& samples, std::size_t rows,
                        std::mt19937_64& rng) {
  const std::size_t features = samples.size();
  std::vector<float> data(rows * features, kNaN);
  std::vector<std::size_t> order(rows);
  for (std::size_t f = 0; f < features; ++f) {
    for (std::size_t r = 0; r < rows; ++r) order[r] = r;
    std::shuffle(order.begin(), order.end(), rng);
    for (std::size_t i = 0; i < samples[f].size(); ++i) {
      data[order[i] * features + f] = samples[f][i];
    }
  }
  return data;
}

std::size_t longest(const std::vector<std::vector<float>>& samples) {
  std::size_t n = 0;
  for (const auto& s : samples) n = std::max(n, s.size());
  return n;
}

std::uint64_t non_nan(const std::vector<float>& s) {
  return static_cast<std::uint64_t>(
      std::count_if(s.begin(), s.end(), [](float x) { return !std::isnan(x); }));
}

TEST(KsPvalue, MatchesScipyOnTheGoldenStatistics) {
  const nlohmann::json& cases = golden()["pvalue_cases"];
  ASSERT_GE(cases.size(), 3000u);
  WorstError worst;
  for (const auto& c : cases) {
    const double d = c[0].get<double>();
    const auto n1 = c[1].get<std::uint64_t>(), n2 = c[2].get<std::uint64_t>();
    const KsOptions options{parse_ks_method(c[4].get<std::string>()),
                            parse_ks_alternative(c[3].get<std::string>())};
    SCOPED_TRACE(c.dump());
    KsMethod used = KsMethod::Auto;
    double statistic = -1;
    const double p = ks_pvalue(d, n1, n2, options, &used, &statistic);
    const double p_error = relative_error(p, json_number(c[5]));
    const double d_error = relative_error(statistic, c[6].get<double>());
    EXPECT_LE(p_error, kRelTolerance) << "p = " << p;
    EXPECT_LE(d_error, kRelTolerance) << "statistic = " << statistic;
    EXPECT_EQ(to_string(used), c[7].get<std::string>());
    worst.pvalue = std::max(worst.pvalue, p_error);
    worst.statistic = std::max(worst.statistic, d_error);
  }
  worst.print("ks_pvalue");
}

TEST_P(Ks, MatchesScipyOnTheGoldenSamples) {
  const nlohmann::json& cases = golden()["sample_cases"];
  ASSERT_GE(cases.size(), 40u);
  std::vector<std::vector<float>> refs, curs;
  for (const auto& c : cases) {
    refs.push_back(json_sample(c["reference"]));
    curs.push_back(json_sample(c["current"]));
  }
  std::mt19937_64 rng(test_seed());
  const std::size_t features = cases.size();
  const std::size_t ref_rows = longest(refs) + 3, cur_rows = longest(curs) + 5;
  const std::vector<float> ref_data = pack(refs, ref_rows, rng);
  const std::vector<float> cur_data = pack(curs, cur_rows, rng);
  const SortedColumns reference =
      SortedColumns::from_batch(ctx(), {ref_data.data(), ref_rows, features});
  EXPECT_NO_THROW(reference.check());
  const SortedColumns current_sorted =
      SortedColumns::from_batch(ctx(), {cur_data.data(), cur_rows, features});

  WorstError worst;
  for (KsAlternative alternative : kAlternatives) {
    for (KsMethod method : kMethods) {
      const std::string key =
          std::string(to_string(alternative)) + "/" + std::string(to_string(method));
      const std::vector<KsResult> results = ks_two_sample(
          ctx(), reference, {cur_data.data(), cur_rows, features}, {method, alternative});
      ASSERT_EQ(results.size(), features);
      const std::vector<KsResult> presorted =
          ks_two_sample(ctx(), reference, current_sorted, {method, alternative});
      for (std::size_t f = 0; f < features; ++f) {
        const nlohmann::json& expected = cases[f]["results"][key];
        const KsResult& r = results[f];
        SCOPED_TRACE(cases[f]["name"].get<std::string>() + " " + key);
        EXPECT_EQ(r.n_reference, non_nan(refs[f]));
        EXPECT_EQ(r.n_current, non_nan(curs[f]));
        EXPECT_EQ(r.nan_reference, ref_rows - r.n_reference);
        EXPECT_EQ(r.nan_current, cur_rows - r.n_current);
        ASSERT_FALSE(expected.is_null());
        const double p_error = relative_error(r.pvalue, json_number(expected["pvalue"]));
        const double d_error = relative_error(r.statistic, expected["statistic"].get<double>());
        EXPECT_LE(d_error, kRelTolerance) << "statistic " << r.statistic;
        EXPECT_LE(p_error, kRelTolerance) << "p " << r.pvalue;
        EXPECT_EQ(r.statistic_location, json_number(expected["statistic_location"]));
        EXPECT_EQ(r.statistic_sign, expected["statistic_sign"].get<int>());
        EXPECT_EQ(to_string(r.method_used), expected["method_used"].get<std::string>());
        worst.pvalue = std::max(worst.pvalue, p_error);
        worst.statistic = std::max(worst.statistic, d_error);
        // A presorted current window gives the same bits.
        EXPECT_EQ(presorted[f].statistic, r.statistic);
        EXPECT_TRUE(presorted[f].pvalue == r.pvalue ||
                    (std::isnan(presorted[f].pvalue) && std::isnan(r.pvalue)));
        EXPECT_EQ(presorted[f].statistic_location, r.statistic_location);
        EXPECT_EQ(presorted[f].statistic_sign, r.statistic_sign);
        EXPECT_EQ(presorted[f].method_used, r.method_used);
        EXPECT_EQ(presorted[f].n_current, r.n_current);
        EXPECT_EQ(presorted[f].nan_current, r.nan_current);
      }
    }
  }
  worst.print("ks_two_sample");
}

// ---- float64 brute force, from ks.hpp's definitions ----

// Where F_R - F_C is largest and smallest, by SciPy's construction: the pooled array
// [sorted R, sorted C]; at each position the ECDFs count the values <= it (linear scans in
// double); argmax / argmin take the first position.
struct Extremes {
  double max_diff, max_location, min_diff, min_location;
};

// Where two samples sit within larger ones: `below_*` values before them, n* in all (0: the
// samples are whole).
struct Within {
  std::uint64_t below_ref = 0, below_cur = 0, n1 = 0, n2 = 0;
};

// SciPy's argmax / argmin of F_R - F_C over the pooled array [sorted ref, sorted cur], counted
// as if `within` held the samples.
Extremes brute_force(const std::vector<float>& ref, const std::vector<float>& cur,
                     Within within = {}) {
  std::vector<double> r, c;
  for (float x : ref) {
    if (!std::isnan(x)) r.push_back(x);
  }
  for (float x : cur) {
    if (!std::isnan(x)) c.push_back(x);
  }
  std::sort(r.begin(), r.end());
  std::sort(c.begin(), c.end());
  std::vector<double> pooled = r;
  pooled.insert(pooled.end(), c.begin(), c.end());
  std::size_t arg_max = 0, arg_min = 0;
  std::vector<double> diff(pooled.size());
  const double n1 = static_cast<double>(within.n1 != 0 ? within.n1 : r.size());
  const double n2 = static_cast<double>(within.n2 != 0 ? within.n2 : c.size());
  for (std::size_t p = 0; p < pooled.size(); ++p) {
    auto i = static_cast<double>(within.below_ref), j = static_cast<double>(within.below_cur);
    for (double x : r) i += x <= pooled[p] ? 1 : 0;
    for (double x : c) j += x <= pooled[p] ? 1 : 0;
    diff[p] = i / n1 - j / n2;
    if (diff[p] > diff[arg_max]) arg_max = p;
    if (diff[p] < diff[arg_min]) arg_min = p;
  }
  return {diff[arg_max], pooled[arg_max], diff[arg_min], pooled[arg_min]};
}

struct Expected {
  double statistic, location;
  int sign;
};

// ks_2samp's choice between D+ and D- (D- = max(0, -min)); two-sided takes D- only when larger.
Expected expected_result(const Extremes& e, KsAlternative alternative) {
  const double min_s = std::clamp(-e.min_diff, 0.0, 1.0);
  if (alternative == KsAlternative::Less ||
      (alternative == KsAlternative::TwoSided && min_s > e.max_diff)) {
    return {min_s, e.min_location, -1};
  }
  return {e.max_diff, e.max_location, 1};
}

// Continuous values, small integers (ties), +-0, +-Inf and NaN in random mixes.
std::vector<float> random_sample(std::size_t n, int kind, std::mt19937_64& rng) {
  std::uniform_real_distribution<double> unit(0.0, 1.0);
  std::normal_distribution<double> normal(0.0, 1.0);
  std::vector<float> s(n);
  for (float& x : s) {
    const double u = unit(rng);
    if (kind == 0) {
      x = static_cast<float>(normal(rng));
    } else if (kind == 1) {
      x = static_cast<float>(static_cast<int>(unit(rng) * 6));
    } else {
      x = u < 0.1    ? kNaN
          : u < 0.15 ? (u < 0.125 ? kInf : -kInf)
          : u < 0.25 ? (u < 0.2 ? -0.0f : 0.0f)
                     : static_cast<float>(static_cast<int>(normal(rng) * 3) / 2.0);
    }
  }
  return s;
}

TEST_P(Ks, StatisticMatchesFloat64BruteForce) {
  const std::uint64_t seed = test_seed();
  SCOPED_TRACE("DRIFTGUARD_TEST_SEED=" + std::to_string(seed));
  std::mt19937_64 rng(seed);
  std::vector<std::vector<float>> refs, curs;
  // The next 9 features are long enough for the CPU walk's parallel chains to cut every kind of
  // sample, ties included, at many places; the last 6 have a window far shorter than the
  // reference (the CPU backend gallops over the reference there).
  for (int f = 0; f < 39; ++f) {
    const std::size_t longest_sample = f < 24 ? 300 : 3000;
    const auto n1 = static_cast<std::size_t>(1 + rng() % longest_sample);
    const auto n2 = static_cast<std::size_t>(1 + rng() % (f < 33 ? longest_sample : 60));
    refs.push_back(random_sample(n1, f % 3, rng));
    curs.push_back(random_sample(n2, (f / 3) % 3, rng));
  }
  const std::size_t features = refs.size();
  const std::size_t ref_rows = longest(refs), cur_rows = longest(curs);
  const std::vector<float> ref_data = pack(refs, ref_rows, rng);
  const std::vector<float> cur_data = pack(curs, cur_rows, rng);
  const SortedColumns reference =
      SortedColumns::from_batch(ctx(), {ref_data.data(), ref_rows, features});
  for (KsAlternative alternative : kAlternatives) {
    // Asymp reports the statistic as computed (Exact moves it onto the 1/lcm lattice).
    const std::vector<KsResult> results = ks_two_sample(
        ctx(), reference, {cur_data.data(), cur_rows, features}, {KsMethod::Asymp, alternative});
    for (std::size_t f = 0; f < features; ++f) {
      SCOPED_TRACE("feature " + std::to_string(f) + " " + std::string(to_string(alternative)));
      if (non_nan(refs[f]) == 0 || non_nan(curs[f]) == 0) {
        EXPECT_TRUE(std::isnan(results[f].statistic));
        continue;
      }
      const Expected e = expected_result(brute_force(refs[f], curs[f]), alternative);
      EXPECT_EQ(results[f].statistic, e.statistic);
      EXPECT_EQ(results[f].statistic_location, e.location);
      EXPECT_EQ(results[f].statistic_sign, e.sign);
      EXPECT_EQ(results[f].pvalue, ks_pvalue(e.statistic, results[f].n_reference,
                                             results[f].n_current, {KsMethod::Asymp, alternative}));
    }
  }
}

// The extremes ks_merge_kernel finds (kernels/cuda/detail/ks_merge.hpp, run on the host): sorted
// r and c cut by merge path into tiles of threads * items values, each thread's share merged on
// its own. r and c sit in samples as `within` says; there the values before them are -Inf and
// those after +Inf.
std::pair<detail::KsCandidate, detail::KsCandidate> merge_by_tiles(const std::vector<float>& r,
                                                                   const std::vector<float>& c,
                                                                   Within within,
                                                                   std::uint32_t threads,
                                                                   int items) {
  const std::uint64_t n1 = r.size(), n2 = c.size();
  if (within.n1 == 0) within = {0, 0, n1, n2};
  constexpr float kInf = std::numeric_limits<float>::infinity();
  auto ref_at = [&r](std::uint64_t i) { return r[i]; };
  auto cur_at = [&c](std::uint64_t j) { return c[j]; };
  const std::uint64_t tile_size = threads * static_cast<std::uint64_t>(items);
  detail::KsCandidate max = detail::ks_no_max(), min = detail::ks_no_min();
  for (std::uint64_t d0 = 0; d0 < n1 + n2; d0 += tile_size) {
    const std::uint64_t d1 = std::min(d0 + tile_size, n1 + n2);
    const std::uint64_t i0 = cuda::ks_merge_path(ref_at, n1, cur_at, n2, d0);
    const std::uint64_t i1 = cuda::ks_merge_path(ref_at, n1, cur_at, n2, d1);
    // What the kernel stages in shared memory, neighbours included (0 past the samples' ends).
    std::vector<float> tile_ref, tile_cur;
    for (std::uint64_t i = i0; i <= i1 + 1; ++i) {
      const std::uint64_t global = within.below_ref + i;  // of R[global - 1]
      tile_ref.push_back(global < 1 || global > within.n1 ? 0.0f
                         : i < 1                          ? -kInf
                         : i - 1 < n1                     ? r[i - 1]
                                                          : kInf);
    }
    for (std::uint64_t j = d0 - i0; j <= d1 - i1; ++j) {
      tile_cur.push_back(within.below_cur + j >= within.n2 ? 0.0f : j < n2 ? c[j] : kInf);
    }
    const cuda::KsTile tile{tile_ref.data() + 1,
                            tile_cur.data(),
                            within.below_ref + i0,
                            within.below_cur + d0 - i0,
                            within.n1,
                            within.n2,
                            static_cast<std::uint32_t>(i1 - i0),
                            static_cast<std::uint32_t>(d1 - i1 - (d0 - i0))};
    for (std::uint32_t t = 0; t < threads; ++t) {
      detail::KsCandidate thread_max = detail::ks_no_max(), thread_min = detail::ks_no_min();
      const std::uint32_t diagonal = t * static_cast<std::uint32_t>(items);
      if (detail::ks_exact_in_integers(within.n1, within.n2)) {
        cuda::ks_merge_items<true>(tile, diagonal, items, thread_max, thread_min);
      } else {
        cuda::ks_merge_items<false>(tile, diagonal, items, thread_max, thread_min);
      }
      if (detail::ks_precedes_as_max(thread_max, max)) max = thread_max;
      if (detail::ks_precedes_as_min(thread_min, min)) min = thread_min;
    }
  }
  return {max, min};
}

// Tiles of a few values, so that runs of ties, signed zeros and infinities cross tile and thread
// boundaries. Runs on every machine.
TEST(KsMergeTiles, ThreadSharesFindTheExtremes) {
  const std::uint64_t seed = test_seed();
  SCOPED_TRACE("DRIFTGUARD_TEST_SEED=" + std::to_string(seed));
  std::mt19937_64 rng(seed);
  for (int round = 0; round < 60; ++round) {
    std::vector<float> r = random_sample(1 + rng() % 90, round % 3, rng);
    std::vector<float> c = random_sample(1 + rng() % 90, (round / 3) % 3, rng);
    std::erase_if(r, [](float x) { return std::isnan(x); });
    std::erase_if(c, [](float x) { return std::isnan(x); });
    if (r.empty() || c.empty()) continue;
    std::sort(r.begin(), r.end());
    std::sort(c.begin(), c.end());
    const Extremes expected = brute_force(r, c);
    for (std::uint32_t threads : {1u, 3u, 4u}) {
      for (int items : {1, 2, 5}) {
        SCOPED_TRACE("threads " + std::to_string(threads) + ", items " + std::to_string(items));
        const auto [max, min] = merge_by_tiles(r, c, {}, threads, items);
        EXPECT_EQ(max.diff, expected.max_diff);
        EXPECT_EQ(max.value, expected.max_location);
        EXPECT_EQ(min.diff, expected.min_diff);
        EXPECT_EQ(min.value, expected.min_location);
      }
    }
  }
}

// The same tiles deep inside large samples: of 2^25 values each, the largest that k = i n2 - j n1
// ranks as the doubles (n1 n2 = 2^50), and of about 2^30, where every point is compared in
// double. There k moves by n2 - n1 = 2 when one value of each sample passes, so points whose k
// differ have doubles that tie or cross (the rounding, ~2^-54, dwarfs 2 / (n1 n2)), and SciPy's
// pick among them is the double's. Values are finite and nonzero: -Inf and +Inf stand for the
// samples' other values.
TEST(KsMergeTiles, DeepInsideLargeSamplesOnBothSidesOfTheExactLimit) {
  const std::uint64_t seed = test_seed();
  SCOPED_TRACE("DRIFTGUARD_TEST_SEED=" + std::to_string(seed));
  std::mt19937_64 rng(seed);
  const std::uint64_t m = std::uint64_t{1} << 25, g = std::uint64_t{1} << 29;
  const Within exact{m / 3, m / 2 + 17, m, m};
  const Within inexact{g + 3, g - 5, 2 * g - 1, 2 * g + 1};
  ASSERT_TRUE(detail::ks_exact_in_integers(exact.n1, exact.n2));
  ASSERT_FALSE(detail::ks_exact_in_integers(inexact.n1, inexact.n2));
  for (int round = 0; round < 150; ++round) {
    std::vector<float> r = random_sample(1 + rng() % 90, round % 3, rng);
    std::vector<float> c = random_sample(1 + rng() % 90, (round / 3) % 3, rng);
    auto outside = [](float x) { return !std::isfinite(x) || x == 0.0f; };
    std::erase_if(r, outside);
    std::erase_if(c, outside);
    if (r.empty() || c.empty()) continue;
    std::sort(r.begin(), r.end());
    std::sort(c.begin(), c.end());
    for (const Within& within : {exact, inexact}) {
      SCOPED_TRACE("n1 " + std::to_string(within.n1) + ", n2 " + std::to_string(within.n2));
      const Extremes expected = brute_force(r, c, within);
      for (std::uint32_t threads : {1u, 4u}) {
        for (int items : {1, 3, 8}) {
          SCOPED_TRACE("threads " + std::to_string(threads) + ", items " + std::to_string(items));
          const auto [max, min] = merge_by_tiles(r, c, within, threads, items);
          EXPECT_EQ(max.diff, expected.max_diff);
          EXPECT_EQ(max.value, expected.max_location);
          EXPECT_EQ(min.diff, expected.min_diff);
          EXPECT_EQ(min.value, expected.min_location);
        }
      }
    }
  }
}

TEST_P(Ks, FromBatchSortsEachColumnAndCountsNaN) {
  std::mt19937_64 rng(test_seed());
  const std::size_t rows = 3000, features = 7;
  std::vector<float> data(rows * features);
  for (std::size_t f = 0; f < features; ++f) {
    const std::vector<float> s = random_sample(rows, static_cast<int>(f % 3), rng);
    for (std::size_t r = 0; r < rows; ++r) data[r * features + f] = s[r];
  }
  const SortedColumns sorted = SortedColumns::from_batch(ctx(), {data.data(), rows, features});
  EXPECT_NO_THROW(sorted.check());
  ASSERT_EQ(sorted.features, features);
  for (std::size_t f = 0; f < features; ++f) {
    std::vector<float> expected;
    for (std::size_t r = 0; r < rows; ++r) {
      if (!std::isnan(data[r * features + f])) expected.push_back(data[r * features + f]);
    }
    std::sort(expected.begin(), expected.end());
    const auto column = sorted.column(f);
    ASSERT_EQ(column.size(), expected.size());
    EXPECT_TRUE(std::equal(column.begin(), column.end(), expected.begin()));
    EXPECT_EQ(sorted.nan_counts[f], rows - expected.size());
  }
}

// Columns the random samples rarely make, on both sides of the radix-sort size (512 values) and
// long enough for the CUDA backend to sort each column device-wide (65536 values or more, fewer
// columns than SMs): bit patterns compared, so -0.0 must sort before +0.0 and NaN of any payload
// is left out.
TEST_P(Ks, FromBatchSortsSpecialColumnsBitExactly) {
  std::mt19937_64 rng(test_seed());
  SCOPED_TRACE("DRIFTGUARD_TEST_SEED=" + std::to_string(test_seed()));
  const float inf = std::numeric_limits<float>::infinity();
  const float denorm = std::numeric_limits<float>::denorm_min();
  const float specials[] = {-0.0f,
                            0.0f,
                            inf,
                            -inf,
                            denorm,
                            -denorm,
                            1.0f,
                            -1.0f,
                            std::numeric_limits<float>::max(),
                            std::numeric_limits<float>::lowest(),
                            std::numeric_limits<float>::min(),
                            kNaN,
                            -kNaN,
                            std::bit_cast<float>(0x7fc01234u),
                            std::bit_cast<float>(0xffbfffffu)};
  for (const std::size_t rows :
       {std::size_t{1}, std::size_t{100}, std::size_t{3000}, std::size_t{70000}}) {
    // 0: all equal; 1: all NaN; 2: specials; 3: specials and one NaN-free constant run;
    // 4: equal values and NaN; 5: denormals and zeros only; 6: wide random bit patterns;
    // 7: values sharing their high digits, and NaN; 8: bell-shaped values over many exponents.
    const std::size_t features = 9;
    std::normal_distribution<float> bell(0.0f, 1000.0f);
    std::vector<float> data(rows * features);
    std::uniform_int_distribution<std::size_t> pick(0, std::size(specials) - 1);
    for (std::size_t r = 0; r < rows; ++r) {
      float* x = data.data() + r * features;
      x[0] = 2.5f;
      x[1] = r % 2 ? kNaN : -kNaN;
      x[2] = specials[pick(rng)];
      x[3] = r % 3 ? -0.0f : specials[pick(rng)];
      x[4] = r % 5 ? 7.0f : kNaN;
      x[5] = std::bit_cast<float>(static_cast<std::uint32_t>(rng() % 4) << 30 >> 30 |
                                  (rng() % 2 ? 0x80000000u : 0u));
      x[6] = std::bit_cast<float>(static_cast<std::uint32_t>(rng()));
      x[7] = r % 7 == 3 ? kNaN : 40.0f + static_cast<float>(rng() % 1000) / 256;
      x[8] = bell(rng);
    }
    const SortedColumns sorted = SortedColumns::from_batch(ctx(), {data.data(), rows, features});
    EXPECT_NO_THROW(sorted.check());
    for (std::size_t f = 0; f < features; ++f) {
      std::vector<std::uint32_t> expected;
      for (std::size_t r = 0; r < rows; ++r) {
        const float v = data[r * features + f];
        if (!std::isnan(v)) expected.push_back(detail::ks_sort_key(v));
      }
      std::sort(expected.begin(), expected.end());
      const auto column = sorted.column(f);
      ASSERT_EQ(column.size(), expected.size()) << "rows " << rows << " feature " << f;
      for (std::size_t i = 0; i < expected.size(); ++i) {
        ASSERT_EQ(std::bit_cast<std::uint32_t>(column[i]),
                  std::bit_cast<std::uint32_t>(detail::ks_key_value(expected[i])))
            << "rows " << rows << " feature " << f << " at " << i;
      }
      EXPECT_EQ(sorted.nan_counts[f], rows - expected.size());
    }
  }
}

TEST_P(Ks, NaNAreLeftOutAndCounted) {
  // Feature 0: NaN among values; 1: all-NaN current; 2: all-NaN reference.
  const std::vector<float> ref = {1, 5, kNaN, kNaN, 9, kNaN, 3, 7, kNaN, 4, kNaN, kNaN};
  const std::vector<float> cur = {kNaN, kNaN, 6, 6, kNaN, 5, kNaN, kNaN, 0};
  const SortedColumns reference = SortedColumns::from_batch(ctx(), {ref.data(), 4, 3});
  EXPECT_EQ(reference.nan_counts, (std::vector<std::uint64_t>{1, 1, 4}));
  const std::vector<KsResult> r = ks_two_sample(ctx(), reference, {cur.data(), 3, 3});
  ASSERT_EQ(r.size(), 3u);
  // Feature 0: R = {1, 3, 4}, C = {6}: F_R - F_C reaches 1 at 4; the one current value lies
  // outside the reference in 2 of its 4 possible ranks, so p = 1/2.
  EXPECT_EQ(r[0].n_reference, 3u);
  EXPECT_EQ(r[0].nan_reference, 1u);
  EXPECT_EQ(r[0].n_current, 1u);
  EXPECT_EQ(r[0].nan_current, 2u);
  EXPECT_EQ(r[0].statistic, 1.0);
  EXPECT_EQ(r[0].statistic_location, 4.0);
  EXPECT_EQ(r[0].statistic_sign, 1);
  EXPECT_EQ(r[0].method_used, KsMethod::Exact);
  EXPECT_EQ(r[0].pvalue, 0.5);
  for (std::size_t f : {1u, 2u}) {
    EXPECT_TRUE(std::isnan(r[f].statistic));
    EXPECT_TRUE(std::isnan(r[f].pvalue));
    EXPECT_TRUE(std::isnan(r[f].statistic_location));
    EXPECT_EQ(r[f].statistic_sign, 0);
    EXPECT_EQ(r[f].method_used, KsMethod::Auto);
  }
  EXPECT_EQ(r[1].n_current, 0u);
  EXPECT_EQ(r[1].nan_current, 3u);
  EXPECT_EQ(r[2].n_reference, 0u);
  EXPECT_EQ(r[2].nan_reference, 4u);
  EXPECT_EQ(r[2].n_current, 3u);
}

TEST_P(Ks, OneValueEach) {
  const float ref[] = {1.5f}, cur[] = {2.5f};
  const SortedColumns reference = SortedColumns::from_batch(ctx(), {ref, 1, 1});
  const KsResult exact = ks_two_sample(ctx(), reference, {cur, 1, 1})[0];
  EXPECT_EQ(exact.statistic, 1.0);
  EXPECT_EQ(exact.pvalue, 1.0);
  EXPECT_EQ(exact.statistic_location, 1.5);
  EXPECT_EQ(exact.method_used, KsMethod::Exact);
  // SciPy's quirk: n1 = n2 = 1 rounds en = 0.5 to 0 and kstwo gives NaN.
  const KsResult asymp = ks_two_sample(ctx(), reference, {cur, 1, 1}, {KsMethod::Asymp})[0];
  EXPECT_EQ(asymp.statistic, 1.0);
  EXPECT_TRUE(std::isnan(asymp.pvalue));
}

// Where several pooled values reach the statistic, SciPy reports the first in [sorted reference,
// sorted current] order among those whose F_R - F_C, in double, is extreme (scipy.stats.ks_2samp,
// SciPy 1.17: the values below). 1 is in both samples and so precedes the current-only 0 at the
// same difference; 2/3 - 1 rounds below 0 - 1/3, so 2 wins over 0.
TEST_P(Ks, EqualDifferencesPickSciPysLocation) {
  struct Case {
    std::vector<float> ref, cur;
    double statistic, location;
    int sign;
  };
  for (const Case& c :
       {Case{{1, 5}, {0, 1}, 0.5, 1, -1}, Case{{1, 1, 5}, {0, 0, 1, 1, 2, 2}, 1.0 / 3, 2, -1},
        Case{{5, 1}, {1, 0}, 0.5, 1, -1}}) {
    const SortedColumns reference =
        SortedColumns::from_batch(ctx(), {c.ref.data(), c.ref.size(), 1});
    const KsResult r = ks_two_sample(ctx(), reference, {c.cur.data(), c.cur.size(), 1})[0];
    EXPECT_EQ(r.statistic, c.statistic);
    EXPECT_EQ(r.statistic_location, c.location);
    EXPECT_EQ(r.statistic_sign, c.sign);
  }
}

TEST_P(Ks, EmptyCurrentWindowGivesNaN) {
  const float ref[] = {1, 2, 3, 4};
  const SortedColumns reference = SortedColumns::from_batch(ctx(), {ref, 2, 2});
  const std::vector<KsResult> r = ks_two_sample(ctx(), reference, {nullptr, 0, 2});
  ASSERT_EQ(r.size(), 2u);
  for (const KsResult& x : r) {
    EXPECT_TRUE(std::isnan(x.statistic));
    EXPECT_EQ(x.n_reference, 2u);
    EXPECT_EQ(x.n_current, 0u);
  }
}

TEST_P(Ks, ChecksArguments) {
  const float values[] = {1, 2, 3, 4};
  const SortedColumns reference = SortedColumns::from_batch(ctx(), {values, 2, 2});
  EXPECT_THROW(ks_two_sample(ctx(), reference, {values, 4, 1}), InvalidInput);
  EXPECT_THROW(ks_two_sample(ctx(), reference, {nullptr, 2, 2}), InvalidInput);
  EXPECT_THROW(SortedColumns::from_batch(ctx(), {values, 4, 0}), InvalidInput);
  SortedColumns broken = reference;
  broken.offsets.back() += 1;
  EXPECT_THROW(ks_two_sample(ctx(), broken, {values, 2, 2}), InvalidInput);
  EXPECT_THROW(ks_two_sample(ctx(), reference, broken), InvalidInput);
  const SortedColumns one_feature = SortedColumns::from_batch(ctx(), {values, 4, 1});
  EXPECT_THROW(ks_two_sample(ctx(), reference, one_feature), InvalidInput);
  broken = reference;
  broken.nan_counts.pop_back();
  EXPECT_THROW(ks_two_sample(ctx(), broken, {values, 2, 2}), InvalidInput);
}

bool same_bits(double a, double b) {
  return std::bit_cast<std::uint64_t>(a) == std::bit_cast<std::uint64_t>(b);
}

void expect_same_results(const std::vector<KsResult>& a, const std::vector<KsResult>& b) {
  ASSERT_EQ(a.size(), b.size());
  for (std::size_t f = 0; f < a.size(); ++f) {
    SCOPED_TRACE(f);
    EXPECT_TRUE(same_bits(a[f].statistic, b[f].statistic));
    EXPECT_TRUE(same_bits(a[f].pvalue, b[f].pvalue));
    EXPECT_TRUE(same_bits(a[f].statistic_location, b[f].statistic_location));
    EXPECT_EQ(a[f].statistic_sign, b[f].statistic_sign);
    EXPECT_EQ(a[f].n_current, b[f].n_current);
    EXPECT_EQ(a[f].nan_current, b[f].nan_current);
  }
}

// A resident reference gives the results of its columns, call after call; on CUDA also for a
// table of more than 65535 features, which the device merges in two chunks (the second starts
// inside the uploaded values).
// Bits, sizes and NaN counts of two sorted layouts.
void expect_same_columns(const SortedColumns& a, const SortedColumns& b) {
  EXPECT_EQ(a.features, b.features);
  EXPECT_EQ(a.offsets, b.offsets);
  EXPECT_EQ(a.nan_counts, b.nan_counts);
  ASSERT_EQ(a.values.size(), b.values.size());
  if (a.values.empty()) return;  // memcmp may not be given their null data
  EXPECT_EQ(std::memcmp(a.values.data(), b.values.data(), a.values.size() * sizeof(float)), 0);
}

// Window after window sorted into one SortedColumns (its memory reused, as a monitor does), with
// raw-window KS calls in between that lease both of the context's key slots: each window equals
// its own from_batch, whatever the one before held (more values, fewer, none).
TEST_P(Ks, AssignFromBatchEqualsFromBatchWindowAfterWindow) {
  std::mt19937_64 rng(test_seed());
  const std::size_t features = 5;
  SortedColumns reused;
  for (const std::size_t rows : {4000, 9000, 1500, 0, 70000, 6000}) {
    SCOPED_TRACE(std::to_string(rows) + " rows");
    std::vector<float> data(rows * features);
    for (float& x : data) x = random_sample(1, static_cast<int>(rng() % 3), rng)[0];
    const BatchView window{data.data(), rows, features};
    reused.assign_from_batch(ctx(), window);
    const SortedColumns fresh = SortedColumns::from_batch(ctx(), window);
    expect_same_columns(reused, fresh);
    if (rows > 0) {
      expect_same_results(ks_two_sample(ctx(), window, window),
                          ks_two_sample(ctx(), fresh, window));
    }
  }
}

// A CPU context shared by threads (a service's request threads): calls that find the context's
// key memory leased take their own, so every result stays right.
TEST(KsKeyMemory, ConcurrentCallsOnOneContextStayCorrect) {
  Context shared(ContextOptions{.backend = Backend::Cpu, .cpu_threads = 2});
  std::mt19937_64 rng(test_seed());
  struct Work {
    std::vector<float> data;
    std::size_t rows;
    SortedColumns expected;
  };
  std::vector<Work> work;
  for (const std::size_t rows : {30000, 50000, 20000, 40000}) {
    Work w{std::vector<float>(rows * 3), rows, {}};
    for (float& x : w.data) x = random_sample(1, static_cast<int>(rng() % 3), rng)[0];
    Context own(ContextOptions{.backend = Backend::Cpu, .cpu_threads = 1});
    w.expected = SortedColumns::from_batch(own, {w.data.data(), rows, 3});
    work.push_back(std::move(w));
  }
  std::vector<int> wrong(work.size(), 0);
  std::vector<std::thread> threads;
  for (std::size_t t = 0; t < work.size(); ++t) {
    threads.emplace_back([&, t] {
      const Work& w = work[t];
      for (int round = 0; round < 20; ++round) {
        const SortedColumns got = SortedColumns::from_batch(shared, {w.data.data(), w.rows, 3});
        if (got.offsets != w.expected.offsets || got.values.size() != w.expected.values.size() ||
            std::memcmp(got.values.data(), w.expected.values.data(),
                        got.values.size() * sizeof(float)) != 0) {
          ++wrong[t];
        }
      }
    });
  }
  for (std::thread& t : threads) t.join();
  for (std::size_t t = 0; t < work.size(); ++t) EXPECT_EQ(wrong[t], 0) << "thread " << t;
}

TEST_P(Ks, ResidentReferenceEqualsItsColumns) {
  std::mt19937_64 rng(test_seed());
  for (const auto& [rows, features] : {std::pair<std::size_t, std::size_t>{4000, 6}, {3, 70000}}) {
    SCOPED_TRACE(features);
    std::vector<float> ref(rows * features), cur(rows * features);
    for (float& x : ref) x = random_sample(1, 2, rng)[0];
    for (float& x : cur) x = random_sample(1, 0, rng)[0];
    const SortedColumns columns = SortedColumns::from_batch(ctx(), {ref.data(), rows, features});
    ResidentReference resident(ctx(), columns);
    EXPECT_EQ(&resident.columns(), &columns);
    EXPECT_EQ(resident.device_values() != nullptr, GetParam() == Backend::Cuda);
    const std::vector<KsResult> expected =
        ks_two_sample(ctx(), columns, {cur.data(), rows, features});
    for (int call = 0; call < 2; ++call) {
      expect_same_results(ks_two_sample(ctx(), resident, {cur.data(), rows, features}), expected);
    }
    ResidentReference moved = std::move(resident);
    expect_same_results(ks_two_sample(ctx(), moved, {cur.data(), rows, features}), expected);
  }
}

// Raw windows (the reference sorted in the call, on CUDA kept on the device) give the results of
// the sorted reference: unequal sizes either way, ties, NaN, ±0, ±inf, empty windows, long
// columns (sorted device-wide one by one), and a table of more than 65535 features, which the
// device sorts and merges in two chunks.
TEST_P(Ks, RawWindowsEqualTheirSortedReference) {
  std::mt19937_64 rng(test_seed());
  SCOPED_TRACE("DRIFTGUARD_TEST_SEED=" + std::to_string(test_seed()));
  struct Shape {
    std::size_t reference_rows, current_rows, features;
  };
  for (const Shape& shape :
       {Shape{3000, 5000, 6}, Shape{5000, 700, 3}, Shape{70000, 90000, 3}, Shape{1, 1, 2},
        Shape{0, 40, 2}, Shape{40, 0, 2}, Shape{3, 2, 70000}}) {
    SCOPED_TRACE(std::to_string(shape.reference_rows) + " x " + std::to_string(shape.current_rows) +
                 " rows, " + std::to_string(shape.features) + " features");
    std::vector<float> ref(shape.reference_rows * shape.features);
    std::vector<float> cur(shape.current_rows * shape.features);
    for (float& x : ref) x = random_sample(1, 2, rng)[0];
    for (float& x : cur) x = random_sample(1, static_cast<int>(1 + rng() % 2), rng)[0];
    const BatchView reference{ref.data(), shape.reference_rows, shape.features};
    const BatchView current{cur.data(), shape.current_rows, shape.features};
    expect_same_results(ks_two_sample(ctx(), reference, current),
                        ks_two_sample(ctx(), SortedColumns::from_batch(ctx(), reference), current));
  }
  const std::vector<float> one{1.0f};
  EXPECT_THROW(ks_two_sample(ctx(), BatchView{one.data(), 1, 1}, BatchView{one.data(), 1, 2}),
               InvalidInput);
}

TEST_P(Ks, ResidentReferenceServesOnlyItsContext) {
  const std::vector<float> ref{1.0f, 2.0f, 3.0f}, cur{2.5f, 3.5f};
  const SortedColumns columns = SortedColumns::from_batch(ctx(), {ref.data(), 3, 1});
  const ResidentReference resident(ctx(), columns);
  Context other(ContextOptions{.backend = Backend::Cpu});
  EXPECT_THROW(ks_two_sample(other, resident, {cur.data(), 2, 1}), InvalidInput);
  EXPECT_THROW(ks_two_sample(ctx(), resident, {cur.data(), 1, 2}), InvalidInput);
  SortedColumns broken = columns;
  broken.offsets.back() = 7;
  EXPECT_THROW(ResidentReference(ctx(), broken), InvalidInput);
}

TEST(KsSortedColumns, CheckFindsBrokenColumns) {
  SortedColumns s{2, {1, 2, 0, 5}, {0, 2, 4}, {0, 0}};
  EXPECT_NO_THROW(s.check());
  s.values = {1, 2, 5, 0};
  EXPECT_THROW(s.check(), InvalidInput);  // second column descends
  s.values = {1, kNaN, 0, 5};
  EXPECT_THROW(s.check(), InvalidInput);
  s = SortedColumns{2, {1, 2, 0, 5}, {0, 3, 2}, {0, 0}};
  EXPECT_THROW(s.check(), InvalidInput);  // offsets decrease
  s = SortedColumns{2, {1, 2, 0, 5}, {0, 2}, {0, 0}};
  EXPECT_THROW(s.check(), InvalidInput);  // offsets too short
}

TEST(KsNames, ParseAndPrint) {
  for (KsMethod m : kMethods) EXPECT_EQ(parse_ks_method(to_string(m)), m);
  for (KsAlternative a : kAlternatives) EXPECT_EQ(parse_ks_alternative(to_string(a)), a);
  EXPECT_EQ(parse_ks_alternative("two-sided"), KsAlternative::TwoSided);
  for (const char* bad : {"", "Auto", "exact ", "asymptotic"}) {
    EXPECT_THROW(parse_ks_method(bad), InvalidInput) << bad;
  }
  for (const char* bad : {"", "two_sided", "Less", "g"}) {
    EXPECT_THROW(parse_ks_alternative(bad), InvalidInput) << bad;
  }
}

TEST(KsPvalue, ChecksArgumentsAndClosedForms) {
  EXPECT_THROW(ks_pvalue(0.5, 0, 3), InvalidInput);
  EXPECT_THROW(ks_pvalue(0.5, 3, 0), InvalidInput);
  EXPECT_THROW(ks_pvalue(1.5, 3, 3), InvalidInput);
  EXPECT_THROW(ks_pvalue(-0.1, 3, 3), InvalidInput);
  EXPECT_THROW(ks_pvalue(std::nan(""), 3, 3), InvalidInput);
  // D = 0 is never significant; complete separation of n and n values under the exact two-sided
  // law: p = 2 / binom(2n, n).
  EXPECT_EQ(ks_pvalue(0.0, 50, 70), 1.0);
  EXPECT_NEAR(ks_pvalue(1.0, 4, 4), 2.0 / 70.0, 1e-16);
  // Explicit exact with a huge lcm(n1, n2) is done by the asymptotic law, as in SciPy.
  KsMethod used = KsMethod::Auto;
  ks_pvalue(0.01, 1000003, 1000033, {KsMethod::Exact}, &used);
  EXPECT_EQ(used, KsMethod::Asymp);
  ks_pvalue(0.01, 10000, 10000, {}, &used);
  EXPECT_EQ(used, KsMethod::Exact);
  ks_pvalue(0.01, 10001, 5, {}, &used);
  EXPECT_EQ(used, KsMethod::Asymp);
}

// Host windows of about 100 MB each cross the CUDA backend's pinned staging (32 MiB pieces, two
// in flight) on every way in and out: from_batch's upload and its packed download (columns with
// NaN), a host reference's upload per call, ResidentReference's upload, the current window's and
// both raw windows'.
// Same bits as the CPU backend. (Smaller copies take the driver's staging.)
TEST_P(Ks, HostWindowsLargerThanTheStagingMatchTheCpu) {
  if (GetParam() != Backend::Cuda) GTEST_SKIP() << "pinned staging is a CUDA-backend path";
  std::mt19937_64 rng(test_seed());
  const std::size_t rows = (std::size_t{1} << 20) + 4097, features = 24;
  std::vector<float> ref(rows * features), cur(rows * features);
  for (std::size_t f = 0; f < features; ++f) {
    const std::vector<float> r = random_sample(rows, static_cast<int>(f % 3), rng);
    const std::vector<float> c = random_sample(rows, static_cast<int>((f + 1) % 3), rng);
    for (std::size_t i = 0; i < rows; ++i) {
      ref[i * features + f] = r[i];
      cur[i * features + f] = c[i];
    }
  }
  Context cpu(ContextOptions{.backend = Backend::Cpu});
  const SortedColumns on_gpu = SortedColumns::from_batch(ctx(), {ref.data(), rows, features});
  const SortedColumns on_cpu = SortedColumns::from_batch(cpu, {ref.data(), rows, features});
  ASSERT_GT(std::accumulate(on_cpu.nan_counts.begin(), on_cpu.nan_counts.end(), std::uint64_t{0}),
            0u);
  expect_same_columns(on_gpu, on_cpu);
  const std::vector<KsResult> expected = ks_two_sample(cpu, on_cpu, {cur.data(), rows, features});
  expect_same_results(ks_two_sample(ctx(), on_cpu, {cur.data(), rows, features}), expected);
  const ResidentReference resident(ctx(), on_cpu);
  expect_same_results(ks_two_sample(ctx(), resident, {cur.data(), rows, features}), expected);
  expect_same_results(
      ks_two_sample(ctx(), {ref.data(), rows, features}, {cur.data(), rows, features}), expected);
}

#ifdef DRIFTGUARD_TEST_CUDA_RUNTIME
// Device-resident batches take a different path (no staging): same bits as the CPU backend.
TEST_P(Ks, DeviceResidentBatchesMatchTheCpu) {
  if (GetParam() != Backend::Cuda) GTEST_SKIP() << "device batches are a CUDA-backend case";
  std::mt19937_64 rng(test_seed());
  const std::size_t rows = 5000, features = 5;
  std::vector<float> ref(rows * features), cur(rows * features);
  for (float& x : ref) x = random_sample(1, 2, rng)[0];
  for (float& x : cur) x = random_sample(1, 0, rng)[0];
  float* d_ref = nullptr;
  float* d_cur = nullptr;
  ASSERT_EQ(cudaMalloc(&d_ref, ref.size() * sizeof(float)), cudaSuccess);
  ASSERT_EQ(cudaMalloc(&d_cur, cur.size() * sizeof(float)), cudaSuccess);
  cudaMemcpy(d_ref, ref.data(), ref.size() * sizeof(float), cudaMemcpyHostToDevice);
  cudaMemcpy(d_cur, cur.data(), cur.size() * sizeof(float), cudaMemcpyHostToDevice);
  Context cpu(ContextOptions{.backend = Backend::Cpu});
  const SortedColumns on_gpu =
      SortedColumns::from_batch(ctx(), {d_ref, rows, features, MemorySpace::Device});
  const SortedColumns on_cpu = SortedColumns::from_batch(cpu, {ref.data(), rows, features});
  EXPECT_EQ(on_gpu.values, on_cpu.values);
  EXPECT_EQ(on_gpu.nan_counts, on_cpu.nan_counts);
  const auto gpu_results =
      ks_two_sample(ctx(), on_gpu, {d_cur, rows, features, MemorySpace::Device});
  const auto cpu_results = ks_two_sample(cpu, on_cpu, {cur.data(), rows, features});
  for (std::size_t f = 0; f < features; ++f) {
    EXPECT_EQ(gpu_results[f].statistic, cpu_results[f].statistic);
    EXPECT_EQ(gpu_results[f].pvalue, cpu_results[f].pvalue);
    EXPECT_EQ(gpu_results[f].statistic_location, cpu_results[f].statistic_location);
  }
  // Both windows raw on the device: the reference never leaves it.
  expect_same_results(ks_two_sample(ctx(), {d_ref, rows, features, MemorySpace::Device},
                                    {d_cur, rows, features, MemorySpace::Device}),
                      cpu_results);
  cudaFree(d_ref);
  cudaFree(d_cur);
}
#endif

DG_INSTANTIATE_BACKENDS(Ks);

}  // namespace
}  // namespace driftguard
