#include "driftguard/multiple_testing.hpp"

#include <algorithm>
#include <cmath>
#include <numeric>
#include <string>

#include "driftguard/errors.hpp"

namespace driftguard {

Correction parse_correction(std::string_view name) {
  if (name == "none") return Correction::None;
  if (name == "bonferroni") return Correction::Bonferroni;
  if (name == "bh") return Correction::BenjaminiHochberg;
  throw InvalidInput("unknown correction '" + std::string(name) +
                     "' (expected none, bonferroni or bh)");
}

std::string_view to_string(Correction correction) {
  switch (correction) {
    case Correction::None:
      return "none";
    case Correction::Bonferroni:
      return "bonferroni";
    case Correction::BenjaminiHochberg:
      return "bh";
  }
  return "unknown";
}

std::vector<double> adjust_pvalues(std::span<const double> pvalues, Correction correction) {
  std::vector<double> adjusted(pvalues.begin(), pvalues.end());
  std::vector<std::size_t> tests;  // indices of the non-NaN p-values
  for (std::size_t i = 0; i < pvalues.size(); ++i) {
    if (std::isnan(pvalues[i])) continue;
    if (pvalues[i] < 0 || pvalues[i] > 1) {
      throw InvalidInput("p-value " + std::to_string(pvalues[i]) + " is outside [0, 1]");
    }
    tests.push_back(i);
  }
  const double m = static_cast<double>(tests.size());
  if (correction == Correction::Bonferroni) {
    for (std::size_t i : tests) adjusted[i] = std::min(1.0, m * pvalues[i]);
  } else if (correction == Correction::BenjaminiHochberg) {
    std::stable_sort(tests.begin(), tests.end(),
                     [&](std::size_t a, std::size_t b) { return pvalues[a] < pvalues[b]; });
    double running_min = 1.0;
    for (std::size_t rank = tests.size(); rank-- > 0;) {
      const std::size_t i = tests[rank];
      // p * (m / rank), in SciPy's order of operations, so adjusted values match it bit for bit.
      running_min = std::min(running_min, pvalues[i] * (m / static_cast<double>(rank + 1)));
      adjusted[i] = running_min;
    }
  }
  return adjusted;
}

}  // namespace driftguard
