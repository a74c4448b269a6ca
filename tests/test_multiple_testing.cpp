#include <gtest/gtest.h>

#include <cmath>
#include <cstdlib>
#include <fstream>
#include <limits>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "driftguard/errors.hpp"
#include "driftguard/multiple_testing.hpp"
#include "golden.hpp"

namespace driftguard {
namespace {

TEST(MultipleTesting, MatchesScipyGolden) {
  const nlohmann::json& golden = testing::golden("multiple_testing_scipy.json");
  ASSERT_GE(golden["cases"].size(), 20u);
  for (const auto& c : golden["cases"]) {
    const auto p = c["pvalues"].get<std::vector<double>>();
    EXPECT_EQ(adjust_pvalues(p, Correction::BenjaminiHochberg), c["bh"].get<std::vector<double>>());
    EXPECT_EQ(adjust_pvalues(p, Correction::Bonferroni),
              c["bonferroni"].get<std::vector<double>>());
    EXPECT_EQ(adjust_pvalues(p, Correction::None), p);
  }
}

TEST(MultipleTesting, NaNIsNotATest) {
  const double nan = std::numeric_limits<double>::quiet_NaN();
  const std::vector<double> p = {0.01, nan, 0.04};
  const auto bonferroni = adjust_pvalues(p, Correction::Bonferroni);
  EXPECT_DOUBLE_EQ(bonferroni[0], 0.02);  // m = 2, not 3
  EXPECT_TRUE(std::isnan(bonferroni[1]));
  const auto bh = adjust_pvalues(p, Correction::BenjaminiHochberg);
  EXPECT_DOUBLE_EQ(bh[0], 0.02);
  EXPECT_DOUBLE_EQ(bh[2], 0.04);
  EXPECT_TRUE(std::isnan(bh[1]));
}

TEST(MultipleTesting, RejectsBadInput) {
  const std::vector<double> p = {0.5, 1.5};
  EXPECT_THROW(adjust_pvalues(p, Correction::BenjaminiHochberg), InvalidInput);
  EXPECT_THROW(parse_correction("holm"), InvalidInput);
  EXPECT_EQ(parse_correction("bh"), Correction::BenjaminiHochberg);
  EXPECT_EQ(to_string(Correction::Bonferroni), "bonferroni");
}

}  // namespace
}  // namespace driftguard
