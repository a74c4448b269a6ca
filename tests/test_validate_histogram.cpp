// validate / histogram / validate_histogram on every backend against a float64 reference written
// here from the header's definitions (linear scans, double comparisons, no shared code).
#include <gtest/gtest.h>

#include <cmath>
#include <cstdlib>
#include <limits>
#include <random>
#include <vector>

#include "backend_param.hpp"
#include "driftguard/errors.hpp"
#include "driftguard/histogram.hpp"
#include "driftguard/schema.hpp"
#include "driftguard/validate.hpp"

namespace driftguard {
namespace {

using ValidateHistogram = testing::BackendTest;
constexpr float kNaN = std::numeric_limits<float>::quiet_NaN();
constexpr float kInf = std::numeric_limits<float>::infinity();

struct Reference {
  ValidationCounts validation;
  std::vector<std::uint64_t> slots;
  std::vector<std::uint8_t> cell_flags, row_ok;
};

Reference reference(const std::vector<float>& data, std::size_t rows, std::size_t features,
                    const ValidationRules& rules, const HistogramSpec& spec) {
  Reference ref{ValidationCounts(features),
                {},
                std::vector<std::uint8_t>(rows * features),
                std::vector<std::uint8_t>(rows)};
  std::vector<std::size_t> first_slot(features + 1, 0);
  for (std::size_t f = 0; f < features; ++f) first_slot[f + 1] = first_slot[f] + spec.bins(f) + 3;
  ref.slots.assign(first_slot.back(), 0);
  for (std::size_t r = 0; r < rows; ++r) {
    bool ok = true;
    for (std::size_t f = 0; f < features; ++f) {
      const double x = data[r * features + f];
      std::uint8_t flags = 0;
      if (std::isnan(x)) {
        flags = kMissing;
        if (!rules.missing_allowed[f]) ok = false;
      } else if (std::isinf(x)) {
        flags = kNonFinite;
      } else if (rules.categorical[f]) {
        bool known = false;
        for (auto i = rules.category_offsets[f]; i < rules.category_offsets[f + 1]; ++i) {
          known = known || rules.category_codes[i] == x;
        }
        if (!known) flags = kUnknownCategory;
      } else {
        if (x < rules.min[f]) flags |= kBelowMin;
        if (x > rules.max[f]) flags |= kAboveMax;
      }
      if (flags & ~kMissing) ok = false;
      for (CellFlag flag : kAllCellFlags) {
        if (flags & flag) ++ref.validation.flag_counts[f * kCellFlagCount + flag_index(flag)];
      }
      ref.cell_flags[r * features + f] = flags;

      const auto p = spec.points_of(f);
      const std::size_t bins = spec.bins(f);
      std::size_t slot = bins + 2;  // missing
      if (!std::isnan(x)) {
        if (spec.categorical[f]) {
          slot = bins + 1;
          for (std::size_t i = 0; i < p.size(); ++i) {
            if (p[i] == x) slot = i + 1;
          }
        } else if (x < p.front()) {
          slot = 0;
        } else if (x > p.back()) {
          slot = bins + 1;
        } else {
          slot = bins;  // x == last edge: the closed last bin
          for (std::size_t i = 0; i < bins; ++i) {
            if (p[i] <= x && x < p[i + 1]) slot = i + 1;
          }
        }
      }
      ++ref.slots[first_slot[f] + slot];
    }
    ref.row_ok[r] = ok ? 1 : 0;
    ref.validation.rows_ok += ok ? 1 : 0;
  }
  ref.validation.rows = rows;
  return ref;
}

// Features alternate: numeric with edges at awkward doubles, categorical codes {0, 2, 5, 7}.
struct Case {
  std::size_t rows, features;
  std::vector<float> data;
  ValidationRules rules;
  HistogramSpec spec;
};

// Numeric feature f gets bins[f % bins.size()] bins (default 1..12).
Case make_case(std::size_t rows, std::size_t features, std::uint64_t seed,
               std::vector<std::size_t> bin_counts = {}) {
  std::mt19937_64 rng(seed);
  std::normal_distribution<double> normal(0.0, 1.0);
  std::uniform_real_distribution<double> unit(0.0, 1.0);
  Case c{rows,
         features,
         std::vector<float>(rows * features),
         ValidationRules::permissive(features),
         {}};
  const std::vector<double> codes = {0, 2, 5, 7};
  c.rules.category_offsets = {0};
  for (std::size_t f = 0; f < features; ++f) {
    const bool categorical = f % 3 == 2;
    c.rules.categorical[f] = categorical;
    c.rules.missing_allowed[f] = f % 2;
    if (categorical) {
      c.rules.category_codes.insert(c.rules.category_codes.end(), {0.f, 2.f, 5.f, 7.f});
      c.spec.add_categorical(codes);
    } else {
      // 0.1-spaced edges are not floats: exercises the exact float-vs-double comparison.
      std::vector<double> edges;
      const std::size_t bins = bin_counts.empty() ? 1 + f % 12 : bin_counts[f % bin_counts.size()];
      for (std::size_t i = 0; i <= bins; ++i) edges.push_back(-1.5 + 3.0 * i / bins + 0.1);
      c.spec.add_numeric(edges);
      c.rules.min[f] = edges.front();
      c.rules.max[f] = edges.back();
    }
    c.rules.category_offsets.push_back(static_cast<std::uint32_t>(c.rules.category_codes.size()));
  }
  for (std::size_t r = 0; r < rows; ++r) {
    for (std::size_t f = 0; f < features; ++f) {
      const double u = unit(rng);
      float x;
      const auto p = c.spec.points_of(f);
      if (u < 0.05) {
        x = kNaN;
      } else if (u < 0.07) {
        x = u < 0.06 ? kInf : -kInf;
      } else if (u < 0.15) {  // exactly on an edge or code, or on the float next to it
        const double e = p[static_cast<std::size_t>(unit(rng) * p.size())];
        const float fe = static_cast<float>(e);
        x = u < 0.10 ? fe : std::nextafter(fe, u < 0.12 ? kInf : -kInf);
      } else if (c.rules.categorical[f]) {
        x = static_cast<float>(static_cast<int>(unit(rng) * 9));  // codes 0..8, some unknown
      } else {
        x = static_cast<float>(1.2 * normal(rng));
      }
      c.data[r * features + f] = x;
    }
  }
  return c;
}

void expect_matches_reference(Context& ctx, const Case& c) {
  const Reference ref = reference(c.data, c.rows, c.features, c.rules, c.spec);
  const BatchView batch{c.data.data(), c.rows, c.features};

  ValidationCounts validation(c.features);
  std::vector<std::uint8_t> cell_flags(c.rows * c.features, 0xAA), row_ok(c.rows, 0xAA);
  validate(ctx, batch, c.rules, validation, {cell_flags.data(), row_ok.data()});
  EXPECT_EQ(validation, ref.validation);
  EXPECT_EQ(cell_flags, ref.cell_flags);
  EXPECT_EQ(row_ok, ref.row_ok);

  HistogramCounts counts(c.spec);
  histogram(ctx, batch, c.spec, counts);
  EXPECT_EQ(counts.raw(), ref.slots);

  ValidationCounts fused_validation(c.features);
  HistogramCounts fused_counts(c.spec);
  std::fill(cell_flags.begin(), cell_flags.end(), 0xAA);
  validate_histogram(ctx, batch, c.rules, c.spec, fused_validation, fused_counts,
                     {cell_flags.data(), nullptr});
  EXPECT_EQ(fused_validation, ref.validation);
  EXPECT_EQ(fused_counts.raw(), ref.slots);
  EXPECT_EQ(cell_flags, ref.cell_flags);
  for (std::size_t f = 0; f < c.features; ++f) EXPECT_EQ(counts.total(f), c.rows);
}

TEST_P(ValidateHistogram, MatchesReferenceOnRandomData) {
  expect_matches_reference(ctx(), make_case(5000, 17, 1));
}
TEST_P(ValidateHistogram, OneRow) { expect_matches_reference(ctx(), make_case(1, 9, 2)); }
TEST_P(ValidateHistogram, OneFeature) { expect_matches_reference(ctx(), make_case(3001, 1, 3)); }
TEST_P(ValidateHistogram, EmptyBatch) { expect_matches_reference(ctx(), make_case(0, 5, 4)); }
TEST_P(ValidateHistogram, ThousandsOfFeatures) {
  expect_matches_reference(ctx(), make_case(40, 3000, 5));
}

// Categorical code sets the CPU finds by table lookup (integers within a span of 2^16, negative
// ones too) and those it searches (fractional codes, a wider span, huge magnitudes), hit by codes,
// their float neighbours, halves, -0, +-Inf, NaN and values far outside the int range.
TEST_P(ValidateHistogram, CategoricalCodesOfEveryKind) {
  const std::vector<std::vector<double>> code_sets = {
      {-3, 0, 2, 5, 7}, {0.5, 1.5, 2.25}, {0, 100000}, {-2e9, 0, 3e9}, {1e6, 1e6 + 1}, {42}};
  const std::size_t features = code_sets.size(), rows = 4000;
  Case c{rows, features, std::vector<float>(rows * features), ValidationRules::permissive(features),
         HistogramSpec{}};
  c.rules.category_codes.clear();
  c.rules.category_offsets = {0};
  std::vector<float> probes = {-0.0f,        0.0f,          0.5f,    1.0f, -3.5f, 1e20f, -1e20f,
                               2147483648.f, -2147483904.f, 65536.f, kInf, -kInf, kNaN};
  for (std::size_t f = 0; f < features; ++f) {
    c.rules.categorical[f] = 1;
    c.spec.add_categorical(code_sets[f]);
    for (double code : code_sets[f]) {
      const float x = static_cast<float>(code);
      // The bins hold a code the rule does not (a reference code outside the schema's): counted
      // in its bin and flagged unknown.
      if (code != code_sets[f].back() || code_sets[f].size() == 1)
        c.rules.category_codes.push_back(x);
      probes.insert(probes.end(), {x, std::nextafter(x, kInf), std::nextafter(x, -kInf), x + 0.5f,
                                   x - 1.0f, x + 1.0f});
    }
    c.rules.category_offsets.push_back(static_cast<std::uint32_t>(c.rules.category_codes.size()));
  }
  std::mt19937_64 rng(11);
  std::uniform_int_distribution<std::size_t> pick(0, probes.size() - 1);
  for (float& x : c.data) x = probes[pick(rng)];
  expect_matches_reference(ctx(), c);
}

TEST_P(ValidateHistogram, ManyBinsAndMixedBinCounts) {
  // 64 bins is the CPU's widest vector path, 65 and 200 take the search path.
  expect_matches_reference(ctx(), make_case(3000, 23, 8, {3, 64, 65, 200, 10}));
}

TEST_P(ValidateHistogram, AccumulatesOverBatches) {
  const Case c = make_case(2000, 6, 6);
  const Reference ref = reference(c.data, c.rows, c.features, c.rules, c.spec);
  ValidationCounts validation(c.features);
  HistogramCounts counts(c.spec);
  for (std::size_t begin = 0; begin < c.rows; begin += 700) {
    const std::size_t n = std::min<std::size_t>(700, c.rows - begin);
    validate_histogram(ctx(), {c.data.data() + begin * c.features, n, c.features}, c.rules, c.spec,
                       validation, counts);
  }
  EXPECT_EQ(validation, ref.validation);
  EXPECT_EQ(counts.raw(), ref.slots);
}

TEST_P(ValidateHistogram, AllValuesInOneBin) {
  const std::size_t rows = 100000, features = 4;
  std::vector<float> data(rows * features, 0.25f);
  HistogramSpec spec;
  const std::vector<double> edges = {0.0, 0.5, 1.0};
  for (std::size_t f = 0; f < features; ++f) spec.add_numeric(edges);
  HistogramCounts counts(spec);
  histogram(ctx(), {data.data(), rows, features}, spec, counts);
  for (std::size_t f = 0; f < features; ++f) {
    EXPECT_EQ(counts.bins(f)[0], rows);
    EXPECT_EQ(counts.bins(f)[1], 0u);
  }
}

TEST_P(ValidateHistogram, BoundsAreExactDoubleComparisons) {
  // 0.1 is not a float: 0.1f > 0.1, so 0.1f is inside [0.1, 0.3] while the float below is not.
  const float below = std::nextafter(0.1f, 0.0f);
  const std::vector<float> data = {0.1f, below, 0.3f, std::nextafter(0.3f, 1.0f)};
  Schema schema;
  FeatureSpec x;
  x.name = "x";
  x.min = 0.1;
  x.max = 0.3;
  schema.features.push_back(x);
  const ValidationRules rules = ValidationRules::from_schema(schema);
  ValidationCounts counts(1);
  std::vector<std::uint8_t> flags(4);
  validate(ctx(), {data.data(), 4, 1}, rules, counts, {flags.data(), nullptr});
  const bool float03_above = static_cast<double>(0.3f) > 0.3;
  EXPECT_EQ(flags[0], 0);
  EXPECT_EQ(flags[1], kBelowMin);
  EXPECT_EQ(flags[2], float03_above ? kAboveMax : 0);
  EXPECT_EQ(flags[3], kAboveMax);
}

TEST_P(ValidateHistogram, RejectsMismatchedShapes) {
  const Case c = make_case(10, 4, 7);
  ValidationCounts wrong(3);
  EXPECT_THROW(validate(ctx(), {c.data.data(), 10, 4}, c.rules, wrong), InvalidInput);
  HistogramCounts counts(c.spec);
  EXPECT_THROW(histogram(ctx(), {c.data.data(), 10, 3}, c.spec, counts), InvalidInput);
  EXPECT_THROW(histogram(ctx(), {nullptr, 10, 4}, c.spec, counts), InvalidInput);
  HistogramSpec bad;
  const std::vector<double> decreasing = {1.0, 0.0};
  bad.add_numeric(decreasing);
  HistogramCounts bad_counts(bad);
  EXPECT_THROW(histogram(ctx(), {c.data.data(), 10, 1}, bad, bad_counts), InvalidInput);
}

DG_INSTANTIATE_BACKENDS(ValidateHistogram);

TEST(ValidateHistogramCpu, EveryVectorWidthMatchesTheReference) {
  // The CPU backend counts histogram lanes 16, 8 or 4 features at a time (AVX-512, AVX2, SSE or
  // NEON); a narrower width can be forced, so one machine checks every path. 37 features leave
  // a partial chunk at each width.
  Context ctx(ContextOptions{.backend = Backend::Cpu});
  for (const char* width : {"4", "8", "16"}) {
    SCOPED_TRACE(width);
    setenv("DRIFTGUARD_CPU_VECTOR_WIDTH", width, 1);
    expect_matches_reference(ctx, make_case(2000, 37, 9, {3, 10, 33, 64, 65}));
  }
  unsetenv("DRIFTGUARD_CPU_VECTOR_WIDTH");
}

// Bounds beyond the floats or infinite, against values at the ends of the float range: the CPU
// clamps its ranges to finite floats, which must not change a flag. (An empty or NaN range is
// refused by ValidationRules::check.)
TEST(ValidateHistogramCpu, UnusualBoundsMatchTheReference) {
  const float max = std::numeric_limits<float>::max(),
              tiny = std::numeric_limits<float>::denorm_min();
  const std::vector<float> values = {kNaN,  kInf, -kInf, max,  -max,  0.0f,
                                     -0.0f, tiny, -tiny, 1.0f, -1.0f, 1e30f};
  const double inf = std::numeric_limits<double>::infinity();
  const std::vector<std::pair<double, double>> bounds = {
      {-inf, inf}, {-1e300, 1e300}, {1e39, 2e39}, {-2e39, -1e39}, {0.0, 0.0},  {-3.5e38, 3.5e38},
      {-max, max}, {-inf, -1.0},    {1.0, inf},   {inf, inf},     {-inf, -inf}};
  const std::size_t features = bounds.size(), rows = values.size() * values.size();
  Case c{rows,
         features,
         std::vector<float>(rows * features),
         ValidationRules::permissive(features),
         {}};
  for (std::size_t f = 0; f < features; ++f) {
    c.rules.min[f] = bounds[f].first;
    c.rules.max[f] = bounds[f].second;
    c.rules.missing_allowed[f] = f % 2;
    c.spec.add_numeric(std::vector<double>{-1.0, 0.0, 1.0});
  }
  for (std::size_t r = 0; r < rows; ++r) {  // every value beside every other in some row
    for (std::size_t f = 0; f < features; ++f) {
      c.data[r * features + f] = values[(r / (f % 2 == 0 ? 1 : values.size()) + f) % values.size()];
    }
  }
  Context ctx(ContextOptions{.backend = Backend::Cpu});
  for (const char* width : {"4", "8", "16"}) {
    SCOPED_TRACE(width);
    setenv("DRIFTGUARD_CPU_VECTOR_WIDTH", width, 1);
    expect_matches_reference(ctx, c);
  }
  unsetenv("DRIFTGUARD_CPU_VECTOR_WIDTH");
}

TEST(Context, CpuBackendIsAlwaysThere) {
  Context ctx(ContextOptions{.backend = Backend::Cpu});
  EXPECT_EQ(ctx.backend(), Backend::Cpu);
  EXPECT_GE(ctx.cpu_threads(), 1);
  EXPECT_THROW(parse_backend("gpu"), InvalidInput);
}

TEST(Context, DeviceBatchNeedsCuda) {
  Context ctx(ContextOptions{.backend = Backend::Cpu});
  const ValidationRules rules = ValidationRules::permissive(1);
  ValidationCounts counts(1);
  const float x = 1.0f;
  EXPECT_THROW(validate(ctx, {&x, 1, 1, MemorySpace::Device}, rules, counts), InvalidInput);
}

}  // namespace
}  // namespace driftguard
