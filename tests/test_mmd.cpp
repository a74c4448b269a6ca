// MMD tests: a float64 brute force written from the definitions in mmd.hpp (full kernel matrix,
// permutations drawn with Random123 directly and sorted), golden values from alibi-detect's own
// code (tests/golden/make_mmd_golden.py), CPU against CUDA, seeds, and bad input.
#include <gtest/gtest.h>

#include <Random123/philox.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <fstream>
#include <functional>
#include <limits>
#include <nlohmann/json.hpp>
#include <optional>
#include <random>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

#include "backend_param.hpp"
#include "driftguard/errors.hpp"
#include "driftguard/mmd.hpp"
#include "golden.hpp"

namespace {

using namespace driftguard;
using driftguard::testing::BackendTest;

struct Window {
  std::vector<float> values;
  std::size_t rows = 0, features = 0;
  BatchView view() const { return {values.data(), rows, features, MemorySpace::Host}; }
  const float* row(std::size_t i) const { return values.data() + i * features; }
};

// Normal rows; `shift` is added to every feature.
Window normal_window(std::size_t rows, std::size_t features, double shift, std::uint64_t seed,
                     double scale = 1.0) {
  std::mt19937_64 engine(seed);
  std::normal_distribution<double> normal(shift, scale);
  Window w{std::vector<float>(rows * features), rows, features};
  for (float& v : w.values) v = static_cast<float>(normal(engine));
  return w;
}

double squared_distance(const float* a, const float* b, std::size_t d) {
  double sum = 0;
  for (std::size_t f = 0; f < d; ++f) {
    const double diff = static_cast<double>(a[f]) - static_cast<double>(b[f]);
    sum += diff * diff;
  }
  return sum;
}

// ---- Brute force from the definitions ----

// Lower median of all reference pair distances, by a full sort.
double brute_sigma(const Window& x) {
  std::vector<double> d;
  for (std::size_t i = 0; i < x.rows; ++i) {
    for (std::size_t j = i + 1; j < x.rows; ++j) {
      d.push_back(squared_distance(x.row(i), x.row(j), x.features));
    }
  }
  std::sort(d.begin(), d.end());
  return std::sqrt(0.5 * d[(d.size() - 1) / 2]);
}

// Pooled rows on the X side of permutation k: the n smallest (Philox key, row).
std::vector<bool> brute_split(std::uint64_t seed, std::uint32_t k, std::size_t n,
                              std::size_t total) {
  std::vector<std::pair<std::uint64_t, std::uint32_t>> keys;
  for (std::uint32_t row = 0; row < total; ++row) {
    const r123::Philox4x32::ctr_type ctr = {{row, k, 0, 0}};
    const r123::Philox4x32::key_type key = {
        {static_cast<std::uint32_t>(seed), static_cast<std::uint32_t>(seed >> 32)}};
    const auto out = r123::Philox4x32()(ctr, key);
    keys.emplace_back(out[0] | (std::uint64_t{out[1]} << 32), row);
  }
  std::sort(keys.begin(), keys.end());
  std::vector<bool> x_side(total, false);
  for (std::size_t t = 0; t < n; ++t) x_side[keys[t].second] = true;
  return x_side;
}

struct Brute {
  double sigma = 0, mmd2 = 0, scale = 0;
  std::vector<double> permuted;
  std::uint32_t exceed = 0;
  double threshold = 0;
};

// alibi's estimator over ordered pairs of the full kernel matrix, per split.
Brute brute_force(const Window& x, const Window& y, std::optional<double> sigma,
                  std::uint32_t permutations, std::uint64_t seed, double significance = 0.05) {
  const std::size_t n = x.rows, m = y.rows, total = n + m;
  Brute b;
  b.sigma = sigma ? *sigma : brute_sigma(x);
  const auto pooled = [&](std::size_t i) { return i < n ? x.row(i) : y.row(i - n); };
  std::vector<double> k(total * total, 0.0);
  for (std::size_t i = 0; i < total; ++i) {
    for (std::size_t j = 0; j < total; ++j) {
      if (i != j) {
        k[i * total + j] = std::exp(-squared_distance(pooled(i), pooled(j), x.features) /
                                    (2.0 * b.sigma * b.sigma));
      }
    }
  }
  const auto terms = [&](const std::vector<bool>& x_side) {
    double xx = 0, yy = 0, xy = 0;
    for (std::size_t i = 0; i < total; ++i) {
      for (std::size_t j = 0; j < total; ++j) {
        const double v = k[i * total + j];
        if (x_side[i] && x_side[j]) xx += v;
        if (!x_side[i] && !x_side[j]) yy += v;
        if (x_side[i] && !x_side[j]) xy += v;
      }
    }
    return std::array<double, 3>{xx / (n * (n - 1.0)), yy / (m * (m - 1.0)), 2.0 * xy / (n * m)};
  };
  std::vector<bool> observed(total, false);
  for (std::size_t i = 0; i < n; ++i) observed[i] = true;
  const auto obs = terms(observed);
  b.mmd2 = obs[0] + obs[1] - obs[2];
  b.scale = obs[0] + obs[1] + obs[2];
  for (std::uint32_t p = 0; p < permutations; ++p) {
    const auto t = terms(brute_split(seed, p, n, total));
    b.permuted.push_back(t[0] + t[1] - t[2]);
    b.exceed += b.permuted.back() >= b.mmd2 - kMmdTieTolerance * b.scale ? 1 : 0;
  }
  std::vector<double> sorted = b.permuted;
  std::sort(sorted.begin(), sorted.end(), std::greater<>());
  b.threshold = sorted[static_cast<std::size_t>(significance * permutations)];
  return b;
}

// Linear-time statistic from its definition.
MmdLinearResult brute_linear(const Window& x, const Window& y, std::optional<double> sigma) {
  const std::size_t pairs = std::min(x.rows, y.rows) / 2, d = x.features;
  MmdLinearResult r;
  if (sigma) {
    r.sigma = *sigma;
  } else {
    std::vector<double> dist;
    for (std::size_t i = 0; i < pairs; ++i) {
      dist.push_back(squared_distance(x.row(2 * i), x.row(2 * i + 1), d));
    }
    std::sort(dist.begin(), dist.end());
    r.sigma = std::sqrt(0.5 * dist[pairs / 2 - 1]);
  }
  const auto k = [&](const float* a, const float* b) {
    return std::exp(-squared_distance(a, b, d) / (2.0 * r.sigma * r.sigma));
  };
  std::vector<double> h;
  for (std::size_t i = 0; i < pairs; ++i) {
    h.push_back(k(x.row(2 * i), x.row(2 * i + 1)) + k(y.row(2 * i), y.row(2 * i + 1)) -
                k(x.row(2 * i), y.row(2 * i + 1)) - k(x.row(2 * i + 1), y.row(2 * i)));
  }
  double mean = 0, var = 0;
  for (double v : h) mean += v / static_cast<double>(pairs);
  for (double v : h) var += (v - mean) * (v - mean) / (static_cast<double>(pairs) - 1.0);
  r.mmd2 = mean;
  r.variance = var;
  r.z = mean / std::sqrt(var / static_cast<double>(pairs));
  r.pvalue = 0.5 * std::erfc(r.z / std::sqrt(2.0));
  r.pairs = pairs;
  return r;
}

double relative_error(double got, double want) {
  return std::fabs(got - want) / std::max(std::fabs(want), std::numeric_limits<double>::min());
}

// Both backends compute in float64; 1e-9 relative is the CPU's contract, CUDA's is 1e-6.
double tolerance(Backend backend) { return backend == Backend::Cpu ? 1e-9 : 1e-6; }

// ---- Brute force, both backends ----

class MmdTest : public BackendTest {};

struct BruteCase {
  const char* name;
  std::size_t n, m, d;
  double shift;
  std::optional<double> sigma;
  std::uint32_t permutations;
};

TEST_P(MmdTest, MatchesBruteForce) {
  const BruteCase cases[] = {
      {"single_tile", 10, 7, 3, 0.0, std::nullopt, 100},
      {"same", 70, 90, 5, 0.0, std::nullopt, 100},
      {"shifted", 100, 60, 4, 0.4, std::nullopt, 100},
      {"given_sigma_three_words", 64, 65, 9, 0.1, 1.5, 130},
      {"five_words_one_word_of_columns_past_the_last_pass", 50, 81, 2, 0.05, std::nullopt, 300},
      {"two_rows_each", 2, 2, 1, 0.0, std::nullopt, 7},
  };
  for (const BruteCase& c : cases) {
    SCOPED_TRACE(c.name);
    const Window x = normal_window(c.n, c.d, 0.0, c.n * 7 + c.d);
    const Window y = normal_window(c.m, c.d, c.shift, c.m * 13 + c.d);
    const std::uint64_t seed = 0x1234567890abcdefull + c.n;
    const Brute want = brute_force(x, y, c.sigma, c.permutations, seed);
    const MmdResult got =
        mmd_test(ctx(), x.view(), y.view(),
                 {.sigma = c.sigma, .permutations = c.permutations, .seed = seed});
    EXPECT_EQ(got.sigma, want.sigma);
    EXPECT_LT(std::fabs(got.mmd2 - want.mmd2), tolerance(GetParam()) * std::fabs(want.mmd2))
        << got.mmd2 << " vs " << want.mmd2;
    EXPECT_EQ(got.exceed_count, want.exceed);
    EXPECT_EQ(got.pvalue, (1.0 + want.exceed) / (1.0 + c.permutations));
    EXPECT_LT(relative_error(got.threshold, want.threshold), tolerance(GetParam()));
    EXPECT_EQ(got.permutations, c.permutations);
    EXPECT_EQ(got.n_reference, c.n);
    EXPECT_EQ(got.n_current, c.m);
  }
}

TEST_P(MmdTest, AlibiPValueIsTheFractionOfPermutations) {
  const Window x = normal_window(80, 3, 0.0, 1);
  const Window y = normal_window(80, 3, 0.0, 2);
  const MmdResult conservative = mmd_test(ctx(), x.view(), y.view(), {.seed = 5});
  const MmdResult alibi =
      mmd_test(ctx(), x.view(), y.view(), {.seed = 5, .pvalue = MmdOptions::PValue::Alibi});
  EXPECT_EQ(conservative.exceed_count, alibi.exceed_count);
  EXPECT_EQ(alibi.pvalue, alibi.exceed_count / 100.0);
  EXPECT_EQ(conservative.pvalue, (1.0 + alibi.exceed_count) / 101.0);
}

TEST_P(MmdTest, TiesInExactArithmeticCountOnEverySplit) {
  // One binary feature: a split's statistic depends only on how many 1s land on each side, so
  // many permuted statistics equal the observed one in exact arithmetic and differ from it only
  // by rounding in the order of their sums.
  Window x{std::vector<float>(40), 40, 1}, y{std::vector<float>(40), 40, 1};
  for (std::size_t i = 0; i < 40; ++i) {
    x.values[i] = i % 4 == 0 ? 1.0f : 0.0f;
    y.values[i] = i % 4 == 1 ? 1.0f : 0.0f;
  }
  const Brute want = brute_force(x, y, 1.0, 400, 99);
  std::size_t exact_ties = 0;
  for (double v : want.permuted) exact_ties += std::fabs(v - want.mmd2) < 1e-12 ? 1 : 0;
  ASSERT_GT(exact_ties, 10u) << "the case should tie";
  const MmdResult got =
      mmd_test(ctx(), x.view(), y.view(), {.sigma = 1.0, .permutations = 400, .seed = 99});
  EXPECT_EQ(got.exceed_count, want.exceed);
}

TEST_P(MmdTest, MedianHeuristicSubsamplesLargeReferences) {
  // Past kMedianMaxRows rows the median runs over rows floor(t n / kMedianMaxRows).
  const std::size_t n = kMedianMaxRows + 517;
  const Window x = normal_window(n, 2, 0.0, 3);
  const Window y = normal_window(5, 2, 0.0, 4);
  Window sample{{}, kMedianMaxRows, 2};
  for (std::uint64_t t = 0; t < kMedianMaxRows; ++t) {
    const float* row = x.row(t * n / kMedianMaxRows);
    sample.values.insert(sample.values.end(), row, row + 2);
  }
  std::vector<double> d;
  for (std::size_t i = 0; i < sample.rows; ++i) {
    for (std::size_t j = i + 1; j < sample.rows; ++j) {
      d.push_back(squared_distance(sample.row(i), sample.row(j), 2));
    }
  }
  const auto middle = d.begin() + static_cast<std::ptrdiff_t>((d.size() - 1) / 2);
  std::nth_element(d.begin(), middle, d.end());
  const MmdResult got = mmd_test(ctx(), x.view(), y.view(), {.permutations = 1});
  EXPECT_EQ(got.sigma, std::sqrt(0.5 * *middle));
}

TEST_P(MmdTest, PermutationsDependOnlyOnTheSeed) {
  const Window x = normal_window(150, 4, 0.0, 10);
  const Window y = normal_window(120, 4, 0.05, 11);
  const MmdResult a = mmd_test(ctx(), x.view(), y.view(), {.permutations = 200, .seed = 7});
  const MmdResult b = mmd_test(ctx(), x.view(), y.view(), {.permutations = 200, .seed = 7});
  EXPECT_EQ(a.mmd2, b.mmd2);
  EXPECT_EQ(a.exceed_count, b.exceed_count);
  EXPECT_EQ(a.threshold, b.threshold);
  // Under H0-like data the count is mid-range, so different seeds give different counts.
  const MmdResult c = mmd_test(ctx(), x.view(), y.view(), {.permutations = 200, .seed = 8});
  const MmdResult e = mmd_test(ctx(), x.view(), y.view(), {.permutations = 200, .seed = 9});
  EXPECT_EQ(c.mmd2, a.mmd2);
  EXPECT_TRUE(c.exceed_count != a.exceed_count || e.exceed_count != a.exceed_count);
  EXPECT_NE(c.threshold, a.threshold);
  // A single thread gives the same count (the statistic may differ in the last bits).
  Context one(ContextOptions{.backend = GetParam(), .cpu_threads = 1});
  const MmdResult f = mmd_test(one, x.view(), y.view(), {.permutations = 200, .seed = 7});
  EXPECT_EQ(f.exceed_count, a.exceed_count);
  EXPECT_LT(relative_error(f.mmd2, a.mmd2), 1e-12);
}

TEST_P(MmdTest, LinearMatchesItsDefinition) {
  for (const std::optional<double> sigma : {std::optional<double>{}, std::optional<double>{0.8}}) {
    const Window x = normal_window(1001, 6, 0.0, 21);
    const Window y = normal_window(700, 6, 0.15, 22);
    const MmdLinearResult want = brute_linear(x, y, sigma);
    const MmdLinearResult got = mmd_linear_test(ctx(), x.view(), y.view(), {.sigma = sigma});
    EXPECT_EQ(got.pairs, 350u);
    EXPECT_EQ(got.sigma, want.sigma);
    EXPECT_LT(relative_error(got.mmd2, want.mmd2), tolerance(GetParam()));
    EXPECT_LT(relative_error(got.variance, want.variance), tolerance(GetParam()));
    EXPECT_LT(relative_error(got.pvalue, want.pvalue), 1e3 * tolerance(GetParam()));
    EXPECT_EQ(got.n_reference, 1001u);
    EXPECT_EQ(got.n_current, 700u);
  }
}

TEST_P(MmdTest, LinearSeesAClearShift) {
  const Window x = normal_window(20000, 4, 0.0, 31);
  const Window same = normal_window(20000, 4, 0.0, 32);
  const Window shifted = normal_window(20000, 4, 0.5, 33);
  EXPECT_GT(mmd_linear_test(ctx(), x.view(), same.view()).pvalue, 1e-3);
  EXPECT_LT(mmd_linear_test(ctx(), x.view(), shifted.view()).pvalue, 1e-6);
}

TEST_P(MmdTest, RejectsBadInput) {
  const Window x = normal_window(20, 3, 0.0, 41);
  const Window y = normal_window(20, 3, 0.0, 42);
  const Window narrow = normal_window(20, 2, 0.0, 43);
  const Window one = normal_window(1, 3, 0.0, 44);
  EXPECT_THROW(mmd_test(ctx(), x.view(), narrow.view()), InvalidInput);
  EXPECT_THROW(mmd_test(ctx(), one.view(), y.view()), InvalidInput);
  EXPECT_THROW(mmd_test(ctx(), x.view(), one.view()), InvalidInput);
  EXPECT_THROW(mmd_linear_test(ctx(), x.view(), normal_window(3, 3, 0, 1).view()), InvalidInput);
  for (double sigma : {0.0, -1.0, std::numeric_limits<double>::infinity(),
                       std::numeric_limits<double>::quiet_NaN(), 1e-200}) {
    EXPECT_THROW(mmd_test(ctx(), x.view(), y.view(), {.sigma = sigma}), InvalidInput) << sigma;
    EXPECT_THROW(mmd_linear_test(ctx(), x.view(), y.view(), {.sigma = sigma}), InvalidInput);
  }
  EXPECT_THROW(mmd_test(ctx(), x.view(), y.view(), {.permutations = 0}), InvalidInput);
  EXPECT_THROW(mmd_test(ctx(), x.view(), y.view(), {.significance = 1.0}), InvalidInput);
  EXPECT_THROW(mmd_test(ctx(), x.view(), y.view(), {.significance = 0.0}), InvalidInput);
  EXPECT_THROW(mmd_test(ctx(), BatchView{nullptr, 5, 3}, y.view()), InvalidInput);

  // Rows with NaN or +-inf are rejected, naming the window and the row.
  for (float bad :
       {std::numeric_limits<float>::quiet_NaN(), -std::numeric_limits<float>::infinity()}) {
    Window poisoned = y;
    poisoned.values[13 * 3 + 1] = bad;
    try {
      mmd_test(ctx(), x.view(), poisoned.view());
      ADD_FAILURE() << "no throw";
    } catch (const InvalidInput& e) {
      EXPECT_NE(std::string(e.what()).find("current row 13"), std::string::npos) << e.what();
    }
    EXPECT_THROW(mmd_linear_test(ctx(), poisoned.view(), x.view()), InvalidInput);
  }
  // Identical rows: the median heuristic has nothing to work with.
  Window flat{std::vector<float>(30, 1.0f), 10, 3};
  EXPECT_THROW(mmd_test(ctx(), flat.view(), y.view()), InvalidInput);
  EXPECT_THROW(mmd_linear_test(ctx(), flat.view(), y.view()), InvalidInput);
}

DG_INSTANTIATE_BACKENDS(MmdTest);

TEST(MmdCpu, DeviceBatchesNeedTheCudaBackend) {
  Context cpu(ContextOptions{.backend = Backend::Cpu});
  const Window x = normal_window(10, 2, 0.0, 51);
  BatchView device = x.view();
  device.space = MemorySpace::Device;
  EXPECT_THROW(mmd_test(cpu, device, x.view()), InvalidInput);
  EXPECT_THROW(mmd_linear_test(cpu, x.view(), device), InvalidInput);
}

// ---- alibi-detect golden values ----

Window golden_window(const nlohmann::json& rows) {
  Window w;
  w.rows = rows.size();
  w.features = rows.at(0).size();
  for (const auto& row : rows) {
    for (const auto& v : row) {
      w.values.push_back(static_cast<float>(v.get<double>()));
      EXPECT_EQ(static_cast<double>(w.values.back()), v.get<double>()) << "not a float32 value";
    }
  }
  return w;
}

TEST_P(MmdTest, MatchesAlibiDetect) {
  const nlohmann::json& golden = driftguard::testing::golden("mmd_alibi.json");
  ASSERT_EQ(golden.at("tie_tolerance").get<double>(), kMmdTieTolerance);
  for (const auto& c : golden.at("cases")) {
    SCOPED_TRACE(c.at("name").get<std::string>());
    const Window x = golden_window(c.at("reference"));
    const Window y = golden_window(c.at("current"));
    const auto& perm = c.at("philox");
    MmdOptions options{.permutations = perm.at("permutations").get<std::uint32_t>(),
                       .seed = perm.at("seed").get<std::uint64_t>(),
                       .significance = perm.at("significance").get<double>()};
    if (!c.at("sigma_given").is_null()) options.sigma = c.at("sigma_given").get<double>();
    const MmdResult got = mmd_test(ctx(), x.view(), y.view(), options);
    // alibi forms distances as |x|^2 + |y|^2 - 2 x.y and keeps sigma as exp(log(sigma)): both
    // agree with driftguard's direct sums to ~1e-15.
    EXPECT_LT(relative_error(got.sigma, c.at("sigma").get<double>()), 1e-12);
    EXPECT_LT(relative_error(got.mmd2, c.at("mmd2").get<double>()), 1e-9)
        << got.mmd2 << " vs " << c.at("mmd2").get<double>();
    EXPECT_EQ(got.exceed_count, perm.at("exceed_count").get<std::uint32_t>());
    EXPECT_EQ(got.pvalue, perm.at("pvalue_conservative").get<double>());
    EXPECT_LT(relative_error(got.threshold, perm.at("threshold").get<double>()), 1e-9);
    options.pvalue = MmdOptions::PValue::Alibi;
    EXPECT_EQ(mmd_test(ctx(), x.view(), y.view(), options).pvalue,
              perm.at("pvalue_alibi").get<double>());

    for (const char* key : {"linear", "linear_sigma_1"}) {
      if (!c.contains(key)) continue;
      SCOPED_TRACE(key);
      const auto& want = c.at(key);
      const MmdLinearOptions linear_options{
          .sigma = std::string(key) == "linear" ? std::nullopt : std::optional<double>(1.0)};
      const MmdLinearResult lin = mmd_linear_test(ctx(), x.view(), y.view(), linear_options);
      EXPECT_EQ(lin.pairs, want.at("pairs").get<std::uint64_t>());
      EXPECT_LT(relative_error(lin.sigma, want.at("sigma").get<double>()), 1e-12);
      EXPECT_LT(relative_error(lin.mmd2, want.at("mmd2").get<double>()), 1e-9);
      EXPECT_LT(relative_error(lin.variance, want.at("variance").get<double>()), 1e-9);
      EXPECT_LT(relative_error(lin.pvalue, want.at("pvalue").get<double>()), 1e-8);
    }
  }
}

// ---- CPU against CUDA ----

TEST(MmdParity, CudaMatchesCpu) {
  if (cuda_device_count() == 0) {
    GTEST_SKIP() << (cuda_compiled() ? "no CUDA device on this machine" : "built without CUDA");
  }
  Context cpu(ContextOptions{.backend = Backend::Cpu});
  Context gpu(ContextOptions{.backend = Backend::Cuda});
  struct Case {
    std::size_t n, m, d;
    double shift;
    std::uint32_t permutations;
  };
  for (const Case c :
       {Case{700, 650, 20, 0.0, 100}, Case{1500, 1300, 3, 0.02, 257}, Case{300, 200, 300, 0.0, 64},
        Case{kMedianMaxRows + 100, 900, 8, 0.0, 100}}) {
    SCOPED_TRACE(std::to_string(c.n) + "x" + std::to_string(c.d));
    const Window x = normal_window(c.n, c.d, 0.0, c.n);
    const Window y = normal_window(c.m, c.d, c.shift, c.m + 1);
    for (std::uint64_t seed : {0ull, 42ull}) {
      const MmdOptions options{.permutations = c.permutations, .seed = seed};
      const MmdResult a = mmd_test(cpu, x.view(), y.view(), options);
      const MmdResult b = mmd_test(gpu, x.view(), y.view(), options);
      EXPECT_EQ(b.sigma, a.sigma);  // the same distances, rounded as written, on both
      EXPECT_LT(relative_error(b.mmd2, a.mmd2), 1e-6);
      EXPECT_EQ(b.exceed_count, a.exceed_count);
      EXPECT_EQ(b.pvalue, a.pvalue);
      EXPECT_LT(relative_error(b.threshold, a.threshold), 1e-6);
    }
    const MmdLinearResult la = mmd_linear_test(cpu, x.view(), y.view());
    const MmdLinearResult lb = mmd_linear_test(gpu, x.view(), y.view());
    EXPECT_EQ(lb.sigma, la.sigma);
    EXPECT_LT(relative_error(lb.mmd2, la.mmd2), 1e-6);
    EXPECT_LT(relative_error(lb.pvalue, la.pvalue), 1e-6);
  }
}

}  // namespace
