#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <string>
#include <vector>

#include "driftguard/errors.hpp"
#include "driftguard/schema.hpp"
#include "driftguard/validate.hpp"

namespace driftguard {
namespace {

constexpr float kNaN = std::numeric_limits<float>::quiet_NaN();

TEST(Schema, JsonRoundTrip) {
  const std::string text = R"({"format": "driftguard-schema", "version": 1, "features": [
      {"name": "LIMIT_BAL", "kind": "numeric", "min": 10000, "max": 1e6, "missing_allowed": false},
      {"name": "SEX", "kind": "categorical", "categories": [2, 1]},
      {"name": "AGE", "bin_edges": [18, 30, 99.5]}]})";
  const Schema schema = Schema::from_json(text);
  ASSERT_EQ(schema.features.size(), 3u);
  EXPECT_EQ(schema.features[0].min, 10000);
  EXPECT_FALSE(schema.features[0].missing_allowed);
  EXPECT_EQ(schema.features[1].kind, FeatureKind::Categorical);
  EXPECT_EQ(schema.features[1].categories, (std::vector<std::int64_t>{1, 2}));  // sorted
  EXPECT_TRUE(std::isinf(schema.features[2].min));
  EXPECT_EQ(schema.features[2].bin_edges, (std::vector<double>{18, 30, 99.5}));
  EXPECT_EQ(Schema::from_json(schema.to_json()), schema);
}

// Labels name the codes a converter made from text; they follow their codes into ascending order.
TEST(Schema, LabelsFollowTheirCodes) {
  const Schema schema = Schema::from_json(R"({"features": [
      {"name": "housing", "kind": "categorical", "categories": [2, 0, 1],
       "labels": ["rent", "for free", "own"]}]})");
  EXPECT_EQ(schema.features[0].categories, (std::vector<std::int64_t>{0, 1, 2}));
  EXPECT_EQ(schema.features[0].labels, (std::vector<std::string>{"for free", "own", "rent"}));
  EXPECT_EQ(Schema::from_json(schema.to_json()), schema);
}

TEST(Schema, BadDocumentsNameTheProblem) {
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"{", "not valid JSON"},
      {"[]", "JSON object"},
      {R"({"features": []})", "non-empty 'features'"},
      {R"({"features": [{"kind": "numeric"}]})", "non-empty string 'name'"},
      {R"({"features": [{"name": "a", "kind": "text"}]})", "kind must be"},
      {R"({"features": [{"name": "a", "min": 2, "max": 1}]})", "min must not exceed max"},
      {R"({"features": [{"name": "a", "min": "0"}]})", "'min' must be a number"},
      {R"({"features": [{"name": "a", "kind": "categorical", "categories": [1.5]}]})",
       "categories must be integers"},
      {R"({"features": [{"name": "a", "kind": "categorical", "categories": [1, 1]}]})",
       "listed twice"},
      {R"({"features": [{"name": "a", "kind": "categorical", "categories": [99999999]}]})", "2^24"},
      {R"({"features": [{"name": "a", "categories": [1]}]})", "only categorical"},
      {R"({"features": [{"name": "a", "kind": "categorical", "categories": [1, 2],
           "labels": ["x"]}]})",
       "one string per category"},
      {R"({"features": [{"name": "a", "kind": "categorical", "categories": [1], "labels": [1]}]})",
       "labels must be strings"},
      {R"({"features": [{"name": "a", "kind": "categorical", "categories": [1, 2],
           "labels": ["x", "x"]}]})",
       "label \"x\" is listed twice"},
      {R"({"features": [{"name": "a", "kind": "categorical", "labels": []}]})", "there are none"},
      {R"({"features": [{"name": "a", "bin_edges": [1, 1]}]})", "strictly increasing"},
      {R"({"features": [{"name": "a"}, {"name": "a"}]})", "listed twice"},
      {R"({"version": 2, "features": [{"name": "a"}]})", "unsupported version"},
      // Wrong types and out-of-range numbers name the feature too, instead of a JSON library
      // message; an unsigned code beyond int64 would otherwise wrap to a small negative one.
      {R"({"features": [{"name": "a", "kind": 1}]})", "feature 'a': 'kind' must be"},
      {R"({"features": [{"name": "a", "kind": ["numeric"]}]})", "feature 'a': 'kind' must be"},
      {R"({"features": [{"name": "a", "min": -1e400}]})", "not valid JSON"},
      {R"({"features": [{"name": "a", "kind": "categorical",
           "categories": [0, 18446744073709551615]}]})",
       "category 18446744073709551615 is beyond"},
      // A misspelt key would leave the check it was meant to set silently absent; a categorical
      // feature without codes would make every value of both windows an unknown category.
      {R"({"features": [{"name": "a", "minimum": 50}]})", "feature 'a': unknown key 'minimum'"},
      {R"({"features": [{"name": "a", "missing_alowed": false}]})", "unknown key 'missing_alowed'"},
      {R"({"feature": [], "features": [{"name": "a"}]})", "the document: unknown key 'feature'"},
      {R"({"features": [{"name": "a", "kind": "categorical"}]})", "needs 'categories'"},
      {R"({"features": [{"name": "a", "kind": "categorical", "categories": []}]})",
       "lists no code"},
      {R"({"features": [{"name": "a", "kind": "categorical", "categories": [1], "min": 5}]})",
       "only numeric features have 'min'"},
      {R"({"features": [{"name": "a", "kind": "categorical", "categories": [1],
           "bin_edges": [0, 1]}]})",
       "only numeric features have 'bin_edges'"},
  };
  for (const auto& [text, expected] : cases) {
    try {
      Schema::from_json(text);
      ADD_FAILURE() << "accepted: " << text;
    } catch (const InvalidInput& e) {
      EXPECT_NE(std::string(e.what()).find(expected), std::string::npos)
          << e.what() << " (expected '" << expected << "')";
    }
  }
}

