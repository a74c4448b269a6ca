// Binning policies and PSI: closed forms and hand-made counts, plus two golden files made by
// tests/golden/make_psi_golden.py (the real evidently package) and
// tests/golden/make_psi_quantile_golden.py (NumPy, written from the definitions).
#include <gtest/gtest.h>

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <limits>
#include <nlohmann/json.hpp>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "command.hpp"
#include "driftguard/binning.hpp"
#include "driftguard/context.hpp"
#include "driftguard/errors.hpp"
#include "driftguard/hdf5_io.hpp"
#include "driftguard/histogram.hpp"
#include "driftguard/ks.hpp"
#include "driftguard/monitor.hpp"
#include "driftguard/profile.hpp"
#include "driftguard/psi.hpp"
#include "driftguard/schema.hpp"
#include "golden.hpp"

namespace driftguard {
namespace {

using Slots = std::vector<std::uint64_t>;
constexpr float kNaN = std::numeric_limits<float>::quiet_NaN();
constexpr float kInf = std::numeric_limits<float>::infinity();

double term(double r, double c) { return (c - r) * std::log(c / r); }

// ---- PSI on hand-made slots: [underflow | bins... | overflow | missing] ----

TEST(Psi, ClosedFormOverBins) {
  const Slots ref = {0, 50, 30, 20, 0, 0};
  const Slots cur = {0, 30, 30, 40, 0, 0};
  const double expected = term(0.5, 0.3) + term(0.3, 0.3) + term(0.2, 0.4);
  EXPECT_NEAR(psi(ref, cur), expected, 1e-15);
  EXPECT_DOUBLE_EQ(psi(ref, ref), 0.0);
  // Symmetric in the two windows.
  EXPECT_NEAR(psi(cur, ref), expected, 1e-15);
}

TEST(Psi, MergeOuterFoldsUnderflowAndOverflowIntoTheEndBins) {
  const Slots ref = {10, 40, 30, 10, 10, 0};
  const Slots cur = {0, 30, 30, 20, 20, 0};
  EXPECT_NEAR(psi(ref, cur), term(0.5, 0.3) + term(0.3, 0.3) + term(0.2, 0.4), 1e-15);

  // Kept apart, the outer slots are bins of their own; the empty current underflow takes epsilon.
  const PsiOptions apart{.merge_outer = false};
  const double expected =
      term(0.1, 1e-4) + term(0.4, 0.3) + term(0.3, 0.3) + term(0.1, 0.2) + term(0.1, 0.2);
  EXPECT_NEAR(psi(ref, cur, apart), expected, 1e-15);
}

TEST(Psi, CategoricalOtherIsAlwaysItsOwnBin) {
  // New codes in the current window land in "other" (the overflow slot).
  const Slots ref = {0, 50, 50, 0, 0};
  const Slots cur = {0, 40, 40, 20, 0};
  const double own_bin = 2 * term(0.5, 0.4) + term(1e-4, 0.2);
  EXPECT_NEAR(psi(ref, cur, {}, FeatureKind::Categorical), own_bin, 1e-15);
  EXPECT_NEAR(psi(ref, cur, {.merge_outer = false}, FeatureKind::Categorical), own_bin, 1e-15);
  // Read as numeric, the overflow would be folded into the last bin.
  EXPECT_NEAR(psi(ref, cur), term(0.5, 0.4) + term(0.5, 0.6), 1e-15);
}

TEST(Psi, MissingSlotIsABinOnlyWhenIncluded) {
  const Slots ref = {0, 45, 45, 0, 10};
  const Slots cur = {0, 40, 40, 0, 20};
  EXPECT_NEAR(psi(ref, cur), 2 * term(0.45, 0.4) + term(0.1, 0.2), 1e-15);
  // Without it, the totals are the counted values only.
  EXPECT_NEAR(psi(ref, cur, {.include_missing = false}), 0.0, 1e-15);
}

TEST(Psi, EpsilonRule) {
  // Empty in one window: epsilon stands in. Empty in both: no term.
  const Slots ref = {0, 100, 0, 0, 0, 0};
  const Slots cur = {0, 50, 50, 0, 0, 0};
  const double expected = term(1.0, 0.5) + term(1e-4, 0.5);
  EXPECT_NEAR(psi(ref, cur), expected, 1e-15);
  EXPECT_NEAR(psi(ref, cur, {.epsilon = 1e-3}), term(1.0, 0.5) + term(1e-3, 0.5), 1e-15);
}

TEST(Psi, EvidentlyRuleFillsEachWindowSeparately) {
  const PsiOptions options = evidently_psi_options();
  EXPECT_TRUE(options.merge_outer);
  EXPECT_FALSE(options.include_missing);
  EXPECT_EQ(options.empty_bins, EmptyBins::Evidently);

  // Smallest shares above 1e-4: zeros become 1e-4 in both windows, so a bin empty in both adds 0.
  const Slots ref = {0, 60, 40, 0, 0, 0};
  const Slots cur = {0, 50, 0, 0, 50, 0};
  EXPECT_NEAR(psi(ref, cur, options), term(0.6, 0.5) + term(0.4, 1e-4) + term(1e-4, 0.5), 1e-15);

  // A share <= 1e-4 makes that window's fill min / 1e6; a bin empty in both windows then counts.
  const Slots big = {0, 19999, 1, 0, 0, 0, 0};
  const Slots small = {0, 70, 0, 30, 0, 0, 0};
  const double fill = (1.0 / 20000) / 1e6;
  const double expected =
      term(19999.0 / 20000, 0.7) + term(1.0 / 20000, 1e-4) + term(fill, 0.3) + term(fill, 1e-4);
  EXPECT_NEAR(psi(big, small, options), expected, 1e-14);
}

TEST(Psi, EmptyCatchAllSlotsNeverAddATerm) {
  // With the evidently fill an empty bin adds a term; an empty outer or missing slot must not.
  const Slots ref = {0, 19999, 1, 0, 0};
  const Slots cur = {0, 70, 30, 0, 0};
  PsiOptions options = evidently_psi_options();
  const double merged = psi(ref, cur, options);
  options.merge_outer = false;
  options.include_missing = true;
  EXPECT_DOUBLE_EQ(psi(ref, cur, options), merged);
  EXPECT_DOUBLE_EQ(psi(ref, cur, options, FeatureKind::Categorical), merged);
}

TEST(Psi, NaNOnlyWhenAWindowIsEmpty) {
  const Slots ref = {0, 10, 10, 0, 0};
  EXPECT_TRUE(std::isnan(psi(ref, Slots{0, 0, 0, 0, 0})));
  EXPECT_TRUE(std::isnan(psi(Slots{0, 0, 0, 0, 0}, ref)));
  const Slots only_missing = {0, 0, 0, 0, 7};
  EXPECT_NEAR(psi(ref, only_missing), 2 * term(0.5, 1e-4) + term(1e-4, 1.0), 1e-13);
  // Without a missing bin a window of missing values has every proportion 0: filled, so a
  // feature that empties out is far from the reference rather than "no drift" (it was NaN,
  // which read as stable). evidently's fill is 1e-4 when a window has no nonzero proportion.
  const double emptied = 2 * term(0.5, 1e-4);
  EXPECT_NEAR(psi(ref, only_missing, {.include_missing = false}), emptied, 1e-13);
  EXPECT_NEAR(psi(only_missing, ref, {.include_missing = false}), emptied, 1e-13);
  EXPECT_NEAR(psi(ref, only_missing, evidently_psi_options()), emptied, 1e-13);
  EXPECT_GE(psi_band(emptied), PsiBand::Significant);
  // Both windows without a value outside the missing slot: nothing moved.
  EXPECT_EQ(psi(only_missing, only_missing, {.include_missing = false}), 0.0);
  EXPECT_EQ(psi(only_missing, Slots{0, 0, 0, 0, 3}, evidently_psi_options()), 0.0);
}

TEST(Psi, RejectsBadArguments) {
  EXPECT_THROW(psi(Slots{0, 1, 0, 0}, Slots{0, 1, 0, 0, 0}), InvalidInput);
  EXPECT_THROW(psi(Slots{1, 0, 0}, Slots{1, 0, 0}), InvalidInput);
  const Slots s = {0, 1, 1, 0, 0};
  EXPECT_THROW(psi(s, s, {.epsilon = 0}), InvalidInput);
  EXPECT_THROW(psi(s, s, {.epsilon = std::nan("")}), InvalidInput);
  EXPECT_NO_THROW(psi(s, s, {.empty_bins = EmptyBins::Evidently, .epsilon = 0}));
  // Counts adding up to 2^64 (here in an outer slot merged into a bin): refused, not wrapped.
  const std::uint64_t half = std::uint64_t{1} << 63;
  EXPECT_THROW(psi(Slots{half, half, 2, 0, 0}, Slots{0, 1, 1, 0, 0}), InvalidInput);
  EXPECT_THROW(psi(Slots{0, 1, 1, 0, 0}, Slots{0, half, half, 0, 0}), InvalidInput);
}

TEST(Psi, BandsIncludeTheirLowerBoundary) {
  EXPECT_EQ(psi_band(0.0), PsiBand::Stable);
  EXPECT_EQ(psi_band(std::nextafter(0.1, 0.0)), PsiBand::Stable);
  EXPECT_EQ(psi_band(0.1), PsiBand::Moderate);
  EXPECT_EQ(psi_band(std::nextafter(0.25, 0.0)), PsiBand::Moderate);
  EXPECT_EQ(psi_band(0.25), PsiBand::Significant);
  EXPECT_EQ(psi_band(std::numeric_limits<double>::infinity()), PsiBand::Significant);
  EXPECT_EQ(psi_band(std::nan("")), PsiBand::Stable);
  const PsiBands custom{.moderate = 0.05, .significant = 0.5};
  EXPECT_EQ(psi_band(0.05, custom), PsiBand::Moderate);
  EXPECT_EQ(psi_band(0.3, custom), PsiBand::Moderate);
}

TEST(Psi, NamesRoundTrip) {
  for (PsiBand band : {PsiBand::Stable, PsiBand::Moderate, PsiBand::Significant}) {
    EXPECT_EQ(parse_psi_band(to_string(band)), band);
  }
  EXPECT_EQ(to_string(PsiBand::Significant), "significant");
  EXPECT_THROW(parse_psi_band("Moderate"), InvalidInput);
  for (EmptyBins rule : {EmptyBins::Epsilon, EmptyBins::Evidently}) {
    EXPECT_EQ(parse_empty_bins(to_string(rule)), rule);
  }
  EXPECT_THROW(parse_empty_bins("zero"), InvalidInput);
  for (BinningPolicy policy : {BinningPolicy::Quantile, BinningPolicy::EqualWidth,
                               BinningPolicy::Fixed, BinningPolicy::Evidently}) {
    EXPECT_EQ(parse_binning_policy(to_string(policy)), policy);
  }
  EXPECT_EQ(to_string(BinningPolicy::EqualWidth), "equal_width");
  EXPECT_THROW(parse_binning_policy("equal-width"), InvalidInput);
  EXPECT_THROW(parse_binning_policy(""), InvalidInput);
}

// ---- Edges ----

TEST(BinningEdges, QuantileInterpolatesLikeNumPy) {
  // 50 zeros and 50 ones: q = 0.5 sits halfway between ranks 49 and 50; the others land on a tie.
  std::vector<float> values(100, 0.0f);
  std::fill(values.begin() + 50, values.end(), 1.0f);
  EXPECT_EQ(quantile_edges(values, 10), (std::vector<double>{0.0, 0.5, 1.0}));
  // Order, NaN and infinities do not matter.
  std::vector<float> noisy = {1.0f, kNaN, 0.0f, kInf, -kInf};
  noisy.insert(noisy.end(), values.begin() + 1, values.end() - 1);
  EXPECT_EQ(quantile_edges(noisy, 10), (std::vector<double>{0.0, 0.5, 1.0}));
  EXPECT_EQ(quantile_edges(std::vector<float>{3.0f, 1.0f, 2.0f, 0.0f}, 3),
            (std::vector<double>{0.0, 1.0, 2.0, 3.0}));
}

TEST(BinningEdges, HeavyTiesMergeQuantileBins) {
  std::vector<float> values(95, 7.0f);
  values.insert(values.end(), 5, 8.0f);
  EXPECT_EQ(quantile_edges(values, 10), (std::vector<double>{7.0, 8.0}));
}

TEST(BinningEdges, ConstantColumnGetsOneUnitBin) {
  const std::vector<double> expected = {2.0, 3.0};
  EXPECT_EQ(quantile_edges(std::vector<float>(10, 2.5f), 10), expected);
  EXPECT_EQ(quantile_edges(std::vector<float>{2.5f, kNaN}, 10), expected);
  EXPECT_EQ(equal_width_edges(2.5, 2.5, 10), expected);
  EXPECT_EQ(sturges_edges(100, 2.5, 2.5), expected);
  // Past 2^52 half a unit is below the doubles' spacing (NumPy fails there): the neighbouring
  // doubles hold the value, and the edges stay strictly increasing (found by differential testing:
  // a reference column of one value 4e28 failed the whole scan).
  for (const float huge : {4.0255950e28f, -3e38f, 9007199254740993.0f, 1.8e19f}) {
    const std::vector<double> edges = quantile_edges(std::vector<float>{huge, kNaN, huge}, 10);
    ASSERT_EQ(edges.size(), 2u);
    EXPECT_LT(edges[0], static_cast<double>(huge));
    EXPECT_GT(edges[1], static_cast<double>(huge));
    EXPECT_EQ(equal_width_edges(huge, huge, 10), edges);
    HistogramSpec spec;
    EXPECT_NO_THROW(spec.add_numeric(edges));
  }
}

TEST(BinningEdges, EqualWidthAndSturges) {
  EXPECT_EQ(equal_width_edges(0.0, 1.0, 4), (std::vector<double>{0.0, 0.25, 0.5, 0.75, 1.0}));
  EXPECT_EQ(equal_width_edges(-3.0, 5.0, 1), (std::vector<double>{-3.0, 5.0}));
  // 1000 values: log2(1000) + 1 = 10.97 -> 11 bins of width 1 over [0, 11].
  std::vector<double> eleven;
  for (int i = 0; i <= 11; ++i) eleven.push_back(i);
  EXPECT_EQ(sturges_edges(1000, 0.0, 11.0), eleven);
  // NumPy's edges for an empty array.
  EXPECT_EQ(sturges_edges(0, 0.0, 0.0), (std::vector<double>{0.0, 1.0}));
}

TEST(BinningEdges, RejectBadArguments) {
  EXPECT_THROW(quantile_edges(std::vector<float>{1.0f, 2.0f}, 0), InvalidInput);
  EXPECT_THROW(quantile_edges(std::vector<float>{kNaN, kInf}, 10), InvalidInput);
  EXPECT_THROW(quantile_edges(std::vector<float>{}, 10), InvalidInput);
  EXPECT_THROW(equal_width_edges(0.0, 1.0, 0), InvalidInput);
  EXPECT_THROW(equal_width_edges(1.0, 0.0, 5), InvalidInput);
  EXPECT_THROW(equal_width_edges(0.0, std::nan(""), 5), InvalidInput);
  EXPECT_THROW(equal_width_edges(1.0, std::nextafter(1.0, 2.0), 10), InvalidInput);
  EXPECT_THROW(sturges_edges(10, 0.0, std::numeric_limits<double>::infinity()), InvalidInput);
}

// ---- Column statistics ----

TEST(BinningColumnStats, ObserveIgnoresNonFiniteAndKeepsSortedDistinct) {
  ColumnStats stats;
  for (float v : {3.0f, kNaN, -1.0f, kInf, 3.0f, 2.0f, -kInf}) stats.observe(v);
  EXPECT_EQ(stats.count, 4u);
  EXPECT_EQ(stats.min, -1.0);
  EXPECT_EQ(stats.max, 3.0);
  EXPECT_EQ(stats.distinct, (std::vector<double>{-1.0, 2.0, 3.0}));
  EXPECT_EQ(stats.distinct_count(), 3u);
  EXPECT_FALSE(stats.too_many_distinct);
}

TEST(BinningColumnStats, TooManyDistinctAndMerge) {
  ColumnStats low, high;
  for (std::size_t i = 0; i < ColumnStats::kMaxDistinct; ++i) low.observe(static_cast<float>(i));
  EXPECT_FALSE(low.too_many_distinct);
  ColumnStats one_more = low;
  one_more.observe(-1.0f);
  EXPECT_TRUE(one_more.too_many_distinct);
  EXPECT_EQ(one_more.count, ColumnStats::kMaxDistinct + 1);
  EXPECT_EQ(one_more.min, -1.0);

  high.observe(5.0f);
  high.observe(1e6f);
  ColumnStats merged = low;
  merged.merge(high);
  EXPECT_TRUE(merged.too_many_distinct);  // 4096 + one new value
  EXPECT_EQ(merged.count, ColumnStats::kMaxDistinct + 2);
  EXPECT_EQ(merged.max, 1e6);

  ColumnStats small;
  small.merge(high);
  small.merge(ColumnStats{});
  EXPECT_EQ(small.distinct, (std::vector<double>{5.0, 1e6}));
  EXPECT_EQ(small.min, 5.0);
  small.merge(one_more);
  EXPECT_TRUE(small.too_many_distinct);
}

TEST(BinningColumnStats, ObserveColumnsMatchesPerValueObserve) {
  // Large enough to run multi-threaded.
  constexpr std::size_t rows = 50000, features = 3;
  std::mt19937 gen(7);
  std::normal_distribution<float> normal;
  std::uniform_int_distribution<int> code(0, 9);
  std::vector<float> data(rows * features);
  std::vector<ColumnStats> expected(features);
  for (std::size_t r = 0; r < rows; ++r) {
    const float row[features] = {normal(gen), static_cast<float>(code(gen)),
                                 r % 97 == 0 ? kNaN : normal(gen) * 100};
    for (std::size_t f = 0; f < features; ++f) {
      data[r * features + f] = row[f];
      expected[f].observe(row[f]);
    }
  }
  std::vector<ColumnStats> stats(features);
  observe_columns(BatchView{data.data(), rows, features}, stats);
  for (std::size_t f = 0; f < features; ++f) {
    EXPECT_EQ(stats[f].count, expected[f].count) << f;
    EXPECT_EQ(stats[f].min, expected[f].min) << f;
    EXPECT_EQ(stats[f].max, expected[f].max) << f;
    EXPECT_EQ(stats[f].too_many_distinct, expected[f].too_many_distinct) << f;
    EXPECT_EQ(stats[f].distinct, expected[f].distinct) << f;
  }
  EXPECT_EQ(stats[1].distinct_count(), 10u);

  std::vector<ColumnStats> wrong(features - 1);
  EXPECT_THROW(observe_columns(BatchView{data.data(), rows, features}, wrong), InvalidInput);
  EXPECT_THROW(observe_columns(BatchView{data.data(), rows, features, MemorySpace::Device}, stats),
               InvalidInput);
}

// ---- Histogram specs ----

// Named fields only; designated initializers would leave GCC 12 warning about the vectors.
FeatureSpec feature(std::string name, FeatureKind kind = FeatureKind::Numeric,
                    std::vector<std::int64_t> categories = {}, std::vector<double> edges = {}) {
  FeatureSpec spec;
  spec.name = std::move(name);
  spec.kind = kind;
  spec.categories = std::move(categories);
  spec.bin_edges = std::move(edges);
  return spec;
}

std::vector<ColumnStats> stats_of(const std::vector<std::vector<float>>& columns) {
  std::vector<ColumnStats> stats(columns.size());
  for (std::size_t f = 0; f < columns.size(); ++f) {
    for (float v : columns[f]) stats[f].observe(v);
  }
  return stats;
}

std::vector<double> points(const HistogramSpec& spec, std::size_t f) {
  const auto p = spec.points_of(f);
  return {p.begin(), p.end()};
}

TEST(BinningSpec, CategoricalCodesAreSchemaPlusReference) {
  const Schema schema{{feature("grade", FeatureKind::Categorical, {3, 1, 2})}};
  const std::vector<std::vector<float>> ref = {{1.0f, 4.0f, kNaN, 4.0f}};
  for (BinningPolicy policy :
       {BinningPolicy::Quantile, BinningPolicy::EqualWidth, BinningPolicy::Fixed}) {
    const HistogramSpec spec =
        build_histogram_spec(schema, {.policy = policy}, ref, stats_of(ref), nullptr);
    ASSERT_EQ(spec.features(), 1u);
    EXPECT_EQ(spec.categorical[0], 1);
    EXPECT_EQ(points(spec, 0), (std::vector<double>{1, 2, 3, 4}));
  }
}

TEST(BinningSpec, EvidentlyBinsByValueOrSturges) {
  const Schema schema{
      {feature("grade", FeatureKind::Categorical, {1, 2, 3, 9}), feature("few"), feature("many")}};
  std::vector<std::vector<float>> ref = {{1, 2, 2}, {0.5f, 1.5f, 0.5f}, {}};
  std::vector<std::vector<float>> cur = {{2, 5}, {7, kNaN}, {}};
  for (int i = 0; i < 21; ++i) ref[2].push_back(static_cast<float>(i));
  cur[2] = {-10.0f, 30.0f};
  const std::vector<ColumnStats> cur_stats = stats_of(cur);
  const HistogramSpec spec = build_histogram_spec(schema, {.policy = BinningPolicy::Evidently},
                                                  SortedColumns{}, stats_of(ref), &cur_stats);
  ASSERT_EQ(spec.features(), 3u);
  // Values of either window; the schema's unseen codes 3 and 9 are left out.
  EXPECT_EQ(spec.categorical[0], 1);
  EXPECT_EQ(points(spec, 0), (std::vector<double>{1, 2, 5}));
  // At most 20 distinct reference values: bins by value, as evidently's value counts.
  EXPECT_EQ(spec.categorical[1], 1);
  EXPECT_EQ(points(spec, 1), (std::vector<double>{0.5, 1.5, 7}));
  // 21 distinct: Sturges over the 23 pooled values on [-10, 30].
  EXPECT_EQ(spec.categorical[2], 0);
  EXPECT_EQ(points(spec, 2), sturges_edges(23, -10.0, 30.0));
  EXPECT_EQ(spec.bins(2), 6u);

  EXPECT_THROW(build_histogram_spec(schema, {.policy = BinningPolicy::Evidently}, SortedColumns{},
                                    stats_of(ref), nullptr),
               InvalidInput);
}

void expect_invalid_naming(const std::function<void()>& call, const std::string& name) {
  try {
    call();
    ADD_FAILURE() << "no InvalidInput";
  } catch (const InvalidInput& e) {
    EXPECT_NE(std::string(e.what()).find("'" + name + "'"), std::string::npos) << e.what();
  }
}

// A reference column with no finite value does not stop the scan: one bin holds every finite
// float, so PSI weighs the missing shares, and a current window with values there drifts.
TEST(BinningSpec, ReferenceWithoutFiniteValuesGetsOneBinForEveryFiniteFloat) {
  const Schema numeric{{feature("amount")}};
  const std::vector<float> nothing_finite = {kNaN, kInf, -kInf, kNaN};
  const std::vector<double> whole = {std::numeric_limits<float>::lowest(),
                                     std::numeric_limits<float>::max()};
  for (BinningPolicy policy : {BinningPolicy::Quantile, BinningPolicy::EqualWidth}) {
    const HistogramSpec spec = build_histogram_spec(numeric, {.policy = policy}, {nothing_finite},
                                                    stats_of({nothing_finite}), nullptr);
    EXPECT_EQ(points(spec, 0), whole) << to_string(policy);
    EXPECT_NO_THROW(spec.check());
  }
}

TEST(BinningSpec, RejectsWhatAPolicyCannotBin) {
  std::vector<float> wide;
  for (std::size_t i = 0; i <= ColumnStats::kMaxDistinct; ++i) wide.push_back(0.25f * i);
  const Schema categorical{{feature("code", FeatureKind::Categorical)}};
  expect_invalid_naming(
      [&] { build_histogram_spec(categorical, {}, {wide}, stats_of({wide}), nullptr); }, "code");
  // evidently: few reference values, but too many current ones to key bins by value.
  const Schema numeric{{feature("amount")}};
  const std::vector<ColumnStats> cur = stats_of({wide});
  expect_invalid_naming(
      [&] {
        build_histogram_spec(numeric, {.policy = BinningPolicy::Evidently}, SortedColumns{},
                             stats_of({{1.0f}}), &cur);
      },
      "amount");
  expect_invalid_naming(
      [&] {
        build_histogram_spec(numeric, {.policy = BinningPolicy::Fixed}, SortedColumns{},
                             stats_of({{1.0f}}), nullptr);
      },
      "amount");
  EXPECT_THROW(build_histogram_spec(numeric, {.bins = 0}, std::vector<std::vector<float>>{{1.0f}},
                                    stats_of({{1.0f}}), nullptr),
               InvalidInput);
  EXPECT_THROW(build_histogram_spec(numeric, {}, SortedColumns{}, stats_of({{1.0f}}), nullptr),
               InvalidInput);

  const Schema fixed{{feature("amount", FeatureKind::Numeric, {}, {0, 10, 100})}};
  const HistogramSpec spec = build_histogram_spec(fixed, {.policy = BinningPolicy::Fixed},
                                                  SortedColumns{}, stats_of({{1.0f}}), nullptr);
  EXPECT_EQ(points(spec, 0), (std::vector<double>{0, 10, 100}));
}

// ---- Sorted fast paths: equal to the paths over values in any order ----

std::vector<std::uint64_t> bits(std::span<const double> values) {
  std::vector<std::uint64_t> out;
  for (double v : values) out.push_back(std::bit_cast<std::uint64_t>(v));
  return out;
}

// Columns in file order, with NaN, +-Inf, ties, few and many (> kMaxDistinct) distinct values, a
// single value, nothing finite. No -0.0: where -0.0 and +0.0 tie, which one a path keeps depends
// on the order it reads them (see ZerosOfEitherSign).
std::vector<std::vector<float>> awkward_columns() {
  std::mt19937 gen(2024);
  std::normal_distribution<float> normal;
  const auto noisy = [&](std::size_t n, const std::function<float()>& value) {
    std::vector<float> column;
    for (std::size_t i = 0; i < n; ++i) {
      const auto u = gen() % 100;
      column.push_back(u < 5 ? kNaN : u < 7 ? kInf : u < 9 ? -kInf : value());
    }
    return column;
  };
  std::vector<std::vector<float>> columns;
  for (std::size_t n : {1, 2, 3, 7, 100, 1000, 20000}) {
    columns.push_back(noisy(n, [&] { return normal(gen); }));
    columns.push_back(noisy(n, [&] { return std::round(normal(gen) * 4.0f) / 4.0f + 0.0f; }));
    columns.push_back(noisy(n, [&] { return static_cast<float>(gen() % 3); }));
  }
  // Exactly kMaxDistinct distinct values and one more, each twice, shuffled, between NaN and Inf.
  for (std::size_t distinct : {ColumnStats::kMaxDistinct, ColumnStats::kMaxDistinct + 1}) {
    std::vector<float> column = {kNaN, kInf, -kInf};
    for (std::size_t i = 0; i < 2 * distinct; ++i) column.push_back(0.5f * (i % distinct) - 7.0f);
    std::shuffle(column.begin(), column.end(), gen);
    columns.push_back(column);
  }
  columns.push_back({2.5f});                         // a single value
  columns.push_back(std::vector<float>(50, -3.0f));  // constant
  columns.push_back({-kInf, 1.0f, kNaN, kInf});      // one finite value between the infinities
  columns.push_back({kNaN, kNaN, kNaN});             // all NaN
  columns.push_back({kInf, -kInf, kNaN, kInf});      // nothing finite
  columns.push_back({});                             // empty
  return columns;
}

SortedColumns sorted_of(Context& ctx, const std::vector<float>& column) {
  return SortedColumns::from_batch(ctx, BatchView{column.data(), column.size(), 1});
}

void expect_same_stats(const ColumnStats& actual, const ColumnStats& expected) {
  EXPECT_EQ(actual.count, expected.count);
  if (expected.count > 0) {
    EXPECT_EQ(std::bit_cast<std::uint64_t>(actual.min), std::bit_cast<std::uint64_t>(expected.min));
    EXPECT_EQ(std::bit_cast<std::uint64_t>(actual.max), std::bit_cast<std::uint64_t>(expected.max));
  }
  EXPECT_EQ(actual.too_many_distinct, expected.too_many_distinct);
  EXPECT_EQ(bits(actual.distinct), bits(expected.distinct));
}

TEST(BinningSorted, QuantileEdgesOfSortedEqualSelection) {
  Context ctx(ContextOptions{.backend = Backend::Cpu});
  std::size_t refused = 0;
  for (const std::vector<float>& column : awkward_columns()) {
    SCOPED_TRACE(column.size());
    const SortedColumns sorted = sorted_of(ctx, column);
    for (std::size_t bins : {1, 2, 3, 10, 64}) {
      SCOPED_TRACE(bins);
      std::vector<double> expected;
      try {
        expected = quantile_edges(column, bins);
      } catch (const InvalidInput&) {
        ++refused;
        EXPECT_THROW(quantile_edges_of_sorted(sorted.column(0), bins), InvalidInput);
        continue;
      }
      EXPECT_EQ(bits(quantile_edges_of_sorted(sorted.column(0), bins)), bits(expected));
    }
    EXPECT_THROW(quantile_edges(column, 0), InvalidInput);
    EXPECT_THROW(quantile_edges_of_sorted(sorted.column(0), 0), InvalidInput);
  }
  EXPECT_EQ(refused, 3u * 5u);  // all NaN, nothing finite, empty
}

TEST(BinningSorted, ColumnStatsOfSortedEqualObserve) {
  Context ctx(ContextOptions{.backend = Backend::Cpu});
  std::size_t too_many = 0, empty = 0;
  for (const std::vector<float>& column : awkward_columns()) {
    SCOPED_TRACE(column.size());
    ColumnStats observed;
    for (float v : column) observed.observe(v);
    const SortedColumns sorted = sorted_of(ctx, column);
    expect_same_stats(ColumnStats::of_sorted(sorted.column(0)), observed);
    too_many += observed.too_many_distinct;
    empty += observed.count == 0;
  }
  EXPECT_EQ(too_many, 2u);  // 20000 mostly distinct values, kMaxDistinct + 1
  EXPECT_EQ(empty, 3u);
  // Long runs, found by galloping: runs of every length 1..300 and 2^k +- 1.
  std::vector<float> runs;
  for (int length = 1; length <= 300; ++length) runs.insert(runs.end(), length, 0.25f * length);
  for (int k = 1; k <= 14; ++k) {
    for (int delta : {-1, 0, 1})
      runs.insert(runs.end(), (1 << k) + delta, 100.0f + k + delta / 3.0f);
  }
  ColumnStats observed;
  for (float v : runs) observed.observe(v);
  expect_same_stats(ColumnStats::of_sorted(runs), observed);
  EXPECT_EQ(observed.distinct_count(), 300u + 14u * 3u);
}

TEST(BinningSorted, ZerosOfEitherSign) {
  // -0.0 and +0.0 are one value: of_sorted keeps what observe() keeps reading the same order
  // (the first of the run), and the quantile edges equal selection's as values.
  const std::vector<float> zeros = {-1.0f, -0.0f, 0.0f, -0.0f, 0.0f, 2.0f};
  ColumnStats observed;
  for (float v : zeros) observed.observe(v);
  expect_same_stats(ColumnStats::of_sorted(zeros), observed);
  const std::vector<float> top = {-1.0f, -0.0f, 0.0f};  // max: the first zero, as std::max keeps
  ColumnStats top_observed;
  for (float v : top) top_observed.observe(v);
  expect_same_stats(ColumnStats::of_sorted(top), top_observed);
  EXPECT_TRUE(std::signbit(ColumnStats::of_sorted(top).max));
  for (std::size_t bins : {1, 2, 5, 10}) {
    EXPECT_EQ(quantile_edges_of_sorted(zeros, bins), quantile_edges(zeros, bins)) << bins;
  }
}

TEST(BinningSorted, SpecFromSortedColumnsEqualsSpecFromColumns) {
  Context ctx(ContextOptions{.backend = Backend::Cpu});
  // bin_edges serve the fixed policy only.
  const Schema schema{{feature("amount", FeatureKind::Numeric, {}, {-1, 0, 1}),
                       feature("grade", FeatureKind::Categorical, {1, 7}),
                       feature("ties", FeatureKind::Numeric, {}, {-1, 0, 2.5}),
                       feature("wide", FeatureKind::Numeric, {}, {-1000, 1000})}};
  constexpr std::size_t rows = 9000, features = 4;
  std::mt19937 gen(5);
  std::normal_distribution<float> normal;
  std::vector<float> data;
  std::vector<std::vector<float>> columns(features);
  for (std::size_t r = 0; r < rows; ++r) {
    const auto u = gen() % 100;
    const float row[features] = {u < 4   ? kNaN
                                 : u < 6 ? kInf
                                         : normal(gen),
                                 static_cast<float>(gen() % 5),
                                 u < 10 ? -kInf : std::round(normal(gen) * 2.0f) / 2.0f + 0.0f,
                                 normal(gen) * 1000.0f};
    for (std::size_t f = 0; f < features; ++f) {
      data.push_back(row[f]);
      columns[f].push_back(row[f]);
    }
  }
  const SortedColumns sorted =
      SortedColumns::from_batch(ctx, BatchView{data.data(), rows, features});
  std::vector<ColumnStats> sorted_stats;
  for (std::size_t f = 0; f < features; ++f) {
    sorted_stats.push_back(ColumnStats::of_sorted(sorted.column(f)));
  }
  const std::vector<ColumnStats> stats = stats_of(columns);
  EXPECT_TRUE(stats[3].too_many_distinct);
  const std::vector<ColumnStats> current = stats_of({{2, 3}, {1, 9}, {0.5f}, {1e4f}});
  for (BinningPolicy policy : {BinningPolicy::Quantile, BinningPolicy::EqualWidth,
                               BinningPolicy::Fixed, BinningPolicy::Evidently}) {
    for (std::size_t bins : {1, 10, 37}) {
      SCOPED_TRACE(std::string(to_string(policy)) + " " + std::to_string(bins));
      const BinningOptions options{.policy = policy, .bins = bins};
      const HistogramSpec expected =
          build_histogram_spec(schema, options, columns, stats, &current);
      const HistogramSpec actual =
          build_histogram_spec(schema, options, sorted, sorted_stats, &current);
      EXPECT_EQ(actual.categorical, expected.categorical);
      EXPECT_EQ(actual.offsets, expected.offsets);
      EXPECT_EQ(bits(actual.points), bits(expected.points));
    }
  }
  // The same single bin when nothing is finite, and the same refusals: bins = 0, missing columns.
  const Schema numeric{{feature("amount")}};
  const std::vector<float> all_missing = {kNaN, kInf, kNaN};
  const std::vector<ColumnStats> missing_stats = {
      ColumnStats::of_sorted(sorted_of(ctx, all_missing).column(0))};
  EXPECT_EQ(missing_stats[0].count, 0u);
  for (BinningPolicy policy : {BinningPolicy::Quantile, BinningPolicy::EqualWidth}) {
    EXPECT_EQ(build_histogram_spec(numeric, {.policy = policy}, sorted_of(ctx, all_missing),
                                   missing_stats, nullptr)
                  .points,
              build_histogram_spec(numeric, {.policy = policy}, {all_missing},
                                   stats_of({all_missing}), nullptr)
                  .points);
  }
  EXPECT_THROW(build_histogram_spec(schema, {.bins = 0}, sorted, sorted_stats, nullptr),
               InvalidInput);
  EXPECT_THROW(build_histogram_spec(schema, {}, SortedColumns{}, sorted_stats, nullptr),
               InvalidInput);
}

// ---- Golden files ----

// null is NaN, "inf"/"-inf" infinities; every number is a float32 value widened to float64.
std::vector<float> golden_values(const nlohmann::json& values) {
  std::vector<float> out;
  for (const auto& v : values) {
    if (v.is_null()) {
      out.push_back(kNaN);
    } else if (v.is_string()) {
      out.push_back(v.get<std::string>() == "inf" ? kInf : -kInf);
    } else {
      const double x = v.get<double>();
      out.push_back(static_cast<float>(x));
      EXPECT_EQ(static_cast<double>(out.back()), x) << "not a float32 value";
    }
  }
  return out;
}

HistogramCounts count(Context& ctx, const HistogramSpec& spec, const std::vector<float>& column) {
  HistogramCounts counts(spec);
  histogram(ctx, BatchView{column.data(), column.size(), 1}, spec, counts);
  return counts;
}

std::vector<ColumnStats> observed(const std::vector<float>& column) {
  std::vector<ColumnStats> stats(1);
  observe_columns(BatchView{column.data(), column.size(), 1}, stats);
  return stats;
}

FeatureKind kind_of(const HistogramSpec& spec) {
  return spec.categorical[0] ? FeatureKind::Categorical : FeatureKind::Numeric;
}

TEST(PsiGolden, MatchesEvidentlyPsi) {
  const nlohmann::json& golden = testing::golden("psi_evidently.json");
  Context ctx(ContextOptions{.backend = Backend::Cpu});
  ASSERT_GE(golden["cases"].size(), 30u);
  for (const auto& c : golden["cases"]) {
    const auto name = c["name"].get<std::string>();
    SCOPED_TRACE(name);
    const std::vector<float> ref = golden_values(c["reference"]);
    const std::vector<float> cur = golden_values(c["current"]);
    const Schema schema{{feature(
        name, c["kind"] == "categorical" ? FeatureKind::Categorical : FeatureKind::Numeric)}};
    std::vector<ColumnStats> ref_stats = observed(ref), cur_stats = observed(cur);
    const BinningOptions evidently{.policy = BinningPolicy::Evidently};
    // Value bins past the values a running summary lists need them all, as Monitor supplies.
    bool completed = false;
    for (auto [stats, values] : {std::pair{&ref_stats, &ref}, std::pair{&cur_stats, &cur}}) {
      if (!(*stats)[0].too_many_distinct) continue;
      if (!evidently_bins_by_value(schema.features[0].kind, ref_stats[0])) continue;
      if (!completed) {
        EXPECT_THROW(
            build_histogram_spec(schema, evidently, SortedColumns{}, ref_stats, &cur_stats),
            InvalidInput);
      }
      completed = true;
      std::vector<float> sorted;
      std::copy_if(values->begin(), values->end(), std::back_inserter(sorted),
                   [](float v) { return !std::isnan(v); });
      std::sort(sorted.begin(), sorted.end());
      (*stats)[0] = ColumnStats::all_values_of_sorted(sorted);
    }
    EXPECT_EQ(completed, name.find("6000") != std::string::npos);
    const HistogramSpec spec =
        build_histogram_spec(schema, evidently, SortedColumns{}, ref_stats, &cur_stats);
    EXPECT_EQ(spec.categorical[0] == 1, c["evidently_binning"] == "values");
    EXPECT_EQ(spec.bins(0), c["evidently_bins"].get<std::size_t>());
    const double value = psi(count(ctx, spec, ref).slots(0), count(ctx, spec, cur).slots(0),
                             evidently_psi_options(), kind_of(spec));
    const auto expected = c["psi"].get<double>();
    EXPECT_NEAR(value, expected, 1e-9 * std::abs(expected));
  }
}

TEST(PsiGolden, MonitorBinsEveryValueTheWindowsTake) {
  // The scan's path: windows with more distinct values than a running summary lists are binned
  // by all of them (evidently's value counts), from the profile's sorted reference and the held
  // current window, whatever the kind.
  const nlohmann::json& golden = testing::golden("psi_evidently.json");
  const std::filesystem::path dir = testing::process_temp_dir("driftguard_psi_golden");
  Context ctx(ContextOptions{.backend = Backend::Cpu});
  std::size_t checked = 0;
  for (const auto& c : golden["cases"]) {
    const auto name = c["name"].get<std::string>();
    if (name.find("6000") == std::string::npos) continue;
    SCOPED_TRACE(name);
    const std::vector<float> ref = golden_values(c["reference"]);
    const std::vector<float> cur = golden_values(c["current"]);
    const std::string reference_path = (dir / (name + ".h5")).string();
    Hdf5Writer writer(reference_path, {"x"});
    writer.append(ref.data(), ref.size());
    writer.close();
    FeatureSpec spec =
        feature("x", c["kind"] == "categorical" ? FeatureKind::Categorical : FeatureKind::Numeric);
    if (spec.kind == FeatureKind::Categorical) spec.categories = {0};
    ProfileOptions profile_options;
    profile_options.schema = Schema{{spec}};
    const ReferenceProfile profile = ReferenceProfile::build(ctx, reference_path, profile_options);
    DriftOptions options;
    options.binning.policy = BinningPolicy::Evidently;
    options.distances = false;
    Monitor monitor(ctx, profile, options);
    monitor.observe(BatchView{cur.data(), cur.size(), 1});
    const ScanReport report = monitor.close_window();
    ASSERT_EQ(report.features.size(), 1u);
    EXPECT_EQ(report.features[0].points.size(), c["evidently_bins"].get<std::size_t>());
    const auto expected = c["psi"].get<double>();
    EXPECT_NEAR(report.features[0].psi, expected, 1e-9 * std::abs(expected));
    ++checked;
  }
  EXPECT_EQ(checked, 2u);
  std::filesystem::remove_all(dir);
}

TEST(PsiGolden, MatchesNumPyQuantileAndEqualWidth) {
  const nlohmann::json& golden = testing::golden("psi_quantile.json");
  Context ctx(ContextOptions{.backend = Backend::Cpu});
  ASSERT_GE(golden["cases"].size(), 20u);
  for (const auto& c : golden["cases"]) {
    SCOPED_TRACE(c["name"].get<std::string>());
    const std::vector<float> ref = golden_values(c["reference"]);
    const std::vector<float> cur = golden_values(c["current"]);
    const Schema schema{{feature(c["name"].get<std::string>())}};
    const BinningOptions options{.policy = parse_binning_policy(c["policy"].get<std::string>()),
                                 .bins = c["bins"].get<std::size_t>()};
    const HistogramSpec spec = build_histogram_spec(schema, options, {ref}, observed(ref), nullptr);
    // A discrete reference is binned by its values; edges are bit for bit NumPy's (the same
    // float64 operations in the same order).
    const bool by_value = c.contains("values");
    EXPECT_EQ(spec.categorical[0] == 1, by_value);
    EXPECT_EQ(points(spec, 0), c[by_value ? "values" : "edges"].get<std::vector<double>>());
    const HistogramCounts ref_counts = count(ctx, spec, ref);
    const HistogramCounts cur_counts = count(ctx, spec, cur);
    const auto ref_slots = ref_counts.slots(0);
    const auto cur_slots = cur_counts.slots(0);
    EXPECT_EQ(Slots(ref_slots.begin(), ref_slots.end()), c["reference_slots"].get<Slots>());
    EXPECT_EQ(Slots(cur_slots.begin(), cur_slots.end()), c["current_slots"].get<Slots>());
    const auto expected = c["psi"].get<double>();
    EXPECT_NEAR(psi(ref_slots, cur_slots, {}, kind_of(spec)), expected,
                1e-12 * std::abs(expected) + 1e-15);
  }
}

}  // namespace
}  // namespace driftguard