TEST(Schema, CheckNamesNamesTheFirstDifference) {
  const Schema schema = Schema::from_json(R"({"features": [{"name": "a"}, {"name": "b"}]})");
  EXPECT_NO_THROW(schema.check_names({"a", "b"}));
  try {
    schema.check_names({"a", "c"});
    ADD_FAILURE();
  } catch (const InvalidInput& e) {
    EXPECT_NE(std::string(e.what()).find("column 1 is 'c'"), std::string::npos) << e.what();
  }
  EXPECT_THROW(schema.check_names({"a"}), InvalidInput);
}

TEST(SchemaInferrer, InfersKindsRangesAndMissing) {
  // Columns: small integer codes, a continuous column, integers with too many values, a column
  // with a NaN, a column that is never negative.
  std::vector<float> data;
  const std::size_t rows = 100;
  for (std::size_t r = 0; r < rows; ++r) {
    data.push_back(static_cast<float>(r % 3));
    data.push_back(-1.0f + 0.03f * static_cast<float>(r));
    data.push_back(static_cast<float>(r));
    data.push_back(r == 7 ? kNaN : 1.0f);
    data.push_back(static_cast<float>(r) * 0.5f + 0.25f);
  }
  SchemaInferrer inferrer({"code", "x", "count", "with_nan", "positive"}, 20, 0.1);
  inferrer.observe({data.data(), rows / 2, 5});
  inferrer.observe({data.data() + rows / 2 * 5, rows / 2, 5});
  const Schema schema = inferrer.finish();
  EXPECT_EQ(schema.features[0].kind, FeatureKind::Categorical);
  EXPECT_EQ(schema.features[0].categories, (std::vector<std::int64_t>{0, 1, 2}));
  EXPECT_FALSE(schema.features[0].missing_allowed);
  EXPECT_EQ(schema.features[1].kind, FeatureKind::Numeric);
  const double lo = -1.0, hi = static_cast<double>(-1.0f + 0.03f * 99.0f);
  EXPECT_NEAR(schema.features[1].min, lo - 0.1 * (hi - lo), 1e-6);
  EXPECT_NEAR(schema.features[1].max, hi + 0.1 * (hi - lo), 1e-6);
  EXPECT_EQ(schema.features[2].kind, FeatureKind::Numeric);  // 100 distinct integers
  EXPECT_EQ(schema.features[3].kind, FeatureKind::Categorical);
  EXPECT_TRUE(schema.features[3].missing_allowed);
  EXPECT_EQ(schema.features[4].min, 0.0);  // never negative: stays >= 0

  // The inferred rules accept the reference itself.
  const ValidationRules rules = ValidationRules::from_schema(schema);
  EXPECT_EQ(rules.features(), 5u);
  EXPECT_EQ(rules.categorical[0], 1);
}

// +-Inf is flagged non_finite whatever the schema says; it neither makes a code column numeric
// nor drops the range of a numeric one (found by differential testing: one Inf did both).
TEST(SchemaInferrer, InfinitiesDecideNothing) {
  constexpr float kInf = std::numeric_limits<float>::infinity();
  const std::vector<float> data = {0, 1.5f, kInf, 1, 2.5f, -kInf, 1, 3.5f, kInf, kInf, kInf, kInf};
  SchemaInferrer inferrer({"code", "x", "only_inf"}, 20, 0.0);
  EXPECT_THROW(inferrer.observe({nullptr, 4, 3}), InvalidInput);
  inferrer.observe({data.data(), 4, 3});
  const Schema schema = inferrer.finish();
  EXPECT_EQ(schema.features[0].kind, FeatureKind::Categorical);
  EXPECT_EQ(schema.features[0].categories, (std::vector<std::int64_t>{0, 1}));
  EXPECT_EQ(schema.features[1].kind, FeatureKind::Numeric);
  EXPECT_EQ(schema.features[1].min, 1.5);
  EXPECT_EQ(schema.features[1].max, 3.5);
  EXPECT_EQ(schema.features[2].kind, FeatureKind::Numeric);  // no finite value: no bounds
  EXPECT_TRUE(std::isinf(schema.features[2].min));
  EXPECT_TRUE(std::isinf(schema.features[2].max));
}

}  // namespace
}  // namespace driftguard
